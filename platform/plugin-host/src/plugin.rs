//! Loading one plugin: digest check, manifest, compile (cached), deny-by-default import check,
//! linking, pre-instantiation.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::{PluginEntry, PluginLimits};
use crate::engine::PluginEngine;
use crate::manifest::{Capability, Manifest, read_embedded_manifest};
use crate::state::HostState;
use crate::{PluginError, capabilities, digest};

/// The version line of `megalis:platform` this host implements.
const PLATFORM_VERSIONS: &str = "0.1.";

/// A plugin ready to serve: verified, compiled, linked against exactly its grants.
pub struct LoadedPlugin {
    pub id: String,
    pub digest: String,
    pub manifest: Manifest,
    /// Manifest ∩ operator grants.
    pub granted: BTreeSet<Capability>,
    pub limits: PluginLimits,
    pub config: Arc<BTreeMap<String, String>>,
    /// The manifest's core event subscriptions, shared by every request's context.
    pub(crate) subscriptions: Arc<BTreeSet<String>>,
    pub(crate) pre: ProxyPre<HostState>,
    pub(crate) permits: Arc<Semaphore>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("id", &self.id)
            .field("digest", &self.digest)
            .field("granted", &self.granted)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What an import of a component is, for this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportKind {
    /// WASI linked with nothing behind it (clocks, random, stdio to the log, no files, no
    /// network), or `wasi:http/types`.
    Sandboxed,
    /// A `megalis:platform` capability.
    Capability(Capability),
    /// Not provided by this host, whatever the grants.
    Unavailable(String),
}

pub fn classify_import(name: &str) -> ImportKind {
    let (path, version) = name.split_once('@').unwrap_or((name, ""));
    let sandboxed_wasi = [
        "wasi:cli/",
        "wasi:clocks/",
        "wasi:io/",
        "wasi:random/",
        "wasi:filesystem/",
        "wasi:sockets/",
    ];
    if path == "wasi:http/types" || sandboxed_wasi.iter().any(|p| path.starts_with(p)) {
        return if version.starts_with("0.2.") {
            ImportKind::Sandboxed
        } else {
            ImportKind::Unavailable(format!("this host provides WASI 0.2, not {version:?}"))
        };
    }
    if path == "wasi:http/outgoing-handler" {
        return ImportKind::Unavailable(
            "outgoing HTTP is not a capability plugins may be granted".into(),
        );
    }
    if let Some(interface) = path.strip_prefix("megalis:platform/") {
        if !version.starts_with(PLATFORM_VERSIONS) {
            return ImportKind::Unavailable(format!(
                "this host implements megalis:platform {PLATFORM_VERSIONS}x, not {version:?}"
            ));
        }
        if interface == "types" {
            return ImportKind::Sandboxed;
        }
        return match Capability::from_interface(interface) {
            Some(c) => ImportKind::Capability(c),
            None => ImportKind::Unavailable(format!(
                "megalis:platform@{version} has no interface {interface:?}"
            )),
        };
    }
    ImportKind::Unavailable("this host provides no such interface".into())
}

/// Refuses the first import outside what the plugin may use: manifest ∩ grants, plus the
/// sandboxed WASI.
fn check_imports(
    plugin: &str,
    component: &Component,
    engine: &wasmtime::Engine,
    requested: &BTreeSet<Capability>,
    granted: &BTreeSet<Capability>,
) -> Result<(), PluginError> {
    for (name, _) in component.component_type().imports(engine) {
        let refuse = |reason: String| PluginError::UngrantedImport {
            plugin: plugin.to_owned(),
            import: name.to_owned(),
            reason,
        };
        match classify_import(name) {
            ImportKind::Sandboxed => {}
            ImportKind::Capability(c) if !requested.contains(&c) => {
                return Err(refuse(format!(
                    "the plugin's manifest does not request capability `{c}`"
                )));
            }
            ImportKind::Capability(c) if !granted.contains(&c) => {
                let grants: Vec<String> = granted.iter().map(ToString::to_string).collect();
                return Err(refuse(format!(
                    "the operator did not grant capability `{c}` (granted: [{}])",
                    grants.join(", ")
                )));
            }
            ImportKind::Capability(_) => {}
            ImportKind::Unavailable(reason) => return Err(refuse(reason)),
        }
    }
    Ok(())
}

fn exports_handler(component: &Component, engine: &wasmtime::Engine) -> bool {
    component
        .component_type()
        .exports(engine)
        .any(|(name, _)| name.starts_with("wasi:http/incoming-handler@0.2."))
}

impl LoadedPlugin {
    /// Loads `bytes` as plugin `entry`. Any refusal names the plugin and the reason.
    pub async fn load(
        engine: &PluginEngine,
        entry: &PluginEntry,
        bytes: Vec<u8>,
    ) -> Result<LoadedPlugin, PluginError> {
        let id = entry.id.as_str();
        let actual = digest(&bytes);
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(PluginError::DigestMismatch {
                plugin: id.to_owned(),
                expected: entry.sha256.to_lowercase(),
                actual,
            });
        }
        let manifest = read_embedded_manifest(id, &bytes)?.unwrap_or_else(|| Manifest::plain(id));
        if manifest.id != id {
            // The operator's id is authoritative (it names the URL and the store namespace);
            // one module may be installed under several ids.
            tracing::info!(plugin = id, manifest_id = %manifest.id, "plugin installed under another id than its manifest's");
        }
        let component = engine.compile(id, &actual, Arc::new(bytes)).await?;
        let wasm_engine = engine.engine();
        check_imports(
            id,
            &component,
            wasm_engine,
            &manifest.capabilities,
            &entry.grants,
        )?;
        if !exports_handler(&component, wasm_engine) {
            return Err(PluginError::NotAHandler {
                plugin: id.to_owned(),
            });
        }
        let granted: BTreeSet<Capability> = manifest
            .capabilities
            .intersection(&entry.grants)
            .copied()
            .collect();
        let pre = link(id, wasm_engine, &component, &granted)?;
        let settings = engine.settings();
        let limits = PluginLimits::effective(
            &manifest.limits,
            &entry.limits,
            &settings.default_limits,
            settings.max_memory_bytes,
        );
        tracing::info!(
            plugin = id,
            version = %manifest.version,
            digest = %actual,
            granted = ?granted,
            memory_bytes = limits.memory_bytes,
            timeout_ms = limits.timeout.as_millis() as u64,
            max_concurrency = limits.max_concurrency,
            "plugin loaded"
        );
        Ok(LoadedPlugin {
            id: id.to_owned(),
            digest: actual,
            subscriptions: Arc::new(manifest.subscribe.clone()),
            manifest,
            granted,
            permits: Arc::new(Semaphore::new(limits.max_concurrency)),
            limits,
            config: Arc::new(entry.config.clone()),
            pre,
        })
    }
}

