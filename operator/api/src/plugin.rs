use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// A WebAssembly plugin granted to one platform of the same namespace.
// kube's repeated `printcolumn(type_ = ..)` arguments look like duplicated attributes to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "megalis.bzh",
    version = "v1alpha1",
    kind = "Plugin",
    namespaced,
    status = "PluginStatus",
    shortname = "mplugin",
    category = "megalis",
    // Helm must never delete a CRD on uninstall: that would delete every region with it.
    annotation("helm.sh/resource-policy", "keep"),
    derive = "PartialEq",
    cel,
    doc = "A WebAssembly plugin of a Megalis platform: module pinned by SHA-256, grants, limits and configuration",
    printcolumn(name = "Platform", type_ = "string", json_path = ".spec.platformRef"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PluginSpec {
    /// Name of the `RegionalPlatform` (same namespace) that loads this plugin.
    #[x_kube(validation = Rule::new("self == oldSelf").message("platformRef is immutable"))]
    pub platform_ref: String,
    /// Semantic version of the module.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$"))]
    pub version: String,
    pub module: ModuleSource,
    /// Capabilities granted, as WIT interfaces, e.g. `megalis:platform/consent@0.1.0`.
    /// The host refuses to link an import that is not listed here.
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub limits: PluginLimits,
    /// Plugin configuration, passed verbatim to the plugin.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// Where the module comes from. The digest is mandatory: the fetcher refuses any other bytes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModuleSource {
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("module url must be https"))]
    pub url: String,
    /// Lower-case hex SHA-256 of the `.wasm` file.
    #[x_kube(validation = Rule::new("self.matches('^[0-9a-f]{64}$')").message("sha256 must be 64 lower-case hex digits"))]
    pub sha256: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginLimits {
    /// Linear memory over all memories of one instance.
    #[serde(default = "default_memory_mib")]
    #[schemars(range(min = 1, max = 4096))]
    pub memory_mib: u32,
    /// Wall-clock deadline of one call into the plugin.
    #[serde(default = "default_timeout_ms")]
    #[schemars(range(min = 1, max = 600000))]
    pub timeout_ms: u32,
    /// Concurrent instances (pooling allocator slots).
    #[serde(default = "default_max_instances")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_instances: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_mib: default_memory_mib(),
            timeout_ms: default_timeout_ms(),
            max_instances: default_max_instances(),
        }
    }
}

fn default_memory_mib() -> u32 {
    64
}
fn default_timeout_ms() -> u32 {
    5000
}
fn default_max_instances() -> u32 {
    32
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
