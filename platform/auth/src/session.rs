//! Server-side sessions. The cookie carries a random 256-bit id; the database stores only its
//! SHA-256 digest, so a copy of the database does not let anyone ride on open sessions.
//! Each session has its own CSRF synchroniser token, checked on every state-changing form.

use std::time::Duration;

use megalis_store::{Database, with_pool};

use crate::crypto::{constant_time_eq, random_token, token_hash};
use crate::{Result, now_us};

/// The session cookie. `__Host-` makes browsers refuse it unless it is `Secure`, has `Path=/`
/// and no `Domain`, so a sibling host cannot plant or overwrite it.
pub const COOKIE_NAME: &str = "__Host-megalis-session";

#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub account_id: String,
    pub csrf_token: String,
    /// Authentication methods (RFC 8176): `pwd`, `otp`, `sc` (smart card), `fed`.
    pub amr: Vec<String>,
    pub second_factor: bool,
    pub created_at_us: i64,
    pub last_seen_us: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    account_id: String,
    csrf_token: String,
    amr: String,
    second_factor: i64,
    created_at_us: i64,
    last_seen_us: i64,
}

impl Session {
    /// Checks a submitted CSRF token against this session's, in constant time.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        Self::csrf_matches(&self.csrf_token, submitted)
    }

    /// Constant-time comparison of an expected and a submitted CSRF token (never both empty).
    pub fn csrf_matches(expected: &str, submitted: &str) -> bool {
        !expected.is_empty() && !submitted.is_empty() && constant_time_eq(expected, submitted)
    }
}

/// A fresh random token for the login form's double-submit CSRF cookie.
pub fn new_csrf_token() -> String {
    random_token()
}

/// The `Set-Cookie` value opening a session.
pub fn set_cookie(value: &str, absolute: Duration) -> String {
    format!(
        "{COOKIE_NAME}={value}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={}",
        absolute.as_secs()
    )
}

/// The `Set-Cookie` value deleting the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Opens a session; returns the cookie value (the only place the raw id exists) and the session.
pub async fn create(
    db: &Database,
    account_id: &str,
    amr: &[&str],
    second_factor: bool,
) -> Result<(String, Session)> {
    let raw = random_token();
    let now = now_us();
    let session = Session {
        id_hash: token_hash(&raw),
        account_id: account_id.to_string(),
        csrf_token: random_token(),
        amr: amr.iter().map(|s| s.to_string()).collect(),
        second_factor,
        created_at_us: now,
        last_seen_us: now,
    };
    with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_session (id_hash, account_id, csrf_token, amr, second_factor, \
         created_at_us, last_seen_us) VALUES ($1, $2, $3, $4, $5, $6, $6)")
        .bind(&session.id_hash).bind(account_id).bind(&session.csrf_token)
        .bind(session.amr.join(" ")).bind(i64::from(second_factor)).bind(now)
        .execute(pool).await.map(|r| r.rows_affected()))?;
    Ok((raw, session))
}

/// Finds a live session by cookie value. Sessions past their idle or absolute timeout are
/// deleted and not returned. `last_seen` is written at most once a minute per session, so that
/// browsing does not turn every page view into a database write.
pub async fn find(
    db: &Database,
    raw: &str,
    idle: Duration,
    absolute: Duration,
) -> Result<Option<Session>> {
    let id_hash = token_hash(raw);
    let row: Option<SessionRow> = with_pool!(db, pool => sqlx::query_as(
        "SELECT id_hash, account_id, csrf_token, amr, second_factor, created_at_us, last_seen_us \
         FROM auth_session WHERE id_hash = $1")
        .bind(&id_hash).fetch_optional(pool).await)?;
    let Some(row) = row else { return Ok(None) };
    let now = now_us();
    let idle_us = i64::try_from(idle.as_micros()).unwrap_or(i64::MAX);
    let absolute_us = i64::try_from(absolute.as_micros()).unwrap_or(i64::MAX);
    if now - row.last_seen_us > idle_us || now - row.created_at_us > absolute_us {
        delete(db, raw).await?;
        return Ok(None);
    }
    let mut last_seen = row.last_seen_us;
    if now - row.last_seen_us > 60_000_000 {
        with_pool!(db, pool => sqlx::query(
            "UPDATE auth_session SET last_seen_us = $1 WHERE id_hash = $2")
            .bind(now).bind(&id_hash).execute(pool).await.map(|r| r.rows_affected()))?;
        last_seen = now;
    }
    Ok(Some(Session {
        id_hash: row.id_hash,
        account_id: row.account_id,
        csrf_token: row.csrf_token,
        amr: row.amr.split_whitespace().map(str::to_string).collect(),
        second_factor: row.second_factor != 0,
        created_at_us: row.created_at_us,
        last_seen_us: last_seen,
    }))
}

/// Marks a session as having passed the second factor (TOTP enrolment from the profile page).
pub async fn mark_second_factor(db: &Database, id_hash: &str) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "UPDATE auth_session SET second_factor = 1, amr = amr || ' otp' WHERE id_hash = $1")
        .bind(id_hash).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn delete(db: &Database, raw: &str) -> Result<()> {
    delete_by_hash(db, &token_hash(raw)).await
}

pub async fn delete_by_hash(db: &Database, id_hash: &str) -> Result<()> {
    with_pool!(db, pool => sqlx::query("DELETE FROM auth_session WHERE id_hash = $1")
        .bind(id_hash).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Ends every session of an account (disabled account, password reset).
pub async fn delete_for_account(db: &Database, account_id: &str) -> Result<u64> {
    Ok(
        with_pool!(db, pool => sqlx::query("DELETE FROM auth_session WHERE account_id = $1")
        .bind(account_id).execute(pool).await.map(|r| r.rows_affected()))?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_attributes_and_parsing() {
        let c = set_cookie("abc", Duration::from_secs(3600));
        for attr in [
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Max-Age=3600",
        ] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert_eq!(
            from_cookie_header(&format!("a=1; {COOKIE_NAME}=xyz; b=2")),
            Some("xyz")
        );
        assert_eq!(from_cookie_header("a=1"), None);
        assert_eq!(from_cookie_header(&format!("{COOKIE_NAME}=")), None);
    }
}
