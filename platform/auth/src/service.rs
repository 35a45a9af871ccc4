//! [`Auth`]: the authentication service every part of the server shares. It holds the database
//! handle, the in-memory caches (signing keys, revocation list, grants, validated tokens) that a
//! background task keeps in step with the database, and implements the login, session, token
//! and authorisation logic. HTTP details (forms, cookies, redirects, error bodies) stay in the
//! server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderMap;
use jsonwebtoken::{Algorithm, Header, Validation};
use megalis_store::{Database, with_pool};
use serde::{Deserialize, Serialize};

use crate::account::{self, Account, AccountKind};
use crate::card::{self, NationalIdRefusal};
use crate::crypto::{pkce_s256, random_token};
use crate::directory::PractitionerLookup;
use crate::grants::{self, GrantKind, GrantRule};
use crate::oidc::keys::{self, SigningKey};
use crate::oidc::revocation::{self, Kind, RevocationList, TokenFacts};
use crate::oidc::{self, Client, CodeGrant, GrantType, RefreshGrant};
use crate::principal::{Principal, PrincipalKind, Rejection, SessionRef};
use crate::session::{self, Session};
use crate::{AuthError, Result, now_us, password, totp};

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// The issuer: the platform's public URL, without trailing slash.
    pub issuer: String,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub access_token_lifetime: Duration,
    pub refresh_token_lifetime: Duration,
    pub code_lifetime: Duration,
    pub key_rotation: Duration,
    /// Consecutive failures before a user name is locked, and for how long.
    pub max_failures: i64,
    pub lockout: Duration,
    /// Base URL of the mutual-TLS listener (RFC 8705 endpoint aliases), when there is one.
    pub mtls_base_url: Option<String>,
    /// Signature of access tokens: ES256 (issuing costs a tenth of RS256) or RS256 (verifying
    /// costs a third to a half of ES256). ID tokens are always RS256.
    pub access_token_algorithm: Algorithm,
}

impl AuthSettings {
    pub fn new(issuer: impl Into<String>) -> Self {
        AuthSettings {
            issuer: issuer.into().trim_end_matches('/').to_string(),
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 3600),
            access_token_lifetime: Duration::from_secs(300),
            refresh_token_lifetime: Duration::from_secs(12 * 3600),
            code_lifetime: Duration::from_secs(60),
            key_rotation: Duration::from_secs(30 * 86400),
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
            mtls_base_url: None,
            access_token_algorithm: Algorithm::ES256,
        }
    }

    /// The audience of access tokens: the platform's own APIs (RFC 9068 `aud`).
    pub fn audience(&self) -> &str {
        &self.issuer
    }
}

/// Why a login was refused. Only the audit trail sees the reason; the user sees one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    UnknownAccount,
    BadPassword,
    Disabled,
    BadSecondFactor,
    ClosedPractitioner,
}

impl RefusalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::UnknownAccount => "unknown account",
            RefusalReason::BadPassword => "wrong password",
            RefusalReason::Disabled => "account disabled",
            RefusalReason::BadSecondFactor => "wrong or missing second factor",
            RefusalReason::ClosedPractitioner => "practitioner closed in the directory",
        }
    }
}

#[derive(Debug)]
pub enum LoginOutcome {
    Success {
        account: Box<Account>,
        second_factor: bool,
        amr: Vec<&'static str>,
    },
    Refused(RefusalReason),
    /// Too many failures for this user name (known or not): locked until then.
    Locked {
        until_us: i64,
    },
}

/// The outcome of a federated login.
#[derive(Debug)]
pub enum FederatedLogin {
    Session {
        account: Box<Account>,
        /// The session cookie value.
        cookie: String,
        provisioned: bool,
    },
    Refused(NationalIdRefusal),
}

/// The outcome of a card login.
#[derive(Debug)]
pub enum CardLogin {
    Ticket {
        ticket: String,
        account: Box<Account>,
        /// A card-only account was created for this practitioner just now.
        provisioned: bool,
    },
    Refused(NationalIdRefusal),
}

/// Claims of an RFC 9068 access token (and the Megalis claims resource servers need).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// `user` or `system`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Token family (one per authorization): revoked as a whole on code or refresh reuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profession: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specialty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organisations: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// RFC 8705 confirmation: the token is usable only with this client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// Whether validation enforces a token's certificate binding.
#[derive(Clone, Copy)]
enum Binding<'a> {
    /// Enforce it against the connection's certificate thumbprint, if any.
    Check(Option<&'a str>),
    /// Leave it to the caller (introspection).
    Report,
}

/// RFC 8705 §3.1 `cnf` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: String,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// An authorization request that cannot be answered by redirecting to the client.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client or redirect URI mismatch: never redirect (RFC 6749 §4.1.2.1).
    Page(String),
    /// An error the client receives at its redirect URI.
    Redirect {
        location: String,
        code: &'static str,
    },
    Internal(AuthError),
}

impl From<AuthError> for AuthorizeError {
    fn from(e: AuthError) -> Self {
        AuthorizeError::Internal(e)
    }
}

/// A validated-token cache entry: the principal and the token's facts for the revocation check.
struct CachedToken {
    principal: Principal,
    claims: AccessClaims,
}

pub struct Auth {
    pub db: Database,
    pub settings: AuthSettings,
    directory: Arc<dyn PractitionerLookup>,
    keys: RwLock<Vec<SigningKey>>,
    revocations: RwLock<RevocationList>,
    grants: RwLock<HashMap<String, Vec<GrantRule>>>,
    /// The assigning authorities each system client may feed, by client id.
    authorities: RwLock<HashMap<String, Vec<String>>>,
    /// Access tokens whose signature was already checked, by token text. Bounded; entries are
    /// still checked for expiry, revocation and grants on every use.
    validated: RwLock<HashMap<String, Arc<CachedToken>>>,
    last_key_reload_s: AtomicI64,
    /// The latest directory closure applied to the revocation list.
    closures_seen_us: AtomicI64,
}

const VALIDATED_CACHE_MAX: usize = 100_000;

fn oauth(code: &'static str, description: impl Into<String>) -> AuthError {
    AuthError::oauth(code, description)
}

fn has_second_factor(amr: &[String]) -> bool {
    amr.iter()
        .any(|m| matches!(m.as_str(), "otp" | "sc" | "fed" | "mfa"))
}

fn scope_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.to_string()
        }
        Err(_) => base.to_string(),
    }
}

impl Auth {
    /// Builds the service without touching the database (the server builds it before the
    /// migrations have run); [`Auth::init`] then loads the caches.
    pub fn new(
        db: Database,
        settings: AuthSettings,
        directory: Arc<dyn PractitionerLookup>,
    ) -> Arc<Auth> {
        crate::jwt_crypto::install();
        Arc::new(Auth {
            db,
            settings,
            directory,
            keys: RwLock::new(vec![]),
            revocations: RwLock::new(RevocationList::default()),
            grants: RwLock::new(HashMap::new()),
            authorities: RwLock::new(HashMap::new()),
            validated: RwLock::new(HashMap::new()),
            last_key_reload_s: AtomicI64::new(0),
            closures_seen_us: AtomicI64::new(now_us()),
        })
    }

