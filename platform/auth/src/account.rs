//! Accounts: professionals (linked to the directory by national id), local staff (attached to an
//! organisation) and administrators. Persistence only; the login flow is in [`crate::service`].

use megalis_store::{Database, with_pool};
use rand::RngCore;

use crate::{AuthError, Result, now_us, password};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A health professional; their profession, specialty and organisations come from the
    /// directory entry of their national id.
    Professional,
    /// Local staff (secretaries, IT) of one organisation.
    Staff,
    /// Platform administrator.
    Admin,
    /// A patient's own account (issue 5): created by the patient with a one-time code; its
    /// roles name the patient (`patient`, `patient:<regional id>`).
    Patient,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Professional => "professional",
            AccountKind::Staff => "staff",
            AccountKind::Admin => "admin",
            AccountKind::Patient => "patient",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "professional" => Some(AccountKind::Professional),
            "staff" => Some(AccountKind::Staff),
            "admin" => Some(AccountKind::Admin),
            "patient" => Some(AccountKind::Patient),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct AccountRow {
    id: String,
    username: String,
    kind: String,
    national_id: Option<String>,
    organisation: Option<String>,
    display_name: String,
    roles: String,
    password_hash: Option<String>,
    totp_secret: Option<String>,
    totp_enabled: i64,
    totp_last_step: i64,
    disabled: i64,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub username: String,
    pub kind: AccountKind,
    pub national_id: Option<String>,
    pub organisation: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    pub(crate) password_hash: Option<String>,
    pub(crate) totp_secret: Option<String>,
    pub totp_enabled: bool,
    pub(crate) totp_last_step: i64,
    pub disabled: bool,
}

impl TryFrom<AccountRow> for Account {
    type Error = AuthError;
    fn try_from(r: AccountRow) -> Result<Self> {
        Ok(Account {
            kind: AccountKind::parse(&r.kind)
                .ok_or_else(|| AuthError::Internal(format!("account kind {:?}", r.kind)))?,
            id: r.id,
            username: r.username,
            national_id: r.national_id,
            organisation: r.organisation,
            display_name: r.display_name,
            roles: r.roles.split_whitespace().map(str::to_string).collect(),
            password_hash: r.password_hash,
            totp_secret: r.totp_secret,
            totp_enabled: r.totp_enabled != 0,
            totp_last_step: r.totp_last_step,
            disabled: r.disabled != 0,
        })
    }
}

/// What `megalis admin user add` and the admin page ask for.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: String,
    pub kind: AccountKind,
    pub national_id: Option<String>,
    pub organisation: Option<String>,
    pub display_name: String,
    pub roles: Vec<String>,
    pub password: Option<String>,
}

/// User names are compared case-insensitively, without surrounding spaces.
pub fn normalise_username(u: &str) -> String {
    u.trim().to_lowercase()
}

