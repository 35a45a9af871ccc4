//! The platform behind the plugin host's capabilities: the access decision, the identity index
//! and the directory, as the host's traits (`megalis_plugin_host::{access, services}`).
//!
//! The decision is the core's own: the same requester (second factor, registration in the
//! directory, token scopes), the same patient facts and the same `megalis_sharing::decide` as
//! the FHIR and portal routes, so a plugin reaches no more than its caller could through the
//! core. The host writes the audit record of each answer.

use megalis_directory::access::active_practitioner;
use megalis_identity_index::PatientIndex;
use megalis_identity_index::identity::SourceId;
use megalis_plugin_host::access::BoxFuture;
use megalis_plugin_host::services::{
    DirectoryService, IdentityService, PatientRecord, PractitionerRecord, ServiceUnavailable,
};
use megalis_plugin_host::{
    AccessAction, AccessDecider, AccessResource, Decision, Principal, PrincipalKind,
};
use megalis_sharing::{AccessRequest, Action, Purpose, Requester, Resource, SharingStore};
use megalis_store::Database;

use crate::metrics::Metrics;

pub struct PlatformAccess {
    db: Database,
    sharing: SharingStore,
    /// `access_decisions_total`, shared with the core's routes.
    decisions: prometheus::IntCounterVec,
}

impl PlatformAccess {
    pub fn new(db: Database, sharing: SharingStore, metrics: &Metrics) -> PlatformAccess {
        PlatformAccess {
            db,
            sharing,
            decisions: metrics.access_decisions.clone(),
        }
    }

    async fn requester(
        &self,
        principal: &Principal,
        resource: &Resource,
        action: Action,
    ) -> Result<Requester, Decision> {
        if principal.kind == PrincipalKind::Anonymous {
            return Ok(Requester::Anonymous);
        }
        // The platform authenticator attaches the core's principal; a principal without it
        // was not established by this platform and gets nothing.
        let Some(core) = principal
            .origin
            .as_ref()
            .and_then(|o| o.get::<megalis_auth::Principal>())
        else {
            return Err(Decision::deny(
                "unknown-principal",
                "the caller was not authenticated by this platform",
            ));
        };
        crate::http::access::requester_in(&self.db, core, resource, action, false)
            .await
            .map_err(|_| unavailable_decision())
    }
}

fn core_resource(resource: AccessResource) -> Resource {
    match resource {
        AccessResource::Identity => Resource::Identity,
        AccessResource::Record => Resource::ClinicalRecord,
    }
}

fn core_action(action: AccessAction) -> Action {
    match action {
        AccessAction::Read => Action::Read,
        AccessAction::Write | AccessAction::Share => Action::Write,
    }
}

fn unavailable_decision() -> Decision {
    Decision::deny(
        "unavailable",
        "Le service de décision d'accès est indisponible ; réessayez. / The access decision is \
         unavailable; try again.",
    )
}

impl AccessDecider for PlatformAccess {
    fn precheck<'a>(
        &'a self,
        principal: &'a Principal,
        resource: AccessResource,
        action: AccessAction,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let (resource, action) = (core_resource(resource), core_action(action));
            let requester = match self.requester(principal, &resource, action).await {
                Ok(r) => r,
                Err(d) => return d,
            };
            match megalis_sharing::refusal_about_the_caller(
                &requester,
                &resource,
                action,
                megalis_auth::now_us(),
            ) {
                None => Decision::allow("precheck", "no refusal about the caller"),
                Some(reason) => Decision::deny(reason.code(), reason.text()),
            }
        })
    }

    fn decide<'a>(
        &'a self,
        principal: &'a Principal,
        patient: &'a str,
        resource: AccessResource,
        action: AccessAction,
        purpose: &'a str,
    ) -> BoxFuture<'a, Decision> {
        Box::pin(async move {
            let (resource, action) = (core_resource(resource), core_action(action));
            // Only a declared emergency access counts as one; any other purpose is care.
            let purpose = if purpose == "emergency" {
                Purpose::Emergency
            } else {
                Purpose::Care
            };
            let requester = match self.requester(principal, &resource, action).await {
                Ok(r) => r,
                Err(d) => return d,
            };
            let facts = match self.sharing.facts(patient, megalis_auth::now_us()).await {
                Ok(f) => f,
                Err(e) => {
                    tracing::error!(error = %e, "patient facts for a plugin's access decision");
                    return unavailable_decision();
                }
            };
            let decision = megalis_sharing::decide(&AccessRequest {
                requester: &requester,
                resource: &resource,
                action,
                purpose,
                facts: &facts,
                now: megalis_auth::now_us(),
            });
            self.decisions
                .with_label_values(&[
                    if decision.allowed { "allow" } else { "deny" },
                    decision.reason.code(),
                ])
                .inc();
            if decision.allowed {
                Decision::allow(decision.reason.code(), decision.reason.text())
            } else {
                Decision::deny(decision.reason.code(), decision.reason.text())
            }
        })
    }
}

/// The identity index and the directory, for the `identity` and `directory` capabilities.
pub struct PlatformRecords {
    db: Database,
    index: PatientIndex,
}

impl PlatformRecords {
    pub fn new(db: Database, index: PatientIndex) -> PlatformRecords {
        PlatformRecords { db, index }
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> ServiceUnavailable {
    tracing::error!(error = %e, "{what} for a plugin");
    ServiceUnavailable
}

impl IdentityService for PlatformRecords {
    fn patient<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PatientRecord>, ServiceUnavailable>> {
        Box::pin(async move {
            let Some(p) = self
                .index
                .patient(id)
                .await
                .map_err(|e| failed("identity look-up", e))?
            else {
                return Ok(None);
            };
            let traits = &p.golden.demographics.traits;
            Ok(Some(PatientRecord {
                id: p.regional_id.clone(),
                family: traits.birth_name.clone(),
                given: traits.birth_first_names.clone(),
                birth_date: Some(traits.birth_date.to_string()),
                gender: megalis_identity_index::search::fhir_gender(traits.sex).to_string(),
                ins: p.golden.shareable_ins().map(|i| i.as_str().to_string()),
                identifiers: p
                    .sources
                    .iter()
                    .map(|s| (s.id.authority.clone(), s.id.local_id.clone()))
                    .collect(),
                merged_into: p.merged_into.clone(),
            }))
        })
    }

    fn resolve<'a>(
        &'a self,
        system: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ServiceUnavailable>> {
        Box::pin(async move {
            self.index
                .patient_of(&SourceId {
                    authority: system.to_string(),
                    local_id: value.to_string(),
                })
                .await
                .map_err(|e| failed("identifier resolution", e))
        })
    }
}

impl DirectoryService for PlatformRecords {
    fn practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerRecord>, ServiceUnavailable>> {
        Box::pin(async move {
            let found = active_practitioner(&self.db, national_id)
                .await
                .map_err(|e| failed("directory look-up", e))?;
            Ok(found.map(|p| {
                let mut organisations: Vec<String> = Vec::new();
                for name in p.roles.iter().filter_map(|r| r.organisation_name.clone()) {
                    if !organisations.contains(&name) {
                        organisations.push(name);
                    }
                }
                PractitionerRecord {
                    national_id: p.national_id,
                    family: p.family_name,
                    given: p.given_name,
                    profession: p.profession.code,
                    profession_label: p.profession.label,
                    specialties: p.specialties.into_iter().map(|s| s.label).collect(),
                    organisations,
                }
            }))
        })
    }
}
