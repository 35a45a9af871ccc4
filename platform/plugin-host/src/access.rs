//! Who calls, may they, and the record of it: the host side of authentication, the access
//! decision and the audit trail, as traits.
//!
//! The server implements [`Authenticator`] with the platform's sessions, access tokens and
//! per-application grants, and [`AccessDecider`] with the core's one access decision
//! (`megalis_sharing::decide`: care team, consent, objections, emergency access), so a plugin
//! reaches patient data under exactly the rules of the core's own routes. [`DenyAll`] is the
//! decider of hosts with no platform behind them; [`PublicOnly`] (no session or bearer route
//! reachable) their authenticator.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderMap;

use crate::RouteAuth;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    System,
    PatientLink,
    Anonymous,
}

/// The caller as the core established it; the plugin learns it through `context.current`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    pub subject: String,
    /// `8` + RPPS for a professional.
    pub national_id: Option<String>,
    /// TRE_G15 profession code.
    pub profession: Option<String>,
    pub organisation: Option<String>,
    pub roles: Vec<String>,
    /// The authenticator's own record of the caller (the server's full principal: second
    /// factor, token scopes, session), handed back to the [`AccessDecider`] of the same
    /// platform. Plugins never see it.
    pub origin: Option<Origin>,
}

/// An opaque value the authenticator attaches to a [`Principal`] for its access decider.
#[derive(Clone)]
pub struct Origin(pub Arc<dyn Any + Send + Sync>);

impl Origin {
    pub fn new<T: Any + Send + Sync>(value: T) -> Origin {
        Origin(Arc::new(value))
    }

    pub fn get<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Origin(..)")
    }
}

impl PartialEq for Origin {
    fn eq(&self, other: &Origin) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Origin {}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            kind: PrincipalKind::Anonymous,
            subject: String::new(),
            national_id: None,
            profession: None,
            organisation: None,
            roles: Vec::new(),
            origin: None,
        }
    }

    /// The subject written in audit records.
    pub fn audit_subject(&self) -> String {
        match self.kind {
            PrincipalKind::Anonymous => "anonymous".to_owned(),
            _ => self.subject.clone(),
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRefusal {
    /// No or invalid credentials: 401.
    Unauthenticated,
    /// Valid credentials, not enough rights (missing scope, no application grant): 403.
    Forbidden(String),
    /// The credentials could not be checked (session store or database down): 503.
    Unavailable,
}

/// Establishes the principal of a request to a plugin route.
pub trait Authenticator: Send + Sync {
    /// `headers` are the request's, credentials included; the host strips them afterwards.
    fn authenticate<'a>(
        &'a self,
        plugin: &'a str,
        auth: &'a RouteAuth,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, AuthRefusal>>;
}

/// Until authentication lands: `public` routes get the anonymous principal; `session` and
/// `bearer` routes are refused with 401.
pub struct PublicOnly;

impl Authenticator for PublicOnly {
    fn authenticate<'a>(
        &'a self,
        _plugin: &'a str,
        auth: &'a RouteAuth,
        _headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, AuthRefusal>> {
        Box::pin(async move {
            match auth {
                RouteAuth::Public => Ok(Principal::anonymous()),
                RouteAuth::Session | RouteAuth::Bearer(_) => Err(AuthRefusal::Unauthenticated),
            }
        })
    }
}

/// `megalis plugin run`: a plugin author's machine. Every route is reachable; `session` routes
/// see the user `dev`, `bearer` routes the system `dev-client` holding exactly the route's scopes.
pub struct LocalDeveloper;

impl Authenticator for LocalDeveloper {
    fn authenticate<'a>(
        &'a self,
        _plugin: &'a str,
        auth: &'a RouteAuth,
        _headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, AuthRefusal>> {
        Box::pin(async move {
            Ok(match auth {
                RouteAuth::Public => Principal::anonymous(),
                RouteAuth::Session => Principal {
                    kind: PrincipalKind::User,
                    subject: "dev".into(),
                    national_id: Some("810000000000".into()),
                    profession: Some("10".into()),
                    organisation: None,
                    roles: vec!["developer".into()],
                    origin: None,
                },
                RouteAuth::Bearer(scopes) => Principal {
                    kind: PrincipalKind::System,
                    subject: "dev-client".into(),
                    national_id: None,
                    profession: None,
                    organisation: None,
                    roles: scopes.clone(),
                    origin: None,
                },
            })
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessAction {
    Read,
    Write,
    Share,
}

impl AccessAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessAction::Read => "read",
            AccessAction::Write => "write",
            AccessAction::Share => "share",
        }
    }
}

/// What of the patient a plugin reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessResource {
    /// The patient's identity (the `identity` capability).
    Identity,
    /// Clinical records the plugin holds (store entries, events, the `consent.check` question).
    Record,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Safe to show the user.
    pub reason: String,
    /// The stable reason code, written in the audit record (`care-team`, `objection`…).
    pub code: String,
}

impl Decision {
    pub fn deny(code: &str, reason: impl Into<String>) -> Decision {
        Decision {
            allowed: false,
            reason: reason.into(),
            code: code.to_owned(),
        }
    }
    pub fn allow(code: &str, reason: impl Into<String>) -> Decision {
        Decision {
            allowed: true,
            reason: reason.into(),
            code: code.to_owned(),
        }
    }
}

/// The core's access decision over patient data: care relationship, consent, break-the-glass.
/// The host writes the audit record of each answer; the decider only decides.
pub trait AccessDecider: Send + Sync {
    fn decide<'a>(
        &'a self,
        principal: &'a Principal,
        patient: &'a str,
        resource: AccessResource,
        action: AccessAction,
        purpose: &'a str,
    ) -> BoxFuture<'a, Decision>;

    /// The refusals that do not depend on any patient (who asks, not about whom): asked before
    /// a look-up whose mere answer ("no such patient") would tell a caller without any right
    /// something. The default refuses nobody here and leaves everything to [`decide`].
    ///
    /// [`decide`]: AccessDecider::decide
    fn precheck<'a>(
        &'a self,
        principal: &'a Principal,
        resource: AccessResource,
        action: AccessAction,
    ) -> BoxFuture<'a, Decision> {
        let _ = (principal, resource, action);
        Box::pin(async { Decision::allow("no-precheck", "no refusal before the look-up") })
    }
}

