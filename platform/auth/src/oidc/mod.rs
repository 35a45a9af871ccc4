//! The OpenID Provider's persistent state: clients, authorization codes, refresh tokens and the
//! revocation/closure list. The protocol logic that ties them together is in
//! [`crate::service::Auth`]; the HTTP endpoints are in the server.

pub mod keys;
pub mod revocation;

use megalis_store::{Database, with_pool};

use crate::crypto::{constant_time_eq, token_hash};
use crate::{AuthError, Result, now_us};

/// Scopes the provider knows besides SMART-style resource scopes.
pub const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "megalis"];

/// Whether a scope is well formed: an OIDC scope, a SMART v2 scope
/// `(user|patient|system)/(Resource|*).(c?r?u?d?s?)` (IHE IUA uses the same shape), or an
/// application scope `application.permission` that a plugin's bearer route declares
/// (`messagerie.read`).
pub fn valid_scope(scope: &str) -> bool {
    if OIDC_SCOPES.contains(&scope) {
        return true;
    }
    if !scope.contains('/') {
        return is_application_scope(scope);
    }
    let Some((context, rest)) = scope.split_once('/') else {
        return false;
    };
    let Some((resource, perms)) = rest.split_once('.') else {
        return false;
    };
    matches!(context, "user" | "patient" | "system")
        && (resource == "*"
            || (!resource.is_empty() && resource.bytes().all(|b| b.is_ascii_alphabetic())))
        && !perms.is_empty()
        && is_ordered_subset(perms, "cruds")
}

/// `application.permission`: lower-case ASCII words (digits, `-` and `_` inside), one dot.
fn is_application_scope(scope: &str) -> bool {
    let word = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase())
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    };
    matches!(scope.split_once('.'), Some((app, perm)) if word(app) && word(perm))
}

fn is_ordered_subset(s: &str, of: &str) -> bool {
    let mut it = of.chars();
    s.chars().all(|c| it.by_ref().any(|o| o == c))
}

/// Whether a scope asks for patient data (needs strong authentication for users).
pub fn is_patient_data_scope(scope: &str) -> bool {
    scope.starts_with("user/") || scope.starts_with("patient/") || scope.starts_with("system/")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "client_credentials" => Some(GrantType::ClientCredentials),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    secret_hash: Option<String>,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub launch_url: Option<String>,
    pub revoked: bool,
    /// RFC 8705 `x5t#S256` of the certificate this client authenticates with on the mutual-TLS
    /// listener; its access tokens obtained there are bound to it.
    pub certificate_sha256: Option<String>,
}

