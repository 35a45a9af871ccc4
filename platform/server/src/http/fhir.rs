//! The FHIR R4 REST endpoint at `/fhir`: `metadata` and the resources each module serves.
//!
//! Errors are `ApiError`s, which the error mapper renders as `OperationOutcome` under `/fhir`.
//!
//! Authentication: none yet. The directory is public data, but callers are to be authenticated:
//! the auth middleware wraps [`routes`] where it is merged in `router`, and these handlers stay
//! principal-free (they read nothing that depends on who asks).

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use megalis_directory::DirectoryError;
use megalis_directory::fhir::{self, ResourceType};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// Every module serving FHIR resources contributes its CapabilityStatement `rest.resource`
/// entries here (identity adds Patient the same way).
const MODULES: &[fn() -> Vec<Value>] = &[
    fhir::capability_resources,
    megalis_identity_index::fhir::capability_resources,
    megalis_sharing::fhir::capability_resources,
    super::documents_fhir::capability_resources,
];

pub fn routes() -> Vec<super::routes::Route> {
    use super::routes::Route;
    // The directory's resources are public data (the national directory is open data).
    vec![
        Route::open("/fhir/metadata", &["GET"], get(metadata)),
        Route::open("/fhir/{resource_type}", &["GET"], get(search)),
        Route::open("/fhir/{resource_type}/{id}", &["GET"], get(read)),
    ]
}

fn fhir_json(value: &Value) -> Response {
    fhir_response(StatusCode::OK, value)
}

/// A FHIR resource response, for every FHIR module of the server.
pub(crate) fn fhir_response(status: StatusCode, value: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/fhir+json")],
        value.to_string(),
    )
        .into_response()
}

/// The FHIR base URL under the public URL, for links and `fullUrl`s.
pub(crate) fn base_url(state: &AppState) -> String {
    format!("{}/fhir", state.settings.public_url.trim_end_matches('/'))
}

fn resource_type(name: &str) -> Result<ResourceType, ApiError> {
    ResourceType::parse(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("resource type {name:?} is not served here (see /fhir/metadata)"),
        )
    })
}

fn directory_error(e: DirectoryError) -> ApiError {
    match e {
        DirectoryError::InvalidSearch(m) => ApiError::bad_request(m),
        e if e.is_unavailable() => ApiError::unavailable("The directory is unavailable."),
        e => {
            tracing::error!(error = %e, "directory query failed");
            ApiError::internal()
        }
    }
}

async fn metadata(State(state): State<AppState>) -> Response {
    let resources: Vec<Value> = MODULES.iter().flat_map(|m| m()).collect();
    let base = base_url(&state);
    fhir_json(&json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "Megalis",
        "kind": "instance",
        "software": {"name": "Megalis", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Megalis — plateforme régionale de e-santé de Bretagne", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{"mode": "server", "resource": resources}],
    }))
}

async fn read(
    State(state): State<AppState>,
    Path((resource_type_name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rt = resource_type(&resource_type_name)?;
    match fhir::read(&state.db, rt, &id)
        .await
        .map_err(directory_error)?
    {
        Some(resource) => Ok(fhir_json(&resource)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("{}/{id} is not known", rt.name()),
        )),
    }
}

async fn search(
    State(state): State<AppState>,
    Path(resource_type_name): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let rt = resource_type(&resource_type_name)?;
    let bundle = fhir::search(&state.db, rt, &params, &base_url(&state))
        .await
        .map_err(directory_error)?;
    Ok(fhir_json(&bundle))
}
