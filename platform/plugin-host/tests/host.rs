//! The plugin host against real components built from `plugins/` (hello, probe): routing and
//! authentication kinds, what reaches a plugin, limits, deny-by-default linking, isolation,
//! audit of patient data, hot swap.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use megalis_plugin_host::access::{
    AccessDecider, AllowAllLocal, AuditUnavailable, BoxFuture, DenyAll, LogAudit, PublicOnly,
};
use megalis_plugin_host::kv::MemoryKv;
use megalis_plugin_host::services::{MemoryDirectory, MemoryEvents};
use megalis_plugin_host::{
    AuditSink, Capability, EngineSettings, PluginEngine, PluginEntry, PluginError, PluginHost,
    PluginMetrics, PluginsConfig, RequestMeta, Services,
};
use megalis_testkit::test_plugin;
use serde_json::Value;

struct Harness {
    host: Arc<PluginHost>,
    dir: tempfile::TempDir,
}

fn services() -> Services {
    Services {
        kv: Arc::new(MemoryKv::default()),
        access: Arc::new(DenyAll),
        audit: Arc::new(LogAudit),
        auth: Arc::new(PublicOnly),
        identity: Arc::new(MemoryDirectory::default()),
        directory: Arc::new(MemoryDirectory::default()),
        events: Arc::new(MemoryEvents::default()),
        blobs: None,
    }
}

fn harness_with(settings: EngineSettings, services: Services) -> Harness {
    let engine = PluginEngine::new(settings).expect("engine");
    let dir = tempfile::tempdir().unwrap();
    let host = PluginHost::new(
        engine,
        services,
        PluginMetrics::new(),
        dir.path().to_path_buf(),
    );
    Harness {
        host: Arc::new(host),
        dir,
    }
}

/// Settings for tests: wasmtime's compile cache shared by the test processes, so each module
/// is compiled once per build rather than once per test.
fn settings() -> EngineSettings {
    EngineSettings {
        cache_dir: Some(megalis_testkit::test_plugins_dir().join("../../wasmtime-cache")),
        ..EngineSettings::default()
    }
}

fn harness() -> Harness {
    harness_with(settings(), services())
}

impl Harness {
    /// Puts a module in the plugins directory under its digest; returns the digest.
    fn add_module(&self, name: &str) -> String {
        let bytes = test_plugin(name);
        let digest = megalis_plugin_host::digest(&bytes);
        std::fs::write(self.dir.path().join(format!("{digest}.wasm")), bytes).unwrap();
        digest
    }

    fn entry(&self, id: &str, module: &str, grants: &[Capability]) -> PluginEntry {
        PluginEntry {
            id: id.into(),
            sha256: self.add_module(module),
            grants: grants.iter().copied().collect(),
            limits: Default::default(),
            config: [("greeting".to_string(), "Demat".to_string())].into(),
        }
    }

    async fn apply(&self, entries: Vec<PluginEntry>) -> Vec<PluginError> {
        self.host.apply(&PluginsConfig { plugins: entries }).await
    }

    async fn call(
        &self,
        plugin: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, Vec<(String, String)>, String), PluginError> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "megalis.test");
        for (n, v) in headers {
            builder = builder.header(*n, *v);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        let meta = RequestMeta {
            request_id: "req-42".into(),
            patient: None,
            source_address: Some("192.0.2.7".into()),
        };
        let response = self.host.invoke(plugin, request, meta).await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Ok((status, headers, String::from_utf8_lossy(&body).into_owned()))
    }

    async fn get(&self, plugin: &str, path: &str) -> Result<(u16, String), PluginError> {
        self.call(plugin, "GET", path, &[], "")
            .await
            .map(|(s, _, b)| (s, b))
    }
}

const PROBE_GRANTS: &[Capability] = &[Capability::Context, Capability::Store, Capability::Logging];

#[tokio::test]
async fn a_plain_wasi_http_component_is_a_plugin() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("hello", "hello", &[])])
            .await
            .is_empty()
    );
    let (status, body) = h.get("hello", "/anything").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, "Hello from a Megalis plugin\n")
    );
}

