//! The operator's `plugins.toml`: which plugins run, from which module (by digest), with which
//! grants, limits and configuration. It is the only source of grants; the Kubernetes operator
//! renders it into a ConfigMap, and the server watches it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::PluginError;
use crate::manifest::{Capability, ManifestLimits, valid_id};

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    #[serde(default)]
    pub plugins: Vec<PluginEntry>,
}

/// One installed plugin.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// The id under which it is served (`/apps/{id}/`); must equal the manifest's id.
    pub id: String,
    /// SHA-256 of the module; the module is `<plugins dir>/<sha256>.wasm`.
    pub sha256: String,
    /// Capabilities the operator grants. The plugin gets manifest ∩ grants.
    #[serde(default, deserialize_with = "grants")]
    pub grants: BTreeSet<Capability>,
    /// Limits imposed by the operator; each one caps what the manifest asks for.
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Values the plugin reads with `context.config(key)`.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

/// Grants are given by short name (`store`) or WIT interface (`megalis:platform/store@0.1.0`, as
/// the Kubernetes operator writes them). A grant of a capability this host does not implement
/// grants nothing and is logged: one plugin asking for a newer platform must not stop the file
/// from loading for all the others; a module that imports it is refused at load, by name.
fn grants<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<Capability>, D::Error> {
    let names: Vec<String> = Deserialize::deserialize(d)?;
    Ok(names
        .iter()
        .filter_map(|name| {
            let found = Capability::from_grant(name);
            if found.is_none() {
                tracing::warn!(grant = %name, "grant of a capability this platform does not offer: ignored");
            }
            found
        })
        .collect())
}

impl PluginsConfig {
    pub fn parse(path: &str, text: &str) -> Result<PluginsConfig, PluginError> {
        let invalid = |reason: String| PluginError::Config {
            path: path.to_owned(),
            reason,
        };
        let config: PluginsConfig = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut seen = BTreeSet::new();
        for p in &config.plugins {
            if !valid_id(&p.id) {
                return Err(invalid(format!("invalid plugin id {:?}", p.id)));
            }
            if !seen.insert(p.id.as_str()) {
                return Err(invalid(format!("plugin {} is listed twice", p.id)));
            }
            if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!(
                    "plugin {}: sha256 must be 64 hexadecimal digits",
                    p.id
                )));
            }
        }
        Ok(config)
    }

    /// Reads the file; a missing file means no plugin (a fresh installation).
    pub fn load(path: &Path) -> Result<PluginsConfig, PluginError> {
        match std::fs::read_to_string(path) {
            Ok(text) => PluginsConfig::parse(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PluginsConfig::default()),
            Err(e) => Err(PluginError::Config {
                path: path.display().to_string(),
                reason: e.to_string(),
            }),
        }
    }
}

/// The limits a plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Linear memory summed over all memories of an instance.
    pub memory_bytes: u64,
    /// CPU and wall-clock deadline of one request.
    pub timeout: Duration,
    /// Requests of this plugin running at once on this server.
    pub max_concurrency: usize,
    /// Elements of any one table.
    pub table_elements: usize,
}

