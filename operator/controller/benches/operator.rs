//! Operator benchmarks, figures recorded in docs/benchmarks.md:
//! 1. the pure build step for the Bretagne example (4 plugins, 20 flows), in µs;
//! 2. one reconcile of that platform against `MockApiServer`, in ms (steady state: every
//!    object already exists, as on a periodic resync);
//! 3. resident memory of the real `megalis-operator run` binary at idle, watching an
//!    HTTP stand-in API server that serves empty lists and idle watches.
//!
//! Run with `cargo bench -p megalis-operator` (release profile).

#[path = "../tests/mock_api/mod.rs"]
mod mock_api;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use megalis_operator::Metrics;
use megalis_operator::reconcile::{Context, reconcile};
use megalis_operator_api::{Plugin, RegionalPlatform, validate_platform};
use megalis_operator_build::build;
use mock_api::{MockApiServer, collection};
use serde::Deserialize;
use serde_json::{Value, json};

fn examples(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crds/examples")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn summary(mut samples: Vec<Duration>, unit: &str) -> String {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let scale = |d: Duration| match unit {
        "µs" => d.as_secs_f64() * 1e6,
        _ => d.as_secs_f64() * 1e3,
    };
    format!(
        "median {:.1} {unit}, p90 {:.1} {unit}, min {:.1} {unit} ({} runs)",
        scale(pick(0.5)),
        scale(pick(0.9)),
        scale(samples[0]),
        samples.len()
    )
}

fn bench_build() {
    let platform: RegionalPlatform =
        serde_json::from_value(examples("platform-bretagne.yaml").remove(0)).unwrap();
    let plugins: Vec<Plugin> = examples("plugins-bretagne.yaml")
        .into_iter()
        .map(|p| serde_json::from_value(p).unwrap())
        .collect();
    let state = build(&platform, &plugins).unwrap();
    assert_eq!(
        (state.plugins.loaded.len(), state.allowed_flows.len()),
        (4, 20)
    );
    for _ in 0..200 {
        std::hint::black_box(build(&platform, &plugins).unwrap());
    }
    let samples = (0..5000)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(build(std::hint::black_box(&platform), &plugins).unwrap());
            started.elapsed()
        })
        .collect();
    println!(
        "build step (4 plugins, 20 flows, {} objects): {}",
        state.objects.len(),
        summary(samples, "µs")
    );

    // The validation that precedes the build in every reconcile (client-side CEL + CIDRs).
    let samples = (0..200)
        .map(|_| {
            let started = Instant::now();
            validate_platform(std::hint::black_box(&platform)).unwrap();
            started.elapsed()
        })
        .collect();
    println!(
        "validate step (CEL rules, client-side): {}",
        summary(samples, "ms")
    );
}

async fn bench_reconcile() {
    let (client, server) = MockApiServer::start();
    let mut platform = examples("platform-bretagne.yaml").remove(0);
    platform["metadata"]["uid"] = json!("0b6f6f5e-8c1d-4b0e-9a55-3f1d2c4b5a69");
    platform["metadata"]["generation"] = json!(1);
    let platforms = collection("megalis.bzh/v1alpha1", "megalis", "regionalplatforms");
    server.insert(&platforms, platform);
    for plugin in examples("plugins-bretagne.yaml") {
        server.insert(
            &collection("megalis.bzh/v1alpha1", "megalis", "plugins"),
            plugin,
        );
    }
    let context = Arc::new(Context::new(client, Metrics::new().unwrap()));
    let current = || {
        Arc::new(
            serde_json::from_value::<RegionalPlatform>(server.get(&platforms, "bretagne").unwrap())
                .unwrap(),
        )
    };
    reconcile(current(), context.clone()).await.unwrap();
    let mut samples = Vec::new();
    for _ in 0..200 {
        let platform = current();
        let started = Instant::now();
        reconcile(platform, context.clone()).await.unwrap();
        samples.push(started.elapsed());
    }
    let calls = server.calls().len() / 201;
    println!(
        "reconcile against the mock API (~{calls} API calls each): {}",
        summary(samples, "ms")
    );
}

/// An HTTP stand-in for the API server: every list is empty, every watch stays open and idle.
async fn idle_api_server() -> std::net::SocketAddr {
    use axum::body::Body;
    use axum::extract::RawQuery;
    use axum::response::Response;
    let app = axum::Router::new().fallback(|RawQuery(query): RawQuery| async move {
        let watching = query.unwrap_or_default().contains("watch=true");
        let body = if watching {
            Body::from_stream(futures::stream::pending::<Result<Vec<u8>, std::io::Error>>())
        } else {
            Body::from(r#"{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#)
        };
        Response::builder().header("content-type", "application/json").body(body).unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    address
}

async fn bench_idle_memory() {
    let address = idle_api_server().await;
    let dir = std::env::temp_dir().join(format!("megalis-operator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: bench\n  cluster:\n    server: http://{address}\n\
             contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\n    namespace: megalis\n\
             current-context: bench\nusers:\n- name: bench\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_megalis-operator"))
        .args(["run", "--metrics-listen", "127.0.0.1:0"])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or("?")
            .split_whitespace()
            .nth(1)
            .unwrap_or("?")
            .to_owned()
    };
    println!(
        "operator at idle (6 watches open, 10 s): VmRSS {} KiB, VmHWM {} KiB",
        field("VmRSS:"),
        field("VmHWM:")
    );
    child.kill().await.unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` passes --bench; the figures only matter in release builds.
    bench_build();
    bench_reconcile().await;
    bench_idle_memory().await;
}
