//! FHIR R4 `Consent`: the patient's directives (objection, consent to a professional, block,
//! mask, objection to emergency access), read-only. Who may read them is the access decision's
//! business (`Resource::Consent`): the patient, and professionals of the care team.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use http::StatusCode;
use megalis_auth::Principal;
use megalis_sharing::{Action, Purpose, Resource};
use serde_json::Value;

use super::access::{self, Ask};
use super::auth_glue::Audit;
use super::routes::{Probe, ProbeAuth::Bearer, Route};
use super::{ApiError, AppState};

pub fn routes() -> Vec<Route> {
    vec![
        Route::patient(
            "/fhir/Consent",
            &["GET"],
            &[Probe::get("/fhir/Consent?patient={patient}", Bearer)],
            get(search),
        ),
        Route::patient(
            "/fhir/Consent/{id}",
            &["GET"],
            &[Probe::get("/fhir/Consent/1", Bearer)],
            get(read),
        ),
    ]
}

fn fhir_json(value: &Value) -> Response {
    super::fhir::fhir_response(StatusCode::OK, value)
}

use super::fhir::base_url;

fn bad(expression: &str, message: &str) -> ApiError {
    let mut e = ApiError::bad_request(format!("{expression}: {message}"));
    e.expression = Some(expression.to_string());
    e
}

/// The regional id of a `patient` parameter: `Patient/{id}` or `{id}`; a merged patient is
/// followed to the survivor (its directives are the survivor's lineage).
async fn patient_param(state: &AppState, value: &str) -> Result<String, ApiError> {
    let id = value.strip_prefix("Patient/").unwrap_or(value);
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(bad("patient", "expected Patient/{regional id}"));
    }
    let patient = state
        .identity
        .patient(id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "patient index");
            ApiError::unavailable("The patient index is unavailable; try again.")
        })?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("Patient/{id} is not known"))
        })?;
    Ok(patient.merged_into.unwrap_or(patient.regional_id))
}

async fn search(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut patient = None;
    for (k, v) in &params {
        match k.as_str() {
            "patient" | "patient:Patient" => patient = Some(v.clone()),
            "_count" | "_format" => {}
            other => {
                return Err(bad(other, "unknown search parameter (supported: patient)"));
            }
        }
    }
    access::precheck(
        &state,
        &audit,
        &principal,
        &Resource::Consent,
        Action::Read,
        "consent.read",
        "Consent",
    )
    .await?;
    let Some(patient) = patient else {
        return Err(bad("patient", "a Consent search names the patient"));
    };
    let regional_id = patient_param(&state, &patient).await?;
    access::decide(
        &state,
        &audit,
        &principal,
        Ask {
            regional_id: &regional_id,
            resource: Resource::Consent,
            action: Action::Read,
            purpose: Purpose::Care,
            audit_action: "consent.read",
            object_type: "Consent",
            object_id: None,
            detail: "FHIR Consent search",
            is_custodian: false,
        },
    )
    .await?;
    let directives = state
        .sharing
        .directives(&regional_id, true)
        .await
        .map_err(access::sharing_error)?;
    Ok(fhir_json(&megalis_sharing::fhir::consent_bundle(
        &directives,
        &base_url(&state),
        megalis_auth::now_us(),
    )))
}

async fn read(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("Consent/{id} is not known"));
    // A caller without any right to patient data is refused (and audited) before learning
    // whether the id exists; the others get the decision on the directive's patient.
    access::precheck(
        &state,
        &audit,
        &principal,
        &Resource::Consent,
        Action::Read,
        "consent.read",
        "Consent",
    )
    .await?;
    let number: i64 = id.parse().map_err(|_| not_found())?;
    let directive = state
        .sharing
        .directive(number)
        .await
        .map_err(access::sharing_error)?
        .ok_or_else(not_found)?;
    access::decide(
        &state,
        &audit,
        &principal,
        Ask {
            regional_id: &directive.regional_id,
            resource: Resource::Consent,
            action: Action::Read,
            purpose: Purpose::Care,
            audit_action: "consent.read",
            object_type: "Consent",
            object_id: Some(&id),
            detail: "FHIR Consent read",
            is_custodian: false,
        },
    )
    .await?;
    Ok(fhir_json(&megalis_sharing::fhir::consent(
        &directive,
        megalis_auth::now_us(),
    )))
}