/// `8` + 11-digit RPPS, or `0` + ADELI (9 characters).
pub fn valid_national_id(id: &str) -> bool {
    (id.len() == 12 && id.starts_with('8') && id.bytes().all(|b| b.is_ascii_digit()))
        || (id.len() == 10 && id.starts_with('0') && id.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

const COLUMNS: &str = "id, username, kind, national_id, organisation, display_name, roles, \
    password_hash, totp_secret, totp_enabled, totp_last_step, disabled";

pub async fn create(db: &Database, new: &NewAccount) -> Result<Account> {
    let username = normalise_username(&new.username);
    if username.is_empty()
        || username.len() > 64
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'))
    {
        return Err(AuthError::Invalid(
            "user name: 1 to 64 letters, digits, '.', '-', '_' or '@'".into(),
        ));
    }
    match new.kind {
        AccountKind::Professional => match &new.national_id {
            Some(n) if valid_national_id(n) => {}
            _ => {
                return Err(AuthError::Invalid(
                    "a professional account needs a national id (8 + RPPS, or 0 + ADELI)".into(),
                ));
            }
        },
        AccountKind::Patient
            if !new.roles.iter().any(|r| r.starts_with("patient:"))
                || new.national_id.is_some() =>
        {
            return Err(AuthError::Invalid(
                "a patient account names its patient (role patient:<regional id>) and no national id"
                    .into(),
            ));
        }
        AccountKind::Staff if new.organisation.is_none() => {
            return Err(AuthError::Invalid(
                "a staff account must be attached to an organisation".into(),
            ));
        }
        _ => {}
    }
    let hash = match &new.password {
        Some(p) => {
            password::check_policy(p, &username)?;
            Some(password::hash(p)?)
        }
        None => None,
    };
    let id = new_id();
    let roles = new.roles.join(" ");
    let result = with_pool!(db, pool => sqlx::query(
        "INSERT INTO auth_account (id, username, kind, national_id, organisation, display_name, \
         roles, password_hash, created_at_us) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&id).bind(&username).bind(new.kind.as_str()).bind(&new.national_id)
        .bind(&new.organisation).bind(&new.display_name).bind(&roles).bind(&hash).bind(now_us())
        .execute(pool).await.map(|r| r.rows_affected()));
    match result {
        Ok(_) => {}
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
            return Err(AuthError::Conflict(format!("user {username}")));
        }
        Err(e) => return Err(e.into()),
    }
    by_id(db, &id)
        .await?
        .ok_or_else(|| AuthError::Internal("account vanished".into()))
}

pub async fn by_username(db: &Database, username: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM auth_account WHERE username = $1");
    let row: Option<AccountRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(normalise_username(username)).fetch_optional(pool).await)?;
    row.map(Account::try_from).transpose()
}

pub async fn by_id(db: &Database, id: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM auth_account WHERE id = $1");
    let row: Option<AccountRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id).fetch_optional(pool).await)?;
    row.map(Account::try_from).transpose()
}

/// The professional account of a national id, if one exists.
pub async fn by_national_id(db: &Database, national_id: &str) -> Result<Option<Account>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM auth_account WHERE national_id = $1 AND kind = 'professional' \
         ORDER BY created_at_us LIMIT 1"
    );
    let row: Option<AccountRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(national_id).fetch_optional(pool).await)?;
    row.map(Account::try_from).transpose()
}

pub async fn list(db: &Database) -> Result<Vec<Account>> {
    let sql = format!("SELECT {COLUMNS} FROM auth_account ORDER BY username");
    let rows: Vec<AccountRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(pool).await)?;
    rows.into_iter().map(Account::try_from).collect()
}

/// Disables (or re-enables) an account; its sessions are deleted by the caller's service.
pub async fn set_disabled(db: &Database, username: &str, disabled: bool) -> Result<Account> {
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE auth_account SET disabled = $1 WHERE username = $2")
        .bind(i64::from(disabled)).bind(normalise_username(username)).execute(pool).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(AuthError::NotFound(format!("user {username}")));
    }
    by_username(db, username)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("user {username}")))
}

/// Sets a new password (policy checked) and lifts any lockout.
pub async fn set_password(db: &Database, username: &str, new_password: &str) -> Result<Account> {
    let username = normalise_username(username);
    password::check_policy(new_password, &username)?;
    let hash = password::hash(new_password)?;
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE auth_account SET password_hash = $1, failed_logins = 0, locked_until_us = 0 \
         WHERE username = $2")
        .bind(&hash).bind(&username).execute(pool).await.map(|r| r.rows_affected()))?;
    if n == 0 {
        return Err(AuthError::NotFound(format!("user {username}")));
    }
    with_pool!(db, pool => sqlx::query("DELETE FROM auth_login_throttle WHERE username = $1")
        .bind(&username).execute(pool).await.map(|r| r.rows_affected()))?;
    by_username(db, &username)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("user {username}")))
}

