//! The reconcile loop against `MockApiServer`: create, update, drift, orphan deletion, status,
//! invalid specs and API errors.

mod mock_api;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use kube::runtime::controller::Action;
use megalis_operator::Metrics;
use megalis_operator::reconcile::{Context, backoff, error_policy, reconcile};
use megalis_operator_api::{Plugin, RegionalPlatform};
use megalis_operator_build::build;
use mock_api::{MockApiServer, collection};
use serde::Deserialize;
use serde_json::{Value, json};

const NS: &str = "megalis";

fn examples(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crds/examples")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .collect()
}

fn platforms() -> String {
    collection("megalis.bzh/v1alpha1", NS, "regionalplatforms")
}
fn plugins() -> String {
    collection("megalis.bzh/v1alpha1", NS, "plugins")
}
fn policies() -> String {
    collection("networking.k8s.io/v1", NS, "networkpolicies")
}
fn deployments() -> String {
    collection("apps/v1", NS, "deployments")
}
fn services() -> String {
    collection("v1", NS, "services")
}
fn config_maps() -> String {
    collection("v1", NS, "configmaps")
}
fn claims() -> String {
    collection("v1", NS, "persistentvolumeclaims")
}
fn events() -> String {
    collection("events.k8s.io/v1", NS, "events")
}

struct Region {
    server: MockApiServer,
    context: Arc<Context>,
}

impl Region {
    /// A mock cluster holding the Bretagne platform (as the API server would return it, with a
    /// uid and generation) and its four plugins.
    fn bretagne() -> Region {
        Self::with(|_| {})
    }

    fn with(edit: impl FnOnce(&mut Value)) -> Region {
        let (client, server) = MockApiServer::start();
        let mut platform = examples("platform-bretagne.yaml").remove(0);
        platform["metadata"]["uid"] = json!("0b6f6f5e-8c1d-4b0e-9a55-3f1d2c4b5a69");
        platform["metadata"]["generation"] = json!(1);
        edit(&mut platform);
        server.insert(&platforms(), platform);
        for plugin in examples("plugins-bretagne.yaml") {
            server.insert(&plugins(), plugin);
        }
        let context = Arc::new(Context::new(client, Metrics::new().unwrap()));
        Region { server, context }
    }

    /// The platform as the watcher would hand it to the reconciler now.
    fn platform(&self) -> Arc<RegionalPlatform> {
        Arc::new(
            serde_json::from_value(self.server.get(&platforms(), "bretagne").unwrap()).unwrap(),
        )
    }

    fn edit_spec(&self, edit: impl FnOnce(&mut Value)) {
        self.server.edit(&platforms(), "bretagne", |p| {
            edit(&mut p["spec"]);
            let generation = p["metadata"]["generation"].as_i64().unwrap();
            p["metadata"]["generation"] = json!(generation + 1);
        });
    }

    async fn reconcile(&self) -> Result<Action, megalis_operator::Error> {
        reconcile(self.platform(), self.context.clone()).await
    }

    fn status(&self) -> Value {
        self.server.get(&platforms(), "bretagne").unwrap()["status"].clone()
    }

    fn condition(&self, type_: &str) -> Value {
        let status = self.status();
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap()
    }

    /// What the pure build step wants for the current platform and plugins.
    fn desired(&self) -> megalis_operator_build::DesiredState {
        let plugins: Vec<Plugin> = self
            .server
            .names(&plugins())
            .iter()
            .map(|n| serde_json::from_value(self.server.get(&plugins(), n).unwrap()).unwrap())
            .collect();
        build(&self.platform(), &plugins).unwrap()
    }

    /// The Deployment controller's part: report every replica of the current template ready.
    fn roll_out(&self, replicas: i32) {
        self.server.edit(&deployments(), "bretagne", |d| {
            d["status"] = json!({ "replicas": replicas, "readyReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas });
        });
    }
}

#[tokio::test]
async fn first_reconcile_creates_every_object_and_reports_progress() {
    let region = Region::bretagne();
    let action = region.reconcile().await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(15)),
        "rolling out: poll soon"
    );

