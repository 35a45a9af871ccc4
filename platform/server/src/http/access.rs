//! The one path from a request to the access decision (`megalis_sharing::decide`) and its audit
//! record. Every handler that touches a patient's data calls [`decide`] (or [`visible`] to
//! filter a list) with the patient and the resource; the decision is audited whether it allows
//! or denies, with its reason, in the patient's access log.

use http::StatusCode;
use megalis_audit::Outcome;
use megalis_auth::{Principal, PrincipalKind};
use megalis_sharing::{
    AccessRequest, Action, Decision, Purpose, Reason, Requester, Resource, SharingFacts,
};

use super::auth_glue::Audit;
use super::patient_access::{IDENTITY_ROLE, smart_scope_allows};
use super::{ApiError, AppState};

/// The role of patients' own accounts; the account's subject names the patient's regional id
/// through the `patient:` prefix of its roles (`patient:BZH…`).
pub const PATIENT_ROLE: &str = "patient";

/// The regional ids a patient account holds (`patient:<id>` roles).
pub fn patient_ids(p: &Principal) -> Vec<String> {
    p.roles
        .iter()
        .filter_map(|r| r.strip_prefix("patient:"))
        .map(str::to_string)
        .collect()
}

/// The FHIR resource type a SMART scope must name for this resource.
fn scope_resource(resource: &Resource) -> &'static str {
    match resource {
        Resource::Identity => "Patient",
        Resource::Document(_) => "DocumentReference",
        Resource::ClinicalRecord => "Observation",
        Resource::Consent => "Consent",
        Resource::AccessLog => "AuditEvent",
    }
}

/// Who asks, as the decision sees them. A professional's registration is checked in the
/// directory at each request: an access token outlives a closure, the decision must not.
pub async fn requester(
    state: &AppState,
    p: &Principal,
    resource: &Resource,
    action: Action,
    is_custodian: bool,
) -> Result<Requester, ApiError> {
    requester_in(&state.db, p, resource, action, is_custodian).await
}

/// [`requester`] on a database (the directory's registrations).
pub async fn requester_in(
    db: &megalis_store::Database,
    p: &Principal,
    resource: &Resource,
    action: Action,
    is_custodian: bool,
) -> Result<Requester, ApiError> {
    Ok(match p.kind {
        PrincipalKind::Anonymous => Requester::Anonymous,
        PrincipalKind::System => Requester::System {
            client_id: p.client_id.clone().unwrap_or_default(),
            scope_granted: smart_scope_allows(
                &p.scopes,
                "system",
                scope_resource(resource),
                if action == Action::Read { 'r' } else { 'c' },
            ),
            is_custodian,
        },
        PrincipalKind::User => {
            // An application acting for a user needs a user-level scope on the resource.
            if p.session.is_none()
                && !smart_scope_allows(
                    &p.scopes,
                    "user",
                    scope_resource(resource),
                    if action == Action::Read { 'r' } else { 'c' },
                )
                && !smart_scope_allows(&p.scopes, "patient", scope_resource(resource), 'r')
            {
                return Ok(Requester::System {
                    client_id: p.client_id.clone().unwrap_or_default(),
                    scope_granted: false,
                    is_custodian: false,
                });
            }
            let patients = patient_ids(p);
            if p.has_role(PATIENT_ROLE) && !patients.is_empty() {
                Requester::Patient {
                    regional_ids: patients,
                }
            } else if let Some(national_id) = p
                .national_id
                .as_deref()
                .filter(|n| n.starts_with('8') || n.starts_with('0'))
            {
                let status = megalis_directory::access::practitioner_status(db, national_id)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "directory look-up for an access decision");
                        ApiError::unavailable("The directory is unavailable; try again.")
                    })?;
                Requester::Professional {
                    national_id: national_id.to_string(),
                    second_factor: p.second_factor,
                    // Unknown to the directory (the demo region's static practitioners) counts
                    // as registered: login already checked; a known, closed one does not.
                    active: status.is_none_or(|s| s.active),
                }
            } else if p.has_role(IDENTITY_ROLE) || p.is_admin() {
                Requester::IdentityStaff {
                    second_factor: p.second_factor,
                }
            } else {
                Requester::OtherUser
            }
        }
    })
}