#[tokio::test]
async fn the_plugin_sees_no_credentials_and_a_relative_path() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
            .await
            .is_empty()
    );
    let (status, _, body) = h
        .call(
            "probe",
            "POST",
            "/headers?x=1",
            &[
                ("cookie", "megalis_session=secret"),
                ("authorization", "Bearer secret"),
                ("proxy-authorization", "Basic c2VjcmV0"),
                ("x-custom", "kept"),
            ],
            "payload",
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let echo: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(names.contains(&"x-custom"), "{names:?}");
    for stripped in ["cookie", "authorization", "proxy-authorization"] {
        assert!(!names.contains(&stripped), "{stripped} reached the plugin");
    }
    assert!(!body.contains("secret"));
    assert_eq!(echo["path"], "/headers");
    assert_eq!(echo["query"], "x=1");
    assert_eq!(echo["body"], "payload");
}

#[tokio::test]
async fn context_tells_who_calls_and_the_operator_configuration() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
            .await
            .is_empty()
    );
    let (status, body) = h.get("probe", "/whoami").await.unwrap();
    assert_eq!(status, 200);
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["kind"], "anonymous");
    assert_eq!(me["plugin"], "probe");
    assert_eq!(me["request_id"], "req-42");
    assert_eq!(me["greeting"], "Demat");
}

#[tokio::test]
async fn session_and_bearer_routes_need_authentication() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
            .await
            .is_empty()
    );
    for path in ["/private/hello", "/api/hello"] {
        let err = h.get("probe", path).await.unwrap_err();
        assert!(matches!(err, PluginError::Unauthenticated), "{path}: {err}");
        assert_eq!(err.status(), 401);
    }
    assert_eq!(h.get("probe", "/hello").await.unwrap().0, 200);
}

#[tokio::test]
async fn an_infinite_loop_hits_the_deadline_and_the_host_stays_healthy() {
    let h = harness();
    let mut entry = h.entry("probe", "probe", PROBE_GRANTS);
    // Long enough for a normal request on a loaded machine, short enough for a quick test.
    entry.limits.timeout_ms = Some(1000);
    assert!(h.apply(vec![entry]).await.is_empty());
    let err = h.get("probe", "/loop").await.unwrap_err();
    assert!(matches!(err, PluginError::Deadline { .. }), "{err}");
    assert_eq!(err.status(), 504);
    assert_eq!(
        h.get("probe", "/hello").await.unwrap(),
        (200, "hello".into())
    );
    let m = h.host.metrics();
    assert_eq!(m.errors.with_label_values(&["probe", "deadline"]).get(), 1);
    assert_eq!(m.invocations.with_label_values(&["probe"]).get(), 2);
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_at_the_limit() {
    let h = harness();
    let mut entry = h.entry("probe", "probe", PROBE_GRANTS);
    entry.limits.memory_mib = Some(16);
    assert!(h.apply(vec![entry]).await.is_empty());
    let err = h.get("probe", "/alloc/64").await.unwrap_err();
    assert!(matches!(err, PluginError::MemoryLimit { .. }), "{err}");
    assert_eq!(err.status(), 500);
    let (status, body) = h.get("probe", "/alloc/4").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "allocated 4194304 bytes"));
    let high_water = h
        .host
        .metrics()
        .memory_high_water
        .with_label_values(&["probe"])
        .get();
    assert!(
        high_water > 4 << 20 && high_water <= 16 << 20,
        "{high_water}"
    );
}

#[tokio::test]
async fn an_ungranted_import_refuses_the_load_naming_it() {
    let h = harness();
    let failures = h
        .apply(vec![h.entry(
            "probe",
            "probe",
            &[Capability::Context, Capability::Logging],
        )])
        .await;
    let [PluginError::UngrantedImport { import, reason, .. }] = failures.as_slice() else {
        panic!("expected one refused import, got {failures:?}");
    };
    assert_eq!(import, "megalis:platform/store@0.1.1");
    assert!(
        reason.contains("did not grant capability `store`"),
        "{reason}"
    );
    assert!(h.host.get("probe").is_none());
    assert!(matches!(
        h.get("probe", "/hello").await.unwrap_err(),
        PluginError::NotInstalled(_)
    ));
}

