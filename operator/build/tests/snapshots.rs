//! Snapshot of every object built for the example regions. A diff here is a change of what the
//! operator applies to clusters: review it like a migration.

mod common;

use megalis_operator_build::build;

#[test]
fn minimal_region_objects() {
    let platform = common::platform("platform-minimal.yaml");
    let state = build(&platform, &[]).expect("build");
    let objects: Vec<_> = state.objects.iter().map(|o| &o.object).collect();
    insta::assert_yaml_snapshot!("minimal", objects);
}

#[test]
fn bretagne_region_objects() {
    let (platform, plugins) = common::bretagne();
    let state = build(&platform, &plugins).expect("build");
    let objects: Vec<_> = state.objects.iter().map(|o| &o.object).collect();
    insta::assert_yaml_snapshot!("bretagne", objects);
}
