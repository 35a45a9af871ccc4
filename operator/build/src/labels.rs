use std::collections::BTreeMap;

pub const NAME: &str = "app.kubernetes.io/name";
pub const INSTANCE: &str = "app.kubernetes.io/instance";
pub const COMPONENT: &str = "app.kubernetes.io/component";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Label the orphan sweep selects on: every object the operator creates for a platform has it.
pub const PLATFORM: &str = "megalis.bzh/platform";

/// Labels of every object built for `platform`.
pub fn object_labels(platform: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = platform_selector(platform);
    labels.insert(COMPONENT.into(), component.into());
    labels.insert(
        MANAGED_BY.into(),
        megalis_operator_api::FIELD_MANAGER.into(),
    );
    labels.insert(PLATFORM.into(), platform.into());
    labels
}

/// Labels selecting the platform's pods (Deployment selector, Services, NetworkPolicies).
/// Kept minimal and stable: a Deployment selector is immutable.
pub fn platform_selector(platform: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.into(), "megalis".into()),
        (INSTANCE.into(), platform.into()),
    ])
}

/// Label selector (API syntax) of every object the operator manages for `platform`.
pub fn sweep_selector(platform: &str) -> String {
    format!(
        "{MANAGED_BY}={},{PLATFORM}={platform}",
        megalis_operator_api::FIELD_MANAGER
    )
}