#[tokio::test]
async fn a_module_whose_digest_differs_is_refused() {
    let h = harness();
    let mut entry = h.entry("hello", "hello", &[]);
    let probe_digest = h.add_module("probe");
    // The file named after the probe's digest now holds the hello module.
    std::fs::copy(
        h.dir.path().join(format!("{}.wasm", entry.sha256)),
        h.dir.path().join(format!("{probe_digest}.wasm")),
    )
    .unwrap();
    entry.sha256 = probe_digest;
    let failures = h.apply(vec![entry]).await;
    assert!(
        matches!(failures.as_slice(), [PluginError::DigestMismatch { .. }]),
        "{failures:?}"
    );
}

#[tokio::test]
async fn files_environment_and_network_are_empty() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
            .await
            .is_empty()
    );

    let fs: Value = serde_json::from_str(&h.get("probe", "/fs").await.unwrap().1).unwrap();
    for attempt in fs["attempts"].as_array().unwrap() {
        assert!(attempt["read"].get("Err").is_some(), "{attempt}");
        assert!(attempt["list"].get("Err").is_some(), "{attempt}");
    }
    assert!(fs["write"].get("Err").is_some(), "{fs}");

    let env: Value = serde_json::from_str(&h.get("probe", "/env").await.unwrap().1).unwrap();
    assert_eq!(env["vars"], serde_json::json!([]));
    assert_eq!(env["args"], serde_json::json!([]));

    let net: Value = serde_json::from_str(&h.get("probe", "/net").await.unwrap().1).unwrap();
    for attempt in ["tcp", "dns", "udp"] {
        assert!(net[attempt].get("Err").is_some(), "{attempt}: {net}");
    }
}

#[tokio::test]
async fn one_plugin_cannot_read_another_plugins_store() {
    let h = harness();
    let failures = h
        .apply(vec![
            h.entry("alpha", "probe", PROBE_GRANTS),
            h.entry("beta", "probe", PROBE_GRANTS),
        ])
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let (status, _, _) = h
        .call("alpha", "PUT", "/store/shared-name", &[], "alpha's secret")
        .await
        .unwrap();
    assert_eq!(status, 201);
    assert_eq!(
        h.get("alpha", "/store/shared-name").await.unwrap(),
        (200, "alpha's secret".into())
    );
    assert_eq!(h.get("beta", "/store/shared-name").await.unwrap().0, 404);
    assert_eq!(
        h.get("beta", "/scan/shared").await.unwrap(),
        (200, "[]".into())
    );
    assert_eq!(
        h.get("alpha", "/scan/shared").await.unwrap(),
        (200, "[\"shared-name\"]".into())
    );
}

