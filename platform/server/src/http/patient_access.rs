//! Who may reach regional patient identities, in one place for the FHIR endpoint and the
//! portal, and the audit record of every access.
//!
//! The consent and care-relationship rules (issue 5) will refine *which* patients a
//! professional sees; until then the identity service applies the coarse rule of an
//! identity-vigilance service: health professionals and identity-vigilance staff, signed in
//! with a second factor; hospital systems with a SMART scope on `Patient`; only
//! identity-vigilance staff (role `identity`) and administrators decide links and merges.

use http::StatusCode;
use megalis_audit::Outcome;
use megalis_auth::{Principal, PrincipalKind};

use super::access;
use super::auth_glue::Audit;
use super::{ApiError, AppState};

/// The role of identity-vigilance staff (cellule d'identitovigilance).
pub const IDENTITY_ROLE: &str = "identity";

/// What a caller wants to do with patient identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityUse {
    /// Read and search (FHIR read/search, `$match`, `$ihe-pix`, the portal's patient pages).
    Read,
    /// Feed source records (FHIR create/update); the assigning authority is checked apart.
    Feed,
    /// Decide reviews, merge and unmerge.
    Manage,
}

/// Does a SMART v2 scope list allow `perm` (one of `cruds`) on `Patient` in `context`
/// (`system` or `user`)? `system/Patient.rs`, `system/*.cruds`…
pub fn smart_allows(scopes: &[String], context: &str, perm: char) -> bool {
    smart_scope_allows(scopes, context, "Patient", perm)
}

/// Does a SMART v2 scope list allow `perm` on `resource_type` in `context`?
pub fn smart_scope_allows(
    scopes: &[String],
    context: &str,
    resource_type: &str,
    perm: char,
) -> bool {
    scopes.iter().any(|s| {
        let Some((ctx, rest)) = s.split_once('/') else {
            return false;
        };
        let Some((resource, perms)) = rest.split_once('.') else {
            return false;
        };
        ctx == context && (resource == resource_type || resource == "*") && perms.contains(perm)
    })
}

fn is_identity_staff(p: &Principal) -> bool {
    p.has_role(IDENTITY_ROLE) || p.is_admin()
}

fn is_professional(p: &Principal) -> bool {
    p.national_id.as_deref().is_some_and(|n| n.starts_with('8'))
}

/// The reason a principal may not make this use of patient identities, `None` when it may.
pub fn refusal(p: &Principal, use_: IdentityUse) -> Option<(StatusCode, &'static str)> {
    const NEED_LOGIN: &str = "Authentification requise / Authentication required";
    const NEED_2FA: &str = "L'accès aux données des patients demande une connexion avec un second \
        facteur (carte CPS, Pro Santé Connect ou code TOTP). / Access to patient data requires a \
        sign-in with a second factor (CPS card, Pro Santé Connect or TOTP code).";
    const NOT_ALLOWED: &str = "Vous n'êtes pas autorisé(e) à accéder aux identités des patients. \
        / You are not authorised to access patient identities.";
    const NOT_STAFF: &str = "Réservé à la cellule d'identitovigilance. / Reserved for \
        identity-vigilance staff.";
    const NO_SCOPE: &str = "Le jeton n'a pas la portée nécessaire sur Patient. / The token lacks \
        the required scope on Patient.";
    match p.kind {
        PrincipalKind::Anonymous => Some((StatusCode::UNAUTHORIZED, NEED_LOGIN)),
        PrincipalKind::System => {
            let ok = match use_ {
                IdentityUse::Read => smart_allows(&p.scopes, "system", 'r'),
                IdentityUse::Feed => {
                    smart_allows(&p.scopes, "system", 'c') || smart_allows(&p.scopes, "system", 'u')
                }
                // A person decides merges, never a system.
                IdentityUse::Manage => false,
            };
            (!ok).then_some((StatusCode::FORBIDDEN, NO_SCOPE))
        }
        PrincipalKind::User => {
            // A user's bearer token (an application acting for the user) needs its scope too.
            if p.session.is_none() && !smart_allows(&p.scopes, "user", 'r') {
                return Some((StatusCode::FORBIDDEN, NO_SCOPE));
            }
            let allowed = match use_ {
                IdentityUse::Read => is_professional(p) || is_identity_staff(p),
                IdentityUse::Feed => false,
                IdentityUse::Manage => is_identity_staff(p) && p.session.is_some(),
            };
            if !allowed {
                let why = if use_ == IdentityUse::Manage {
                    NOT_STAFF
                } else {
                    NOT_ALLOWED
                };
                return Some((StatusCode::FORBIDDEN, why));
            }
            (!p.second_factor).then_some((StatusCode::FORBIDDEN, NEED_2FA))
        }
    }
}

