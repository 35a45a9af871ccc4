//! The INS (Identifiant National de Santé): a NIR or a NIA, 13 characters and a 2-digit key.
//!
//! The key is `97 − (number mod 97)`, where Corsica's departments `2A` and `2B` count as `19`
//! and `18`. The assigning authority is given by an OID: `…4.8` (NIR), `…4.9` (NIA); `…4.10`
//! (test) and `…4.11` (demonstration) identities are refused unless the caller runs in test mode,
//! so that a test patient can never reach a production record.

use std::fmt;

use crate::IdentityError;

/// OID of INS-NIR.
pub const OID_NIR: &str = "1.2.250.1.213.1.4.8";
/// OID of INS-NIA.
pub const OID_NIA: &str = "1.2.250.1.213.1.4.9";
/// OID of test INS.
pub const OID_TEST: &str = "1.2.250.1.213.1.4.10";
/// OID of demonstration INS.
pub const OID_DEMO: &str = "1.2.250.1.213.1.4.11";

/// Which register assigned the INS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InsKind {
    Nir,
    Nia,
    Test,
    Demo,
}

impl InsKind {
    pub fn oid(self) -> &'static str {
        match self {
            InsKind::Nir => OID_NIR,
            InsKind::Nia => OID_NIA,
            InsKind::Test => OID_TEST,
            InsKind::Demo => OID_DEMO,
        }
    }

    /// Parses an OID; test and demonstration OIDs only when `test_mode` is on.
    pub fn from_oid(oid: &str, test_mode: bool) -> Result<Self, IdentityError> {
        let oid = oid.strip_prefix("urn:oid:").unwrap_or(oid);
        match oid {
            OID_NIR => Ok(InsKind::Nir),
            OID_NIA => Ok(InsKind::Nia),
            OID_TEST | OID_DEMO if !test_mode => Err(IdentityError::TestOidRefused(oid.into())),
            OID_TEST => Ok(InsKind::Test),
            OID_DEMO => Ok(InsKind::Demo),
            _ => Err(IdentityError::UnknownInsOid(oid.into())),
        }
    }
}

/// A validated INS: 15 characters (13 + key) and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Ins {
    value: String,
    kind: InsKind,
}

impl Ins {
    /// Validates `value` (15 characters, spaces ignored) under the given OID.
    pub fn parse(value: &str, oid: &str, test_mode: bool) -> Result<Self, IdentityError> {
        let kind = InsKind::from_oid(oid, test_mode)?;
        let value: String = value.chars().filter(|c| !c.is_whitespace()).collect();
        let value = value.to_ascii_uppercase();
        if value.len() != 15 || !value.is_ascii() {
            return Err(invalid(format!(
                "expected 15 characters (13 + key), got {}",
                value.chars().count()
            )));
        }
        let (number, key) = value.split_at(13);
        let key: u32 = key
            .parse()
            .map_err(|_| invalid("the key must be two digits".into()))?;
        let expected = key_of(number)?;
        if key != expected {
            return Err(invalid(format!(
                "wrong key {key:02}, expected {expected:02}"
            )));
        }
        Ok(Ins { value, kind })
    }

    /// The 15 characters.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    pub fn kind(&self) -> InsKind {
        self.kind
    }

    pub fn oid(&self) -> &'static str {
        self.kind.oid()
    }

    /// First 7 characters (sex, year and month of birth, department): a blocking key.
    pub fn prefix(&self) -> &str {
        &self.value[..7]
    }
}

impl fmt::Display for Ins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

fn invalid(reason: String) -> IdentityError {
    IdentityError::InvalidIns {
        field: "value",
        reason,
    }
}

/// The key of a 13-character number: `97 − (n mod 97)`, Corsica `2A`/`2B` read as `19`/`18`.
pub fn key_of(number: &str) -> Result<u32, IdentityError> {
    if number.len() != 13 || !number.is_ascii() {
        return Err(invalid("the number must have 13 characters".into()));
    }
    let number = number.to_ascii_uppercase();
    // The department sits at positions 6–7 (after sex, year and month).
    let digits = match &number[5..7] {
        "2A" => format!("{}19{}", &number[..5], &number[7..]),
        "2B" => format!("{}18{}", &number[..5], &number[7..]),
        _ => number.clone(),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(
            "only digits, or 2A/2B as department, are allowed".into(),
        ));
    }
    if !matches!(
        digits.as_bytes()[0],
        b'1' | b'2' | b'3' | b'4' | b'7' | b'8'
    ) {
        return Err(invalid(
            "the first digit (sex) must be 1, 2, 3, 4, 7 or 8".into(),
        ));
    }
    let n: u64 = digits.parse().map_err(|_| invalid("not a number".into()))?;
    Ok(97 - (n % 97) as u32)
}

/// Appends the key to a 13-character number (used by the synthetic population generator).
pub fn with_key(number: &str) -> Result<String, IdentityError> {
    Ok(format!("{number}{:02}", key_of(number)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_table() {
        // (number, key): the first is the example of the INSEE documentation, the Corsican ones
        // check the 2A → 19 / 2B → 18 substitution against a hand computation.
        let cases = [
            ("1850578006084", 91),
            ("2690299341732", 85),
            ("185052A006084", 97 - (1_850_519_006_084u64 % 97) as u32),
            ("185052B006084", 97 - (1_850_518_006_084u64 % 97) as u32),
        ];
        for (number, key) in cases {
            assert_eq!(key_of(number).unwrap(), key, "{number}");
            let ins = Ins::parse(&format!("{number}{key:02}"), OID_NIR, false).unwrap();
            assert_eq!(ins.as_str(), format!("{number}{key:02}"));
        }
    }

    #[test]
    fn refusals() {
        let good = with_key("1850578006084").unwrap();
        let cases: [(&str, &str, bool, &str); 8] = [
            ("185057800608490", OID_NIR, false, "wrong key"),
            ("18505780060849", OID_NIR, false, "15 characters"),
            ("1850578006084AB", OID_NIR, false, "two digits"),
            ("5850578006084 91", OID_NIR, false, "first digit"),
            ("18505X800608491", OID_NIR, false, "only digits"),
            (&good, OID_TEST, false, "test or demonstration"),
            (&good, OID_DEMO, false, "test or demonstration"),
            (&good, "1.2.3", false, "unknown INS OID"),
        ];
        for (value, oid, test, msg) in cases {
            let err = Ins::parse(value, oid, test).unwrap_err().to_string();
            assert!(err.contains(msg), "{value} {oid}: {err}");
        }
    }

    #[test]
    fn test_oids_accepted_in_test_mode() {
        let good = with_key("2690299341732").unwrap();
        assert_eq!(
            Ins::parse(&good, OID_TEST, true).unwrap().kind(),
            InsKind::Test
        );
        assert_eq!(
            Ins::parse(&good, &format!("urn:oid:{OID_DEMO}"), true)
                .unwrap()
                .kind(),
            InsKind::Demo
        );
        assert_eq!(
            Ins::parse(&good, OID_NIA, false).unwrap().prefix(),
            "2690299"
        );
    }
}
