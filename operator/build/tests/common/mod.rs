//! Loading the example resources of `crds/examples/`, shared by the build tests.

use std::path::PathBuf;

use megalis_operator_api::{Plugin, RegionalPlatform};
use serde::Deserialize;

pub fn example_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../crds/examples")
        .join(file)
}

pub fn load_all<T: for<'de> Deserialize<'de>>(file: &str) -> Vec<T> {
    let text = std::fs::read_to_string(example_path(file)).expect("example file");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| T::deserialize(doc).unwrap_or_else(|e| panic!("{file}: {e}")))
        .collect()
}

pub fn platform(file: &str) -> RegionalPlatform {
    load_all(file).pop().expect("one platform")
}

#[allow(dead_code)] // not every test binary uses the full region
pub fn bretagne() -> (RegionalPlatform, Vec<Plugin>) {
    (
        platform("platform-bretagne.yaml"),
        load_all("plugins-bretagne.yaml"),
    )
}