/// Checks [`refusal`]; a refusal is audited (`patient.access` denied) and becomes the error.
pub async fn require(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    use_: IdentityUse,
) -> Result<(), ApiError> {
    let Some((status, message)) = refusal(p, use_) else {
        return Ok(());
    };
    audit
        .record(p, "patient.access", "Patient", Outcome::Denied)
        .detail(match use_ {
            IdentityUse::Read => "read",
            IdentityUse::Feed => "feed",
            IdentityUse::Manage => "manage",
        })
        .send(state)
        .await?;
    Err(ApiError::new(status, message))
}

/// Decides, through the one access decision, that `p` may see this patient's identity, and
/// audits it (`patient.read`, `patient.match`…) in the patient's access log; a denial (the
/// patient blocked this professional…) is the error.
pub async fn seen_one(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    action: &str,
    regional_id: &str,
    detail: &str,
) -> Result<(), ApiError> {
    access::decide(state, audit, p, identity_ask(action, regional_id, detail)).await?;
    Ok(())
}

/// The same for a list of patients (search results, a review queue): each is decided and
/// audited; those the caller may not see are left out of the returned set, so that a list
/// reveals nothing of a patient who blocked the caller.
pub async fn seen_many(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    action: &str,
    regional_ids: &[&str],
    detail: &str,
) -> Result<std::collections::HashSet<String>, ApiError> {
    let mut visible = std::collections::HashSet::new();
    if regional_ids.is_empty() {
        return Ok(visible);
    }
    // Who asks does not change from one patient to the next: read it once.
    let requester = access::requester(
        state,
        p,
        &megalis_sharing::Resource::Identity,
        megalis_sharing::Action::Read,
        false,
    )
    .await?;
    for id in regional_ids {
        if visible.contains(*id) {
            continue;
        }
        let decision = access::decide_as(
            state,
            audit,
            p,
            &requester,
            &identity_ask(action, id, detail),
        )
        .await?;
        if decision.allowed {
            visible.insert(id.to_string());
        }
    }
    Ok(visible)
}

fn identity_ask<'a>(action: &'a str, regional_id: &'a str, detail: &'a str) -> access::Ask<'a> {
    access::Ask {
        regional_id,
        resource: megalis_sharing::Resource::Identity,
        action: megalis_sharing::Action::Read,
        purpose: megalis_sharing::Purpose::Care,
        audit_action: action,
        object_type: "Patient",
        object_id: Some(regional_id),
        detail,
        is_custodian: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use megalis_auth::SessionRef;

    fn user(national_id: Option<&str>, roles: &[&str], second_factor: bool) -> Principal {
        Principal {
            kind: PrincipalKind::User,
            subject: "u1".into(),
            national_id: national_id.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            second_factor,
            session: Some(SessionRef {
                id_hash: "h".into(),
                csrf_token: "c".into(),
            }),
            ..Principal::anonymous()
        }
    }

    fn system(scopes: &[&str]) -> Principal {
        Principal {
            kind: PrincipalKind::System,
            subject: "his".into(),
            client_id: Some("his".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            ..Principal::anonymous()
        }
    }

    #[test]
    fn the_identity_access_table() {
        use IdentityUse::*;
        let professional = user(Some("810001234567"), &[], true);
        let professional_password_only = user(Some("810001234567"), &[], false);
        let staff = user(None, &[IDENTITY_ROLE], true);
        let secretary = user(None, &[], true);
        let mut app_token = professional.clone();
        app_token.session = None;
        app_token.scopes = vec!["openid".into()];
        let cases: Vec<(&str, Principal, IdentityUse, Option<StatusCode>)> = vec![
            (
                "anonymous",
                Principal::anonymous(),
                Read,
                Some(StatusCode::UNAUTHORIZED),
            ),
            ("professional, 2FA", professional.clone(), Read, None),
            (
                "professional, password only",
                professional_password_only,
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "professional may not merge",
                professional.clone(),
                Manage,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "professional may not feed",
                professional,
                Feed,
                Some(StatusCode::FORBIDDEN),
            ),
            ("identity staff reads", staff.clone(), Read, None),
            ("identity staff merges", staff, Manage, None),
            (
                "staff without role",
                secretary,
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "user token without Patient scope",
                app_token,
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "system read scope",
                system(&["system/Patient.rs"]),
                Read,
                None,
            ),
            ("system wildcard", system(&["system/*.cruds"]), Feed, None),
            (
                "system write-only scope cannot read",
                system(&["system/Patient.cu"]),
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "system read scope cannot feed",
                system(&["system/Patient.rs"]),
                Feed,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "system never merges",
                system(&["system/*.cruds"]),
                Manage,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "user scope is not system scope",
                system(&["user/Patient.rs"]),
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
            (
                "other resource",
                system(&["system/Practitioner.rs"]),
                Read,
                Some(StatusCode::FORBIDDEN),
            ),
        ];
        for (name, p, use_, expected) in cases {
            assert_eq!(refusal(&p, use_).map(|r| r.0), expected, "{name}");
        }
    }
}