    let desired = region.desired();
    for object in &desired.objects {
        let ar = object.kind.api_resource();
        let stored = region
            .server
            .get(&collection(&ar.api_version, NS, &ar.plural), object.name())
            .unwrap_or_else(|| panic!("{:?} {} not applied", object.kind, object.name()));
        assert_eq!(
            stored["metadata"]["labels"],
            serde_json::to_value(&object.object.metadata.labels).unwrap()
        );
    }
    assert_eq!(region.server.names(&policies()).len(), 21);
    let applies: Vec<_> = region
        .server
        .calls()
        .into_iter()
        .filter(|c| c.method == Method::PATCH && !c.path.ends_with("/status"))
        .collect();
    assert_eq!(applies.len(), desired.objects.len());
    assert!(
        applies
            .iter()
            .all(|c| c.query.contains("fieldManager=megalis-operator")
                && c.query.contains("force=true")),
        "{applies:?}"
    );

    let status = region.status();
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["phase"], "Progressing");
    assert_eq!(status["pluginsReady"], "4/4");
    assert_eq!(status["isolation"], "Isolated");
    assert_eq!(region.condition("Ready")["status"], "False");
    assert_eq!(region.condition("NetworkIsolated")["status"], "True");
    assert_eq!(region.condition("PluginsReady")["status"], "True");
    assert_eq!(region.condition("Ready")["observedGeneration"], 1);
    assert!(
        !region.server.names(&events()).is_empty(),
        "an Event records the phase change"
    );
}

#[tokio::test]
async fn becomes_ready_once_rolled_out_and_keeps_transition_times() {
    let region = Region::bretagne();
    region.reconcile().await.unwrap();
    let isolated_since = region.condition("NetworkIsolated")["lastTransitionTime"].clone();
    let not_ready_since = region.condition("Ready")["lastTransitionTime"].clone();

    region.roll_out(3);
    tokio::time::sleep(Duration::from_millis(1100)).await; // timestamps have a one-second grain
    let action = region.reconcile().await.unwrap();
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(300)),
        "settled: periodic resync only"
    );
    assert_eq!(region.status()["phase"], "Ready");
    assert_eq!(region.condition("Ready")["status"], "True");
    assert_eq!(region.condition("Progressing")["status"], "False");
    assert_ne!(
        region.condition("Ready")["lastTransitionTime"],
        not_ready_since,
        "Ready changed: new time"
    );
    assert_eq!(
        region.condition("NetworkIsolated")["lastTransitionTime"],
        isolated_since,
        "unchanged: same time"
    );

    let ready_since = region.condition("Ready")["lastTransitionTime"].clone();
    region.reconcile().await.unwrap();
    assert_eq!(region.condition("Ready")["lastTransitionTime"], ready_since);
}

#[tokio::test]
async fn spec_change_updates_config_and_rolls_the_pods() {
    let region = Region::bretagne();
    region.reconcile().await.unwrap();
    let checksum = |r: &Region| {
        r.server.get(&deployments(), "bretagne").unwrap()["spec"]["template"]["metadata"]["annotations"]["megalis.bzh/config-checksum"].clone()
    };
    let before = checksum(&region);

    region.edit_spec(|spec| spec["log"] = json!({"format": "text", "level": "debug"}));
    region.reconcile().await.unwrap();
    let config = region
        .server
        .get(&config_maps(), "bretagne-config")
        .unwrap();
    let toml = config["data"]["megalis.toml"].as_str().unwrap();
    assert!(toml.contains("level = \"debug\""), "{toml}");
    assert_ne!(checksum(&region), before, "a new checksum rolls the pods");
    assert_eq!(region.status()["observedGeneration"], 2);
    assert_eq!(region.condition("Ready")["observedGeneration"], 2);
}

