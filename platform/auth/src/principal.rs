//! The authenticated caller of a request, as every handler sees it.
//!
//! Handlers take [`Principal`] as an extractor argument; it comes from the session cookie (portal)
//! or from an `Authorization: Bearer` access token (applications, hospital systems). Neither
//! present: an anonymous principal (the handler decides whether that is enough). A bearer token
//! that does not validate is a 401, never an anonymous fallback.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};

use crate::service::Auth;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalKind {
    User,
    System,
    Anonymous,
}

/// The session a principal came from (portal requests), for CSRF checks and logout.
#[derive(Debug, Clone)]
pub struct SessionRef {
    pub id_hash: String,
    pub csrf_token: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// Account id for users, client id for systems, empty for anonymous.
    pub subject: String,
    pub display_name: Option<String>,
    /// `8` + RPPS for professionals.
    pub national_id: Option<String>,
    pub profession: Option<String>,
    pub specialty: Option<String>,
    /// The organisation the principal acts for: the staff account's, or the first activity of
    /// the professional in the directory.
    pub organisation: Option<String>,
    pub organisations: Vec<String>,
    pub roles: Vec<String>,
    /// The OAuth client the token was issued to (bearer requests).
    pub client_id: Option<String>,
    /// Scopes of the bearer token; empty for a session (the session is not scope-limited).
    pub scopes: Vec<String>,
    /// Whether a second factor (TOTP, CPS card, Pro Santé Connect) was used: required for access
    /// to patient data.
    pub second_factor: bool,
    pub amr: Vec<String>,
    #[serde(skip)]
    pub session: Option<SessionRef>,
}

impl Principal {
    pub fn anonymous() -> Self {
        Principal {
            kind: PrincipalKind::Anonymous,
            subject: String::new(),
            display_name: None,
            national_id: None,
            profession: None,
            specialty: None,
            organisation: None,
            organisations: vec![],
            roles: vec![],
            client_id: None,
            scopes: vec![],
            second_factor: false,
            amr: vec![],
            session: None,
        }
    }

    pub fn is_authenticated(&self) -> bool {
        self.kind != PrincipalKind::Anonymous
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.kind == PrincipalKind::User && self.has_role("admin")
    }

    /// Whether the principal may reach patient data at all: strong authentication for users;
    /// for bearer tokens, a `user/`, `patient/` or `system/` scope must also be present (the
    /// resource handler checks the precise resource and action).
    pub fn may_access_patient_data(&self) -> bool {
        match self.kind {
            PrincipalKind::Anonymous => false,
            PrincipalKind::System => self.scopes.iter().any(|s| s.starts_with("system/")),
            PrincipalKind::User => {
                self.second_factor
                    && (self.session.is_some()
                        || self
                            .scopes
                            .iter()
                            .any(|s| s.starts_with("user/") || s.starts_with("patient/")))
            }
        }
    }

    /// The audit actor fields: subject, national id, organisation, roles.
    pub fn audit_fields(&self) -> (String, Option<String>, Option<String>, Vec<String>) {
        let subject = if self.is_authenticated() {
            self.subject.clone()
        } else {
            "anonymous".into()
        };
        (
            subject,
            self.national_id.clone(),
            self.organisation.clone(),
            self.roles.clone(),
        )
    }
}

/// Why a request could not be given a principal.
#[derive(Debug)]
pub enum Rejection {
    /// A bearer token was sent and is invalid, expired or revoked.
    InvalidToken(String),
    Unavailable,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        // Plain text: the server's error mapper turns it into the route family's format.
        match self {
            Rejection::InvalidToken(detail) => {
                let mut r = (StatusCode::UNAUTHORIZED, detail).into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
                r
            }
            Rejection::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "authentication is temporarily unavailable",
            )
                .into_response(),
        }
    }
}

/// The RFC 8705 thumbprint (`x5t#S256`) of the client certificate of the connection, which the
/// server's mutual-TLS listener puts in the request extensions: certificate-bound tokens are
/// accepted only along with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate(pub String);

impl<S> FromRequestParts<S> for Principal
where
    Arc<Auth>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let auth = Arc::<Auth>::from_ref(state);
        let presented = parts
            .extensions
            .get::<PresentedCertificate>()
            .map(|c| c.0.as_str());
        let principal = auth
            .principal_from_request(&parts.headers, presented)
            .await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}
