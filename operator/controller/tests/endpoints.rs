//! The operator's own HTTP endpoint: Prometheus metrics and probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use http::{Request, StatusCode};
use megalis_operator::Metrics;
use megalis_operator::metrics::router;
use tower::ServiceExt;

async fn get(app: axum::Router, path: &str) -> (StatusCode, String) {
    let response = app
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn metrics_and_probes() {
    let metrics = Metrics::new().unwrap();
    metrics.reconciles.with_label_values(&["ok"]).inc();
    metrics.failures.with_label_values(&["ApplyFailed"]).inc();
    metrics
        .duration
        .with_label_values(&["RegionalPlatform"])
        .observe(0.012);
    let leading = Arc::new(AtomicBool::new(false));
    let app = router(metrics, leading.clone());

    let (status, body) = get(app.clone(), "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "megalis_operator_reconciles_total{outcome=\"ok\"} 1",
        "megalis_operator_reconcile_failures_total{reason=\"ApplyFailed\"} 1",
        "megalis_operator_reconcile_duration_seconds_bucket{kind=\"RegionalPlatform\",le=\"0.025\"} 1",
    ] {
        assert!(body.contains(line), "{line} missing from:\n{body}");
    }
    assert_eq!(
        get(app.clone(), "/healthz").await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(
        get(app.clone(), "/readyz").await,
        (StatusCode::OK, "standby".into())
    );
    leading.store(true, Ordering::Relaxed);
    assert_eq!(
        get(app, "/readyz").await,
        (StatusCode::OK, "leading".into())
    );
}