#[tokio::test]
async fn a_trap_leaves_no_state_for_the_next_request() {
    let h = harness();
    assert!(
        h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
            .await
            .is_empty()
    );
    let err = h.get("probe", "/trap").await.unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    assert_eq!(err.status(), 500);
    assert!(
        !err.public_detail().contains("on purpose"),
        "trap details stay in the log"
    );
    // A fresh instance: its counter starts again, untouched by the trapped request.
    assert_eq!(h.get("probe", "/served").await.unwrap(), (200, "1".into()));
    assert_eq!(h.get("probe", "/served").await.unwrap(), (200, "1".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_cap_answers_busy() {
    let h = harness();
    let mut entry = h.entry("probe", "probe", PROBE_GRANTS);
    entry.limits.max_concurrency = Some(1);
    entry.limits.timeout_ms = Some(3000);
    assert!(h.apply(vec![entry]).await.is_empty());
    let host = h.host.clone();
    let looping = tokio::spawn(async move {
        let request = http::Request::get("/loop")
            .header("host", "t")
            .body(Full::new(Bytes::new()))
            .unwrap();
        host.invoke("probe", request, RequestMeta::default())
            .await
            .map(|_| ())
    });
    let in_flight = h.host.metrics().in_flight.with_label_values(&["probe"]);
    while in_flight.get() == 0 {
        assert!(!looping.is_finished(), "{:?}", looping.await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = h.get("probe", "/hello").await.unwrap_err();
    assert!(matches!(err, PluginError::Busy { limit: 1, .. }), "{err}");
    assert_eq!(err.status(), 503);
    assert!(matches!(
        looping.await.unwrap(),
        Err(PluginError::Deadline { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_instance_pool_answers_503() {
    let settings = EngineSettings {
        max_instances: 1,
        ..settings()
    };
    let h = harness_with(settings, services());
    if h.host.engine().allocator() != megalis_plugin_host::Allocator::Pooling {
        eprintln!("pooling allocator unavailable here; nothing to exhaust");
        return;
    }
    let mut entry = h.entry("probe", "probe", PROBE_GRANTS);
    entry.limits.timeout_ms = Some(3000);
    assert!(h.apply(vec![entry]).await.is_empty());
    let host = h.host.clone();
    let looping = tokio::spawn(async move {
        let request = http::Request::get("/loop")
            .header("host", "t")
            .body(Full::new(Bytes::new()))
            .unwrap();
        host.invoke("probe", request, RequestMeta::default())
            .await
            .map(|_| ())
    });
    let in_flight = h.host.metrics().in_flight.with_label_values(&["probe"]);
    while in_flight.get() == 0 {
        assert!(!looping.is_finished(), "{:?}", looping.await);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let err = h.get("probe", "/hello").await.unwrap_err();
    assert!(matches!(err, PluginError::PoolExhausted), "{err}");
    assert_eq!(err.status(), 503);
    assert!(looping.await.unwrap().is_err());
}

/// Audit sink that keeps the records.
#[derive(Default)]
struct Recorded(Mutex<Vec<megalis_audit::AuditRecord>>);

impl AuditSink for Recorded {
    fn append(
        &self,
        record: megalis_audit::AuditRecord,
    ) -> BoxFuture<'_, Result<(), AuditUnavailable>> {
        self.0.lock().unwrap().push(record);
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn patient_data_in_the_store_goes_through_the_access_decision_and_the_audit() {
    for (decider, allowed) in [
        (Arc::new(DenyAll) as Arc<dyn AccessDecider>, false),
        (Arc::new(AllowAllLocal) as Arc<dyn AccessDecider>, true),
    ] {
        let audit = Arc::new(Recorded::default());
        let services = Services {
            kv: Arc::new(MemoryKv::default()),
            access: decider,
            audit: audit.clone(),
            auth: Arc::new(PublicOnly),
            identity: Arc::new(MemoryDirectory::default()),
            directory: Arc::new(MemoryDirectory::default()),
            events: Arc::new(MemoryEvents::default()),
            blobs: None,
        };
        let h = harness_with(settings(), services);
        assert!(
            h.apply(vec![h.entry("probe", "probe", PROBE_GRANTS)])
                .await
                .is_empty()
        );
        let (status, _, _) = h
            .call("probe", "PUT", "/store/egfr?patient=P-123", &[], "41")
            .await
            .unwrap();
        assert_eq!(status, if allowed { 201 } else { 403 });
        let (status, _) = h.get("probe", "/store/egfr").await.unwrap();
        assert_eq!(status, if allowed { 200 } else { 404 });
        let records = audit.0.lock().unwrap();
        let expected: Vec<(&str, Option<&str>, megalis_audit::Outcome)> = if allowed {
            vec![
                (
                    "plugin.store-entry.write",
                    Some("P-123"),
                    megalis_audit::Outcome::Success,
                ),
                (
                    "plugin.store-entry.read",
                    Some("P-123"),
                    megalis_audit::Outcome::Success,
                ),
            ]
        } else {
            vec![(
                "plugin.store-entry.write",
                Some("P-123"),
                megalis_audit::Outcome::Denied,
            )]
        };
        let got: Vec<_> = records
            .iter()
            .map(|r| (r.action.as_str(), r.patient_id.as_deref(), r.outcome))
            .collect();
        assert_eq!(got, expected);
        assert!(records.iter().all(|r| r.actor.subject == "anonymous"
            && r.request_id.as_deref() == Some("req-42")
            && r.detail.as_deref()
                == Some(if allowed {
                    "plugin=probe reason=local-runner"
                } else {
                    "plugin=probe reason=no-platform"
                })));
    }
}

#[tokio::test]
async fn a_hot_swap_under_load_fails_no_request() {
    let h = harness();
    let v1 = h.entry("app", "probe", PROBE_GRANTS);
    let v2 = h.entry("app", "hello", &[]);
    assert!(h.apply(vec![v1.clone()]).await.is_empty());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    // Half the probe's concurrency cap (8, from its manifest): a permit is handed back when the
    // guest task ends, which may be a moment after the client has read the whole body, so as
    // many clients as permits could meet Busy, which is the cap's answer (tested on its own
    // above), not a failure of the swap.
    for _ in 0..4 {
        let host = h.host.clone();
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let mut served = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let request = http::Request::get("/hello")
                    .header("host", "t")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let response = host
                    .invoke("app", request, RequestMeta::default())
                    .await
                    .expect("no request fails during a swap");
                assert_eq!(response.status(), 200);
                response.into_body().collect().await.expect("whole body");
                served += 1;
            }
            served
        }));
    }
    let mut digests = BTreeSet::new();
    for round in 0..6 {
        let next = if round % 2 == 0 { &v2 } else { &v1 };
        assert!(h.apply(vec![next.clone()]).await.is_empty());
        digests.insert(h.host.get("app").unwrap().digest.clone());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        total += c.await.expect("client task");
    }
    assert_eq!(digests.len(), 2, "both versions were installed in turn");
    assert!(total > 0);
}

#[tokio::test]
async fn check_describes_imports_exports_and_manifest() {
    let h = harness();
    let report = megalis_plugin_host::inspect_component(h.host.engine(), test_plugin("probe"))
        .await
        .unwrap();
    assert!(report.is_handler);
    assert_eq!(report.manifest.as_ref().unwrap().id, "probe");
    let imports: Vec<&str> = report.imports.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        imports.contains(&"megalis:platform/store@0.1.1"),
        "{imports:?}"
    );
    assert!(
        imports.contains(&"megalis:platform/context@0.1.1"),
        "{imports:?}"
    );
    assert!(report.problems().is_empty(), "{:?}", report.problems());

    let hello = megalis_plugin_host::inspect_component(h.host.engine(), test_plugin("hello"))
        .await
        .unwrap();
    assert!(hello.manifest.is_none());
    assert!(
        hello
            .imports
            .iter()
            .all(|(n, _)| !n.starts_with("megalis:"))
    );
}

/// Allows access to one patient only, so a test tells the decision's answer from the data.
struct OnlyPatient(&'static str);

impl AccessDecider for OnlyPatient {
    fn decide<'a>(
        &'a self,
        _principal: &'a megalis_plugin_host::Principal,
        patient: &'a str,
        _resource: megalis_plugin_host::AccessResource,
        _action: megalis_plugin_host::AccessAction,
        _purpose: &'a str,
    ) -> BoxFuture<'a, megalis_plugin_host::Decision> {
        Box::pin(async move {
            if patient == self.0 {
                megalis_plugin_host::Decision::allow("care-team", "member of the care team")
            } else {
                megalis_plugin_host::Decision::deny("no-relationship", "no care relationship")
            }
        })
    }
}

const RECORDS_GRANTS: &[Capability] = &[
    Capability::Context,
    Capability::Identity,
    Capability::Directory,
    Capability::Events,
    Capability::Consent,
    Capability::Blobs,
    Capability::Logging,
];

fn records_harness(audit: Arc<Recorded>, events: Arc<MemoryEvents>) -> Harness {
    records_harness_with(audit, events, megalis_blobs::in_memory())
}

fn records_harness_with(
    audit: Arc<Recorded>,
    events: Arc<MemoryEvents>,
    blob_store: Arc<dyn megalis_blobs::BlobStore>,
) -> Harness {
    let people = MemoryDirectory::synthetic();
    people.add_patient(megalis_plugin_host::services::PatientRecord {
        id: "BZH-OTHER".into(),
        family: "AUTRE".into(),
        given: vec!["Yann".into()],
        birth_date: None,
        gender: "male".into(),
        ins: None,
        identifiers: vec![("1.2.250.1.999.1".into(), "IPP-9".into())],
        merged_into: None,
    });
    let people = Arc::new(people);
    let services = Services {
        kv: Arc::new(MemoryKv::default()),
        access: Arc::new(OnlyPatient("BZH90000000015")),
        audit,
        auth: Arc::new(megalis_plugin_host::access::LocalDeveloper),
        identity: people.clone(),
        directory: people,
        events,
        blobs: Some(Arc::new(megalis_plugin_host::blobs::PluginBlobs {
            store: blob_store,
            max_size: 3 << 20,
        })),
    };
    harness_with(settings(), services)
}

#[tokio::test]
async fn identity_and_directory_answer_under_the_access_decision() {
    let audit = Arc::new(Recorded::default());
    let h = records_harness(audit.clone(), Arc::new(MemoryEvents::default()));
    assert!(
        h.apply(vec![h.entry("records", "records", RECORDS_GRANTS)])
            .await
            .is_empty()
    );

    let (status, body) = h.get("records", "/patient/BZH90000000015").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let patient: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(patient["family"], "TEST");
    assert_eq!(patient["birthDate"], "1970-01-01");
    assert_eq!(patient["identifiers"][0]["value"], "IPP-1");

    // Another patient: refused with the decision's reason, and the data never reaches the plugin.
    let (status, body) = h.get("records", "/patient/BZH-OTHER").await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no care relationship"), "{body}");
    assert!(!body.contains("AUTRE"), "{body}");
    // Resolving a local id of a patient out of reach is refused too; an unknown one is none.
    let (status, _) = h
        .get("records", "/resolve?system=1.2.250.1.999.1&value=IPP-9")
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, body) = h
        .get("records", "/resolve?system=1.2.250.1.999.1&value=IPP-1")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"id":"BZH90000000015"}"#));
    let (status, body) = h
        .get("records", "/resolve?system=1.2.250.1.999.1&value=NOPE")
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"id":null}"#));

    // Each patient named was audited with the decision's reason code.
    let got: Vec<(
        String,
        Option<String>,
        megalis_audit::Outcome,
        Option<String>,
    )> = audit
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.action.clone(),
                r.patient_id.clone(),
                r.outcome,
                r.detail.clone(),
            )
        })
        .collect();
    use megalis_audit::Outcome::{Denied, Success};
    let row = |patient: &str, outcome, reason: &str| {
        (
            "plugin.patient.read".to_string(),
            Some(patient.to_string()),
            outcome,
            Some(format!("plugin=records reason={reason}")),
        )
    };
    assert_eq!(
        got,
        vec![
            row("BZH90000000015", Success, "care-team"),
            row("BZH-OTHER", Denied, "no-relationship"),
            row("BZH-OTHER", Denied, "no-relationship"),
            row("BZH90000000015", Success, "care-team"),
        ]
    );

    // The directory is public information: no decision, active professionals only.
    let (status, body) = h
        .get("records", "/practitioner/810000000000")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Néphrologie"), "{body}");
    let (status, _) = h
        .get("records", "/practitioner/899999999999")
        .await
        .unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn events_are_read_by_topic_and_filtered_by_the_access_decision() {
    let audit = Arc::new(Recorded::default());
    let events = Arc::new(MemoryEvents::default());
    let h = records_harness(audit.clone(), events.clone());
    assert!(
        h.apply(vec![h.entry("records", "records", RECORDS_GRANTS)])
            .await
            .is_empty()
    );
    // The core publishes; the plugin subscribes to the core topic in its manifest.
    use megalis_plugin_host::services::EventLog;
    for patient in ["BZH90000000015", "BZH-OTHER", "BZH90000000015"] {
        events
            .publish(
                "core.document.shared",
                Some(patient),
                r#"{"document":"d"}"#,
                1_700_000_000_000_000,
            )
            .await
            .unwrap();
    }
    let (status, body) = h
        .get("records", "/events?topic=core.document.shared")
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let seen: Vec<Value> = serde_json::from_str(&body).unwrap();
    // The event about the patient out of reach is left out; the cursor still moves past it.
    let ids: Vec<u64> = seen.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(seen[0]["publishedAt"], 1_700_000_000_000u64);
    let (_, body) = h
        .get("records", "/events?topic=core.document.shared&after=1")
        .await
        .unwrap();
    let seen: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["id"], 3);

    // Its own topic: published under plugin.<id>., JSON only, patient events under the decision.
    let (status, body) = h
        .call(
            "records",
            "POST",
            "/events/session.closed",
            SAME_ORIGIN,
            r#"{"n":1}"#,
        )
        .await
        .map(|(s, _, b)| (s, b))
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, _, _) = h
        .call("records", "POST", "/events/Bad_Name", SAME_ORIGIN, "{}")
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, _, _) = h
        .call("records", "POST", "/events/x", SAME_ORIGIN, "not json")
        .await
        .unwrap();
    assert_eq!(status, 400);
    let (status, _, _) = h
        .call(
            "records",
            "POST",
            "/events/x?patient=BZH-OTHER",
            SAME_ORIGIN,
            "{}",
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    let (status, body) = h
        .get("records", "/events?topic=plugin.records.session.closed")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.contains(r#"{\"n\":1}"#), "{body}");

    // Neither another plugin's topic nor a core topic the manifest does not name.
    events
        .publish("plugin.other.secret", None, "{}", 0)
        .await
        .unwrap();
    for topic in ["plugin.other.secret", "plugin.recordsx.y", "core.audit"] {
        let (status, body) = h
            .get("records", &format!("/events?topic={topic}"))
            .await
            .unwrap();
        assert_eq!(status, 403, "{topic}: {body}");
    }
}

#[tokio::test]
async fn a_plugin_without_the_identity_grant_is_not_loaded() {
    let h = records_harness(
        Arc::new(Recorded::default()),
        Arc::new(MemoryEvents::default()),
    );
    let grants: Vec<Capability> = RECORDS_GRANTS
        .iter()
        .copied()
        .filter(|c| *c != Capability::Identity)
        .collect();
    let errors = h.apply(vec![h.entry("records", "records", &grants)]).await;
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.contains("megalis:platform/identity@0.1.1"),
        "{message}"
    );
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
}

