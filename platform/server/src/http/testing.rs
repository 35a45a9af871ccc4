//! Routes that exist only in `--mode test`, for end-to-end tests that need to drive internal
//! services the foundation exposes no public route for yet (audit writes under load, slow
//! requests for shutdown draining). They are never mounted in production or demo mode.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::Path;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

use super::routes::Route;
use futures::TryStreamExt;
use http::Extensions;
use http::StatusCode;
use megalis_audit::{Actor, AuditRecord, Outcome};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, RequestId, client_address};

pub fn routes() -> Vec<Route> {
    vec![
        Route::test_only("/_test/audit", &["POST"], post(append_audit)),
        Route::test_only("/_test/slow", &["GET"], get(slow)),
        Route::test_only("/_test/blobs", &["PUT"], put(put_blob)),
        Route::test_only("/_test/blobs/{sha256}", &["GET"], get(get_blob)),
        Route::test_only("/_test/routes", &["GET"], get(route_table)),
    ]
}

/// The route table (paths, methods, classes, probes) for the route walk.
async fn route_table() -> axum::Json<Vec<super::routes::RouteInfo>> {
    axum::Json(
        super::routes::table(true)
            .iter()
            .map(super::routes::RouteInfo::from)
            .collect(),
    )
}

#[derive(Deserialize)]
struct AuditParams {
    /// Comma-separated regional patient ids: one record per patient.
    patients: Option<String>,
}

/// Appends test records and answers with their sequence numbers once they are durable.
async fn append_audit(
    State(state): State<AppState>,
    Query(params): Query<AuditParams>,
    extensions: Extensions,
) -> Result<Json<Value>, ApiError> {
    let mut record = AuditRecord::new(
        Actor::new("e2e-test"),
        "test.event",
        "test",
        Outcome::Success,
    );
    if let Some(address) = client_address(&extensions) {
        record = record.with_source_address(address);
    }
    if let Some(RequestId(id)) = extensions.get::<RequestId>() {
        record = record.with_request_id(id.to_string());
    }
    let seqs = match params.patients.as_deref() {
        Some(list) => state
            .audit
            .append_for_patients(record, list.split(',').map(str::trim))
            .await
            .map_err(crate::audit_error)?,
        None => vec![
            state
                .audit
                .append(record)
                .await
                .map_err(crate::audit_error)?,
        ],
    };
    Ok(Json(json!({ "seqs": seqs })))
}

#[derive(Deserialize)]
struct SlowParams {
    ms: u64,
}

async fn slow(Query(params): Query<SlowParams>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(params.ms.min(120_000))).await;
    "done\n"
}

fn blob_error(e: megalis_blobs::BlobError) -> ApiError {
    use megalis_blobs::BlobError;
    match e {
        BlobError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
        BlobError::InvalidDigest(_) => ApiError::bad_request(e.to_string()),
        BlobError::TooLarge { .. } => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()),
        // The client's upload broke off: its fault, not ours.
        BlobError::Source(_) => ApiError::bad_request(e.to_string()),
        _ => {
            tracing::error!(error = %e, "blob store failure");
            ApiError::internal()
        }
    }
}

/// Streams the request body into the blob store (never buffered whole).
async fn put_blob(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let stream = body
        .into_data_stream()
        .map_err(|e| std::io::Error::other(e.to_string()));
    let blob = state
        .blobs
        .put(Box::pin(stream), Some(state.settings.http_body_limit))
        .await
        .map_err(blob_error)?;
    Ok(Json(
        json!({ "sha256": blob.sha256.to_hex(), "size": blob.size }),
    ))
}

/// Streams a blob out; corruption found on the way aborts the response.
async fn get_blob(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
) -> Result<Response, ApiError> {
    let digest: megalis_blobs::Sha256Digest = sha256.parse().map_err(blob_error)?;
    let stream = state.blobs.get(&digest).await.map_err(blob_error)?;
    Ok(Body::from_stream(stream).into_response())
}
