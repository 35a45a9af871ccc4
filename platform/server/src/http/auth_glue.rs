//! What every authenticated route shares: the service handle as axum state, the mapping of
//! auth errors to `ApiError`, the audit call site pattern for authentication events, and the one
//! per-application authorisation check (`require_application`).

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use http::StatusCode;
use http::request::Parts;
use megalis_audit::{Actor, AuditRecord, Outcome};
use megalis_auth::{Auth, AuthError, Principal};

use super::forwarded::ClientInfo;
use super::{ApiError, AppState, RequestId};

impl FromRef<AppState> for Arc<Auth> {
    fn from_ref(state: &AppState) -> Arc<Auth> {
        Arc::clone(&state.auth)
    }
}

/// Maps the auth crate's error once: OAuth errors keep their RFC 6749 code, database outages are
/// 503, anything unexpected is logged and hidden behind a 500.
pub fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::OAuth { code, description } => {
            let status = if code == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            let mut err = ApiError::new(status, description);
            err.oauth_error = Some(code);
            err
        }
        AuthError::WeakPassword(m) | AuthError::Invalid(m) => ApiError::bad_request(m),
        AuthError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        AuthError::Conflict(m) => {
            ApiError::new(StatusCode::CONFLICT, format!("already exists: {m}"))
        }
        AuthError::Token(m) => {
            let mut err = ApiError::new(StatusCode::UNAUTHORIZED, m);
            err.oauth_error = Some("invalid_token");
            err
        }
        e if e.is_unavailable() => {
            ApiError::unavailable("Authentication is temporarily unavailable; try again.")
        }
        e => {
            tracing::error!(error = %e, "auth failure");
            ApiError::internal()
        }
    }
}

/// The request facts an audit record needs (correlation id, client address).
#[derive(Clone)]
pub struct Audit {
    request_id: Option<String>,
    source: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Audit {
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.to_string()),
            source: parts
                .extensions
                .get::<ClientInfo>()
                .map(|c| c.address.to_string()),
        })
    }
}

pub fn actor_of(p: &Principal) -> Actor {
    let (subject, national_id, organisation, roles) = p.audit_fields();
    Actor {
        subject,
        national_id,
        organisation,
        roles,
    }
}

/// The actor of an account that has just logged in (card, federation), before its session
/// exists: who it is, for the audit record.
pub fn account_actor(account: &megalis_auth::Account) -> Principal {
    Principal {
        subject: account.id.clone(),
        national_id: account.national_id.clone(),
        organisation: account.organisation.clone(),
        ..Principal::anonymous()
    }
}

pub struct PendingRecord(AuditRecord);

impl Audit {
    pub fn record(
        &self,
        principal: &Principal,
        action: &str,
        object_type: &str,
        outcome: Outcome,
    ) -> PendingRecord {
        let mut r = AuditRecord::new(actor_of(principal), action, object_type, outcome);
        if let Some(id) = &self.request_id {
            r = r.with_request_id(id.clone());
        }
        if let Some(a) = &self.source {
            r = r.with_source_address(a.clone());
        }
        PendingRecord(r)
    }
}

impl PendingRecord {
    pub fn object(mut self, id: &str) -> Self {
        self.0 = self.0.with_object_id(id);
        self
    }
    /// The patient whose data this record is about: it appears in that patient's access log.
    pub fn patient(mut self, regional_id: &str) -> Self {
        self.0 = self.0.with_patient(regional_id);
        self
    }
    pub fn detail(mut self, d: &str) -> Self {
        self.0 = self.0.with_detail(d);
        self
    }
    /// Overrides the actor subject (a login attempt names the user name tried).
    pub fn subject(mut self, s: &str) -> Self {
        self.0.actor.subject = s.to_string();
        self
    }
    pub async fn send(self, state: &AppState) -> Result<(), ApiError> {
        state
            .audit
            .append(self.0)
            .await
            .map(|_| ())
            .map_err(crate::audit_error)
    }
}

/// The one per-application authorisation check: may this principal use this application (a
/// plugin or an OIDC client)? A denial is audited and becomes a 403 (an HTML page for browsers,
/// problem+json for APIs, by the error mapper).
pub async fn require_application(
    state: &AppState,
    audit: &Audit,
    principal: &Principal,
    application: &str,
) -> Result<(), ApiError> {
    if state.auth.may_use(principal, application) {
        return Ok(());
    }
    audit
        .record(principal, "application.use", "application", Outcome::Denied)
        .object(application)
        .send(state)
        .await?;
    if !principal.is_authenticated() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Authentification requise / Authentication required",
        ));
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        format!(
            "Vous n'êtes pas autorisé(e) à utiliser l'application {application}. / You are not \
             authorised to use the application {application}."
        ),
    ))
}