impl PluginLimits {
    /// What the plugin runs with: the manifest's request or the platform default, never above
    /// the operator's limit nor the platform's ceiling.
    pub fn effective(
        manifest: &ManifestLimits,
        operator: &ManifestLimits,
        defaults: &PluginLimits,
        ceiling_memory_bytes: u64,
    ) -> PluginLimits {
        fn pick<T: Ord + Copy>(asked: Option<T>, cap: Option<T>, default: T) -> T {
            let v = asked.unwrap_or(default);
            cap.map_or(v, |c| v.min(c))
        }
        let mib = |m: u64| m.saturating_mul(1024 * 1024);
        PluginLimits {
            memory_bytes: pick(
                manifest.memory_mib.map(mib),
                operator.memory_mib.map(mib),
                defaults.memory_bytes,
            )
            .min(ceiling_memory_bytes),
            timeout: Duration::from_millis(pick(
                manifest.timeout_ms,
                operator.timeout_ms,
                defaults.timeout.as_millis() as u64,
            )),
            max_concurrency: pick(
                manifest.max_concurrency,
                operator.max_concurrency,
                defaults.max_concurrency,
            )
            .max(1),
            table_elements: defaults.table_elements,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn grants_by_interface_name_and_unknown_capabilities() {
        let text = format!(
            "[[plugins]]\nid = \"m\"\nsha256 = \"{DIGEST}\"\ngrants = [\"megalis:platform/store@0.1.0\", \
             \"consent\", \"megalis:platform/teleport@0.1.0\", \"megalis:platform/audit@9.0.0\"]\n"
        );
        let c = PluginsConfig::parse("plugins.toml", &text).unwrap();
        assert_eq!(
            c.plugins[0].grants,
            BTreeSet::from([Capability::Store, Capability::Consent]),
            "unknown capabilities and other major versions grant nothing"
        );
    }

    /// The Kubernetes operator renders plugins.toml into a ConfigMap; its snapshot of a region
    /// with four plugins must load here as it is.
    #[test]
    fn the_operators_rendering_loads() {
        let snapshot = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../operator/build/tests/snapshots/snapshots__bretagne.snap"
        ))
        .unwrap();
        let line = snapshot
            .lines()
            .find_map(|l| l.trim_start().strip_prefix("plugins.toml: "))
            .expect("a plugins.toml in the snapshot");
        // A YAML double-quoted scalar: its escapes here are JSON's.
        let text: String = serde_json::from_str(line).unwrap();
        let c = PluginsConfig::parse("plugins.toml", &text).unwrap();
        let ids: Vec<&str> = c.plugins.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["breizh-rein", "imaging", "messaging", "video"]);
        let messaging = &c.plugins[2];
        assert!(messaging.grants.contains(&Capability::Store));
        assert_eq!(messaging.limits.memory_mib, Some(128));
        assert_eq!(messaging.limits.max_concurrency, Some(64));
        assert_eq!(messaging.config["mssante-domain"], "bretagne.mssante.fr");
    }

    #[test]
    fn parses_grants_limits_and_config() {
        let text = format!(
            "[[plugins]]\nid = \"imaging\"\nsha256 = \"{DIGEST}\"\ngrants = [\"store\"]\n\
             [plugins.limits]\ntimeout_ms = 500\n[plugins.config]\naet = \"MEGALIS\"\n"
        );
        let c = PluginsConfig::parse("plugins.toml", &text).unwrap();
        assert_eq!(c.plugins[0].grants, BTreeSet::from([Capability::Store]));
        assert_eq!(c.plugins[0].limits.timeout_ms, Some(500));
        assert_eq!(c.plugins[0].config["aet"], "MEGALIS");
    }

    #[test]
    fn refuses_bad_entries() {
        let cases = [
            (
                format!(
                    "[[plugins]]\nid = \"a\"\nsha256 = \"{DIGEST}\"\n[[plugins]]\nid = \"a\"\nsha256 = \"{DIGEST}\"\n"
                ),
                "twice",
            ),
            (
                "[[plugins]]\nid = \"a\"\nsha256 = \"abc\"\n".to_owned(),
                "64 hexadecimal",
            ),
            (
                format!("[[plugins]]\nid = \"A\"\nsha256 = \"{DIGEST}\"\n"),
                "invalid plugin id",
            ),
            (
                format!("[[plugins]]\nid = \"a\"\nsha256 = \"{DIGEST}\"\ngrants = \"store\"\n"),
                "sequence",
            ),
        ];
        for (text, expected) in cases {
            let err = PluginsConfig::parse("p", &text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn effective_limits_table() {
        let defaults = PluginLimits {
            memory_bytes: 64 << 20,
            timeout: Duration::from_secs(5),
            max_concurrency: 32,
            table_elements: 10_000,
        };
        let l = |m: Option<u64>, t: Option<u64>, c: Option<usize>| ManifestLimits {
            memory_mib: m,
            timeout_ms: t,
            max_concurrency: c,
        };
        // (manifest, operator, ceiling) → (memory MiB, timeout ms, concurrency)
        let cases = [
            (
                l(None, None, None),
                l(None, None, None),
                1024,
                (64, 5000, 32),
            ),
            (
                l(Some(16), Some(100), Some(4)),
                l(None, None, None),
                1024,
                (16, 100, 4),
            ),
            (
                l(Some(512), Some(60_000), Some(100)),
                l(Some(128), Some(2000), Some(8)),
                1024,
                (128, 2000, 8),
            ),
            (
                l(Some(512), None, None),
                l(None, None, None),
                256,
                (256, 5000, 32),
            ),
            (
                l(None, None, Some(0)),
                l(None, None, None),
                1024,
                (64, 5000, 1),
            ),
        ];
        for (manifest, operator, ceiling_mib, (mem, ms, conc)) in cases {
            let e = PluginLimits::effective(&manifest, &operator, &defaults, ceiling_mib << 20);
            assert_eq!(
                (
                    e.memory_bytes >> 20,
                    e.timeout.as_millis() as u64,
                    e.max_concurrency
                ),
                (mem, ms, conc),
                "{manifest:?} {operator:?}"
            );
        }
    }
}
