//! Isolation checked by a NetworkPolicy analyser (network-config-analyzer): every declared flow
//! is allowed, and everything else — between the platform's pods, from other pods of the
//! namespace, from other namespaces, from undeclared networks — is denied.

mod python_tools;

use megalis_operator::render::render_files;
use python_tools::{repo, run, script};
use serde_json::Value;

/// Renders `files` (after `edit` of the platform document) and asks nca each query.
fn connectivity(
    files: &[&str],
    edit: impl FnOnce(&mut Value),
    queries: &[(&str, &str)],
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    let mut edit = Some(edit);
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(repo("crds/examples").join(file)).unwrap();
        let path = dir.path().join(format!("{i}.yaml"));
        if i == 0 {
            let mut platform: Value = serde_yaml::from_str(&text).unwrap();
            (edit.take().expect("one platform"))(&mut platform);
            std::fs::write(&path, serde_yaml::to_string(&platform).unwrap()).unwrap();
        } else {
            std::fs::write(&path, text).unwrap();
        }
        paths.push(path);
    }
    let rendered = dir.path().join("rendered.yaml");
    std::fs::write(&rendered, render_files(&paths).unwrap()).unwrap();
    let query_file = dir.path().join("queries.json");
    std::fs::write(&query_file, serde_json::to_string(queries).unwrap()).unwrap();
    let (ok, stdout, stderr) = run(
        &[&script("isolation.py"), &rendered, &query_file],
        dir.path(),
    );
    assert!(ok, "nca failed: {stderr}\n{stdout}");
    let last = stdout.lines().last().expect("answers");
    let answers: Value = serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    answers["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn check(files: &[&str], edit: impl FnOnce(&mut Value), cases: &[(&str, &str, &str)]) {
    let queries: Vec<(&str, &str)> = cases.iter().map(|(s, d, _)| (*s, *d)).collect();
    let answers = connectivity(files, edit, &queries);
    let mut wrong = Vec::new();
    for ((source, destination, expected), actual) in cases.iter().zip(&answers) {
        if expected != actual {
            wrong.push(format!(
                "{source} -> {destination}: expected {expected}, analyser says {actual}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const P1: &str = "megalis/bretagne-1";
const P2: &str = "megalis/bretagne-2";

#[test]
fn bretagne_allows_exactly_the_declared_flows() {
    let tcp = |ports: &str| format!("{{protocols:TCP,dst_ports:{ports}}}");
    let cases: Vec<(&str, &str, String)> = vec![
        // Declared ingress flows.
        ("ingress-nginx/controller", P1, tcp("8080,8443")),
        ("monitoring/prometheus", P2, tcp("8080")),
        ("172.16.10.5", P1, tcp("2575,8444")), // CHU Rennes: MLLP, and CPS cards
        ("172.16.10.70", P1, tcp("2575,4242,8444")), // Rennes PACS: DICOM too
        ("172.16.20.9", P2, tcp("2575,8444")), // CHU Brest
        ("172.16.30.9", P1, tcp("2575,8444")), // extra MLLP flow
        ("10.99.0.4", P1, tcp("8443")),        // support VPN; 10/8 is excluded from mTLS
        ("8.8.8.8", P1, tcp("8444")),          // CPS cards from anywhere
        // Declared egress flows.
        (
            P1,
            "kube-system/coredns",
            "{protocols:TCP, UDP,dst_ports:53}".into(),
        ),
        (P1, "10.20.0.10", tcp("5432")),
        (P1, "10.20.0.11", tcp("5432")),
        (P1, "10.30.0.7", tcp("443")),   // S3
        (P1, "185.16.45.3", tcp("443")), // Pro Santé Connect
        (P1, "10.40.0.5", tcp("443")),   // module registry
        (
            P1,
            "10.50.0.10",
            "{protocols:TCP, UDP,dst_ports:3478}".into(),
        ),
        (P1, "172.16.10.70", tcp("104")),
        (P1, "observability/otel", tcp("4317")),
        // Everything else is denied.
        (P1, P2, "none".into()),
        (P2, P1, "none".into()),
        ("megalis/neighbour", P1, "none".into()),
        ("elsewhere/stranger", P1, "none".into()),
        ("kube-system/coredns", P1, "none".into()),
        ("10.1.2.3", P1, "none".into()),
        (P1, "megalis/neighbour", "none".into()),
        (P1, "elsewhere/stranger", "none".into()),
        (P1, "ingress-nginx/controller", "none".into()),
        (P1, "monitoring/prometheus", "none".into()),
        (P1, "10.20.0.12", "none".into()),
        (P1, "8.8.8.8", "none".into()),
    ];
    let cases: Vec<(&str, &str, &str)> =
        cases.iter().map(|(s, d, e)| (*s, *d, e.as_str())).collect();
    check(
        &["platform-bretagne.yaml", "plugins-bretagne.yaml"],
        |_| {},
        &cases,
    );
}

#[test]
fn empty_peer_lists_deny_instead_of_allowing_all() {
    let clear = |p: &mut Value| {
        let spec = &mut p["spec"];
        spec["ingress"]["controllerPeers"] = Value::Array(vec![]);
        spec["mllp"]["sources"] = Value::Array(vec![]);
        spec["mtls"]["sources"] = Value::Array(vec![]);
        spec["database"]["postgres"]["peers"] = Value::Array(vec![]);
        spec["isolation"]["dnsPeers"] = Value::Array(vec![]);
        for flow in spec["isolation"]["flows"].as_array_mut().unwrap() {
            flow["peers"] = Value::Array(vec![]);
        }
    };
    check(
        &["platform-bretagne.yaml"],
        clear,
        &[
            ("ingress-nginx/controller", P1, "none"),
            ("172.16.10.5", P1, "none"),
            ("8.8.8.8", P1, "none"),
            ("10.99.0.4", P1, "none"),
            (P1, "10.20.0.10", "none"),
            (P1, "kube-system/coredns", "none"),
            (P1, "10.50.0.10", "none"),
            // Flows that still have peers keep working.
            ("172.16.10.70", P1, "{protocols:TCP,dst_ports:4242}"),
            (P1, "10.30.0.7", "{protocols:TCP,dst_ports:443}"),
        ],
    );
}

#[test]
fn minimal_region_is_reachable_through_the_ingress_only() {
    let rename = |p: &mut Value| {
        // Same pod names as the queries use.
        p["metadata"]["name"] = "bretagne".into();
        p["metadata"]["namespace"] = "megalis".into();
    };
    check(
        &["platform-minimal.yaml"],
        rename,
        &[
            (
                "ingress-nginx/controller",
                P1,
                "{protocols:TCP,dst_ports:8080}",
            ),
            (
                P1,
                "kube-system/coredns",
                "{protocols:TCP, UDP,dst_ports:53}",
            ),
            ("monitoring/prometheus", P1, "none"),
            ("172.16.10.5", P1, "none"),
            (P1, "8.8.8.8", "none"),
            (P1, P2, "none"),
        ],
    );
}
