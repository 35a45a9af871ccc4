//! Token signing keys, kept in the database so that every replica signs with, and publishes, the
//! same keys: one current key per algorithm, ES256 (P-256) and RS256 (RSA-2048). OpenID Connect
//! requires RS256 for ID tokens (it is the default every relying party supports); ES256 signs
//! ten times faster, RS256 verifies two to three times faster, so access tokens use either
//! (`auth.access_token_algorithm`). A new key of an algorithm is made when its newest is older
//! than the rotation period; older keys stay published (for validation) until every token they
//! signed has expired, then are deleted.
//!
//! Storage: `private_pkcs8` holds the private key (PKCS#8 for ES256, PKCS#1 for RS256: what each
//! signer reads); `public_x`/`public_y` hold the JWK members `x`/`y` (ES256) or `n`/`e` (RS256).

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use megalis_store::{Database, with_pool};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

use crate::crypto::b64url;
use crate::{AuthError, Result, now_us};

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    /// `ES256` or `RS256`.
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    /// JWK `x` (ES256) or `n` (RS256).
    pub x: String,
    /// JWK `y` (ES256) or `e` (RS256).
    pub y: String,
    pub created_at_us: i64,
}

/// The algorithms the provider signs with, each with its own current key.
pub const SIGNING_ALGORITHMS: [Algorithm; 2] = [Algorithm::ES256, Algorithm::RS256];

fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        _ => "ES256",
    }
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
    alg: String,
    private_pkcs8: Vec<u8>,
    public_x: String,
    public_y: String,
    created_at_us: i64,
}

fn to_key(row: KeyRow) -> Result<SigningKey> {
    let bad = |e: jsonwebtoken::errors::Error| AuthError::Internal(format!("key {}: {e}", row.kid));
    let (alg, encoding, decoding) = match row.alg.as_str() {
        "RS256" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&row.private_pkcs8),
            DecodingKey::from_rsa_components(&row.public_x, &row.public_y).map_err(bad)?,
        ),
        "ES256" => (
            Algorithm::ES256,
            EncodingKey::from_ec_der(&row.private_pkcs8),
            DecodingKey::from_ec_components(&row.public_x, &row.public_y).map_err(bad)?,
        ),
        other => {
            return Err(AuthError::Internal(format!(
                "key {}: unknown algorithm {other}",
                row.kid
            )));
        }
    };
    Ok(SigningKey {
        alg,
        encoding,
        decoding,
        kid: row.kid,
        x: row.public_x,
        y: row.public_y,
        created_at_us: row.created_at_us,
    })
}

/// Every published key, newest first.
pub async fn load(db: &Database) -> Result<Vec<SigningKey>> {
    let rows: Vec<KeyRow> = with_pool!(db, pool => sqlx::query_as(
        "SELECT kid, alg, private_pkcs8, public_x, public_y, created_at_us FROM oauth_signing_key \
         ORDER BY created_at_us DESC, kid")
        .fetch_all(pool).await)?;
    rows.into_iter().map(to_key).collect()
}

fn generate(alg: Algorithm) -> Result<(String, Vec<u8>, String, String)> {
    match alg {
        Algorithm::RS256 => generate_rs256(),
        _ => generate_es256(),
    }
}

/// ring's system randomness behind the `rand_core` traits the `rsa` crate asks for (ring
/// cannot generate RSA keys, only use them; `rsa` is already in the tree through jsonwebtoken).
struct SystemRng(SystemRandom);

impl rsa::rand_core::RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        ring::rand::SecureRandom::fill(&self.0, dest).expect("the system random source works");
    }
    fn try_fill_bytes(
        &mut self,
        dest: &mut [u8],
    ) -> std::result::Result<(), rsa::rand_core::Error> {
        ring::rand::SecureRandom::fill(&self.0, dest)
            .map_err(|_| rsa::rand_core::Error::new("system random source failed"))
    }
}

impl rsa::rand_core::CryptoRng for SystemRng {}

fn generate_rs256() -> Result<(String, Vec<u8>, String, String)> {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let key = rsa::RsaPrivateKey::new(&mut SystemRng(SystemRandom::new()), 2048)
        .map_err(|e| AuthError::Internal(format!("cannot generate an RSA key: {e}")))?;
    let der = key
        .to_pkcs1_der()
        .map_err(|e| AuthError::Internal(format!("cannot encode the RSA key: {e}")))?;
    let (n, e) = (
        b64url(&key.n().to_bytes_be()),
        b64url(&key.e().to_bytes_be()),
    );
    let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid =
        b64url(ring::digest::digest(&ring::digest::SHA256, thumbprint_input.as_bytes()).as_ref());
    Ok((kid, der.as_bytes().to_vec(), n, e))
}

fn generate_es256() -> Result<(String, Vec<u8>, String, String)> {
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
    let mut changed = false;
    for alg in SIGNING_ALGORITHMS {
        let name = alg_name(alg);
        let newest: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
            "SELECT max(created_at_us) FROM oauth_signing_key WHERE alg = $1")
            .bind(name).fetch_one(pool).await)?;
        if newest.is_some_and(|t| now - t < rotation_us) {
            continue;
        }
        let (kid, private, x, y) = generate(alg)?;
        with_pool!(db, pool => sqlx::query(
            "INSERT INTO oauth_signing_key (kid, alg, private_pkcs8, public_x, public_y, created_at_us) \
             VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&kid).bind(name).bind(&private).bind(&x).bind(&y).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        // Older keys of this algorithm stop signing now; they are retired (still published).
        with_pool!(db, pool => sqlx::query(
            "UPDATE oauth_signing_key SET retired_at_us = $1 \
             WHERE alg = $2 AND kid <> $3 AND retired_at_us IS NULL")
            .bind(now).bind(name).bind(&kid).execute(pool).await.map(|r| r.rows_affected()))?;
        tracing::info!(kid, alg = name, "new token signing key");
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
        "keys": keys.iter().map(|k| match k.alg {
            Algorithm::RS256 => serde_json::json!({
                "kty": "RSA", "n": k.x, "e": k.y,
                "kid": k.kid, "use": "sig", "alg": "RS256",
            }),
            _ => serde_json::json!({
                "kty": "EC", "crv": "P-256", "x": k.x, "y": k.y,
                "kid": k.kid, "use": "sig", "alg": "ES256",
            }),
        }).collect::<Vec<_>>()
    })
}
