//! Custom resources of the Megalis operator, API group `megalis.bzh`, version `v1alpha1`.
//!
//! Two namespaced kinds describe a region:
//! - [`RegionalPlatform`]: one deployment of the `megalis` server with its database, blob storage,
//!   ingress, listeners (mutual TLS for CPS cards, HL7 v2 over MLLP, DICOM) and the isolation flows
//!   the operator turns into NetworkPolicies.
//! - [`Plugin`]: one WebAssembly module, pinned by SHA-256, with the capabilities, limits and
//!   configuration the platform grants it.
//!
//! Single-object rules are CEL rules in the schema (enforced by the API server) and the same rules
//! are evaluated client-side by [`RegionalPlatform::validate_cel`] so that `megalis-operator render`
//! and the reconciler refuse what the API server would refuse.

mod platform;
mod plugin;
mod validate;

pub use platform::*;
pub use plugin::*;
pub use validate::{SpecError, check_plugin, validate_platform, validate_plugin};

/// API group of every Megalis custom resource.
pub const GROUP: &str = "megalis.bzh";
/// Field manager used for every server-side apply, so that ownership of fields is stable.
pub const FIELD_MANAGER: &str = "megalis-operator";

/// Condition types of a [`RegionalPlatform`]; `Ready` is the one `kubectl wait` uses.
pub mod condition {
    pub const READY: &str = "Ready";
    pub const PROGRESSING: &str = "Progressing";
    pub const DEGRADED: &str = "Degraded";
    pub const NETWORK_ISOLATED: &str = "NetworkIsolated";
    pub const PLUGINS_READY: &str = "PluginsReady";
}
