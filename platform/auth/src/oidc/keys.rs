//! Token signing keys: ES256 (P-256) key pairs kept in the database so that every replica signs
//! with, and publishes, the same keys. A new key is made when the newest is older than the
//! rotation period; older keys stay published (for validation) until every token they signed
//! has expired, then are deleted.

use std::time::Duration;

use jsonwebtoken::{DecodingKey, EncodingKey};
use megalis_store::{Database, with_pool};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use crate::crypto::b64url;
use crate::{AuthError, Result, now_us};

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub x: String,
    pub y: String,
    pub created_at_us: i64,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    kid: String,
    private_pkcs8: Vec<u8>,
    public_x: String,
    public_y: String,
    created_at_us: i64,
}

fn to_key(row: KeyRow) -> Result<SigningKey> {
    Ok(SigningKey {
        encoding: EncodingKey::from_ec_der(&row.private_pkcs8),
        decoding: DecodingKey::from_ec_components(&row.public_x, &row.public_y)
            .map_err(|e| AuthError::Internal(format!("key {}: {e}", row.kid)))?,
        kid: row.kid,
        x: row.public_x,
        y: row.public_y,
        created_at_us: row.created_at_us,
    })
}

/// Every published key, newest first.
pub async fn load(db: &Database) -> Result<Vec<SigningKey>> {
    let rows: Vec<KeyRow> = with_pool!(db, pool => sqlx::query_as(
        "SELECT kid, private_pkcs8, public_x, public_y, created_at_us FROM oauth_signing_key \
         ORDER BY created_at_us DESC, kid")
        .fetch_all(pool).await)?;
    rows.into_iter().map(to_key).collect()
}

fn generate() -> Result<(String, Vec<u8>, String, String)> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| AuthError::Internal("cannot generate a P-256 key".into()))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| AuthError::Internal("cannot read the generated key".into()))?;
    // Uncompressed point: 0x04 ‖ X (32 bytes) ‖ Y (32 bytes).
    let public = pair.public_key().as_ref();
    let (x, y) = (b64url(&public[1..33]), b64url(&public[33..65]));
    // The key id is the RFC 7638 thumbprint, so replicas that race to rotate make distinct ids.
    let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid =
        b64url(ring::digest::digest(&ring::digest::SHA256, thumbprint_input.as_bytes()).as_ref());
    Ok((kid, pkcs8.as_ref().to_vec(), x, y))
}

/// Makes a key when there is none or the newest is older than `rotation`; deletes keys retired
/// for longer than `retention` (the longest token lifetime). Returns whether anything changed.
pub async fn rotate_if_due(db: &Database, rotation: Duration, retention: Duration) -> Result<bool> {
    let now = now_us();
    let rotation_us = i64::try_from(rotation.as_micros()).unwrap_or(i64::MAX);
    let retention_us = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    let newest: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT max(created_at_us) FROM oauth_signing_key")
        .fetch_one(pool).await)?;
    let mut changed = false;
    if newest.is_none_or(|t| now - t >= rotation_us) {
        let (kid, pkcs8, x, y) = generate()?;
        with_pool!(db, pool => sqlx::query(
            "INSERT INTO oauth_signing_key (kid, private_pkcs8, public_x, public_y, created_at_us) \
             VALUES ($1, $2, $3, $4, $5)")
            .bind(&kid).bind(&pkcs8).bind(&x).bind(&y).bind(now).execute(pool).await.map(|r| r.rows_affected()))?;
        // Keys older than the new one stop signing now; they are retired (still published).
        with_pool!(db, pool => sqlx::query(
            "UPDATE oauth_signing_key SET retired_at_us = $1 WHERE kid <> $2 AND retired_at_us IS NULL")
            .bind(now).bind(&kid).execute(pool).await.map(|r| r.rows_affected()))?;
        tracing::info!(kid, "new token signing key");
        changed = true;
    }
    let deleted = with_pool!(db, pool => sqlx::query(
        "DELETE FROM oauth_signing_key WHERE retired_at_us IS NOT NULL AND retired_at_us < $1")
        .bind(now - retention_us).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(changed || deleted > 0)
}

/// The JWKS document (RFC 7517) of the given keys.
pub fn jwks(keys: &[SigningKey]) -> serde_json::Value {
    serde_json::json!({
        "keys": keys.iter().map(|k| serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": k.x, "y": k.y,
            "kid": k.kid, "use": "sig", "alg": "ES256",
        })).collect::<Vec<_>>()
    })
}