#[tokio::test]
async fn drift_on_a_network_policy_is_reverted() {
    let region = Region::bretagne();
    region.reconcile().await.unwrap();
    let wanted = region
        .server
        .get(&policies(), "bretagne-allow-mllp")
        .unwrap()["spec"]
        .clone();
    // Someone opens the MLLP port to the world by hand.
    region.server.edit(&policies(), "bretagne-allow-mllp", |p| {
        p["spec"]["ingress"] = json!([{ "ports": [{ "port": "mllp", "protocol": "TCP" }] }]);
    });
    region.server.edit(&deployments(), "bretagne", |d| {
        d["spec"]["replicas"] = json!(1)
    });

    region.reconcile().await.unwrap();
    assert_eq!(
        region
            .server
            .get(&policies(), "bretagne-allow-mllp")
            .unwrap()["spec"],
        wanted
    );
}

#[tokio::test]
async fn orphans_are_deleted_but_volumes_and_foreign_objects_stay() {
    let region = Region::with(|p| {
        // A single-replica variant with a volume, to check the claim survives the sweep.
        p["spec"]["dataVolume"] = json!({ "size": "10Gi", "accessMode": "ReadWriteMany" });
    });
    region.reconcile().await.unwrap();
    assert!(region.server.get(&claims(), "bretagne-data").is_some());
    region.server.insert(&config_maps(), json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "hospital-notes", "namespace": NS } }));

    region.edit_spec(|spec| {
        spec.as_object_mut().unwrap().remove("mllp");
        spec.as_object_mut().unwrap().remove("dataVolume");
        spec["isolation"]["flows"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "turn-relay");
        spec["monitoring"]["serviceMonitor"] = json!(false);
    });
    region.reconcile().await.unwrap();

    let policies = region.server.names(&policies());
    assert!(
        !policies.contains(&"bretagne-allow-flow-turn-relay".to_owned()),
        "{policies:?}"
    );
    assert!(!policies.contains(&"bretagne-allow-mllp".to_owned()));
    assert!(policies.contains(&"bretagne-allow-dicom".to_owned()));
    assert_eq!(policies.len(), 19);
    assert!(region.server.get(&services(), "bretagne-mllp").is_none());
    assert!(
        region
            .server
            .get(
                &collection("monitoring.coreos.com/v1", NS, "servicemonitors"),
                "bretagne"
            )
            .is_none()
    );
    assert!(
        region.server.get(&claims(), "bretagne-data").is_some(),
        "health data is never swept"
    );
    assert!(
        region
            .server
            .get(&config_maps(), "hospital-notes")
            .is_some(),
        "not ours: untouched"
    );
}

#[tokio::test]
async fn invalid_spec_sets_the_condition_and_waits_for_a_change() {
    let region = Region::with(|p| {
        p["spec"]["isolation"]["flows"][0]["peers"] =
            json!([{ "url": "https://turn.example.org" }]);
    });
    let action = region.reconcile().await.unwrap();
    assert_eq!(action, Action::await_change());
    let applied = region
        .server
        .calls()
        .iter()
        .filter(|c| c.method == Method::PATCH && !c.path.ends_with("/status"))
        .count();
    assert_eq!(applied, 0, "nothing is applied from a refused spec");
    assert_eq!(region.status()["phase"], "Invalid");
    let ready = region.condition("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(
        ready["message"].as_str().unwrap().contains("host names"),
        "{ready}"
    );
    assert_eq!(region.condition("Degraded")["status"], "True");
    let event = region.server.names(&events());
    assert_eq!(event.len(), 1);
}

#[tokio::test]
async fn api_errors_fail_the_reconcile_count_and_back_off() {
    let region = Region::bretagne();
    region.server.fail(Method::PATCH, "/deployments/", 500);
    let error = region.reconcile().await.unwrap_err();
    assert_eq!(error.reason(), "ApplyFailed");
    let metrics = region.context.metrics.encode();
    assert!(
        metrics.contains("megalis_operator_reconcile_failures_total{reason=\"ApplyFailed\"} 1"),
        "{metrics}"
    );

    let delays: Vec<Duration> = (0..3)
        .map(|_| {
            action_delay(&error_policy(
                region.platform(),
                &error,
                region.context.clone(),
            ))
        })
        .collect();
    assert!(
        delays[0] >= Duration::from_millis(1500) && delays[0] <= Duration::from_millis(2500),
        "{delays:?}"
    );
    assert!(delays[2] >= Duration::from_secs(6), "grows: {delays:?}");

    region.server.heal();
    region.reconcile().await.unwrap();
    let next = action_delay(&error_policy(
        region.platform(),
        &error,
        region.context.clone(),
    ));
    assert!(
        next <= Duration::from_millis(2500),
        "a success resets the backoff: {next:?}"
    );
    assert!(
        region
            .context
            .metrics
            .encode()
            .contains("megalis_operator_reconciles_total{outcome=\"ok\"} 1")
    );
}

