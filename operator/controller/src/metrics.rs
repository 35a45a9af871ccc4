//! Operator metrics and the small HTTP endpoint serving them with the probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::Error;

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
}

impl Metrics {
    pub fn new() -> Result<Self, Error> {
        let registry = Registry::new_custom(Some("megalis_operator".into()), None)?;
        let reconciles = IntCounterVec::new(
            Opts::new("reconciles_total", "Reconciliations by outcome"),
            &["outcome"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "reconcile_failures_total",
                "Failed reconciliations by reason",
            ),
            &["reason"],
        )?;
        // Buckets from 5 ms to 10 s: a reconcile is a few dozen API calls.
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "reconcile_duration_seconds",
                "Duration of one reconciliation",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["kind"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            failures,
            duration,
        })
    }

    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

#[derive(Clone)]
struct Probes {
    metrics: Metrics,
    /// Whether this replica holds the lease. Standbys stay ready (a rollout must not wait for
    /// an election); the body tells which is which.
    leading: Arc<AtomicBool>,
}

pub fn router(metrics: Metrics, leading: Arc<AtomicBool>) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(Probes { metrics, leading })
}

async fn serve_metrics(State(probes): State<Probes>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        probes.metrics.encode(),
    )
}

async fn ready(State(probes): State<Probes>) -> impl IntoResponse {
    let role = if probes.leading.load(Ordering::Relaxed) {
        "leading"
    } else {
        "standby"
    };
    (StatusCode::OK, role)
}

pub async fn serve(address: SocketAddr, app: Router) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(Error::Serve)?;
    axum::serve(listener, app).await.map_err(Error::Serve)
}
