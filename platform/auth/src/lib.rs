//! Authentication and authorisation of Megalis (issue 3).
//!
//! * [`account`]: professional, local staff and administrator accounts; argon2id passwords with a
//!   policy; throttling and temporary lockout kept in the database (shared by every replica);
//!   TOTP second factor and hashed recovery codes.
//! * [`card`]: CPS smart-card login (after the server's mutual-TLS listener checked the card)
//!   and the one-time tickets that carry it to the portal's host.
//! * [`federation`]: login federated to an upstream OpenID Provider (Pro Santé Connect): the
//!   stored authorization state and the checks of its ID tokens.
//! * [`session`]: server-side sessions (only a hash of the cookie value is stored), idle and
//!   absolute timeouts, and the CSRF synchroniser token bound to each session.
//! * [`oidc`]: the OpenID Provider's state — signing keys in the database (every replica signs and
//!   publishes the same keys), clients, authorization codes with PKCE, rotating refresh tokens
//!   with reuse detection, RFC 9068 access tokens, and the shared revocation/closure list.
//! * [`grants`]: who may use which application (pure evaluation, tested with tables of cases).
//! * [`principal`]: the [`Principal`] every handler gets, from a session cookie or a bearer token.
//!
//! HTTP routes live in the server crate, which renders errors per route family and audits.

pub mod account;
pub mod card;
mod crypto;
pub mod directory;
pub mod federation;
pub mod grants;
mod jwt_crypto;
pub mod oidc;
pub mod password;
pub mod principal;
pub mod service;
pub mod session;
pub mod totp;

pub use account::{Account, AccountKind, NewAccount};
pub use card::NationalIdRefusal;
pub use directory::{PractitionerInfo, PractitionerLookup, StaticDirectory};
pub use grants::{GrantKind, GrantRule};
/// The JWS algorithms tokens are signed with (`ES256`, `RS256`).
pub use jsonwebtoken::Algorithm as SigningAlgorithm;
pub use principal::{Principal, PrincipalKind, SessionRef};
pub use service::{Auth, AuthSettings, CardLogin, FederatedLogin, LoginOutcome};

/// The one error type of the auth crate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Store(#[from] megalis_store::StoreError),
    /// The password does not satisfy the policy; the message says why, in French and English.
    #[error("{0}")]
    WeakPassword(String),
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("already exists: {0}")]
    Conflict(String),
    /// An OAuth 2.0 error with its RFC 6749 code (`invalid_grant`, `invalid_client`…).
    #[error("{code}: {description}")]
    OAuth {
        code: &'static str,
        description: String,
    },
    #[error("token: {0}")]
    Token(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Store(megalis_store::StoreError::from(e))
    }
}

impl AuthError {
    pub fn oauth(code: &'static str, description: impl Into<String>) -> Self {
        AuthError::OAuth {
            code,
            description: description.into(),
        }
    }

    /// True when the database could not be reached (the caller answers 503).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuthError::Store(e) if e.is_unavailable())
    }
}

pub type Result<T, E = AuthError> = std::result::Result<T, E>;

/// Microseconds since the Unix epoch, the time unit of every table.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