/// Stores a pending TOTP secret (not yet enabled: enrolment ends with a first valid code).
pub async fn set_totp_secret(db: &Database, account_id: &str, secret: &str) -> Result<()> {
    with_pool!(db, pool => sqlx::query(
        "UPDATE auth_account SET totp_secret = $1, totp_enabled = 0, totp_last_step = 0 WHERE id = $2")
        .bind(secret).bind(account_id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records the last accepted TOTP step, only if it moves forward: two replicas receiving the
/// same code at once cannot both accept it.
pub async fn accept_totp_step(
    db: &Database,
    account_id: &str,
    step: i64,
    enable: bool,
) -> Result<bool> {
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE auth_account SET totp_last_step = $1, \
         totp_enabled = CASE WHEN $2 = 1 THEN 1 ELSE totp_enabled END \
         WHERE id = $3 AND totp_last_step < $1")
        .bind(step).bind(i64::from(enable)).bind(account_id).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Replaces the recovery codes of an account with the digests of new ones.
pub async fn replace_recovery_codes(
    db: &Database,
    account_id: &str,
    codes: &[String],
) -> Result<()> {
    with_pool!(db, pool => async {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM auth_recovery_code WHERE account_id = $1")
            .bind(account_id).execute(&mut *tx).await?;
        for code in codes {
            let digest = crate::crypto::token_hash(&crate::totp::normalise_recovery_code(code));
            sqlx::query("INSERT INTO auth_recovery_code (account_id, code_hash) VALUES ($1, $2)")
                .bind(account_id).bind(digest).execute(&mut *tx).await?;
        }
        tx.commit().await
    }.await)?;
    Ok(())
}

/// Uses a recovery code once. True when it was valid and unused.
pub async fn use_recovery_code(db: &Database, account_id: &str, code: &str) -> Result<bool> {
    let digest = crate::crypto::token_hash(&crate::totp::normalise_recovery_code(code));
    let n = with_pool!(db, pool => sqlx::query(
        "UPDATE auth_recovery_code SET used_at_us = $1 \
         WHERE account_id = $2 AND code_hash = $3 AND used_at_us IS NULL")
        .bind(now_us()).bind(account_id).bind(digest).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Throttling by user name, whether or not the account exists.
pub(crate) async fn throttle_state(db: &Database, username: &str) -> Result<i64> {
    let locked: Option<i64> = with_pool!(db, pool => sqlx::query_scalar(
        "SELECT locked_until_us FROM auth_login_throttle WHERE username = $1")
        .bind(username).fetch_optional(pool).await)?;
    Ok(locked.unwrap_or(0))
}

/// Counts a failure; after `max_failures` in a row the name is locked for `lockout_us`.
/// Returns the time until which it is locked (0 when not locked).
pub(crate) async fn record_failure(
    db: &Database,
    username: &str,
    max_failures: i64,
    lockout_us: i64,
) -> Result<i64> {
    let now = now_us();
    let failures: i64 = with_pool!(db, pool => sqlx::query_scalar(
        "INSERT INTO auth_login_throttle (username, failures, locked_until_us, updated_at_us) \
         VALUES ($1, 1, 0, $2) ON CONFLICT (username) DO UPDATE SET \
         failures = auth_login_throttle.failures + 1, updated_at_us = $2 RETURNING failures")
        .bind(username).bind(now).fetch_one(pool).await)?;
    if failures >= max_failures {
        let until = now + lockout_us;
        with_pool!(db, pool => sqlx::query(
            "UPDATE auth_login_throttle SET locked_until_us = $1, failures = 0 WHERE username = $2")
            .bind(until).bind(username).execute(pool).await.map(|r| r.rows_affected()))?;
        return Ok(until);
    }
    Ok(0)
}

pub(crate) async fn clear_failures(db: &Database, username: &str) -> Result<()> {
    with_pool!(db, pool => sqlx::query("DELETE FROM auth_login_throttle WHERE username = $1")
        .bind(username).execute(pool).await.map(|r| r.rows_affected()))?;
    Ok(())
}