#[tokio::test]
async fn a_cluster_without_prometheus_operator_is_degraded_not_failed() {
    let region = Region::bretagne();
    region.server.without_group("monitoring.coreos.com");
    region.reconcile().await.unwrap();
    let degraded = region.condition("Degraded");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "OptionalApiMissing");
    assert_eq!(region.condition("NetworkIsolated")["status"], "True");
}

#[tokio::test]
async fn missing_plugin_keeps_the_platform_running_but_not_ready() {
    let region = Region::with(|p| {
        p["spec"]["plugins"] = json!([
            "messaging",
            "imaging",
            "video",
            "breizh-rein",
            "telepharmacie"
        ])
    });
    region.reconcile().await.unwrap();
    region.roll_out(3);
    region.reconcile().await.unwrap();
    assert_eq!(region.status()["pluginsReady"], "4/5");
    assert_eq!(region.status()["phase"], "Degraded");
    let plugins_ready = region.condition("PluginsReady");
    assert_eq!(plugins_ready["status"], "False");
    assert!(
        plugins_ready["message"]
            .as_str()
            .unwrap()
            .contains("telepharmacie: no such Plugin")
    );
    let toml = region
        .server
        .get(&config_maps(), "bretagne-plugins")
        .unwrap()["data"]["plugins.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let table: toml::Table = toml.parse().unwrap();
    region.server.edit(&plugins(), "video", |p| {
        p["spec"]["module"]["sha256"] = json!("not-a-digest")
    });
    region.edit_spec(|spec| spec["plugins"] = json!(["messaging", "video"]));
    region.reconcile().await.unwrap();
    let plugin_ready = |name: &str| {
        region.server.get(&plugins(), name).unwrap()["status"]["conditions"][0].clone()
    };
    assert_eq!(plugin_ready("messaging")["reason"], "Loaded");
    assert_eq!(plugin_ready("video")["reason"], "Refused");
    assert_eq!(plugin_ready("imaging")["reason"], "NotEnabled");
    assert_eq!(plugin_ready("imaging")["status"], "False");
    assert_eq!(table["plugins"].as_array().unwrap().len(), 4, "{toml}");
}

#[test]
fn backoff_doubles_from_two_seconds_up_to_five_minutes() {
    let cases = [
        (1, 2.0),
        (2, 4.0),
        (3, 8.0),
        (8, 256.0),
        (9, 300.0),
        (40, 300.0),
    ];
    for (attempts, seconds) in cases {
        assert_eq!(
            backoff(attempts, 1.0),
            Duration::from_secs_f64(seconds),
            "attempt {attempts}"
        );
    }
    assert_eq!(backoff(1, 0.75), Duration::from_secs_f64(1.5));
}

fn action_delay(action: &Action) -> Duration {
    // Action has no getter; its Debug form reads `Action { requeue_after: Some(2.1s) }`.
    let text = format!("{action:?}");
    let inner = text
        .split("Some(")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .expect("requeue");
    parse_duration(inner)
}

fn parse_duration(text: &str) -> Duration {
    if let Some(ms) = text.strip_suffix("ms") {
        Duration::from_secs_f64(ms.parse::<f64>().unwrap() / 1000.0)
    } else if let Some(s) = text.strip_suffix('s') {
        Duration::from_secs_f64(s.parse().unwrap())
    } else {
        panic!("unexpected duration {text}")
    }
}