/// The status a denial is answered with.
pub fn status_of(reason: Reason) -> StatusCode {
    match reason {
        Reason::NotAuthenticated => StatusCode::UNAUTHORIZED,
        _ => StatusCode::FORBIDDEN,
    }
}

/// The facts of one patient at this instant.
pub async fn facts(state: &AppState, regional_id: &str) -> Result<SharingFacts, ApiError> {
    state
        .sharing
        .facts(regional_id, megalis_auth::now_us())
        .await
        .map_err(sharing_error)
}

/// Maps the sharing crate's error once.
pub fn sharing_error(e: megalis_sharing::SharingError) -> ApiError {
    use megalis_sharing::SharingError as E;
    match e {
        E::Invalid(m) => ApiError::bad_request(m),
        E::Refused(r) => ApiError::new(status_of(r), r.text()),
        E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
        E::Database(d) if megalis_store::is_connection_error(&d) => {
            ApiError::unavailable("The database is unavailable; try again.")
        }
        other => {
            tracing::error!(error = %other, "sharing records");
            ApiError::internal()
        }
    }
}

/// One access to decide: what, for whom, and the audit action to record it under.
pub struct Ask<'a> {
    pub regional_id: &'a str,
    pub resource: Resource,
    pub action: Action,
    pub purpose: Purpose,
    /// The audit action (`document.read`, `patient.read`, `consent.update`…).
    pub audit_action: &'a str,
    /// The audit object type and id (`DocumentReference`, its id).
    pub object_type: &'a str,
    pub object_id: Option<&'a str>,
    /// Where the access comes from (`FHIR read`, `portal: patient page`…), for the audit detail.
    pub detail: &'a str,
    /// The requesting system is the custodian of the resource (its own deposit).
    pub is_custodian: bool,
}

/// Decides and audits one access; a denial becomes the error to return (with the reason's
/// text, which the portal and the API show to the person refused).
pub async fn decide(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    ask: Ask<'_>,
) -> Result<Decision, ApiError> {
    let decision = decide_quietly(state, audit, p, &ask).await?;
    if decision.allowed {
        Ok(decision)
    } else {
        Err(ApiError::new(
            status_of(decision.reason),
            decision.reason.text(),
        ))
    }
}

/// Like [`decide`], but a denial is returned as a decision (audited all the same), for lists
/// that leave out what the caller may not see.
pub async fn decide_quietly(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    ask: &Ask<'_>,
) -> Result<Decision, ApiError> {
    let requester = requester(state, p, &ask.resource, ask.action, ask.is_custodian).await?;
    decide_as(state, audit, p, &requester, ask).await
}

/// [`decide_quietly`] for a requester already known: a list decides each of its patients
/// without reading the caller's registration again.
pub async fn decide_as(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    requester: &Requester,
    ask: &Ask<'_>,
) -> Result<Decision, ApiError> {
    let facts = facts(state, ask.regional_id).await?;
    let decision = megalis_sharing::decide(&AccessRequest {
        requester,
        resource: &ask.resource,
        action: ask.action,
        purpose: ask.purpose,
        facts: &facts,
        now: megalis_auth::now_us(),
    });
    let outcome = if decision.allowed {
        Outcome::Success
    } else {
        Outcome::Denied
    };
    let purpose = match ask.purpose {
        Purpose::Care => "care",
        Purpose::Emergency => "emergency",
    };
    let mut record = audit
        .record(p, ask.audit_action, ask.object_type, outcome)
        .patient(ask.regional_id)
        .detail(&format!(
            "reason={} purpose={purpose}; {}",
            decision.reason.code(),
            ask.detail
        ));
    if let Some(id) = ask.object_id {
        record = record.object(id);
    }
    record.send(state).await?;
    state
        .metrics
        .access_decisions
        .with_label_values(&[
            if decision.allowed { "allow" } else { "deny" },
            decision.reason.code(),
        ])
        .inc();
    if decision.reason == Reason::Emergency {
        tracing::warn!(patient = ask.regional_id, who = %p.subject, action = ask.audit_action,
            "patient data read under an emergency access");
    }
    Ok(decision)
}