    /// Makes the first signing key if there is none and loads the caches.
    pub async fn init(&self) -> Result<()> {
        self.rotate_keys().await?;
        self.refresh().await
    }

    /// [`Auth::new`] then [`Auth::init`].
    pub async fn start(
        db: Database,
        settings: AuthSettings,
        directory: Arc<dyn PractitionerLookup>,
    ) -> Result<Arc<Auth>> {
        let auth = Auth::new(db, settings, directory);
        auth.init().await?;
        Ok(auth)
    }

    /// Keeps the caches in step with the database until the returned task is aborted: the
    /// revocation list and grants every second, key rotation every minute.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let auth = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut n: u64 = 0;
            loop {
                tick.tick().await;
                n += 1;
                if let Err(e) = auth.refresh().await {
                    tracing::warn!(error = %e, "auth caches not refreshed");
                }
                if n.is_multiple_of(60)
                    && let Err(e) = auth.rotate_keys().await
                {
                    tracing::warn!(error = %e, "signing key rotation failed");
                }
            }
        })
    }

    /// Reads new revocation entries and the grants.
    pub async fn refresh(&self) -> Result<()> {
        let mut list = std::mem::take(&mut *self.revocations.write().expect("lock"));
        let result = list.refresh(&self.db).await;
        // Put the list back even on error (it was only taken to avoid holding a lock over I/O).
        {
            let mut guard = self.revocations.write().expect("lock");
            let local = std::mem::take(&mut *guard);
            *guard = list;
            drop(local);
        }
        result?;
        // Practitioners closed by a directory import since the last poll: refuse their tokens.
        let since = self.closures_seen_us.load(Ordering::Relaxed);
        let closed = self.directory.closed_since(since).await?;
        if let Some(latest) = closed.iter().map(|(_, at)| *at).max() {
            let mut list = self.revocations.write().expect("lock");
            for (national_id, at) in &closed {
                list.apply_local(Kind::NationalId, national_id, *at);
            }
            self.closures_seen_us.store(latest, Ordering::Relaxed);
        }
        let all = grants::load_all(&self.db).await?;
        *self.grants.write().expect("lock") = all;
        let authorities = oidc::all_authorities(&self.db).await?;
        *self.authorities.write().expect("lock") = authorities;
        Ok(())
    }

    pub async fn rotate_keys(&self) -> Result<()> {
        // Tokens signed by a retired key stay valid until they expire: keep it that long.
        let retention = self
            .settings
            .refresh_token_lifetime
            .max(self.settings.access_token_lifetime);
        keys::rotate_if_due(&self.db, self.settings.key_rotation, retention).await?;
        self.reload_keys().await
    }

    async fn reload_keys(&self) -> Result<()> {
        let loaded = keys::load(&self.db).await?;
        *self.keys.write().expect("lock") = loaded;
        Ok(())
    }

    /// Forces a new signing key now (tests; there is no CLI command for it yet).
    pub async fn rotate_keys_now(&self) -> Result<()> {
        keys::rotate_if_due(
            &self.db,
            Duration::ZERO,
            self.settings.refresh_token_lifetime,
        )
        .await?;
        self.reload_keys().await
    }

    pub fn jwks(&self) -> serde_json::Value {
        keys::jwks(&self.keys.read().expect("lock"))
    }

    /// The discovery document (OpenID Connect Discovery 1.0, RFC 8414).
    pub fn discovery(&self) -> serde_json::Value {
        let i = &self.settings.issuer;
        let mut doc = serde_json::json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/oauth2/authorize"),
            "token_endpoint": format!("{i}/oauth2/token"),
            "userinfo_endpoint": format!("{i}/oauth2/userinfo"),
            "jwks_uri": format!("{i}/oauth2/jwks"),
            "introspection_endpoint": format!("{i}/oauth2/introspect"),
            "revocation_endpoint": format!("{i}/oauth2/revoke"),
            "end_session_endpoint": format!("{i}/oauth2/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "offline_access", "megalis",
                "user/Patient.rs", "user/DocumentReference.cr", "system/Patient.rs"],
            "claims_supported": ["sub", "name", "national_id", "profession", "specialty",
                "organisation", "roles", "amr", "auth_time", "nonce"],
            "authorization_response_iss_parameter_supported": true,
            "tls_client_certificate_bound_access_tokens": self.settings.mtls_base_url.is_some(),
        });
        if let Some(m) = &self.settings.mtls_base_url {
            // RFC 8705 §5: where clients authenticate with their certificate.
            let obj = doc.as_object_mut().expect("object");
            obj.insert(
                "mtls_endpoint_aliases".into(),
                serde_json::json!({
                    "token_endpoint": format!("{m}/oauth2/token"),
                    "userinfo_endpoint": format!("{m}/oauth2/userinfo"),
                    "introspection_endpoint": format!("{m}/oauth2/introspect"),
                }),
            );
            if let Some(methods) = obj
                .get_mut("token_endpoint_auth_methods_supported")
                .and_then(|v| v.as_array_mut())
            {
                methods.push("self_signed_tls_client_auth".into());
            }
        }
        doc
    }

    // ----- accounts and login -------------------------------------------------------------

    /// Password (and second factor) login, with throttling by user name.
    pub async fn password_login(
        &self,
        username: &str,
        password: &str,
        second_factor: Option<&str>,
    ) -> Result<LoginOutcome> {
        let name = account::normalise_username(username);
        let now = now_us();
        let locked = account::throttle_state(&self.db, &name).await?;
        if locked > now {
            return Ok(LoginOutcome::Locked { until_us: locked });
        }
        let found = account::by_username(&self.db, &name).await?;
        // Unknown accounts and accounts without a password verify against a dummy hash, so that
        // every attempt costs one argon2id computation.
        let hash = found
            .as_ref()
            .and_then(|a| a.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let candidate = password.to_string();
        let password_ok = tokio::task::spawn_blocking(move || password::verify(&candidate, &hash))
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let refusal = match &found {
            None => Some(RefusalReason::UnknownAccount),
            Some(a) if a.password_hash.is_none() || !password_ok => {
                Some(RefusalReason::BadPassword)
            }
            Some(a) if a.disabled => Some(RefusalReason::Disabled),
            Some(_) => None,
        };
        if let Some(reason) = refusal {
            return self.refuse(&name, reason).await;
        }
        let account = found.expect("refusal covers a missing account");
        let mut amr = vec!["pwd"];
        let mut strong = false;
        if account.totp_enabled {
            let code = second_factor.unwrap_or("").trim();
            if !self.check_second_factor(&account, code).await? {
                return self.refuse(&name, RefusalReason::BadSecondFactor).await;
            }
            amr.push("otp");
            strong = true;
        }
        if account.kind == AccountKind::Professional {
            let nid = account.national_id.as_deref().unwrap_or_default();
            if self.directory.active_practitioner(nid).await?.is_none() {
                return self.refuse(&name, RefusalReason::ClosedPractitioner).await;
            }
        }
        account::clear_failures(&self.db, &name).await?;
        Ok(LoginOutcome::Success {
            account: Box::new(account),
            second_factor: strong,
            amr,
        })
    }

    async fn refuse(&self, name: &str, reason: RefusalReason) -> Result<LoginOutcome> {
        let lockout_us = i64::try_from(self.settings.lockout.as_micros()).unwrap_or(i64::MAX);
        let until =
            account::record_failure(&self.db, name, self.settings.max_failures, lockout_us).await?;
        Ok(if until > 0 {
            LoginOutcome::Locked { until_us: until }
        } else {
            LoginOutcome::Refused(reason)
        })
    }

    /// A 6-digit TOTP code, or a recovery code (used once).
    async fn check_second_factor(&self, account: &Account, code: &str) -> Result<bool> {
        let Some(secret) = &account.totp_secret else {
            return Ok(false);
        };
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let unix = u64::try_from(now_us() / 1_000_000).unwrap_or(0);
            return match totp::check(secret, code, unix, account.totp_last_step)? {
                Some(step) => account::accept_totp_step(&self.db, &account.id, step, false).await,
                None => Ok(false),
            };
        }
        if code.len() >= 10 {
            return account::use_recovery_code(&self.db, &account.id, code).await;
        }
        Ok(false)
    }

    /// Starts TOTP enrolment: a new secret (pending until confirmed) and its `otpauth://` URI.
    pub async fn begin_totp_enrolment(&self, account: &Account) -> Result<(String, String)> {
        let secret = totp::new_secret();
        account::set_totp_secret(&self.db, &account.id, &secret).await?;
        let uri = totp::provisioning_uri(&secret, &account.username);
        Ok((secret, uri))
    }

    /// Confirms enrolment with a first code; returns fresh recovery codes (shown once).
    pub async fn confirm_totp_enrolment(
        &self,
        account_id: &str,
        code: &str,
    ) -> Result<Option<Vec<String>>> {
        let account = account::by_id(&self.db, account_id)
            .await?
            .ok_or_else(|| AuthError::NotFound("account".into()))?;
        let Some(secret) = &account.totp_secret else {
            return Ok(None);
        };
        let unix = u64::try_from(now_us() / 1_000_000).unwrap_or(0);
        let Some(step) = totp::check(secret, code, unix, account.totp_last_step)? else {
            return Ok(None);
        };
        if !account::accept_totp_step(&self.db, &account.id, step, true).await? {
            return Ok(None);
        }
        let codes = totp::new_recovery_codes();
        account::replace_recovery_codes(&self.db, &account.id, &codes).await?;
        Ok(Some(codes))
    }

    /// Disables or re-enables an account; disabling ends its sessions and tokens at once.
    pub async fn set_account_disabled(&self, username: &str, disabled: bool) -> Result<Account> {
        let a = account::set_disabled(&self.db, username, disabled).await?;
        if disabled {
            session::delete_for_account(&self.db, &a.id).await?;
            self.revoke(Kind::Account, &a.id, None).await?;
        }
        Ok(a)
    }

    /// Resets a password; ends the account's sessions and tokens.
    pub async fn reset_password(&self, username: &str, new_password: &str) -> Result<Account> {
        let a = account::set_password(&self.db, username, new_password).await?;
        session::delete_for_account(&self.db, &a.id).await?;
        self.revoke(Kind::Account, &a.id, None).await?;
        Ok(a)
    }

    /// A practitioner closed in the directory loses access at once: sessions ended, every token
    /// issued before now refused by every replica. The directory import calls this.
    pub async fn close_practitioner(&self, national_id: &str) -> Result<()> {
        let ids: Vec<String> = with_pool!(&self.db, pool => sqlx::query_scalar(
            "SELECT id FROM auth_account WHERE national_id = $1")
            .bind(national_id).fetch_all(pool).await)?;
        for id in ids {
            session::delete_for_account(&self.db, &id).await?;
        }
        self.revoke(Kind::NationalId, national_id, None).await
    }

    /// Revokes a client: its tokens are refused at once.
    pub async fn revoke_client(&self, client_id: &str) -> Result<bool> {
        let found = oidc::set_client_revoked(&self.db, client_id).await?;
        if found {
            self.revoke(Kind::Client, client_id, None).await?;
        }
        Ok(found)
    }

    async fn revoke(&self, kind: Kind, value: &str, expires_at_us: Option<i64>) -> Result<()> {
        let at = revocation::add(&self.db, kind, value, expires_at_us).await?;
        self.revocations
            .write()
            .expect("lock")
            .apply_local(kind, value, at);
        Ok(())
    }

    // ----- CPS card ---------------------------------------------------------------------------

    /// Login with a card the mutual-TLS listener has verified, by the national id its
    /// certificate names. On success, a one-time ticket the portal's host redeems for a session.
    pub async fn card_login(&self, national_id: &str) -> Result<CardLogin> {
        let (account, provisioned) = match self.practitioner_account(national_id).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(CardLogin::Refused(refusal)),
        };
        let ticket = card::issue_ticket(&self.db, &account.id, card::CARD_AMR).await?;
        Ok(CardLogin::Ticket {
            ticket,
            account: Box::new(account),
            provisioned,
        })
    }

    /// Login asserted by the upstream provider (Pro Santé Connect) for a national id, after the
    /// server checked its ID token. Opens a session at once (the callback reaches the portal's
    /// own host); `eidas1` is strong authentication, so no second factor is asked.
    pub async fn federated_login(&self, national_id: &str) -> Result<FederatedLogin> {
        let (account, provisioned) = match self.practitioner_account(national_id).await? {
            Ok(found) => found,
            Err(refusal) => return Ok(FederatedLogin::Refused(refusal)),
        };
        let (cookie, _) = self.open_session(&account, &["fed"], true).await?;
        Ok(FederatedLogin::Session {
            account: Box::new(account),
            cookie,
            provisioned,
        })
    }

    /// The usable account of an active practitioner known by national id (provisioned on first
    /// login), for the logins that assert a national id: CPS card and Pro Santé Connect.
    async fn practitioner_account(
        &self,
        national_id: &str,
    ) -> Result<std::result::Result<(Account, bool), NationalIdRefusal>> {
        let Some(practitioner) = self.directory.active_practitioner(national_id).await? else {
            return Ok(Err(NationalIdRefusal::UnknownPractitioner));
        };
        let (account, provisioned) =
            card::account_for_practitioner(&self.db, &practitioner).await?;
        if account.disabled {
            return Ok(Err(NationalIdRefusal::Disabled));
        }
        Ok(Ok((account, provisioned)))
    }

    /// Redeems a login ticket once, opening a session. `None` for an unknown, used or expired
    /// ticket, or an account disabled in between.
    pub async fn redeem_login_ticket(
        &self,
        raw: &str,
    ) -> Result<Option<(Account, String, Session)>> {
        let Some((account_id, amr)) = card::redeem_ticket(&self.db, raw).await? else {
            return Ok(None);
        };
        let Some(account) = account::by_id(&self.db, &account_id).await? else {
            return Ok(None);
        };
        if account.disabled {
            return Ok(None);
        }
        let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
        // A card is possession (the card) and knowledge (its PIN): strong on its own.
        let (cookie, session) = self.open_session(&account, &amr, true).await?;
        Ok(Some((account, cookie, session)))
    }

    // ----- sessions and principals ---------------------------------------------------------

    pub async fn open_session(
        &self,
        account: &Account,
        amr: &[&str],
        second_factor: bool,
    ) -> Result<(String, Session)> {
        session::create(&self.db, &account.id, amr, second_factor).await
    }

    pub async fn session(&self, raw: &str) -> Result<Option<Session>> {
        session::find(
            &self.db,
            raw,
            self.settings.session_idle_timeout,
            self.settings.session_absolute_timeout,
        )
        .await
    }

    /// The principal of an account, with the directory's facts for professionals. `None` when
    /// the account is disabled or the practitioner closed.
    pub async fn principal_for(
        &self,
        account: &Account,
        amr: &[String],
        session: Option<SessionRef>,
    ) -> Result<Option<Principal>> {
        if account.disabled {
            return Ok(None);
        }
        let mut p = Principal {
            kind: PrincipalKind::User,
            subject: account.id.clone(),
            display_name: Some(account.display_name.clone()),
            national_id: account.national_id.clone(),
            organisation: account.organisation.clone(),
            organisations: account.organisation.iter().cloned().collect(),
            roles: account.roles.clone(),
            second_factor: has_second_factor(amr),
            amr: amr.to_vec(),
            session,
            ..Principal::anonymous()
        };
        if account.kind == AccountKind::Admin && !p.has_role("admin") {
            p.roles.push("admin".into());
        }
        if account.kind == AccountKind::Professional {
            let nid = account.national_id.as_deref().unwrap_or_default();
            let Some(info) = self.directory.active_practitioner(nid).await? else {
                return Ok(None);
            };
            p.profession = info.profession;
            p.specialty = info.specialty;
            if p.organisation.is_none() {
                p.organisation = info.organisations.first().cloned();
            }
            for o in info.organisations {
                if !p.organisations.contains(&o) {
                    p.organisations.push(o);
                }
            }
        }
        Ok(Some(p))
    }

    /// The principal of a session cookie value (portal requests).
    pub async fn principal_from_session(&self, raw: &str) -> Result<Option<Principal>> {
        let Some(s) = self.session(raw).await? else {
            return Ok(None);
        };
        let Some(account) = account::by_id(&self.db, &s.account_id).await? else {
            return Ok(None);
        };
        let mut amr = s.amr.clone();
        if s.second_factor && !has_second_factor(&amr) {
            amr.push("mfa".into());
        }
        let r = SessionRef {
            id_hash: s.id_hash.clone(),
            csrf_token: s.csrf_token.clone(),
        };
        let p = self.principal_for(&account, &amr, Some(r)).await?;
        if p.is_none() {
            session::delete_by_hash(&self.db, &s.id_hash).await?;
        }
        Ok(p)
    }

    /// The principal of a request: bearer token first, then session cookie, else anonymous.
    pub async fn principal_from_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<Principal, Rejection> {
        self.principal_from_request(headers, None).await
    }

    /// [`Auth::principal_from_headers`], knowing the client certificate of the connection.
    pub async fn principal_from_request(
        &self,
        headers: &HeaderMap,
        presented_certificate: Option<&str>,
    ) -> Result<Principal, Rejection> {
        if let Some(v) = headers.get(http::header::AUTHORIZATION) {
            let v = v.to_str().unwrap_or_default();
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(|| Rejection::InvalidToken("only Bearer tokens are accepted".into()))?;
            return self
                .validate_access_token_presented(token.trim(), presented_certificate)
                .map_err(|e| Rejection::InvalidToken(e.to_string()));
        }
        let raw = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session::from_cookie_header);
        if let Some(raw) = raw {
            return match self.principal_from_session(raw).await {
                Ok(Some(p)) => Ok(p),
                Ok(None) => Ok(Principal::anonymous()),
                Err(e) if e.is_unavailable() => Err(Rejection::Unavailable),
                Err(e) => {
                    tracing::error!(error = %e, "session lookup failed");
                    Err(Rejection::Unavailable)
                }
            };
        }
        Ok(Principal::anonymous())
    }

    // ----- assigning authorities a system client may feed ----------------------------------

    /// May this principal feed patient identities under this assigning authority (an OID, bare
    /// or `urn:oid:`)? Only a system client bound to it (`megalis admin client authority add`)
    /// may; users and unbound clients never. From the cache the refresher reloads every second,
    /// so an unbinding (or a revocation, refused earlier at token validation) applies at once.
    pub fn may_feed(&self, principal: &Principal, authority: &str) -> bool {
        if principal.kind != PrincipalKind::System {
            return false;
        }
        let Ok(authority) = oidc::canonical_authority(authority) else {
            return false;
        };
        let Some(client) = principal.client_id.as_deref() else {
            return false;
        };
        self.authorities
            .read()
            .expect("lock")
            .get(client)
            .is_some_and(|bound| bound.contains(&authority))
    }

    /// The active client whose registered certificate has this RFC 8705 thumbprint (the
    /// connection proved possession of its key): how a TLS peer that is not an HTTP client (the
    /// MLLP feed) is identified.
    pub async fn client_by_certificate(&self, thumbprint: &str) -> Result<Option<String>> {
        let ids: Vec<(String, i64)> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as("SELECT id, revoked FROM oauth_client WHERE certificate_sha256 = $1")
                .bind(thumbprint)
                .fetch_all(pool)
                .await)?;
        Ok(ids
            .into_iter()
            .find(|(_, revoked)| *revoked == 0)
            .map(|(id, _)| id))
    }

    /// The assigning authorities a client is bound to (introspection, the admin CLI).
    pub fn authorities_of(&self, client_id: &str) -> Vec<String> {
        self.authorities
            .read()
            .expect("lock")
            .get(client_id)
            .cloned()
            .unwrap_or_default()
    }

    pub async fn bind_authority(&self, client_id: &str, authority: &str) -> Result<bool> {
        let added = oidc::bind_authority(&self.db, client_id, authority).await?;
        self.refresh().await?;
        Ok(added)
    }

    pub async fn unbind_authority(&self, client_id: &str, authority: &str) -> Result<bool> {
        let removed = oidc::unbind_authority(&self.db, client_id, authority).await?;
        self.refresh().await?;
        Ok(removed)
    }

    // ----- per-application authorisation ---------------------------------------------------

    /// May this principal use this application (plugin or OIDC client)? From the cached grants.
    pub fn may_use(&self, principal: &Principal, application: &str) -> bool {
        let grants = self.grants.read().expect("lock");
        let rules = grants.get(application).map(Vec::as_slice).unwrap_or(&[]);
        grants::allowed(rules, application, principal)
    }

    /// The applications a user may use, for the launcher.
    pub async fn launcher(&self, principal: &Principal) -> Result<Vec<grants::Application>> {
        Ok(grants::applications(&self.db)
            .await?
            .into_iter()
            .filter(|a| self.may_use(principal, &a.id))
            .collect())
    }

    /// An individual grant names a person by account id or national id, which is what rules are
    /// matched on. A user name given instead (what an administrator naturally types) would make
    /// a rule that matches nobody: it is resolved to the account's national id, or its account
    /// id when it has none. Other values are kept (a national id may precede the account).
    pub async fn resolve_grant(&self, rule: &GrantRule) -> Result<GrantRule> {
        let value = rule.value.trim();
        if rule.kind != GrantKind::Individual || account::by_id(&self.db, value).await?.is_some() {
            return Ok(rule.clone());
        }
        Ok(match account::by_username(&self.db, value).await? {
            Some(a) => GrantRule {
                value: a.national_id.unwrap_or(a.id),
                ..rule.clone()
            },
            None => rule.clone(),
        })
    }

    pub async fn add_grant(&self, rule: &GrantRule) -> Result<bool> {
        let added = grants::add(&self.db, rule).await?;
        self.refresh().await?;
        Ok(added)
    }

    pub async fn remove_grant(&self, rule: &GrantRule) -> Result<bool> {
        let removed = grants::remove(&self.db, rule).await?;
        self.refresh().await?;
        Ok(removed)
    }

    pub fn grants_of(&self, application: &str) -> Vec<GrantRule> {
        self.grants
            .read()
            .expect("lock")
            .get(application)
            .cloned()
            .unwrap_or_default()
    }

    pub fn all_grants(&self) -> Vec<GrantRule> {
        let g = self.grants.read().expect("lock");
        let mut all: Vec<GrantRule> = g.values().flatten().cloned().collect();
        all.sort_by(|a, b| {
            (&a.application, a.kind.as_str(), &a.value).cmp(&(
                &b.application,
                b.kind.as_str(),
                &b.value,
            ))
        });
        all
    }

    // ----- the OpenID Provider ------------------------------------------------------------

    pub async fn client(&self, id: &str) -> Result<Option<Client>> {
        oidc::client(&self.db, id).await
    }

    /// Authenticates a client at the token, introspection and revocation endpoints.
    /// RFC 8705 `self_signed_tls_client_auth`: the client proved possession of the key of the
    /// certificate it registered (the mutual-TLS handshake), whose thumbprint is `presented`.
    pub async fn authenticate_client_by_certificate(
        &self,
        id: &str,
        presented: &str,
    ) -> Result<Client> {
        match oidc::client(&self.db, id).await? {
            Some(c)
                if !c.revoked
                    && c.certificate_sha256
                        .as_deref()
                        .is_some_and(|r| crate::crypto::constant_time_eq(r, presented)) =>
            {
                Ok(c)
            }
            _ => Err(oauth("invalid_client", "client authentication failed")),
        }
    }

    pub async fn authenticate_client(&self, id: &str, secret: &str) -> Result<Client> {
        match oidc::client(&self.db, id).await? {
            Some(c) if !c.revoked && c.secret_ok(secret) => Ok(c),
            _ => Err(oauth("invalid_client", "client authentication failed")),
        }
    }

    /// The authorization endpoint, for a user with a session. Returns the redirect location.
    pub async fn authorize(
        &self,
        req: &AuthorizeRequest,
        user: &Principal,
    ) -> Result<String, AuthorizeError> {
        let client_id = req.client_id.as_deref().unwrap_or_default();
        let client = match self.client(client_id).await? {
            Some(c) if !c.revoked => c,
            _ => {
                return Err(AuthorizeError::Page(format!(
                    "unknown client {client_id:?}"
                )));
            }
        };
        let redirect_uri = req.redirect_uri.as_deref().unwrap_or_default();
        // Exact string comparison, no prefix or normalisation (RFC 9700 §4.1.3).
        if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
            return Err(AuthorizeError::Page(
                "the redirect_uri is not registered for this client".into(),
            ));
        }
        let state = req.state.as_deref().unwrap_or_default();
        let error = |code: &'static str, description: &str| {
            let mut pairs = vec![("error", code), ("error_description", description)];
            if !state.is_empty() {
                pairs.push(("state", state));
            }
            pairs.push(("iss", &self.settings.issuer));
            AuthorizeError::Redirect {
                location: with_query(redirect_uri, &pairs),
                code,
            }
        };
        if !client.allows(GrantType::AuthorizationCode) {
            return Err(error(
                "unauthorized_client",
                "this client may not use the authorization code grant",
            ));
        }
        if req.response_type.as_deref() != Some("code") {
            return Err(error(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        let challenge = req.code_challenge.as_deref().unwrap_or_default();
        if challenge.len() != 43 || req.code_challenge_method.as_deref() != Some("S256") {
            return Err(error(
                "invalid_request",
                "PKCE with code_challenge_method=S256 is required",
            ));
        }
        let scopes = scope_words(req.scope.as_deref().unwrap_or("openid"));
        if let Some(bad) = scopes
            .iter()
            .find(|s| !client.scopes.contains(s) && !oidc::OIDC_SCOPES.contains(&s.as_str()))
        {
            return Err(error(
                "invalid_scope",
                &format!("scope {bad} is not allowed for this client"),
            ));
        }
        if scopes.iter().any(|s| oidc::is_patient_data_scope(s)) && !user.second_factor {
            return Err(error(
                "access_denied",
                "access to patient data requires a second factor",
            ));
        }
        if !self.may_use(user, &client.id) {
            return Err(error(
                "access_denied",
                "you are not authorised to use this application",
            ));
        }
        let code = random_token();
        let now = now_us();
        let grant = CodeGrant {
            client_id: client.id.clone(),
            account_id: user.subject.clone(),
            redirect_uri: redirect_uri.to_string(),
            scope: scopes.join(" "),
            code_challenge: challenge.to_string(),
            nonce: req.nonce.clone(),
            auth_time_us: now,
            amr: user.amr.join(" "),
            expires_at_us: now
                + i64::try_from(self.settings.code_lifetime.as_micros()).unwrap_or(60_000_000),
            family_id: random_token(),
        };
        oidc::store_code(&self.db, &code, &grant).await?;
        let mut pairs = vec![("code", code.as_str())];
        if !state.is_empty() {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.settings.issuer));
        Ok(with_query(redirect_uri, &pairs))
    }

    /// The token endpoint, for an authenticated client.
    pub async fn token(&self, client: &Client, req: &TokenRequest) -> Result<TokenResponse> {
        self.token_presented(client, req, None).await
    }

    /// The token endpoint, knowing the client certificate of the connection (the mutual-TLS
    /// listener): a client-credentials grant for a client whose registered certificate is the
    /// one presented yields a token bound to it (RFC 8705).
    pub async fn token_presented(
        &self,
        client: &Client,
        req: &TokenRequest,
        presented_certificate: Option<&str>,
    ) -> Result<TokenResponse> {
        match GrantType::parse(&req.grant_type) {
            Some(g) if !client.allows(g) && g != GrantType::RefreshToken => Err(oauth(
                "unauthorized_client",
                format!("this client may not use {}", g.as_str()),
            )),
            Some(GrantType::AuthorizationCode) => self.exchange_code(client, req).await,
            Some(GrantType::RefreshToken) => self.exchange_refresh(client, req).await,
            Some(GrantType::ClientCredentials) => {
                let bound = match (&client.certificate_sha256, presented_certificate) {
                    (Some(registered), Some(presented))
                        if crate::crypto::constant_time_eq(registered, presented) =>
                    {
                        Some(registered.as_str())
                    }
                    _ => None,
                };
                self.client_credentials_bound(client, req, bound)
            }
            None => Err(oauth(
                "unsupported_grant_type",
                format!("grant_type {:?}", req.grant_type),
            )),
        }
    }

    async fn exchange_code(&self, client: &Client, req: &TokenRequest) -> Result<TokenResponse> {
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| oauth("invalid_request", "code is missing"))?;
        let grant = match oidc::redeem_code(&self.db, code).await? {
            oidc::Redeemed::Fresh(g) => g,
            oidc::Redeemed::Replayed(g) => {
                // A code used twice was stolen or replayed: revoke what its first use issued.
                oidc::revoke_family(&self.db, &g.family_id).await?;
                self.revoke(Kind::Jti, &g.family_id, None).await?;
                return Err(oauth("invalid_grant", "authorization code already used"));
            }
            oidc::Redeemed::Unknown => {
                return Err(oauth("invalid_grant", "unknown authorization code"));
            }
        };
        if grant.client_id != client.id {
            return Err(oauth(
                "invalid_grant",
                "the code was issued to another client",
            ));
        }
        if grant.expires_at_us < now_us() {
            return Err(oauth("invalid_grant", "authorization code expired"));
        }
        if req.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
            return Err(oauth(
                "invalid_grant",
                "redirect_uri differs from the authorization request",
            ));
        }
        let verifier = req.code_verifier.as_deref().unwrap_or_default();
        if !(43..=128).contains(&verifier.len()) || pkce_s256(verifier) != grant.code_challenge {
            return Err(oauth("invalid_grant", "PKCE verification failed"));
        }
        let account = self.live_account(&grant.account_id).await?;
        let amr = scope_words(&grant.amr);
        let principal = self
            .principal_for(&account, &amr, None)
            .await?
            .ok_or_else(|| oauth("invalid_grant", "the account is disabled or closed"))?;
        let refresh = random_token();
        let refresh_grant = RefreshGrant {
            family_id: grant.family_id.clone(),
            client_id: client.id.clone(),
            account_id: account.id.clone(),
            scope: grant.scope.clone(),
            amr: grant.amr.clone(),
            expires_at_us: now_us()
                + i64::try_from(self.settings.refresh_token_lifetime.as_micros())
                    .unwrap_or(i64::MAX / 2),
            used_at_us: None,
            revoked: 0,
        };
        oidc::store_refresh(&self.db, &refresh, &refresh_grant).await?;
        let scopes = scope_words(&grant.scope);
        let id_token = if scopes.iter().any(|s| s == "openid") {
            Some(self.id_token(
                &principal,
                &client.id,
                grant.nonce.as_deref(),
                grant.auth_time_us / 1_000_000,
            )?)
        } else {
            None
        };
        let access = self.user_access_token(
            &principal,
            &client.id,
            &grant.scope,
            &grant.family_id,
            grant.auth_time_us / 1_000_000,
        )?;
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.settings.access_token_lifetime.as_secs(),
            scope: grant.scope,
            refresh_token: Some(refresh),
            id_token,
        })
    }

    async fn live_account(&self, id: &str) -> Result<Account> {
        match account::by_id(&self.db, id).await? {
            Some(a) if !a.disabled => Ok(a),
            _ => Err(oauth("invalid_grant", "the account is disabled")),
        }
    }

    async fn exchange_refresh(&self, client: &Client, req: &TokenRequest) -> Result<TokenResponse> {
        let token = req
            .refresh_token
            .as_deref()
            .ok_or_else(|| oauth("invalid_request", "refresh_token is missing"))?;
        let Some(grant) = oidc::find_refresh(&self.db, token).await? else {
            return Err(oauth("invalid_grant", "unknown refresh token"));
        };
        if grant.client_id != client.id {
            return Err(oauth(
                "invalid_grant",
                "the refresh token was issued to another client",
            ));
        }
        if grant.revoked != 0 || grant.expires_at_us < now_us() {
            return Err(oauth("invalid_grant", "refresh token revoked or expired"));
        }
        if !oidc::use_refresh(&self.db, token).await? {
            // Reuse of a rotated token: someone holds a copy. Revoke the whole family.
            oidc::revoke_family(&self.db, &grant.family_id).await?;
            self.revoke(Kind::Jti, &grant.family_id, None).await?;
            return Err(oauth(
                "invalid_grant",
                "refresh token already used; the session is revoked",
            ));
        }
        let mut scope = grant.scope.clone();
        if let Some(asked) = &req.scope {
            let granted = scope_words(&grant.scope);
            if scope_words(asked).iter().any(|s| !granted.contains(s)) {
                return Err(oauth(
                    "invalid_scope",
                    "a refresh may only narrow the scope",
                ));
            }
            scope = asked.clone();
        }
        let account = self.live_account(&grant.account_id).await?;
        let amr = scope_words(&grant.amr);
        let principal = self
            .principal_for(&account, &amr, None)
            .await?
            .ok_or_else(|| oauth("invalid_grant", "the account is disabled or closed"))?;
        if !self.may_use(&principal, &client.id) {
            return Err(oauth(
                "invalid_grant",
                "you are no longer authorised to use this application",
            ));
        }
        let next = random_token();
        oidc::store_refresh(
            &self.db,
            &next,
            &RefreshGrant {
                used_at_us: None,
                ..grant.clone()
            },
        )
        .await?;
        let access = self.user_access_token(&principal, &client.id, &scope, &grant.family_id, 0)?;
        let id_token = if scope_words(&scope).iter().any(|s| s == "openid") {
            Some(self.id_token(&principal, &client.id, None, 0)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: self.settings.access_token_lifetime.as_secs(),
            scope,
            refresh_token: Some(next),
            id_token,
        })
    }

    /// Client credentials (hospital systems): no database write, one signature.
    pub fn client_credentials(&self, client: &Client, req: &TokenRequest) -> Result<TokenResponse> {
        self.client_credentials_bound(client, req, None)
    }

    /// Client credentials, the token bound to a certificate thumbprint when given.
    fn client_credentials_bound(
        &self,
        client: &Client,
        req: &TokenRequest,
        certificate_sha256: Option<&str>,
    ) -> Result<TokenResponse> {
        let scope = match &req.scope {
            Some(s) => {
                let asked = scope_words(s);
                if let Some(bad) = asked.iter().find(|s| !client.scopes.contains(s)) {
                    return Err(oauth(
                        "invalid_scope",
                        format!("scope {bad} is not allowed for this client"),
                    ));
                }
                asked.join(" ")
            }
            None => client.scopes.join(" "),
        };
        let now = now_us() / 1_000_000;
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: client.id.clone(),
            aud: self.settings.audience().to_string(),
            exp: now + self.settings.access_token_lifetime.as_secs() as i64,
            iat: now,
            jti: random_token(),
            client_id: client.id.clone(),
            scope: scope.clone(),
            kind: "system".into(),
            auth_time: None,
            amr: vec![],
            fam: None,
            national_id: None,
            profession: None,
            specialty: None,
            organisation: None,
            organisations: vec![],
            roles: vec![],
            name: Some(client.name.clone()),
            cnf: certificate_sha256.map(|t| Confirmation {
                x5t_s256: t.to_string(),
            }),
        };
        Ok(TokenResponse {
            access_token: self.sign(&claims, "at+jwt", self.settings.access_token_algorithm)?,
            token_type: "Bearer",
            expires_in: self.settings.access_token_lifetime.as_secs(),
            scope,
            refresh_token: None,
            id_token: None,
        })
    }

    fn user_access_token(
        &self,
        p: &Principal,
        client_id: &str,
        scope: &str,
        family: &str,
        auth_time: i64,
    ) -> Result<String> {
        let now = now_us() / 1_000_000;
        let claims = AccessClaims {
            iss: self.settings.issuer.clone(),
            sub: p.subject.clone(),
            aud: self.settings.audience().to_string(),
            exp: now + self.settings.access_token_lifetime.as_secs() as i64,
            iat: now,
            jti: random_token(),
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            kind: "user".into(),
            auth_time: (auth_time > 0).then_some(auth_time),
            amr: p.amr.clone(),
            fam: Some(family.to_string()),
            national_id: p.national_id.clone(),
            profession: p.profession.clone(),
            specialty: p.specialty.clone(),
            organisation: p.organisation.clone(),
            organisations: p.organisations.clone(),
            roles: p.roles.clone(),
            name: p.display_name.clone(),
            cnf: None,
        };
        self.sign(&claims, "at+jwt", self.settings.access_token_algorithm)
    }

    fn id_token(
        &self,
        p: &Principal,
        client_id: &str,
        nonce: Option<&str>,
        auth_time: i64,
    ) -> Result<String> {
        let now = now_us() / 1_000_000;
        let mut claims = serde_json::json!({
            "iss": self.settings.issuer, "sub": p.subject, "aud": client_id, "azp": client_id,
            "exp": now + self.settings.access_token_lifetime.as_secs() as i64, "iat": now,
            "amr": p.amr, "acr": if p.second_factor { "urn:megalis:acr:mfa" } else { "urn:megalis:acr:pwd" },
        });
        let obj = claims.as_object_mut().expect("object");
        if auth_time > 0 {
            obj.insert("auth_time".into(), auth_time.into());
        }
        if let Some(n) = nonce {
            obj.insert("nonce".into(), n.into());
        }
        for (k, v) in self.user_claims(p).as_object().expect("object") {
            obj.entry(k.clone()).or_insert(v.clone());
        }
        // RS256: OpenID Connect's default, the one algorithm every relying party supports.
        self.sign(&claims, "JWT", Algorithm::RS256)
    }

    /// The claims of `/userinfo` (and of ID tokens).
    pub fn user_claims(&self, p: &Principal) -> serde_json::Value {
        serde_json::json!({
            "sub": p.subject, "name": p.display_name, "national_id": p.national_id,
            "profession": p.profession, "specialty": p.specialty,
            "organisation": p.organisation, "organisations": p.organisations, "roles": p.roles,
        })
    }

    fn sign<T: Serialize>(&self, claims: &T, typ: &str, alg: Algorithm) -> Result<String> {
        let keys = self.keys.read().expect("lock");
        // Newest first: the first key of the algorithm is its current one.
        let key = keys
            .iter()
            .find(|k| k.alg == alg)
            .ok_or_else(|| AuthError::Internal(format!("no {alg:?} signing key")))?;
        let mut header = Header::new(alg);
        header.typ = Some(typ.into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| AuthError::Internal(e.to_string()))
    }

    fn decoding_key(&self, kid: &str) -> Option<(Algorithm, jsonwebtoken::DecodingKey)> {
        self.keys
            .read()
            .expect("lock")
            .iter()
            .find(|k| k.kid == kid)
            .map(|k| (k.alg, k.decoding.clone()))
    }

    /// Verifies signature, `typ`, issuer, audience and expiry of a JWT made by this provider.
    fn verify_jwt<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: Option<&str>,
        audience: Option<&str>,
        check_exp: bool,
    ) -> Result<T> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Token(e.to_string()))?;
        // Only the provider's own algorithms: `alg: none`, HS256 with the public key as secret
        // and the like are refused before any key is touched; below, the algorithm must also be
        // the one of the key the `kid` names.
        if !keys::SIGNING_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Token("unsupported signing algorithm".into()));
        }
        if let Some(typ) = typ
            && !header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case(typ) || t.eq_ignore_ascii_case(&format!("application/{typ}"))
            })
        {
            return Err(AuthError::Token(format!("not an {typ} token")));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Token("no key id".into()))?;
        let (key_alg, key) = self
            .decoding_key(&kid)
            .ok_or_else(|| AuthError::Token("unknown key id".into()))?;
        if key_alg != header.alg {
            return Err(AuthError::Token(
                "the signing algorithm is not the key's".into(),
            ));
        }
        let mut v = Validation::new(key_alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.leeway = 5;
        v.validate_exp = check_exp;
        match audience {
            Some(a) => v.set_audience(&[a]),
            None => v.validate_aud = false,
        }
        if !check_exp {
            v.required_spec_claims.remove("exp");
        }
        jsonwebtoken::decode::<T>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| AuthError::Token(e.to_string()))
    }

    /// Validates an access token and gives its principal: signature (cached after the first
    /// check), issuer, audience, expiry, the revocation/closure list, and the grant of the
    /// client application for user tokens.
    pub fn validate_access_token(&self, token: &str) -> Result<Principal> {
        self.validate_access_token_presented(token, None)
    }

    /// [`Auth::validate_access_token`], knowing the client certificate of the connection: a
    /// certificate-bound token (RFC 8705) is accepted only with that certificate.
    pub fn validate_access_token_presented(
        &self,
        token: &str,
        presented_certificate: Option<&str>,
    ) -> Result<Principal> {
        self.validate(token, Binding::Check(presented_certificate))
    }

    fn validate(&self, token: &str, binding: Binding<'_>) -> Result<Principal> {
        let cached = self.validated.read().expect("lock").get(token).cloned();
        let entry = match cached {
            Some(e) => e,
            None => {
                let claims: AccessClaims = match self.verify_jwt(
                    token,
                    Some("at+jwt"),
                    Some(self.settings.audience()),
                    true,
                ) {
                    Err(AuthError::Token(m)) if m == "unknown key id" => {
                        // Another replica may have rotated: reload the keys, at most once a second.
                        let now_s = now_us() / 1_000_000;
                        if self.last_key_reload_s.swap(now_s, Ordering::Relaxed) != now_s {
                            let keys = futures_lite_block(keys::load(&self.db));
                            if let Ok(k) = keys {
                                *self.keys.write().expect("lock") = k;
                            }
                        }
                        self.verify_jwt(
                            token,
                            Some("at+jwt"),
                            Some(self.settings.audience()),
                            true,
                        )?
                    }
                    other => other?,
                };
                let entry = Arc::new(CachedToken {
                    principal: principal_of_claims(&claims),
                    claims,
                });
                let mut cache = self.validated.write().expect("lock");
                if cache.len() >= VALIDATED_CACHE_MAX {
                    let now = now_us() / 1_000_000;
                    cache.retain(|_, e| e.claims.exp > now);
                    if cache.len() >= VALIDATED_CACHE_MAX {
                        cache.clear();
                    }
                }
                cache.insert(token.to_string(), Arc::clone(&entry));
                entry
            }
        };
        let c = &entry.claims;
        if c.exp + 5 < now_us() / 1_000_000 {
            return Err(AuthError::Token("token expired".into()));
        }
        if let (Some(cnf), Binding::Check(presented_certificate)) = (&c.cnf, binding) {
            let matches = presented_certificate
                .is_some_and(|p| crate::crypto::constant_time_eq(p, &cnf.x5t_s256));
            if !matches {
                return Err(AuthError::Token(
                    "this token is bound to a client certificate (RFC 8705): present it over \
                     mutual TLS with that certificate"
                        .into(),
                ));
            }
        }
        let facts = TokenFacts {
            jti: &c.jti,
            family: c.fam.as_deref(),
            subject: &c.sub,
            national_id: c.national_id.as_deref(),
            client_id: &c.client_id,
            issued_at_s: c.iat,
        };
        if self.revocations.read().expect("lock").is_revoked(&facts) {
            return Err(AuthError::Token("token revoked".into()));
        }
        let p = &entry.principal;
        if p.kind == PrincipalKind::User && !self.may_use(p, &c.client_id) {
            return Err(AuthError::Token(
                "the application is no longer granted to this user".into(),
            ));
        }
        Ok(p.clone())
    }

    /// The claims of a valid access token (introspection, userinfo).
    /// The claims of a valid token, its `cnf` reported rather than enforced: introspection
    /// tells the resource server which certificate must come with the token (RFC 8705 §3.2).
    pub fn access_claims(&self, token: &str) -> Result<AccessClaims> {
        self.validate(token, Binding::Report)?;
        self.validated
            .read()
            .expect("lock")
            .get(token)
            .map(|e| e.claims.clone())
            .ok_or_else(|| AuthError::Token("token evicted".into()))
    }

    /// RFC 7662 introspection by an authenticated client.
    pub async fn introspect(&self, client: &Client, token: &str) -> Result<serde_json::Value> {
        if let Ok(c) = self.access_claims(token) {
            let mut answer = serde_json::json!({
                "active": true, "scope": c.scope, "client_id": c.client_id, "sub": c.sub,
                "exp": c.exp, "iat": c.iat, "iss": c.iss, "aud": c.aud, "jti": c.jti,
                "token_type": "Bearer", "national_id": c.national_id, "cnf": c.cnf,
            });
            // A system client's token: which identifier domains it may feed (a resource server
            // such as an MLLP gateway in front of the core checks it without a second call).
            if c.sub == c.client_id {
                let authorities = self.authorities_of(&c.client_id);
                if !authorities.is_empty() {
                    answer["assigning_authorities"] = serde_json::json!(authorities);
                }
            }
            return Ok(answer);
        }
        if let Some(g) = oidc::find_refresh(&self.db, token).await?
            && g.client_id == client.id
            && g.used_at_us.is_none()
            && g.revoked == 0
            && g.expires_at_us > now_us()
        {
            return Ok(serde_json::json!({
                "active": true, "scope": g.scope, "client_id": g.client_id, "sub": g.account_id,
                "exp": g.expires_at_us / 1_000_000, "token_type": "refresh_token",
            }));
        }
        Ok(serde_json::json!({ "active": false }))
    }

    /// RFC 7009 revocation: a refresh token revokes its family (and the access tokens issued
    /// from it); an access token is put on the revocation list. Unknown tokens are ignored.
    pub async fn revoke_token(&self, client: &Client, token: &str) -> Result<()> {
        if let Some(g) = oidc::find_refresh(&self.db, token).await? {
            if g.client_id == client.id {
                oidc::revoke_family(&self.db, &g.family_id).await?;
                self.revoke(Kind::Jti, &g.family_id, None).await?;
            }
            return Ok(());
        }
        if let Ok(c) = self.verify_jwt::<AccessClaims>(token, Some("at+jwt"), None, true)
            && c.client_id == client.id
        {
            self.revoke(Kind::Jti, &c.jti, Some(c.exp * 1_000_000))
                .await?;
        }
        Ok(())
    }

    /// RP-initiated logout: the client named by `id_token_hint` and the registered
    /// `post_logout_redirect_uri` (exact match). Returns where to send the browser, if anywhere.
    pub async fn logout_redirect(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>> {
        let (Some(hint), Some(uri)) = (id_token_hint, post_logout_redirect_uri) else {
            return Ok(None);
        };
        let claims: serde_json::Value = self.verify_jwt(hint, None, None, false)?;
        let client_id = claims
            .get("aud")
            .and_then(|a| a.as_str())
            .unwrap_or_default();
        let Some(client) = self.client(client_id).await? else {
            return Ok(None);
        };
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Ok(None);
        }
        Ok(Some(match state {
            Some(s) => with_query(uri, &[("state", s)]),
            None => uri.to_string(),
        }))
    }
}

fn principal_of_claims(c: &AccessClaims) -> Principal {
    let system = c.kind == "system";
    Principal {
        kind: if system {
            PrincipalKind::System
        } else {
            PrincipalKind::User
        },
        subject: c.sub.clone(),
        display_name: c.name.clone(),
        national_id: c.national_id.clone(),
        profession: c.profession.clone(),
        specialty: c.specialty.clone(),
        organisation: c.organisation.clone(),
        organisations: c.organisations.clone(),
        roles: c.roles.clone(),
        client_id: Some(c.client_id.clone()),
        scopes: scope_words(&c.scope),
        second_factor: has_second_factor(&c.amr),
        amr: c.amr.clone(),
        session: None,
    }
}

/// Runs a short database future from synchronous validation code (only on the rare path where
/// an unknown key id forces a reload); it must not be called outside a multi-thread runtime.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}