/// A host with no platform behind it: nobody may touch patient data through a plugin.
pub struct DenyAll;

impl AccessDecider for DenyAll {
    fn precheck<'a>(
        &'a self,
        _principal: &'a Principal,
        _resource: AccessResource,
        _action: AccessAction,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async {
            Decision::deny(
                "no-platform",
                "access to patient data is not available on this host",
            )
        })
    }

    fn decide<'a>(
        &'a self,
        _principal: &'a Principal,
        _patient: &'a str,
        _resource: AccessResource,
        _action: AccessAction,
        _purpose: &'a str,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async {
            Decision::deny(
                "no-platform",
                "access to patient data is not available on this host",
            )
        })
    }
}

/// `megalis plugin run` only: virtual capabilities on a developer's machine with synthetic
/// data, where every access is allowed (and still logged).
pub struct AllowAllLocal;

impl AccessDecider for AllowAllLocal {
    fn decide<'a>(
        &'a self,
        _principal: &'a Principal,
        _patient: &'a str,
        _resource: AccessResource,
        _action: AccessAction,
        _purpose: &'a str,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async { Decision::allow("local-runner", "local development runner") })
    }
}

/// The audit trail could not be written; the operation must not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditUnavailable;

/// Where the host writes the audit records of capability calls.
pub trait AuditSink: Send + Sync {
    fn append(
        &self,
        record: megalis_audit::AuditRecord,
    ) -> BoxFuture<'_, Result<(), AuditUnavailable>>;
}

impl AuditSink for megalis_audit::AuditLog {
    fn append(
        &self,
        record: megalis_audit::AuditRecord,
    ) -> BoxFuture<'_, Result<(), AuditUnavailable>> {
        Box::pin(async move {
            megalis_audit::AuditLog::append(self, record)
                .await
                .map(|_| ())
                .map_err(|e| {
                    tracing::error!(error = %e, "plugin host: audit append failed");
                    AuditUnavailable
                })
        })
    }
}

/// `megalis plugin run`: audit records go to the log.
pub struct LogAudit;

impl AuditSink for LogAudit {
    fn append(
        &self,
        record: megalis_audit::AuditRecord,
    ) -> BoxFuture<'_, Result<(), AuditUnavailable>> {
        tracing::info!(
            actor = %record.actor.subject,
            action = %record.action,
            object_type = %record.object_type,
            patient = record.patient_id.as_deref().unwrap_or(""),
            outcome = record.outcome.as_str(),
            "audit (local runner)"
        );
        Box::pin(async { Ok(()) })
    }
}