impl Client {
    /// Checks the client secret. Secrets are at least 32 random characters (enforced at
    /// registration), so a SHA-256 digest protects them as well as a slow hash would, and lets a
    /// client-credentials grant cost microseconds, not tens of milliseconds.
    pub fn secret_ok(&self, secret: &str) -> bool {
        match &self.secret_hash {
            Some(h) => constant_time_eq(h, &token_hash(secret)),
            None => false,
        }
    }

    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[derive(Debug, Clone)]
pub struct NewClient {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub launch_url: Option<String>,
}

pub const MIN_SECRET_LENGTH: usize = 32;

pub async fn add_client(db: &Database, c: &NewClient) -> Result<()> {
    if c.id.is_empty()
        || c.id.len() > 64
        || !c
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(AuthError::Invalid(
            "client id: 1 to 64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if c.secret.chars().count() < MIN_SECRET_LENGTH {
        return Err(AuthError::Invalid(format!(
            "the client secret must be at least {MIN_SECRET_LENGTH} random characters"
        )));
    }
    if c.grant_types.is_empty() {
        return Err(AuthError::Invalid(
            "at least one grant type is needed".into(),
        ));
    }
    if c.grant_types.contains(&GrantType::AuthorizationCode) && c.redirect_uris.is_empty() {
        return Err(AuthError::Invalid(
            "an authorization_code client needs at least one redirect URI".into(),
        ));
    }
    for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
        if !(uri.starts_with("https://")
            || uri.starts_with("http://127.0.0.1")
            || uri.starts_with("http://localhost"))
            || uri.contains('#')
        {
            return Err(AuthError::Invalid(format!(
                "redirect URI {uri:?}: https (or http on the loopback), no fragment"
            )));
        }
    }
    if let Some(bad) = c.scopes.iter().find(|s| !valid_scope(s)) {
        return Err(AuthError::Invalid(format!("unknown scope {bad:?}")));
    }
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    let result = with_pool!(db, pool => sqlx::query(
        "INSERT INTO oauth_client (id, name, secret_hash, grant_types, redirect_uris, \
         post_logout_redirect_uris, scopes, launch_url, created_at_us) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&c.id).bind(&c.name).bind(token_hash(&c.secret)).bind(grants.join(" "))
        .bind(c.redirect_uris.join(" ")).bind(c.post_logout_redirect_uris.join(" "))
        .bind(c.scopes.join(" ")).bind(&c.launch_url).bind(now_us())
        .execute(pool).await.map(|r| r.rows_affected()));
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            Err(AuthError::Conflict(format!("client {}", c.id)))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    id: String,
    name: String,
    secret_hash: Option<String>,
    grant_types: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    scopes: String,
    launch_url: Option<String>,
    revoked: i64,
    certificate_sha256: Option<String>,
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

pub async fn client(db: &Database, id: &str) -> Result<Option<Client>> {
    let row: Option<ClientRow> = with_pool!(db, pool => sqlx::query_as(
        "SELECT id, name, secret_hash, grant_types, redirect_uris, post_logout_redirect_uris, \
         scopes, launch_url, revoked, certificate_sha256 FROM oauth_client WHERE id = $1")
        .bind(id).fetch_optional(pool).await)?;
    Ok(row.map(|r| Client {
        grant_types: r
            .grant_types
            .split_whitespace()
            .filter_map(GrantType::parse)
            .collect(),
        redirect_uris: words(&r.redirect_uris),
        post_logout_redirect_uris: words(&r.post_logout_redirect_uris),
        scopes: words(&r.scopes),
        id: r.id,
        name: r.name,
        secret_hash: r.secret_hash,
        launch_url: r.launch_url,
        revoked: r.revoked != 0,
        certificate_sha256: r.certificate_sha256,
    }))
}

/// Registers (or, with `None`, removes) the certificate of a client, by its RFC 8705 thumbprint.
pub async fn set_client_certificate(
    db: &Database,
    id: &str,
    certificate_sha256: Option<&str>,
) -> Result<bool> {
    Ok(with_pool!(db, pool => sqlx::query(
        "UPDATE oauth_client SET certificate_sha256 = $1 WHERE id = $2")
        .bind(certificate_sha256).bind(id).execute(pool).await.map(|r| r.rows_affected()))?
        == 1)
}

/// An assigning-authority OID in its canonical form: the bare dotted OID, `urn:oid:` removed
/// (HL7 v2 PID-3.4 carries the bare OID, FHIR identifier systems the URN).
pub fn canonical_authority(value: &str) -> Result<String> {
    let oid = value.trim();
    let oid = oid.strip_prefix("urn:oid:").unwrap_or(oid);
    let mut arcs = oid.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 1;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        !arc.is_empty()
            && arc.bytes().all(|b| b.is_ascii_digit())
            && (arc == "0" || !arc.starts_with('0'))
    });
    if first_ok && rest_ok && count >= 2 && oid.len() <= 128 {
        Ok(oid.to_owned())
    } else {
        Err(AuthError::Invalid(format!(
            "{value:?} is not an assigning-authority OID (e.g. 1.2.250.1.71.4.2.1 or \
             urn:oid:1.2.250.1.71.4.2.1)"
        )))
    }
}

/// Binds a system client to an assigning authority it may feed. `false` when already bound.
pub async fn bind_authority(db: &Database, client_id: &str, authority: &str) -> Result<bool> {
    let authority = canonical_authority(authority)?;
    if client(db, client_id).await?.is_none() {
        return Err(AuthError::NotFound(format!("client {client_id}")));
    }
    Ok(with_pool!(db, pool => sqlx::query(
        "INSERT INTO oauth_client_authority (client_id, authority) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING")
        .bind(client_id).bind(&authority).execute(pool).await.map(|r| r.rows_affected()))?
        == 1)
}

/// Removes a binding. `false` when there was none.
pub async fn unbind_authority(db: &Database, client_id: &str, authority: &str) -> Result<bool> {
    let authority = canonical_authority(authority)?;
    Ok(with_pool!(db, pool => sqlx::query(
        "DELETE FROM oauth_client_authority WHERE client_id = $1 AND authority = $2")
        .bind(client_id).bind(&authority).execute(pool).await.map(|r| r.rows_affected()))?
        == 1)
}

/// Every binding, by client (the cache the service keeps).
pub async fn all_authorities(
    db: &Database,
) -> Result<std::collections::HashMap<String, Vec<String>>> {
    let rows: Vec<(String, String)> = with_pool!(db, pool => sqlx::query_as(
        "SELECT client_id, authority FROM oauth_client_authority ORDER BY client_id, authority")
        .fetch_all(pool).await)?;
    let mut out: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (client, authority) in rows {
        out.entry(client).or_default().push(authority);
    }
    Ok(out)
}

/// RFC 8705 §3.1 thumbprint of a DER certificate: base64url (no padding) of its SHA-256.
pub fn certificate_thumbprint(der: &[u8]) -> String {
    crate::crypto::b64url(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

pub async fn set_client_revoked(db: &Database, id: &str) -> Result<bool> {
    Ok(
        with_pool!(db, pool => sqlx::query("UPDATE oauth_client SET revoked = 1 WHERE id = $1")
        .bind(id).execute(pool).await.map(|r| r.rows_affected()))?
            == 1,
    )
}

/// An authorization code's stored facts.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CodeGrant {
    pub client_id: String,
    pub account_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub auth_time_us: i64,
    pub amr: String,
    pub expires_at_us: i64,
    pub family_id: String,
}

pub async fn store_code(db: &Database, code: &str, g: &CodeGrant) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO oauth_code (code_hash, client_id, account_id, redirect_uri, scope, \
         code_challenge, nonce, auth_time_us, amr, expires_at_us, family_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(token_hash(code)).bind(&g.client_id).bind(&g.account_id).bind(&g.redirect_uri)
        .bind(&g.scope).bind(&g.code_challenge).bind(&g.nonce).bind(g.auth_time_us)
        .bind(&g.amr).bind(g.expires_at_us).bind(&g.family_id)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// What redeeming a code found.
pub enum Redeemed {
    Fresh(CodeGrant),
    /// Already used: a replay. The caller revokes what the first use issued (RFC 6749 §4.1.2).
    Replayed(CodeGrant),
    Unknown,
}

/// Marks a code used, atomically: of two concurrent redemptions only one gets `Fresh`.
pub async fn redeem_code(db: &Database, code: &str) -> Result<Redeemed> {
    let hash = token_hash(code);
    let row: Option<CodeGrant> = with_pool!(db, pool => sqlx::query_as(
        "SELECT client_id, account_id, redirect_uri, scope, code_challenge, nonce, auth_time_us, \
         amr, expires_at_us, family_id FROM oauth_code WHERE code_hash = $1")
        .bind(&hash).fetch_optional(pool).await)?;
    let Some(grant) = row else {
        return Ok(Redeemed::Unknown);
    };
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE oauth_code SET used_at_us = $1 WHERE code_hash = $2 AND used_at_us IS NULL")
        .bind(now_us()).bind(&hash).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(if n == 1 {
        Redeemed::Fresh(grant)
    } else {
        Redeemed::Replayed(grant)
    })
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshGrant {
    pub family_id: String,
    pub client_id: String,
    pub account_id: String,
    pub scope: String,
    pub amr: String,
    pub expires_at_us: i64,
    pub used_at_us: Option<i64>,
    pub revoked: i64,
}

pub async fn store_refresh(db: &Database, token: &str, g: &RefreshGrant) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO oauth_refresh_token (token_hash, family_id, client_id, account_id, scope, amr, \
         expires_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(token_hash(token)).bind(&g.family_id).bind(&g.client_id).bind(&g.account_id)
        .bind(&g.scope).bind(&g.amr).bind(g.expires_at_us)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn find_refresh(db: &Database, token: &str) -> Result<Option<RefreshGrant>> {
    Ok(with_pool!(db, pool => sqlx::query_as(
        "SELECT family_id, client_id, account_id, scope, amr, expires_at_us, used_at_us, revoked \
         FROM oauth_refresh_token WHERE token_hash = $1")
        .bind(token_hash(token)).fetch_optional(pool).await)?)
}

/// Marks a refresh token used; false when it already was (reuse).
pub async fn use_refresh(db: &Database, token: &str) -> Result<bool> {
    Ok(with_pool!(db, pool => sqlx::query(
        "UPDATE oauth_refresh_token SET used_at_us = $1 \
         WHERE token_hash = $2 AND used_at_us IS NULL AND revoked = 0")
        .bind(now_us()).bind(token_hash(token)).execute(pool).await.map(|r| r.rows_affected()))?
        == 1)
}

pub async fn revoke_family(db: &Database, family_id: &str) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "UPDATE oauth_refresh_token SET revoked = 1 WHERE family_id = $1")
        .bind(family_id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_oids_are_canonical() {
        for (given, canonical) in [
            ("1.2.250.1.71.4.2.1", "1.2.250.1.71.4.2.1"),
            ("urn:oid:1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.8"),
            (" 2.16.840.1.113883.2.8 ", "2.16.840.1.113883.2.8"),
            ("0.9", "0.9"),
        ] {
            assert_eq!(canonical_authority(given).unwrap(), canonical);
        }
        for bad in [
            "",
            "1",
            "3.1.2",
            "1..2",
            "1.02",
            "1.2.",
            "urn:oid:",
            "1.2.a",
            "1.2.250'--",
            "CHU-RENNES",
        ] {
            assert!(canonical_authority(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_grammar() {
        for ok in [
            "openid",
            "user/Patient.rs",
            "system/Patient.rs",
            "user/DocumentReference.cr",
            "patient/*.r",
            "user/Observation.cruds",
            "probe.read",
            "breizh-rein.write_notes",
        ] {
            assert!(valid_scope(ok), "{ok}");
        }
        for bad in [
            "",
            "user/Patient",
            "user/Patient.sr",
            "admin/Patient.r",
            "user/.r",
            "user/Pat-ient.r",
            "user/Patient.x",
            "email",
            "probe",
            "Probe.read",
            "probe.read.more",
            ".read",
            "probe.",
            "probe.re ad",
        ] {
            assert!(!valid_scope(bad), "{bad}");
        }
    }
}