#[tokio::test]
async fn blobs_are_streamed_in_pieces_private_to_the_plugin_and_under_the_decision() {
    let audit = Arc::new(Recorded::default());
    let store = megalis_blobs::in_memory();
    let h = records_harness_with(
        audit.clone(),
        Arc::new(MemoryEvents::default()),
        store.clone(),
    );
    assert!(
        h.apply(vec![
            h.entry("records", "records", RECORDS_GRANTS),
            h.entry("other", "records", RECORDS_GRANTS),
        ])
        .await
        .is_empty()
    );
    // 2.5 MiB in pieces of 100,000 bytes, about a patient in reach. (Printable bytes, so the
    // harness's text bodies carry them unchanged.)
    let content: String = (0..(5u32 << 19))
        .map(|i| char::from(b'!' + (i * 31 % 90) as u8))
        .collect();
    let (status, _, body) = h
        .call(
            "records",
            "POST",
            "/blobs?patient=BZH90000000015&piece=100000",
            &[("content-type", "application/dicom"), SAME_ORIGIN[0]],
            &content,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    let info: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["size"], content.len() as u64);
    assert_eq!(info["sha256"], sha256_hex(content.as_bytes()));
    assert_eq!(info["mediaType"], "application/dicom");
    assert_eq!(info["patient"], "BZH90000000015");
    let id = info["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "a random id, not the content's digest");

    let (status, headers, back) = h
        .call("records", "GET", &format!("/blobs/{id}"), &[], "")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v == "application/dicom")
    );
    assert_eq!(back.len(), content.len());
    assert!(back == content);

    // Another plugin (same module, other id) cannot name it.
    let (status, _) = h.get("other", &format!("/blobs/{id}")).await.unwrap();
    assert_eq!(status, 404);
    // A patient out of reach: refused before anything is stored.
    let (status, _, _) = h
        .call(
            "records",
            "POST",
            "/blobs?patient=BZH-OTHER",
            SAME_ORIGIN,
            "x",
        )
        .await
        .unwrap();
    assert_eq!(status, 403);
    // Over the cap (3 MiB here): 413, and nothing of it is stored.
    let big: String = (0..(4u32 << 20))
        .map(|i| char::from(b'!' + (i % 89) as u8))
        .collect();
    let (status, _, _) = h
        .call("records", "POST", "/blobs?piece=1048576", SAME_ORIGIN, &big)
        .await
        .unwrap();
    assert_eq!(status, 413);
    assert!(
        !store
            .exists(&sha256_hex(big.as_bytes()).parse().unwrap())
            .await
            .unwrap()
    );
    // Dropped before `finish`: nothing kept either.
    let abandoned = "abandoned content, never finished";
    let (status, _, _) = h
        .call(
            "records",
            "POST",
            "/blobs/abandoned",
            SAME_ORIGIN,
            abandoned,
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert!(
        !store
            .exists(&sha256_hex(abandoned.as_bytes()).parse().unwrap())
            .await
            .unwrap()
    );

    // Deleting removes the plugin's record.
    let (status, _, body) = h
        .call(
            "records",
            "DELETE",
            &format!("/blobs/{id}"),
            SAME_ORIGIN,
            "",
        )
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"deleted":true}"#));
    let (status, _) = h
        .get("records", &format!("/blobs/{id}/info"))
        .await
        .unwrap();
    assert_eq!(status, 404);

    let actions: Vec<(String, Option<String>, megalis_audit::Outcome)> = audit
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|r| (r.action.clone(), r.patient_id.clone(), r.outcome))
        .collect();
    use megalis_audit::Outcome::{Denied, Success};
    let p = |s: &str| Some(s.to_string());
    assert_eq!(
        actions,
        vec![
            ("plugin.blob.write".into(), p("BZH90000000015"), Success),
            ("plugin.blob.read".into(), p("BZH90000000015"), Success),
            ("plugin.blob.read".into(), p("BZH90000000015"), Success),
            ("plugin.blob.write".into(), p("BZH-OTHER"), Denied),
            ("plugin.blob.write".into(), p("BZH90000000015"), Success),
        ]
    );
}

