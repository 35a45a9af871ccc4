//! Every object the operator renders, validated against the official Kubernetes OpenAPI schemas
//! (kubernetes-validate, strict: unknown fields are errors), and the example resources against
//! the generated CRD schemas.

mod python_tools;

use std::path::PathBuf;

use megalis_operator::render::render_files;
use python_tools::{repo, run, script};
use serde_json::{Value, json};

const KUBERNETES: &str = "1.33.0";

/// A named variant: example files, and an edit of the platform document.
type Scenario = (&'static str, Vec<&'static str>, fn(&mut Value));

/// Variants of the examples covering every optional object and field.
fn scenarios() -> Vec<Scenario> {
    vec![
        ("minimal", vec!["platform-minimal.yaml"], |_| {}),
        (
            "bretagne",
            vec!["platform-bretagne.yaml", "plugins-bretagne.yaml"],
            |_| {},
        ),
        (
            "bretagne-fixed-replicas-no-tls",
            vec!["platform-bretagne.yaml"],
            |p| {
                let spec = p["spec"].as_object_mut().unwrap();
                spec.remove("autoscaling");
                spec.remove("mtls");
                spec.remove("serverTlsSecret");
                spec.insert("dataVolume".into(), json!({"size": "100Gi", "accessMode": "ReadWriteMany", "storageClassName": "cephfs"}));
                spec.insert("imagePullSecrets".into(), json!(["registry"]));
                spec.insert(
                    "pod".into(),
                    json!({"nodeSelector": {"megalis.bzh/hds": "true"}, "annotations": {"a": "b"}}),
                );
            },
        ),
    ]
}

fn render_scenario(
    dir: &std::path::Path,
    name: &str,
    files: &[&str],
    edit: fn(&mut Value),
) -> PathBuf {
    let mut paths = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(repo("crds/examples").join(file)).unwrap();
        let path = dir.join(format!("{name}-input-{i}.yaml"));
        if i == 0 {
            let mut platform: Value = serde_yaml::from_str(&text).unwrap();
            edit(&mut platform);
            std::fs::write(&path, serde_yaml::to_string(&platform).unwrap()).unwrap();
        } else {
            std::fs::write(&path, text).unwrap();
        }
        paths.push(path);
    }
    let rendered = dir.join(format!("{name}.yaml"));
    std::fs::write(&rendered, render_files(&paths).unwrap()).unwrap();
    rendered
}

#[test]
fn rendered_objects_match_the_kubernetes_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, inputs, edit) in scenarios() {
        files.push(render_scenario(dir.path(), name, &inputs, edit));
    }
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
        &"-m",
        &"kubernetes_validate",
        &"-k",
        &KUBERNETES,
        &"--strict",
    ];
    for file in &files {
        args.push(file);
    }
    let (ok, stdout, stderr) = run(&args, dir.path());
    let report = format!("{stdout}{stderr}");
    assert!(ok, "{report}");
    let passed = report
        .lines()
        .filter(|l| l.starts_with("INFO") && l.contains("passed"))
        .count();
    assert!(
        passed >= 60,
        "expected every object checked, got {passed}:\n{report}"
    );
    // The only object without an official schema is prometheus-operator's ServiceMonitor.
    for line in report.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            line.contains("ServiceMonitor"),
            "unexpected warning: {line}"
        );
    }
}

#[test]
fn the_validator_rejects_a_broken_object() {
    // Control: proves the validator is really checking (a wrong type and an unknown field).
    let dir = tempfile::tempdir().unwrap();
    let rendered = render_scenario(dir.path(), "minimal", &["platform-minimal.yaml"], |_| {});
    let text = std::fs::read_to_string(&rendered).unwrap().replace(
        "maxUnavailable: 1",
        "maxUnavailable: 1\n  unexpectedField: true",
    );
    std::fs::write(&rendered, text).unwrap();
    let (ok, stdout, stderr) = run(
        &[
            &"-m",
            &"kubernetes_validate",
            &"-k",
            &KUBERNETES,
            &"--strict",
            &rendered,
        ],
        dir.path(),
    );
    assert!(!ok, "{stdout}{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("unexpectedField"),
        "{stdout}{stderr}"
    );
}

#[test]
fn examples_match_the_generated_crd_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let crds = [
        repo("crds/regionalplatforms.megalis.bzh.yaml"),
        repo("crds/plugins.megalis.bzh.yaml"),
    ];
    let examples: Vec<PathBuf> = [
        "platform-minimal.yaml",
        "platform-bretagne.yaml",
        "plugins-bretagne.yaml",
    ]
    .iter()
    .map(|f| repo("crds/examples").join(f))
    .collect();
    let checker = script("crd_schema.py");
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&checker];
    for crd in &crds {
        args.push(crd);
    }
    args.push(&"--");
    for example in &examples {
        args.push(example);
    }
    let (ok, stdout, stderr) = run(&args, dir.path());
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS")).count(),
        6,
        "{stdout}"
    );

    // Control: a wrongly typed field is refused by the same schema.
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&examples[0])
        .unwrap()
        .replace("replicas: 1", "replicas: one");
    std::fs::write(&broken, text).unwrap();
    let (ok, stdout, _) = run(&[&checker, &crds[0], &"--", &broken], dir.path());
    assert!(!ok && stdout.contains("replicas"), "{stdout}");
}
