//! The CRD YAML in `crds/` and in the chart is generated from the Rust types. This test fails
//! when they drift; regenerate with `MEGALIS_UPDATE_CRDS=1 cargo nextest run -p megalis-operator`.

use std::path::PathBuf;

use kube::CustomResourceExt;
use megalis_operator_api::{Plugin, RegionalPlatform};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn generated_crds_match_the_committed_yaml() {
    let generated = [
        (
            "regionalplatforms.megalis.bzh.yaml",
            RegionalPlatform::crd(),
        ),
        ("plugins.megalis.bzh.yaml", Plugin::crd()),
    ];
    let update = std::env::var_os("MEGALIS_UPDATE_CRDS").is_some();
    let mut drifted = Vec::new();
    for (file, crd) in generated {
        let yaml = format!(
            "# Generated from operator/api by the crd_drift test; do not edit.\n{}",
            serde_yaml::to_string(&crd).unwrap()
        );
        for dir in ["crds", "charts/megalis-operator/files/crds"] {
            let path = repo().join(dir).join(file);
            if update {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &yaml).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
                drifted.push(path.display().to_string());
            }
        }
    }
    assert!(
        drifted.is_empty(),
        "CRD YAML out of date: {drifted:?}; run MEGALIS_UPDATE_CRDS=1 cargo nextest run -p megalis-operator generated_crds"
    );
}