/// A linker holding sandboxed WASI, `wasi:http/types`, and the granted capabilities, nothing
/// else.
fn link(
    plugin: &str,
    engine: &wasmtime::Engine,
    component: &Component,
    granted: &BTreeSet<Capability>,
) -> Result<ProxyPre<HostState>, PluginError> {
    let link_error = |e: wasmtime::Error| PluginError::Link {
        plugin: plugin.to_owned(),
        reason: format!("{e:#}"),
    };
    let mut linker: Linker<HostState> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link_error)?;
    wasmtime_wasi_http::p2::bindings::http::types::add_to_linker::<
        HostState,
        wasmtime_wasi_http::WasiHttp,
    >(
        &mut linker,
        &wasmtime_wasi_http::p2::bindings::LinkOptions::default().into(),
        <HostState as wasmtime_wasi_http::WasiHttpView>::http,
    )
    .map_err(link_error)?;
    capabilities::add_to_linker(&mut linker, granted).map_err(link_error)?;
    let pre = linker.instantiate_pre(component).map_err(link_error)?;
    ProxyPre::new(pre).map_err(link_error)
}

/// What `megalis plugin check` prints about a component.
#[derive(Debug)]
pub struct ComponentReport {
    pub digest: String,
    pub manifest: Option<Manifest>,
    pub imports: Vec<(String, ImportKind)>,
    pub exports: Vec<String>,
    pub is_handler: bool,
}

impl ComponentReport {
    /// Problems that would refuse the load with every capability the manifest requests granted.
    pub fn problems(&self) -> Vec<String> {
        let requested = self
            .manifest
            .as_ref()
            .map(|m| m.capabilities.clone())
            .unwrap_or_default();
        let mut problems = Vec::new();
        if !self.is_handler {
            problems.push("does not export wasi:http/incoming-handler@0.2".to_owned());
        }
        for (name, kind) in &self.imports {
            match kind {
                ImportKind::Capability(c) if !requested.contains(c) => problems.push(format!(
                    "imports `{name}` but the manifest does not request capability `{c}`"
                )),
                ImportKind::Unavailable(reason) => {
                    problems.push(format!("imports `{name}`: {reason}"))
                }
                _ => {}
            }
        }
        problems
    }
}

/// Compiles a component and describes it, without installing it.
pub async fn inspect_component(
    engine: &PluginEngine,
    bytes: Vec<u8>,
) -> Result<ComponentReport, PluginError> {
    let digest = digest(&bytes);
    let manifest = read_embedded_manifest("(checked module)", &bytes)?;
    let component = engine
        .compile("(checked module)", &digest, Arc::new(bytes))
        .await?;
    let wasm_engine = engine.engine();
    let ty = component.component_type();
    let imports = ty
        .imports(wasm_engine)
        .map(|(name, _)| (name.to_owned(), classify_import(name)))
        .collect();
    let exports = ty
        .exports(wasm_engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    Ok(ComponentReport {
        digest,
        manifest,
        imports,
        exports,
        is_handler: exports_handler(&component, wasm_engine),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_classification_table() {
        let cases = [
            ("wasi:cli/environment@0.2.12", ImportKind::Sandboxed),
            ("wasi:filesystem/preopens@0.2.0", ImportKind::Sandboxed),
            ("wasi:sockets/tcp@0.2.3", ImportKind::Sandboxed),
            ("wasi:http/types@0.2.12", ImportKind::Sandboxed),
            ("megalis:platform/types@0.1.0", ImportKind::Sandboxed),
            (
                "megalis:platform/store@0.1.0",
                ImportKind::Capability(Capability::Store),
            ),
            (
                "megalis:platform/context@0.1.3",
                ImportKind::Capability(Capability::Context),
            ),
        ];
        for (name, kind) in cases {
            assert_eq!(classify_import(name), kind, "{name}");
        }
        for refused in [
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:cli/environment@0.3.0",
            "megalis:platform/store@0.2.0",
            "megalis:platform/teleport@0.1.0",
            "acme:evil/backdoor@1.0.0",
        ] {
            assert!(
                matches!(classify_import(refused), ImportKind::Unavailable(_)),
                "{refused}"
            );
        }
    }
}
