//! Desired state of a Megalis region, as a pure function.
//!
//! `build(platform, plugins)` turns the custom resources into the exact Kubernetes objects the
//! operator applies, with no client and no clock: the same input always gives the same objects,
//! which is what the snapshot tests, `megalis-operator render` and server-side apply rely on.

mod config;
mod isolation;
mod kinds;
mod labels;
mod plugins;
mod workload;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use kube::core::DynamicObject;
use megalis_operator_api::{Plugin, RegionalPlatform};
use serde::Serialize;

pub use kinds::ManagedKind;
pub use labels::{platform_selector, sweep_selector};
pub use plugins::PluginReport;

/// Paths and ports fixed by the image layout, shared by the ConfigMap and the Deployment.
pub mod layout {
    pub const CONFIG_DIR: &str = "/etc/megalis";
    pub const CONFIG_FILE: &str = "/etc/megalis/megalis.toml";
    pub const PLUGINS_FILE: &str = "/etc/megalis/plugins.toml";
    pub const DATA_DIR: &str = "/var/lib/megalis";
    pub const TLS_DIR: &str = "/etc/megalis/tls";
    pub const CPS_DIR: &str = "/etc/megalis/cps";
    pub const AUDIT_DIR: &str = "/etc/megalis/audit";
    pub const SECRETS_DIR: &str = "/run/secrets/megalis";
    pub const HTTP_PORT: i32 = 8080;
    pub const HTTPS_PORT: i32 = 8443;
    pub const MLLP_PORT: i32 = 2575;
    pub const DICOM_PORT: i32 = 4242;
    /// Non-root user of the distroless images.
    pub const RUN_AS: i64 = 65532;
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the RegionalPlatform has no {0}")]
    MissingMetadata(&'static str),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot render the configuration: {0}")]
    Config(#[from] toml::ser::Error),
}

/// One object to apply, with the kind that tells the controller which API to use.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    pub kind: ManagedKind,
    pub object: DynamicObject,
}

impl DesiredObject {
    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }
}

/// Everything the operator applies for one platform, plus what the status needs to report.
#[derive(Clone, Debug)]
pub struct DesiredState {
    pub objects: Vec<DesiredObject>,
    /// SHA-256 of the rendered megalis.toml and the module digests: a change rolls the pods.
    pub config_checksum: String,
    pub plugins: PluginReport,
    /// Allow policies rendered besides the default deny (one per flow with peers).
    pub allowed_flows: Vec<String>,
}

impl DesiredState {
    pub fn find(&self, kind: ManagedKind, name: &str) -> Option<&DynamicObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name() == name)
            .map(|o| &o.object)
    }
}

/// Context shared by the builders: names, namespace, labels and the owner reference.
pub(crate) struct Ctx<'a> {
    pub platform: &'a RegionalPlatform,
    pub name: &'a str,
    pub namespace: &'a str,
    owner: Option<OwnerReference>,
}

impl Ctx<'_> {
    /// Metadata of an object owned by the platform (garbage-collected with it).
    pub fn meta(&self, name: impl Into<String>, component: &str) -> kube::core::ObjectMeta {
        kube::core::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.to_owned()),
            labels: Some(labels::object_labels(self.name, component)),
            owner_references: self.owner.clone().map(|o| vec![o]),
            ..Default::default()
        }
    }

    pub fn spec(&self) -> &megalis_operator_api::RegionalPlatformSpec {
        &self.platform.spec
    }
}

/// Builds the desired objects of `platform`. `plugins` may hold every Plugin of the namespace:
/// only those the platform enables and that point back to it are loaded.
///
/// The owner reference is set when the platform has a UID (it comes from the API server);
/// `render` works on files without one and emits objects without owner.
pub fn build(platform: &RegionalPlatform, plugins: &[Plugin]) -> Result<DesiredState, BuildError> {
    let name = platform
        .metadata
        .name
        .as_deref()
        .ok_or(BuildError::MissingMetadata("name"))?;
    let namespace = platform.metadata.namespace.as_deref().unwrap_or("default");
    let ctx = Ctx {
        platform,
        name,
        namespace,
        owner: platform.controller_owner_ref(&()),
    };

    let plugin_set = plugins::select(platform, plugins);
    let plugins_toml = plugins::render_toml(&plugin_set.loaded)?;
    let megalis_toml = config::render(&ctx)?;
    let config_checksum = config::checksum(&megalis_toml, &plugin_set.loaded);

    let mut objects = Vec::new();
    objects.push(workload::config_map(&ctx, &megalis_toml).pipe(typed)?);
    objects.push(workload::plugins_config_map(&ctx, &plugins_toml).pipe(typed)?);
    objects.push(workload::deployment(&ctx, &plugin_set.loaded, &config_checksum).pipe(typed)?);
    for service in workload::services(&ctx) {
        objects.push(typed(service)?);
    }
    objects.push(typed(workload::ingress(&ctx))?);
    objects.push(typed(workload::pod_disruption_budget(&ctx))?);
    if let Some(hpa) = workload::autoscaler(&ctx) {
        objects.push(typed(hpa)?);
    }
    if let Some(pvc) = workload::data_volume_claim(&ctx) {
        objects.push(typed(pvc)?);
    }
    if let Some(monitor) = workload::service_monitor(&ctx) {
        objects.push(DesiredObject {
            kind: ManagedKind::ServiceMonitor,
            object: monitor,
        });
    }
    let policies = isolation::network_policies(&ctx);
    let allowed_flows = policies
        .iter()
        .skip(1)
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    for policy in policies {
        objects.push(typed(policy)?);
    }

    Ok(DesiredState {
        objects,
        config_checksum,
        plugins: plugin_set.report,
        allowed_flows,
    })
}

/// Converts a typed k8s-openapi object into the dynamic form the controller applies.
fn typed<K>(object: K) -> Result<DesiredObject, BuildError>
where
    K: Resource<DynamicType = ()> + Serialize,
{
    let kind = ManagedKind::from_kind(&K::kind(&())).expect("only managed kinds are built");
    let value = serde_json::to_value(&object).map_err(|source| BuildError::Encode {
        what: "object",
        source,
    })?;
    let object = serde_json::from_value(value).map_err(|source| BuildError::Encode {
        what: "object",
        source,
    })?;
    Ok(DesiredObject { kind, object })
}

/// `x.pipe(f)` reads better than `f(x)` at the end of a long builder call.
trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}
