//! Benchmark helper (docs/benchmarks.md, "Plugin host"): instantiation cost per request and
//! resident memory with N instances alive at once.
//!
//! Usage: instances HELLO.wasm PROBE.wasm [N=100]
//! - runs 5,000 sequential requests to HELLO and reports the mean instantiation time (from the
//!   host's own histogram) and the mean request time;
//! - then holds N concurrent requests of PROBE (`/sleep/900`, within its 1 s deadline) and reports the process RSS
//!   before and while they are all alive. The probe's own manifest caps it at 8 concurrent
//!   requests (a cap the operator can lower, never raise), so the module is installed under
//!   several ids (`probe-0`, `probe-1`, …), 8 requests each: the same code, N live instances.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use megalis_plugin_host::access::{AllowAllLocal, LocalDeveloper, LogAudit};
use megalis_plugin_host::kv::MemoryKv;
use megalis_plugin_host::services::{MemoryDirectory, MemoryEvents};
use megalis_plugin_host::{
    Capability, EngineSettings, LoadedPlugin, PluginEngine, PluginEntry, PluginHost, PluginMetrics,
    RequestMeta, Services,
};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn load(engine: &PluginEngine, id: &str, path: &str, grants: &[Capability]) -> LoadedPlugin {
    let bytes = std::fs::read(path).expect("module");
    let entry = PluginEntry {
        id: id.into(),
        sha256: megalis_plugin_host::digest(&bytes),
        grants: grants.iter().copied().collect(),
        limits: megalis_plugin_host::ManifestLimits {
            timeout_ms: Some(10_000),
            max_concurrency: Some(1000),
            memory_mib: None,
        },
        config: Default::default(),
    };
    LoadedPlugin::load(engine, &entry, bytes)
        .await
        .expect("load")
}

fn get(path: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(path)
        .header("host", "bench")
        .body(Full::new(Bytes::new()))
        .unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (hello, probe) = (&args[1], &args[2]);
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100);
    let engine = PluginEngine::new(EngineSettings::default()).expect("engine");
    println!("allocator: {:?}", engine.allocator());
    let host = Arc::new(PluginHost::new(
        engine.clone(),
        Services {
            kv: Arc::new(MemoryKv::default()),
            access: Arc::new(AllowAllLocal),
            audit: Arc::new(LogAudit),
            auth: Arc::new(LocalDeveloper),
            identity: Arc::new(MemoryDirectory::default()),
            directory: Arc::new(MemoryDirectory::default()),
            events: Arc::new(MemoryEvents::default()),
            blobs: None,
        },
        PluginMetrics::new(),
        Default::default(),
    ));
    host.install(load(&engine, "hello", hello, &[]).await);
    let grants = [Capability::Context, Capability::Store, Capability::Logging];
    const PROBE_CAP: usize = 8;
    let ids: Vec<String> = (0..n.div_ceil(PROBE_CAP))
        .map(|i| format!("probe-{i}"))
        .collect();
    for id in &ids {
        host.install(load(&engine, id, probe, &grants).await);
    }

    let requests = 5_000;
    let started = Instant::now();
    for _ in 0..requests {
        let r = host
            .invoke("hello", get("/"), RequestMeta::default())
            .await
            .unwrap();
        r.into_body().collect().await.unwrap();
    }
    let total = started.elapsed();
    let h = host.metrics().instantiation.with_label_values(&["hello"]);
    println!(
        "instantiation: mean {:.1} µs over {} requests; whole request (sequential, in process): mean {:.1} µs",
        h.get_sample_sum() / h.get_sample_count() as f64 * 1e6,
        h.get_sample_count(),
        total.as_secs_f64() / requests as f64 * 1e6
    );

    let before = rss_kib();
    let mut tasks = Vec::new();
    for k in 0..n {
        let host = host.clone();
        let id = ids[k / PROBE_CAP].clone();
        tasks.push(tokio::spawn(async move {
            let r = host
                .invoke(&id, get("/sleep/900"), RequestMeta::default())
                .await
                .unwrap();
            r.into_body().collect().await.unwrap();
        }));
    }
    let in_flight = || -> i64 {
        ids.iter()
            .map(|id| host.metrics().in_flight.with_label_values(&[id]).get())
            .sum()
    };
    while in_flight() < n as i64 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let during = rss_kib();
    println!(
        "RSS: {} KiB before, {} KiB with {n} probe instances alive (+{} KiB, {:.0} KiB per instance)",
        before,
        during,
        during.saturating_sub(before),
        during.saturating_sub(before) as f64 / n as f64
    );
    for t in tasks {
        t.await.unwrap();
    }
}
