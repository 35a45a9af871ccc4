//! The single-object rules, evaluated by the same CEL engine as the API server (kube-cel),
//! case by case, plus the checks the operator adds on top.

use std::path::PathBuf;

use megalis_operator_api::{
    Plugin, RegionalPlatform, SpecError, validate_platform, validate_plugin,
};
use serde_json::{Value, json};

fn example(file: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crds/examples")
        .join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

fn platform(base: &str, edit: impl FnOnce(&mut Value)) -> RegionalPlatform {
    let mut value = example(base).remove(0);
    edit(&mut value);
    serde_json::from_value(value).expect("deserializes")
}

fn refusal(platform: &RegionalPlatform) -> Option<String> {
    validate_platform(platform).err().map(|e| e.to_string())
}

#[test]
fn examples_are_valid() {
    assert_eq!(refusal(&platform("platform-minimal.yaml", |_| {})), None);
    assert_eq!(refusal(&platform("platform-bretagne.yaml", |_| {})), None);
    for plugin in example("plugins-bretagne.yaml") {
        let plugin: Plugin = serde_json::from_value(plugin).unwrap();
        validate_plugin(&plugin, "bretagne").unwrap();
    }
}

#[test]
fn platform_rules_refuse_what_they_should() {
    type Edit = fn(&mut Value);
    let cases: &[(&str, &str, Edit, &str)] = &[
        (
            "minimal",
            "platform-minimal.yaml",
            |v| v["spec"]["replicas"] = json!(2),
            "embedded SQLite",
        ),
        (
            "rwo volume with postgres",
            "platform-minimal.yaml",
            |v| {
                v["spec"]["database"] =
                    json!({"postgres": {"urlSecret": {"name": "db", "key": "url"}}});
                v["spec"]["replicas"] = json!(2);
            },
            "ReadWriteOnce",
        ),
        (
            "sqlite without volume",
            "platform-minimal.yaml",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("dataVolume");
            },
            "need spec.dataVolume",
        ),
        (
            "both databases",
            "platform-minimal.yaml",
            |v| {
                v["spec"]["database"]["postgres"] =
                    json!({"urlSecret": {"name": "db", "key": "url"}});
            },
            "exactly one of postgres or sqlite",
        ),
        (
            "peer given as a URL",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["isolation"]["flows"][0]["peers"] =
                    json!([{"url": "https://turn.example.org"}]);
            },
            "cannot express host names",
        ),
        (
            "peer with cidr and selector",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["database"]["postgres"]["peers"][0]["podSelector"] =
                    json!({"matchLabels": {"app": "pg"}});
            },
            "either a cidr",
        ),
        (
            "ingress flow on a number",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["isolation"]["flows"][8]["ports"] = json!([{"port": 2575}]);
            },
            "named platform ports",
        ),
        (
            "egress flow on a name",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["isolation"]["flows"][0]["ports"] = json!([{"name": "https"}]);
            },
            "port numbers",
        ),
        (
            "duplicate flow names",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["isolation"]["flows"][1]["name"] = json!("turn-relay");
            },
            "unique",
        ),
        (
            "mtls without server certificate",
            "platform-bretagne.yaml",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("serverTlsSecret");
            },
            "serverTlsSecret",
        ),
        (
            "autoscaling on sqlite",
            "platform-minimal.yaml",
            |v| {
                v["spec"]["autoscaling"] = json!({"minReplicas": 1, "maxReplicas": 1});
            },
            "autoscaling needs PostgreSQL",
        ),
        (
            "oidc over http",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["oidc"]["upstreamIssuer"] = json!("http://psc.example.org");
            },
            "https URL",
        ),
        (
            "cidr out of range",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["mllp"]["sources"][0]["cidr"] = json!("172.16.10.0/33");
            },
            "is not a CIDR",
        ),
        (
            "host name as cidr",
            "platform-bretagne.yaml",
            |v| {
                v["spec"]["dicom"]["sources"][0]["cidr"] = json!("pacs.chu-rennes.fr");
            },
            "is not a CIDR",
        ),
    ];
    for (case, file, edit, expected) in cases {
        let message = refusal(&platform(file, edit)).unwrap_or_else(|| panic!("{case}: accepted"));
        assert!(message.contains(expected), "{case}: {message}");
    }
}

#[test]
fn transition_rules_keep_immutable_fields() {
    let old = platform("platform-minimal.yaml", |_| {});
    let engine_switch = platform("platform-minimal.yaml", |v| {
        v["spec"]["database"] = json!({"postgres": {"urlSecret": {"name": "db", "key": "url"}}});
    });
    let error = engine_switch
        .validate_cel_update(&old)
        .unwrap_err()
        .to_string();
    assert!(error.contains("database engine is immutable"), "{error}");

    let old = platform("platform-minimal.yaml", |v| {
        v["spec"]["dataVolume"]["storageClassName"] = json!("ssd")
    });
    let new = platform("platform-minimal.yaml", |v| {
        v["spec"]["dataVolume"]["storageClassName"] = json!("hdd")
    });
    let error = new.validate_cel_update(&old).unwrap_err().to_string();
    assert!(error.contains("storageClassName is immutable"), "{error}");
    old.validate_cel_update(&old).unwrap();

    let plugin: Plugin =
        serde_json::from_value(example("plugins-bretagne.yaml").remove(0)).unwrap();
    let mut moved = plugin.clone();
    moved.spec.platform_ref = "finistere".into();
    let error = moved.validate_cel_update(&plugin).unwrap_err().to_string();
    assert!(error.contains("platformRef is immutable"), "{error}");
}

#[test]
fn plugin_rules_refuse_unpinned_modules() {
    let base: Plugin = serde_json::from_value(example("plugins-bretagne.yaml").remove(0)).unwrap();
    type Edit = fn(&mut Plugin);
    let cases: [(&str, Edit, &str); 4] = [
        (
            "upper-case digest",
            |p| p.spec.module.sha256 = p.spec.module.sha256.to_uppercase(),
            "sha256",
        ),
        (
            "short digest",
            |p| p.spec.module.sha256.truncate(63),
            "sha256",
        ),
        (
            "plain http",
            |p| p.spec.module.url = "http://modules.example.org/m.wasm".into(),
            "https",
        ),
        (
            "foreign platform",
            |p| p.spec.platform_ref = "finistere".into(),
            "belongs to platform finistere",
        ),
    ];
    for (case, edit, expected) in cases {
        let mut plugin = base.clone();
        edit(&mut plugin);
        let error = validate_plugin(&plugin, "bretagne").unwrap_err();
        assert!(error.to_string().contains(expected), "{case}: {error}");
    }
    assert!(matches!(
        validate_plugin(&base, "finistere"),
        Err(SpecError::ForeignPlugin { .. })
    ));
}
