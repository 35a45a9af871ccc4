//! Who calls a plugin: the platform's sessions and access tokens, and the per-application grants,
//! behind the plugin host's [`Authenticator`] trait.
//!
//! * `public` routes: the anonymous principal, or the session's user when that user may use the
//!   application (a public page may greet a signed-in user; an application the user is not
//!   granted never learns who they are).
//! * `session` routes: the portal session only (a bearer token is not a session: an API client
//!   cannot reach browser routes). The user must be granted the application.
//! * `bearer` routes: an access token holding every scope the route declares. A token issued to
//!   a user (through an OIDC client) also needs the user's grant for the application; a system
//!   client is authorised by the scopes themselves, which only an administrator can register for
//!   it (`megalis admin client add --scope probe.read`).
//!
//! Every refusal of a known caller is audited (`application.use`, denied), like the portal's
//! launcher check. CSRF on unsafe session requests is the host's (same-origin check).

use std::sync::Arc;

use http::HeaderMap;
use megalis_audit::{AuditLog, AuditRecord, Outcome};
use megalis_auth::principal::Rejection;
use megalis_auth::{Auth, PrincipalKind as AuthKind};
use megalis_plugin_host::RouteAuth;
use megalis_plugin_host::access::{
    AuthRefusal, Authenticator, BoxFuture, Origin, Principal, PrincipalKind,
};

pub struct PlatformAuthenticator {
    auth: Arc<Auth>,
    audit: AuditLog,
}

impl PlatformAuthenticator {
    pub fn new(auth: Arc<Auth>, audit: AuditLog) -> Self {
        PlatformAuthenticator { auth, audit }
    }

    async fn session_user(
        &self,
        headers: &HeaderMap,
    ) -> Result<megalis_auth::Principal, AuthRefusal> {
        let raw = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(megalis_auth::session::from_cookie_header);
        let Some(raw) = raw else {
            return Err(AuthRefusal::Unauthenticated);
        };
        match self.auth.principal_from_session(raw).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(AuthRefusal::Unauthenticated),
            Err(e) if e.is_unavailable() => Err(AuthRefusal::Unavailable),
            Err(e) => {
                tracing::error!(error = %e, "session lookup for a plugin request failed");
                Err(AuthRefusal::Unavailable)
            }
        }
    }

    async fn bearer(
        &self,
        plugin: &str,
        required: &[String],
        headers: &HeaderMap,
    ) -> Result<megalis_auth::Principal, AuthRefusal> {
        if headers.get(http::header::AUTHORIZATION).is_none() {
            return Err(AuthRefusal::Unauthenticated);
        }
        let p = match self.auth.principal_from_headers(headers).await {
            Ok(p) if p.is_authenticated() => p,
            Ok(_) | Err(Rejection::InvalidToken(_)) => return Err(AuthRefusal::Unauthenticated),
            Err(Rejection::Unavailable) => return Err(AuthRefusal::Unavailable),
        };
        let missing: Vec<&str> = required
            .iter()
            .filter(|s| !p.scopes.iter().any(|held| held == *s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            let why = format!(
                "the access token lacks the scope(s) {} this route of {plugin} requires",
                missing.join(" ")
            );
            return Err(self.refuse(&p, plugin, why).await);
        }
        if p.kind == AuthKind::User && !self.auth.may_use(&p, plugin) {
            return Err(self.refuse(&p, plugin, not_granted(plugin)).await);
        }
        Ok(p)
    }

    /// Audits a refusal and returns it; a failed audit write refuses as unavailable (no access
    /// decision goes unrecorded).
    async fn refuse(&self, p: &megalis_auth::Principal, plugin: &str, why: String) -> AuthRefusal {
        let record = AuditRecord::new(
            crate::http::auth_glue::actor_of(p),
            "application.use",
            "application",
            Outcome::Denied,
        )
        .with_object_id(plugin)
        .with_detail(why.clone());
        match self.audit.append(record).await {
            Ok(_) => AuthRefusal::Forbidden(why),
            Err(e) => {
                tracing::error!(error = %e, "audit of a plugin refusal failed");
                AuthRefusal::Unavailable
            }
        }
    }
}

fn not_granted(plugin: &str) -> String {
    format!(
        "Vous n'êtes pas autorisé(e) à utiliser l'application {plugin}. / You are not authorised \
         to use the application {plugin}."
    )
}

/// The principal a plugin sees: who, never how (no session reference, no token).
fn for_plugin(p: &megalis_auth::Principal) -> Principal {
    let kind = match p.kind {
        AuthKind::User => PrincipalKind::User,
        AuthKind::System => PrincipalKind::System,
        AuthKind::Anonymous => PrincipalKind::Anonymous,
    };
    Principal {
        kind,
        subject: p.subject.clone(),
        national_id: p.national_id.clone(),
        profession: p.profession.clone(),
        organisation: p.organisation.clone(),
        // A system client's rights are its scopes (what `megalis plugin run` shows too).
        roles: if kind == PrincipalKind::System {
            p.scopes.clone()
        } else {
            p.roles.clone()
        },
        // Handed back to the platform's access decision (plugin_platform.rs), which needs what
        // plugins are not shown: second factor, token scopes, session.
        origin: Some(Origin::new(p.clone())),
    }
}

impl Authenticator for PlatformAuthenticator {
    fn authenticate<'a>(
        &'a self,
        plugin: &'a str,
        auth: &'a RouteAuth,
        headers: &'a HeaderMap,
    ) -> BoxFuture<'a, Result<Principal, AuthRefusal>> {
        Box::pin(async move {
            match auth {
                RouteAuth::Public => {
                    if !headers.contains_key(http::header::COOKIE) {
                        return Ok(Principal::anonymous());
                    }
                    Ok(match self.session_user(headers).await {
                        Ok(p) if self.auth.may_use(&p, plugin) => for_plugin(&p),
                        _ => Principal::anonymous(),
                    })
                }
                RouteAuth::Session => {
                    let p = self.session_user(headers).await?;
                    if !self.auth.may_use(&p, plugin) {
                        return Err(self.refuse(&p, plugin, not_granted(plugin)).await);
                    }
                    Ok(for_plugin(&p))
                }
                RouteAuth::Bearer(scopes) => {
                    Ok(for_plugin(&self.bearer(plugin, scopes, headers).await?))
                }
            }
        })
    }
}
