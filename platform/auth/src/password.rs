//! Password hashing (argon2id at OWASP's parameters) and the password policy.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::{AuthError, Result};

/// OWASP Password Storage Cheat Sheet, first argon2id configuration: m = 19 MiB, t = 2, p = 1.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Internal(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(e.to_string()))
}

/// Verifies a password against a stored PHC string. The parameters come from the string, so
/// hashes made with older parameters still verify (and [`needs_rehash`] says to upgrade them).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified when the account does not exist or has no password,
/// so that such attempts cost the same time as real ones (no account enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&crate::crypto::random_token()).expect("hash a random password"))
}

pub fn needs_rehash(phc: &str) -> bool {
    !phc.starts_with(&format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}$"
    ))
}

/// The password policy (ANSSI/NIST style: length over composition rules, no trivial passwords,
/// not the user name). Returns a message fit to show to the user.
pub fn check_policy(password: &str, username: &str) -> Result<()> {
    let length = password.chars().count();
    let weak = |fr: &str, en: &str| Err(AuthError::WeakPassword(format!("{fr} / {en}")));
    if length < MIN_LENGTH {
        return weak(
            &format!("le mot de passe doit contenir au moins {MIN_LENGTH} caractères"),
            &format!("the password must be at least {MIN_LENGTH} characters long"),
        );
    }
    if length > MAX_LENGTH {
        return weak(
            &format!("le mot de passe doit contenir au plus {MAX_LENGTH} caractères"),
            &format!("the password must be at most {MAX_LENGTH} characters long"),
        );
    }
    let lower = password.to_lowercase();
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return weak(
            "le mot de passe ne doit pas contenir l'identifiant",
            "the password must not contain the user name",
        );
    }
    let distinct: std::collections::BTreeSet<char> = password.chars().collect();
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if distinct.len() < 6 || classes < 3 {
        return weak(
            "le mot de passe doit mêler au moins trois types de caractères (minuscules, \
             majuscules, chiffres, symboles) et ne pas répéter les mêmes",
            "the password must mix at least three kinds of characters (lower case, upper case, \
             digits, symbols) without repeating the same ones",
        );
    }
    for common in [
        "motdepasse",
        "password",
        "azerty",
        "qwerty",
        "123456",
        "megalis",
    ] {
        if lower.contains(common) {
            return weak(
                "le mot de passe contient une suite trop courante",
                "the password contains a too common sequence",
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_owasp_parameters() {
        let h = hash("Correct-Horse-42").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("Correct-Horse-42", &h));
        assert!(!verify("correct-horse-42", &h));
        assert!(!needs_rehash(&h));
        assert!(!verify("anything", "not a PHC string"));
        assert!(!verify("anything", dummy_hash()));
    }

    #[test]
    fn policy_table() {
        let cases = [
            ("short1A!", "jdupont", false),
            ("Correct-Horse-42", "jdupont", true),
            ("jdupont-Horse-42", "jdupont", false),
            ("aaaaaaaaaaaaaaa", "jdupont", false),
            ("alllowercaseletters", "jdupont", false),
            ("Azerty-Brest-2026", "jdupont", false),
            ("Ty-Kreiz-Kemper-29", "jdupont", true),
            (&"Aa1!".repeat(40), "jdupont", false),
        ];
        for (password, user, ok) in cases {
            assert_eq!(
                check_policy(password, user).is_ok(),
                ok,
                "{password:?} for {user}"
            );
        }
    }
}
