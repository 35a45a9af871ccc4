//! The Helm chart, linted and rendered by Helm's own Go engine (PyPI helm-python-sdk) for each
//! values file of `charts/megalis-operator/ci/`, the output validated against the Kubernetes
//! schemas, and the properties each install mode promises checked on the rendered objects.

mod python_tools;

use std::collections::BTreeMap;
use std::path::Path;

use kube::CustomResourceExt;
use megalis_operator_api::{Plugin, RegionalPlatform};
use python_tools::{repo, run, script};
use serde::Deserialize;
use serde_json::Value;

const MODES: [&str; 3] = ["default", "namespaced", "monitoring"];

struct Rendered {
    objects: BTreeMap<String, Vec<Value>>,
    notes: BTreeMap<String, String>,
    report: Value,
}

fn render(dir: &Path, refuse: &[&str]) -> Rendered {
    let chart = repo("charts/megalis-operator");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![];
    let checker = script("chart.py");
    args.push(&checker);
    args.push(&chart);
    args.push(&dir);
    for mode in &MODES {
        args.push(mode);
    }
    args.push(&"--refuse");
    for values in refuse {
        args.push(values);
    }
    let (ok, stdout, stderr) = run(&args, dir);
    assert!(ok, "chart.py failed: {stderr}\n{stdout}");
    let report: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let mut objects = BTreeMap::new();
    let mut notes = BTreeMap::new();
    for mode in MODES {
        let text = std::fs::read_to_string(dir.join(format!("{mode}.yaml"))).unwrap();
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect();
        objects.insert(mode.to_owned(), docs);
        notes.insert(
            mode.to_owned(),
            std::fs::read_to_string(dir.join(format!("{mode}-NOTES.txt"))).unwrap(),
        );
    }
    Rendered {
        objects,
        notes,
        report,
    }
}

fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

#[test]
fn chart_lints_renders_and_validates_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = render(
        dir.path(),
        &[
            r#"{"replicas": "two"}"#,
            r#"{"watchNamespace": "Not_A_Namespace"}"#,
            r#"{"unknownKey": true}"#,
        ],
    );
    for mode in MODES {
        assert_eq!(
            rendered.report["lint"][mode],
            serde_json::json!([]),
            "helm lint --strict findings in {mode}"
        );
    }
    for refusal in rendered.report["refused"].as_array().unwrap() {
        assert!(
            refusal.as_str().is_some_and(|r| r.contains("schema")),
            "values.schema.json must refuse: {refusal}"
        );
    }

    // Strict schema validation of everything Helm rendered.
    let files: Vec<_> = MODES
        .iter()
        .map(|m| dir.path().join(format!("{m}.yaml")))
        .collect();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> =
        vec![&"-m", &"kubernetes_validate", &"-k", &"1.33.0", &"--strict"];
    for file in &files {
        args.push(file);
    }
    let (ok, stdout, stderr) = run(&args, dir.path());
    assert!(ok, "{stdout}{stderr}");
    for line in format!("{stdout}{stderr}")
        .lines()
        .filter(|l| l.starts_with("WARN"))
    {
        assert!(
            line.contains("ServiceMonitor"),
            "unexpected warning: {line}"
        );
    }
}

#[test]
fn install_modes_have_the_promised_objects() {
    let dir = tempfile::tempdir().unwrap();
    let rendered = render(dir.path(), &[]);
    let default = &rendered.objects["default"];
    let namespaced = &rendered.objects["namespaced"];
    let monitoring = &rendered.objects["monitoring"];

    // Default: cluster-wide, CRDs as templates kept on uninstall, identical to the generated ones.
    assert_eq!(of_kind(default, "ClusterRole").len(), 1);
    let crds = of_kind(default, "CustomResourceDefinition");
    assert_eq!(crds.len(), 2);
    for crd in &crds {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"],
            "keep"
        );
    }
    let generated: Vec<Value> = [RegionalPlatform::crd(), Plugin::crd()]
        .iter()
        .map(|c| serde_json::to_value(c).unwrap())
        .collect();
    for crd in generated {
        assert!(
            crds.iter().any(|c| **c == crd),
            "chart CRD differs from the Rust types"
        );
    }
    assert!(of_kind(default, "ServiceMonitor").is_empty());
    assert_eq!(of_kind(default, "NetworkPolicy").len(), 1);

    // Namespaced: a Role in the watched namespace, no cluster-wide grant, no CRDs, election on.
    assert!(
        of_kind(namespaced, "ClusterRole").is_empty()
            && of_kind(namespaced, "ClusterRoleBinding").is_empty()
    );
    let roles = of_kind(namespaced, "Role");
    assert!(
        roles
            .iter()
            .any(|r| r["metadata"]["namespace"] == "megalis")
    );
    assert!(of_kind(namespaced, "CustomResourceDefinition").is_empty());
    let deployment = of_kind(namespaced, "Deployment")[0];
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert!(
        env.iter()
            .any(|e| e["name"] == "MEGALIS_OPERATOR_LEASE_NAMESPACE"
                && e["value"] == "megalis-system")
    );
    assert!(
        env.iter()
            .any(|e| e["name"] == "MEGALIS_OPERATOR_WATCH_NAMESPACE" && e["value"] == "megalis")
    );
    assert!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .contains("@sha256:")
    );
    let policy = of_kind(namespaced, "NetworkPolicy")[0];
    assert_eq!(
        policy["spec"]["egress"][1]["to"][0]["ipBlock"]["cidr"],
        "10.0.0.1/32"
    );

    // Monitoring: ServiceMonitor on, the operator's NetworkPolicy off.
    assert_eq!(of_kind(monitoring, "ServiceMonitor").len(), 1);
    assert!(of_kind(monitoring, "NetworkPolicy").is_empty());

    for (mode, objects) in &rendered.objects {
        // Least privilege: no rule ever grants Secrets, wildcards or PVC deletion.
        for role in objects
            .iter()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
        {
            for rule in role["rules"].as_array().unwrap() {
                let text = rule.to_string();
                assert!(
                    !text.contains("secrets") && !text.contains("\"*\""),
                    "{mode}: {text}"
                );
                if text.contains("persistentvolumeclaims") {
                    assert!(
                        !text.contains("delete"),
                        "{mode}: volumes hold health data: {text}"
                    );
                }
            }
        }
        // Restricted pod security.
        let pod = &of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{mode}");
        let container = &pod["containers"][0];
        assert_eq!(
            container["securityContext"]["allowPrivilegeEscalation"], false,
            "{mode}"
        );
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"], true,
            "{mode}"
        );
        assert_eq!(
            container["securityContext"]["capabilities"]["drop"][0], "ALL",
            "{mode}"
        );
        assert!(
            rendered.notes[mode].contains("kubectl wait --for=condition=Ready"),
            "{mode}"
        );
    }
    assert!(rendered.notes["namespaced"].contains("crds.create=false"));
}
