//! The regional patient identifier: `BZH` followed by 10 digits and one check digit.
//!
//! The check digit uses the Damm algorithm: one decimal digit that detects every single-digit
//! error and every transposition of adjacent digits — the two mistakes people make when they
//! copy an identifier by hand — which a plain mod-10 sum (Luhn misses `09`↔`90`) does not.

use std::fmt;

use crate::IdentityError;

const PREFIX: &str = "BZH";

// Damm's totally anti-symmetric quasigroup of order 10 (from his 2004 thesis).
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

fn damm(digits: &str) -> u8 {
    digits.bytes().fold(0u8, |interim, b| {
        DAMM[interim as usize][(b - b'0') as usize]
    })
}

/// A regional patient identifier (golden record id), e.g. `BZH00000000427` (sequence 42).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionalId(String);

impl RegionalId {
    /// The identifier of sequence number `n` (from the database sequence).
    pub fn from_sequence(n: u64) -> Self {
        let body = format!("{:010}", n % 10_000_000_000);
        let check = damm(&body);
        RegionalId(format!("{PREFIX}{body}{check}"))
    }

    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        let bad = || IdentityError::InvalidRegionalId(s.to_string());
        let digits = s.strip_prefix(PREFIX).ok_or_else(bad)?;
        if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // A number followed by its Damm digit checks to zero.
        if damm(digits) != 0 {
            return Err(bad());
        }
        Ok(RegionalId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The sequence number this identifier was made from.
    pub fn sequence(&self) -> u64 {
        self.0[3..13].parse().unwrap_or(0)
    }
}

impl fmt::Display for RegionalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damm_reference_value() {
        // The worked example of the algorithm: 572 → check digit 4.
        assert_eq!(damm("572"), 4);
        assert_eq!(damm("5724"), 0);
    }

    #[test]
    fn round_trip_and_errors() {
        for n in [0u64, 1, 42, 9_999_999_999, 1_234_567_890] {
            let id = RegionalId::from_sequence(n);
            assert_eq!(RegionalId::parse(id.as_str()).unwrap(), id);
            assert_eq!(id.sequence(), n);
            let bytes = id.as_str().as_bytes();
            // Every single-digit substitution and adjacent transposition is detected.
            for i in 3..bytes.len() {
                for d in b'0'..=b'9' {
                    if d != bytes[i] {
                        let mut v = bytes.to_vec();
                        v[i] = d;
                        let s = String::from_utf8(v).unwrap();
                        assert!(RegionalId::parse(&s).is_err(), "{s}");
                    }
                }
                if i + 1 < bytes.len() && bytes[i] != bytes[i + 1] {
                    let mut v = bytes.to_vec();
                    v.swap(i, i + 1);
                    let s = String::from_utf8(v).unwrap();
                    assert!(RegionalId::parse(&s).is_err(), "{s}");
                }
            }
        }
        for bad in [
            "",
            "BZH",
            "FRA00000000420",
            "BZH0000000042",
            "BZH0000000042a",
        ] {
            assert!(RegionalId::parse(bad).is_err(), "{bad}");
        }
    }
}
