//! Routes that exist only in `--mode test`, for end-to-end tests that need to drive internal
//! services the foundation exposes no public route for yet (audit writes under load, slow
//! requests for shutdown draining). They are never mounted in production or demo mode.

use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::Extensions;
use megalis_audit::{Actor, AuditRecord, Outcome};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState, RequestId, client_address};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_test/audit", post(append_audit))
        .route("/_test/slow", get(slow))
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
