//! TOTP second factor (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one step of clock skew)
//! and recovery codes.

use rand::RngCore;
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{AuthError, Result};

pub const STEP_SECONDS: u64 = 30;

/// A fresh 160-bit secret (RFC 4226 recommends 160 bits), base32 as authenticator apps expect.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    match Secret::Raw(bytes.to_vec()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => unreachable!("to_encoded returns an encoded secret"),
    }
}

fn totp(secret_b32: &str) -> Result<TOTP> {
    let bytes = Secret::Encoded(secret_b32.to_string())
        .to_bytes()
        .map_err(|e| AuthError::Internal(format!("TOTP secret: {e:?}")))?;
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECONDS, bytes)
        .map_err(|e| AuthError::Internal(format!("TOTP: {e}")))
}

/// The `otpauth://` URI an authenticator app scans (Key Uri Format).
pub fn provisioning_uri(secret_b32: &str, username: &str) -> String {
    let label: String = format!("Megalis:{username}")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/{label}?secret={secret_b32}&issuer=Megalis&algorithm=SHA1&digits=6&period=30"
    )
}

/// The code for a Unix time (for tests and the demo).
pub fn code_at(secret_b32: &str, unix_seconds: u64) -> Result<String> {
    Ok(totp(secret_b32)?.generate(unix_seconds))
}

/// Checks a code at `unix_seconds`, accepting the previous and next step for clock skew.
/// Returns the time step that matched, which must be greater than the last accepted step of
/// the account: a code is good once (RFC 6238 §5.2).
pub fn check(
    secret_b32: &str,
    code: &str,
    unix_seconds: u64,
    last_step: i64,
) -> Result<Option<i64>> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let t = totp(secret_b32)?;
    let now_step = (unix_seconds / STEP_SECONDS) as i64;
    for step in [now_step - 1, now_step, now_step + 1] {
        if step <= last_step || step < 0 {
            continue;
        }
        let expected = t.generate(step as u64 * STEP_SECONDS);
        if crate::crypto::constant_time_eq(&expected, code) {
            return Ok(Some(step));
        }
    }
    Ok(None)
}

/// Ten recovery codes of 10 characters from an alphabet without look-alikes (about 50 bits
/// each), shown once; only their SHA-256 digests are stored.
pub fn new_recovery_codes() -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    (0..10)
        .map(|_| {
            let mut bytes = [0u8; 10];
            rand::rng().fill_bytes(&mut bytes);
            let s: String = bytes
                .iter()
                .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
                .collect();
            format!("{}-{}", &s[..5], &s[5..])
        })
        .collect()
}

/// Normalises a typed recovery code (case, spaces, dash) before hashing.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 appendix B: secret "12345678901234567890", T = 59 → 94287082 (8 digits);
        // the 6-digit code is its last six digits.
        let secret = match Secret::Raw(b"12345678901234567890".to_vec()).to_encoded() {
            Secret::Encoded(s) => s,
            Secret::Raw(_) => unreachable!(),
        };
        assert_eq!(code_at(&secret, 59).unwrap(), "287082");
        assert_eq!(code_at(&secret, 1111111109).unwrap(), "081804");
    }

    #[test]
    fn codes_are_accepted_once_and_with_one_step_of_skew() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let code = code_at(&secret, now).unwrap();
        let step = check(&secret, &code, now, 0).unwrap().expect("accepted");
        assert_eq!(step, (now / 30) as i64);
        assert_eq!(check(&secret, &code, now, step).unwrap(), None, "replay");
        assert!(
            check(&secret, &code, now + 30, 0).unwrap().is_some(),
            "skew"
        );
        assert_eq!(check(&secret, &code, now + 90, 0).unwrap(), None, "too old");
        assert_eq!(check(&secret, "12a456", now, 0).unwrap(), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_normalised() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        assert_eq!(normalise_recovery_code(" ABCde-fghjk "), "abcdefghjk");
        assert!(provisioning_uri("ABC", "j dupont").contains("Megalis:j%20dupont"));
    }
}