/// State-changing requests on session routes come from the platform's own pages.
const SAME_ORIGIN: &[(&str, &str)] = &[("sec-fetch-site", "same-origin")];

#[tokio::test]
async fn a_plugin_built_against_the_published_0_1_0_interfaces_still_loads_and_runs() {
    let h = harness();
    let report = megalis_plugin_host::inspect_component(h.host.engine(), test_plugin("legacy"))
        .await
        .unwrap();
    let imports: Vec<&str> = report.imports.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        imports.contains(&"megalis:platform/store@0.1.0"),
        "{imports:?}"
    );
    assert!(
        h.apply(vec![h.entry(
            "legacy",
            "legacy",
            &[Capability::Context, Capability::Store]
        )])
        .await
        .is_empty()
    );
    let (status, body) = h.get("legacy", "/").await.unwrap();
    assert_eq!((status, body.as_str()), (200, "legacy read kenavo"));
}

#[tokio::test]
async fn without_any_right_a_plugin_cannot_tell_a_known_local_id_from_an_unknown_one() {
    let people = Arc::new(MemoryDirectory::synthetic());
    let audit = Arc::new(Recorded::default());
    let services = Services {
        kv: Arc::new(MemoryKv::default()),
        access: Arc::new(DenyAll),
        audit: audit.clone(),
        auth: Arc::new(megalis_plugin_host::access::LocalDeveloper),
        identity: people.clone(),
        directory: people,
        events: Arc::new(MemoryEvents::default()),
        blobs: None,
    };
    let h = harness_with(settings(), services);
    assert!(
        h.apply(vec![h.entry("records", "records", RECORDS_GRANTS)])
            .await
            .is_empty()
    );
    let mut answers = Vec::new();
    for value in ["IPP-1", "NO-SUCH-IPP"] {
        let (status, body) = h
            .get(
                "records",
                &format!("/resolve?system=1.2.250.1.999.1&value={value}"),
            )
            .await
            .unwrap();
        answers.push((status, body));
    }
    assert_eq!(answers[0], answers[1], "the two answers must not differ");
    assert_eq!(answers[0].0, 403);
    let records = audit.0.lock().unwrap();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.action == "plugin.patient.resolve"
        && r.patient_id.is_none()
        && r.outcome == megalis_audit::Outcome::Denied));
}
