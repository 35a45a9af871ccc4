//! The WebAssembly plugin host of Megalis.
//!
//! Plugins are components (`wasm32-wasip2`) exporting `wasi:http/incoming-handler` and importing
//! only the `megalis:platform` capabilities they were granted (see `plugins/wit`). The pieces:
//!
//! - [`PluginEngine`]: the one wasmtime `Engine` of the process (component model, async, epoch
//!   interruption driven by a ticker thread, pooling allocator sized from a maximum number of
//!   instances, falling back to on-demand allocation), plus the compile cache by module digest.
//! - [`Manifest`] (the author's `plugin.toml`, embedded in the component) and [`PluginsConfig`]
//!   (the operator's `plugins.toml`: which module by digest, grants, limits, configuration).
//! - [`LoadedPlugin`]: a verified, compiled and linked plugin (`InstancePre`), linked
//!   deny-by-default: an import outside manifest ∩ grants refuses the load, naming the import.
//! - [`PluginHost`]: the installed plugins, swapped atomically on reload, and [`PluginHost::invoke`]
//!   which routes a request, authenticates it as the route demands, strips credentials, and runs
//!   it in a fresh `Store` under the plugin's limits.
//! - [`access`]: the principal, the authenticator and the access decision, as traits the
//!   authentication and consent contexts implement; deny-by-default implementations until then.
//! - [`channels`]: WebSocket channels the host terminates for plugins — rooms, the join the
//!   plugin authorises, relay or delivery through the plugin — and the bus joining the rooms
//!   of several replicas (PostgreSQL `LISTEN`/`NOTIFY`). [`PluginHost::invoke_internal`] is
//!   how the host calls a plugin for a principal it established itself.
//! - [`kv`]: the plugin-scoped store (SQL on the platform database, or in memory for
//!   `megalis plugin run`).
//! - [`services`]: the identity index, the directory and the event log as the host reads them
//!   for the `identity`, `directory` and `events` capabilities.

pub mod access;
pub mod blobs;
mod capabilities;
pub mod channels;
mod config;
mod engine;
mod error;
mod host;
pub mod kv;
mod manifest;
mod metrics;
mod plugin;
pub mod services;
mod state;

pub use access::{
    AccessAction, AccessDecider, AccessResource, AuditSink, Authenticator, Decision, Origin,
    Principal, PrincipalKind,
};
pub use config::{PluginEntry, PluginLimits, PluginsConfig};
pub use engine::{Allocator, EngineSettings, PluginEngine};
pub use error::PluginError;
pub use host::{InternalCall, InternalResponse, PluginHost, RequestMeta, Services};
pub use manifest::{
    CORE_TOPICS, Capability, Channel, Deliver, Manifest, ManifestLimits, Route, RouteAuth,
    read_embedded_manifest,
};
pub use metrics::PluginMetrics;
pub use plugin::{ComponentReport, ImportKind, LoadedPlugin, inspect_component};

/// The body type of plugin responses.
pub type ResponseBody = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// SHA-256 of a module, lowercase hex: the name of the module file and the cache key.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}
