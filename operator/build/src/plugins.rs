//! Plugins: which Plugin resources a platform loads, the `plugins.toml` the server watches, and
//! the init container that downloads modules and refuses any byte that does not match the digest.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, VolumeMount};
use megalis_operator_api::{Plugin, RegionalPlatform, check_plugin};
use serde::Serialize;

use crate::BuildError;
use crate::layout::DATA_DIR;

/// A plugin the platform will load.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadedPlugin {
    #[serde(skip)]
    pub id: String,
    pub version: String,
    pub url: String,
    pub sha256: String,
    pub module: String,
    pub capabilities: Vec<String>,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Limits {
    pub memory_mib: u32,
    pub timeout_ms: u32,
    pub max_instances: u32,
}

/// What became of each plugin the platform enables, for the `PluginsReady` condition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PluginReport {
    pub enabled: usize,
    pub loaded: Vec<String>,
    /// Enabled but no Plugin resource of that name exists.
    pub missing: Vec<String>,
    /// Enabled but refused, with the reason.
    pub invalid: Vec<(String, String)>,
}

pub struct PluginSet {
    pub loaded: Vec<LoadedPlugin>,
    pub report: PluginReport,
}

pub fn select(platform: &RegionalPlatform, plugins: &[Plugin]) -> PluginSet {
    let platform_name = platform.metadata.name.as_deref().unwrap_or_default();
    let mut report = PluginReport {
        enabled: platform.spec.plugins.len(),
        ..Default::default()
    };
    let mut loaded = Vec::new();
    // Sorted and deduplicated so that the order of the list never changes the checksum.
    let mut enabled: Vec<&String> = platform.spec.plugins.iter().collect();
    enabled.sort();
    enabled.dedup();
    for id in enabled {
        // A platform only sees Plugins of its own namespace (a Plugin without namespace, as in
        // a file given to `render`, is taken to be in the platform's).
        let Some(plugin) = plugins
            .iter()
            .filter(|p| {
                p.metadata.namespace.is_none()
                    || p.metadata.namespace == platform.metadata.namespace
            })
            .find(|p| p.metadata.name.as_ref() == Some(id))
        else {
            report.missing.push(id.clone());
            continue;
        };
        if let Err(error) = check_plugin(plugin, platform_name) {
            report.invalid.push((id.clone(), error.to_string()));
            continue;
        }
        let spec = &plugin.spec;
        loaded.push(LoadedPlugin {
            id: id.clone(),
            version: spec.version.clone(),
            url: spec.module.url.clone(),
            sha256: spec.module.sha256.clone(),
            module: module_path(&spec.module.sha256),
            capabilities: spec.capabilities.clone(),
            limits: Limits {
                memory_mib: spec.limits.memory_mib,
                timeout_ms: spec.limits.timeout_ms,
                max_instances: spec.limits.max_instances,
            },
            config: spec.config.clone(),
        });
        report.loaded.push(id.clone());
    }
    PluginSet { loaded, report }
}

/// Modules are content-addressed: the file name is the digest the server checks again at load.
fn module_path(sha256: &str) -> String {
    format!("{DATA_DIR}/plugins/{sha256}.wasm")
}

/// One entry of `plugins.toml`, in the format of the server's plugin host
/// (`megalis_plugin_host::PluginsConfig`; a test there parses this crate's snapshot).
#[derive(Serialize)]
struct HostEntry<'a> {
    id: &'a str,
    sha256: &'a str,
    /// WIT interface names; the host grants those it implements and ignores, with a warning,
    /// those it does not (a plugin importing one is then refused at load, by name).
    grants: &'a [String],
    limits: HostLimits,
    config: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct HostLimits {
    memory_mib: u32,
    timeout_ms: u32,
    /// One instance per request: the Plugin's `maxInstances` is its concurrent-request cap.
    max_concurrency: u32,
}

#[derive(Serialize)]
struct HostFile<'a> {
    plugins: Vec<HostEntry<'a>>,
}

/// `plugins.toml`: one `[[plugins]]` entry per loaded plugin, sorted by id. The module itself
/// is `<data dir>/plugins/<sha256>.wasm`, where the init container put it.
pub fn render_toml(loaded: &[LoadedPlugin]) -> Result<String, BuildError> {
    let mut sorted: Vec<&LoadedPlugin> = loaded.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let file = HostFile {
        plugins: sorted
            .into_iter()
            .map(|p| HostEntry {
                id: &p.id,
                sha256: &p.sha256,
                grants: &p.capabilities,
                limits: HostLimits {
                    memory_mib: p.limits.memory_mib,
                    timeout_ms: p.limits.timeout_ms,
                    max_concurrency: p.limits.max_instances,
                },
                config: &p.config,
            })
            .collect(),
    };
    let body = if file.plugins.is_empty() {
        "plugins = []\n".to_owned()
    } else {
        toml::to_string(&file)?
    };
    Ok(format!(
        "# Rendered by megalis-operator from the Plugin resources; the server watches this file.\n{body}"
    ))
}

/// Downloads each module to a temporary name, checks its SHA-256, then renames it into place.
/// URLs and digests are passed as arguments, never interpolated into the script, so a URL cannot
/// inject shell.
const FETCH_SCRIPT: &str = r#"set -eu
dir="$1"; shift
mkdir -p "$dir"
while [ "$#" -ge 2 ]; do
  sha="$1"; url="$2"; shift 2
  target="$dir/$sha.wasm"
  if [ -f "$target" ] && echo "$sha  $target" | sha256sum -c - >/dev/null 2>&1; then continue; fi
  wget -q -O "$target.part" "$url"
  if ! echo "$sha  $target.part" | sha256sum -c - >/dev/null 2>&1; then
    echo "module $url does not match sha256 $sha" >&2; rm -f "$target.part"; exit 1
  fi
  mv "$target.part" "$target"
done
"#;

pub fn fetcher(
    image: &str,
    loaded: &[LoadedPlugin],
    security: k8s_openapi::api::core::v1::SecurityContext,
) -> Option<Container> {
    if loaded.is_empty() {
        return None;
    }
    let mut args = vec![
        FETCH_SCRIPT.to_owned(),
        "fetch-plugins".to_owned(),
        format!("{DATA_DIR}/plugins"),
    ];
    for plugin in loaded {
        args.push(plugin.sha256.clone());
        args.push(plugin.url.clone());
    }
    Some(Container {
        name: "fetch-plugins".into(),
        image: Some(image.to_owned()),
        command: Some(vec!["sh".into(), "-c".into()]),
        args: Some(args),
        security_context: Some(security),
        volume_mounts: Some(vec![VolumeMount {
            name: "data".into(),
            mount_path: DATA_DIR.into(),
            ..Default::default()
        }]),
        ..Default::default()
    })
}
