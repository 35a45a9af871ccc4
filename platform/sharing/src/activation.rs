//! One-time activation codes for patients' own accounts: a professional of the care team issues
//! one once the patient's identity is checked; the patient redeems it (with their birth date)
//! to create their account. The code is shown once and only its SHA-256 is stored; it expires,
//! and it can be redeemed once.

use megalis_store::with_pool;
use rand::Rng;

use crate::decision::Micros;
use crate::store::SharingStore;
use crate::{Result, SharingError};

/// How long a code stays valid.
pub const CODE_LIFETIME: Micros = 14 * 86_400_000_000;

/// Unambiguous letters and digits (no 0/O, 1/I/L): a code is read aloud or copied from paper.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A new code: 12 characters in three groups (about 59 bits).
pub fn new_code() -> String {
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!(
        "{}-{}-{}",
        chars[0..4].iter().collect::<String>(),
        chars[4..8].iter().collect::<String>(),
        chars[8..12].iter().collect::<String>()
    )
}

/// The code as typed, normalised (case, spaces and dashes ignored), then hashed.
pub fn code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(ring::digest::digest(&ring::digest::SHA256, normal.as_bytes()).as_ref())
}

impl SharingStore {
    /// Issues a code for the patient; earlier unused codes of the patient stop working.
    pub async fn issue_activation(
        &self,
        regional_id: &str,
        created_by: &str,
        now: Micros,
    ) -> Result<String> {
        let code = new_code();
        let hash = code_hash(&code);
        with_pool!(self.db(), pool => {
            sqlx::query("UPDATE patient_activation SET expires_at_us = $2 \
                         WHERE regional_id = $1 AND used_at_us IS NULL AND expires_at_us > $2")
                .bind(regional_id)
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query("INSERT INTO patient_activation (code_hash, regional_id, created_by, \
                         created_at_us, expires_at_us) VALUES ($1, $2, $3, $4, $5)")
                .bind(&hash)
                .bind(regional_id)
                .bind(created_by)
                .bind(now)
                .bind(now + CODE_LIFETIME)
                .execute(pool)
                .await?;
        });
        Ok(code)
    }

    /// The patient a valid, unused code names (nothing is consumed).
    pub async fn activation_patient(&self, code: &str, now: Micros) -> Result<String> {
        let found: Option<String> = with_pool!(self.db(), pool =>
            sqlx::query_scalar("SELECT regional_id FROM patient_activation WHERE code_hash = $1 \
                                AND used_at_us IS NULL AND expires_at_us > $2")
                .bind(code_hash(code))
                .bind(now)
                .fetch_optional(pool)
                .await?);
        found.ok_or_else(|| {
            SharingError::Invalid(
                "code inconnu, expiré ou déjà utilisé / unknown, expired or used code".into(),
            )
        })
    }

    /// Consumes the code for `account_id`; fails if someone else consumed it first.
    pub async fn redeem_activation(&self, code: &str, account_id: &str, now: Micros) -> Result<()> {
        let done = with_pool!(self.db(), pool =>
            sqlx::query("UPDATE patient_activation SET used_at_us = $2, account_id = $3 \
                         WHERE code_hash = $1 AND used_at_us IS NULL AND expires_at_us > $2")
                .bind(code_hash(code))
                .bind(now)
                .bind(account_id)
                .execute(pool)
                .await?
                .rows_affected());
        if done == 0 {
            return Err(SharingError::Invalid(
                "code inconnu, expiré ou déjà utilisé / unknown, expired or used code".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_readable_and_hash_the_same_however_typed() {
        let c = new_code();
        assert_eq!(c.len(), 14);
        assert!(
            c.chars()
                .all(|ch| ch == '-' || ALPHABET.contains(&(ch as u8)))
        );
        assert_eq!(
            code_hash(&c),
            code_hash(&c.to_lowercase().replace('-', " "))
        );
        assert_ne!(code_hash(&c), code_hash(&new_code()));
    }
}