/// The refusals that do not depend on the patient (who asks, not whom about): checked before
/// a resource is looked up, so that a caller without any right learns nothing of which ids
/// exist. Such a refusal is audited (without a patient) and returned as the error.
pub async fn precheck(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    resource: &Resource,
    action: Action,
    audit_action: &str,
    object_type: &str,
) -> Result<(), ApiError> {
    let requester = requester(state, p, resource, action, false).await?;
    let Some(reason) = megalis_sharing::refusal_about_the_caller(
        &requester,
        resource,
        action,
        megalis_auth::now_us(),
    ) else {
        return Ok(());
    };
    audit
        .record(p, audit_action, object_type, Outcome::Denied)
        .detail(&format!("reason={}", reason.code()))
        .send(state)
        .await?;
    Err(ApiError::new(status_of(reason), reason.text()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use megalis_auth::SessionRef;
    use megalis_sharing::{CareLink, CareLinkSource, Confidentiality, DocumentFacts};
    use megalis_store::{Backend, with_pool};

    /// A practitioner closed in the directory after signing in keeps a valid session or token
    /// until it expires; the decision reads the registration at each request and refuses.
    #[tokio::test]
    async fn a_practitioner_closed_in_the_directory_is_refused_at_once() {
        let (_dir, db) = megalis_testkit::fresh_database(Backend::Sqlite).await;
        for (id, active) in [("810001234567", true), ("810009876543", false)] {
            let sql = format!(
                "INSERT INTO dir_practitioner (national_id, id_kind, identifier, \
                 practice_civility_code, practice_civility_label, civility_code, civility_label, \
                 family_name, given_name, family_fold, given_fold, profession_code, \
                 profession_label, category_code, category_label, content_hash, active, \
                 created_at_us, updated_at_us, closed_at_us, last_seen_import) VALUES \
                 ('{id}', '8', '{}', 'DR', 'Docteur', 'M', 'Monsieur', 'X', 'Y', 'X', 'Y', '10', \
                 'Médecin', 'C', 'Civil', 0, {active}, 0, 0, {}, 1)",
                &id[1..],
                if active { "NULL" } else { "1" }
            );
            with_pool!(&db, pool => megalis_store::sqlx::query(megalis_store::sqlx::AssertSqlSafe(sql))
                .execute(pool).await.map(|_| ()))
            .unwrap();
        }
        let facts = SharingFacts {
            regional_ids: vec!["BZH1".into()],
            care_links: ["810001234567", "810009876543"]
                .iter()
                .map(|p| CareLink {
                    practitioner: p.to_string(),
                    source: CareLinkSource::Encounter,
                    start: 0,
                    end: None,
                })
                .collect(),
            ..SharingFacts::default()
        };
        let resource = Resource::Document(DocumentFacts {
            id: "d".into(),
            author: None,
            confidentiality: Confidentiality::Normal,
        });
        let mut reasons = Vec::new();
        for national_id in ["810001234567", "810009876543"] {
            let p = Principal {
                kind: PrincipalKind::User,
                subject: "acct".into(),
                national_id: Some(national_id.into()),
                second_factor: true,
                session: Some(SessionRef {
                    id_hash: "h".into(),
                    csrf_token: "c".into(),
                }),
                ..Principal::anonymous()
            };
            let requester = requester_in(&db, &p, &resource, Action::Read, false)
                .await
                .unwrap();
            reasons.push(
                megalis_sharing::decide(&AccessRequest {
                    requester: &requester,
                    resource: &resource,
                    action: Action::Read,
                    purpose: Purpose::Care,
                    facts: &facts,
                    now: 1,
                })
                .reason,
            );
        }
        assert_eq!(reasons, vec![Reason::CareTeam, Reason::PractitionerClosed]);
    }
}
