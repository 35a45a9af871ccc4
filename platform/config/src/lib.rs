//! The one configuration loader of Megalis.
//!
//! Every setting is a *key* declared once in [`KEYS`] with its type, default, help text and
//! whether it is a secret. From that single table come, for the key `section.key`:
//! - the TOML entry `key` in table `[section]` of the `--config` file,
//! - the command-line flag `--section-key`,
//! - the environment variable `MEGALIS_SECTION_KEY` (and `MEGALIS_SECTION_KEY_FILE` for secrets:
//!   the path of a file holding the value, as Kubernetes mounts Secrets).
//!
//! Precedence is flags > environment > file > defaults. The result is a typed [`Settings`] plus,
//! for `megalis config show`, where each value came from. We write this ourselves rather than use
//! a layered-config crate because the flag/env/TOML names, the `_FILE` secrets, the refusal of
//! unknown keys and the per-key provenance must all derive from the one table.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Arg, ArgAction, ArgMatches, Command};
use ipnet::IpNet;

mod keys;
pub use keys::{KEYS, Key, Kind, Scope};

/// A configuration problem, always naming the key (or file) and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {reason}")]
    FileUnreadable { path: PathBuf, reason: String },
    #[error("configuration file {path} is not valid TOML: {reason}")]
    FileMalformed { path: PathBuf, reason: String },
    #[error("unknown key `{key}` in configuration file {path}{hint}")]
    UnknownKey {
        key: String,
        path: PathBuf,
        hint: String,
    },
    #[error("invalid value for `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        origin: Source,
        reason: String,
    },
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(String),
    Env(String),
    EnvFile {
        var: String,
        path: PathBuf,
    },
    File(PathBuf),
    Default,
    /// Computed from other settings (e.g. paths inside the data directory).
    Derived,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::EnvFile { var, path } => {
                write!(f, "environment variable {var} ({})", path.display())
            }
            Source::File(path) => write!(f, "configuration file {}", path.display()),
            Source::Default => f.write_str("default"),
            Source::Derived => f.write_str("derived"),
        }
    }
}

/// One resolved raw value and its origin.
#[derive(Debug, Clone)]
pub struct Entry {
    pub raw: String,
    pub source: Source,
}

/// The merged raw values of every key that has one, before typing.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    entries: BTreeMap<&'static str, Entry>,
    pub config_file: Option<PathBuf>,
}

fn key_def(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

impl Resolved {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Overrides a value, as a shorthand flag does (`serve --demo` sets `mode = demo`).
    pub fn set(&mut self, key: &'static str, raw: impl Into<String>, source: Source) {
        debug_assert!(key_def(key).is_some(), "unknown key {key}");
        self.entries.insert(
            key,
            Entry {
                raw: raw.into(),
                source,
            },
        );
    }

    /// The effective configuration as TOML, secrets redacted, each line annotated with its source;
    /// values computed from others (paths in the data directory, the default public URL) are
    /// shown as `derived`, so an operator sees every path the server will really use.
    pub fn show(&self, settings: &Settings) -> String {
        let mut out = String::from(
            "# Effective configuration (precedence: flags > environment > file > defaults)\n",
        );
        let mut current_section = "";
        let mut keys: Vec<&Key> = KEYS.iter().collect();
        // Top-level keys first, then one table per section, as TOML requires.
        keys.sort_by_key(|k| (k.section().is_some(), k.section().unwrap_or(""), k.name));
        for key in keys {
            let section = key.section().unwrap_or("");
            if section != current_section {
                out.push_str(&format!("\n[{section}]\n"));
                current_section = section;
            }
            let line = match self.entries.get(key.name) {
                Some(entry) => {
                    let shown = if key.secret {
                        redact(key, &entry.raw)
                    } else {
                        entry.raw.clone()
                    };
                    format!("{} = {}", key.leaf(), toml_value(key, &shown))
                        + &format!("  # {}", entry.source)
                }
                None => match settings.derived(key.name) {
                    Some(value) => format!(
                        "{} = {}  # {}",
                        key.leaf(),
                        toml_value(key, &value),
                        Source::Derived
                    ),
                    None => format!("# {} = (unset)", key.leaf()),
                },
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }
}

fn redact(key: &Key, raw: &str) -> String {
    // A database URL stays useful with only its password hidden.
    if key.kind == Kind::DatabaseUrl {
        if let (Some(scheme_end), Some(at)) = (raw.find("://"), raw.rfind('@')) {
            if at > scheme_end {
                let userinfo = &raw[scheme_end + 3..at];
                if let Some(colon) = userinfo.find(':') {
                    return format!(
                        "{}{}:***{}",
                        &raw[..scheme_end + 3],
                        &userinfo[..colon],
                        &raw[at..]
                    );
                }
            }
            return raw.to_string();
        }
        return raw.to_string();
    }
    "***".to_string()
}

fn toml_value(key: &Key, raw: &str) -> String {
    match key.kind {
        Kind::Bool | Kind::Integer => raw.to_string(),
        Kind::CidrList => {
            let items: Vec<String> = split_list(raw).map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        }
        _ => format!("{raw:?}"),
    }
}

fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Adds the global options (every key of [`Scope::Global`] plus `--config`) to the root command.
pub fn global_args(cmd: Command) -> Command {
    let cmd = cmd.arg(
        Arg::new("config")
            .long("config")
            .value_name("FILE")
            .global(true)
            .help("TOML configuration file [env: MEGALIS_CONFIG]"),
    );
    add_args(cmd, Scope::Global, true)
}

/// Adds the options of one subcommand scope (e.g. [`Scope::Serve`]) to that subcommand.
pub fn scoped_args(cmd: Command, scope: Scope) -> Command {
    add_args(cmd, scope, false)
}

fn add_args(mut cmd: Command, scope: Scope, global: bool) -> Command {
    for key in KEYS.iter().filter(|k| k.scope == scope) {
        let mut help = format!("{} [env: {}", key.help, key.env_var());
        if key.secret {
            help.push_str(&format!(", or {}_FILE", key.env_var()));
        }
        help.push(']');
        if let Some(default) = key.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        let mut arg = Arg::new(key.name)
            .long(key.flag())
            .value_name(key.kind.value_name())
            .help(help)
            .global(global);
        if key.kind == Kind::Bool {
            arg = arg
                .num_args(0..=1)
                .default_missing_value("true")
                .action(ArgAction::Set);
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Merges flags (from `matches`), environment (through `env`, so tests can inject one), the
/// TOML file and defaults into raw values.
pub fn resolve(
    matches: &ArgMatches,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, ConfigError> {
    let mut resolved = Resolved::default();

    let config_file = flag_value(matches, "config")
        .map(PathBuf::from)
        .or_else(|| env("MEGALIS_CONFIG").map(PathBuf::from));
    let file_values = match &config_file {
        Some(path) => read_file(path)?,
        None => BTreeMap::new(),
    };
    resolved.config_file = config_file.clone();

    for key in KEYS {
        let env_var = key.env_var();
        let file_var = format!("{env_var}_FILE");
        let entry = if let Some(raw) = flag_value(matches, key.name) {
            Some(Entry {
                raw,
                source: Source::Flag(format!("--{}", key.flag())),
            })
        } else if let Some(raw) = env(&env_var) {
            Some(Entry {
                raw,
                source: Source::Env(env_var.clone()),
            })
        } else if let Some(path) = env(&file_var).filter(|_| key.secret) {
            let path = PathBuf::from(path);
            let raw = std::fs::read_to_string(&path).map_err(|e| ConfigError::Invalid {
                key: key.name.to_string(),
                origin: Source::Env(file_var.clone()),
                reason: format!("cannot read {}: {e}", path.display()),
            })?;
            // Secret files usually end with a newline that is not part of the secret.
            Some(Entry {
                raw: raw.trim_end_matches(['\n', '\r']).to_string(),
                source: Source::EnvFile {
                    var: file_var,
                    path,
                },
            })
        } else if let Some(raw) = file_values.get(key.name) {
            Some(Entry {
                raw: raw.clone(),
                source: Source::File(config_file.clone().unwrap_or_default()),
            })
        } else {
            key.default.map(|d| Entry {
                raw: d.to_string(),
                source: Source::Default,
            })
        };
        if let Some(entry) = entry {
            resolved.entries.insert(key.name, entry);
        }
    }
    Ok(resolved)
}

fn flag_value(matches: &ArgMatches, id: &str) -> Option<String> {
    // A key that is not an option of this subcommand is simply not given on the command line.
    matches.try_get_one::<String>(id).ok().flatten().cloned()
}

/// Reads a TOML file into dotted keys, refusing keys that are not in [`KEYS`] (a typo must not
/// be silently ignored in a health-data platform's configuration).
fn read_file(path: &Path) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::FileUnreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    parse_toml(&text, path)
}

fn parse_toml(text: &str, path: &Path) -> Result<BTreeMap<&'static str, String>, ConfigError> {
    let table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::FileMalformed {
                path: path.to_path_buf(),
                reason: e.to_string().trim_end().to_string(),
            })?;
    let mut out = BTreeMap::new();
    flatten(&table, "", path, &mut out)?;
    Ok(out)
}

fn flatten(
    table: &toml::Table,
    prefix: &str,
    path: &Path,
    out: &mut BTreeMap<&'static str, String>,
) -> Result<(), ConfigError> {
    for (k, v) in table {
        let dotted = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if let toml::Value::Table(inner) = v
            && KEYS
                .iter()
                .any(|key| key.section() == Some(dotted.as_str()))
        {
            flatten(inner, &dotted, path, out)?;
            continue;
        }
        let Some(key) = key_def(&dotted) else {
            return Err(ConfigError::UnknownKey {
                hint: suggestion(&dotted),
                key: dotted,
                path: path.to_path_buf(),
            });
        };
        let raw = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s.clone()),
                        other => {
                            return Err(ConfigError::Invalid {
                                key: dotted,
                                origin: Source::File(path.to_path_buf()),
                                reason: format!("expected a list of strings, found {other}"),
                            });
                        }
                    }
                }
                parts.join(",")
            }
            other => {
                return Err(ConfigError::Invalid {
                    key: dotted,
                    origin: Source::File(path.to_path_buf()),
                    reason: format!("unsupported value {other}"),
                });
            }
        };
        out.insert(key.name, raw);
    }
    Ok(())
}

/// "did you mean" for a mistyped key: the known key with the smallest edit distance.
fn suggestion(unknown: &str) -> String {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let cost = usize::from(ca != *cb);
                cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    KEYS.iter()
        .map(|k| (distance(unknown, k.name), k.name))
        .min()
        .filter(|(d, _)| *d <= 3)
        .map(|(_, name)| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

/// How the server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Real region: test identifiers refused, no test endpoints.
    Production,
    /// Automated tests: test-only endpoints are enabled.
    Test,
    /// A laptop demonstration: demo data seeded, demo logins printed.
    Demo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobBackend {
    Local,
    S3,
}

/// Federated login to an upstream OpenID Provider (Pro Santé Connect).
#[derive(Debug, Clone)]
pub struct UpstreamOidc {
    /// Without trailing slash.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    pub acr: String,
    pub national_id_claim: String,
    pub extra_ca: Option<PathBuf>,
}

/// The typed configuration every subcommand receives.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: Option<PathBuf>,
    pub data_dir: PathBuf,
    pub mode: Mode,
    /// The one source of every absolute URL the platform emits. Always without trailing slash.
    pub public_url: String,
    pub trusted_proxies: Vec<IpNet>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub log_format: LogFormat,
    pub log_level: String,
    pub listen: SocketAddr,
    pub plain_http_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Mutual-TLS listener for CPS cards; set only together with `cps_ca`.
    pub mtls_listen: Option<SocketAddr>,
    pub cps_ca: Option<PathBuf>,
    pub cps_crl: Option<PathBuf>,
    /// Where browsers reach the mutual-TLS listener (no trailing slash); set with `mtls_listen`.
    pub cps_public_url: Option<String>,
    pub cps_reload_interval: Duration,
    pub oidc_upstream: Option<UpstreamOidc>,
    pub http_body_limit: u64,
    /// Largest shared document content (`POST /fhir/Binary`, streamed).
    pub documents_max_size: u64,
    pub http_request_timeout: Duration,
    pub http_header_timeout: Duration,
    pub shutdown_grace_period: Duration,
    pub audit_signing_key: PathBuf,
    pub audit_checkpoint_file: PathBuf,
    pub audit_checkpoint_interval: Duration,
    pub blobs_backend: BlobBackend,
    pub blobs_path: PathBuf,
    pub blobs_s3_bucket: Option<String>,
    pub blobs_s3_endpoint: Option<String>,
    pub blobs_s3_region: Option<String>,
    pub blobs_s3_access_key_id: Option<String>,
    pub blobs_s3_secret_access_key: Option<String>,
    pub blobs_s3_allow_http: bool,
    pub auth_session_idle_timeout: Duration,
    pub auth_session_absolute_timeout: Duration,
    pub auth_access_token_lifetime: Duration,
    pub auth_refresh_token_lifetime: Duration,
    pub auth_key_rotation: Duration,
    /// `ES256` or `RS256`.
    pub auth_access_token_algorithm: String,
    pub auth_lockout_threshold: u32,
    pub auth_lockout_duration: Duration,
    pub plugins_config: PathBuf,
    pub plugins_dir: PathBuf,
    pub plugins_max_instances: u32,
    /// MLLP listener of the identity feed.
    pub mllp_listen: SocketAddr,
    /// Sender → assigning authorities bindings of the MLLP listener.
    pub mllp_senders: PathBuf,
    /// Accept test and demonstration INS OIDs (never in production).
    pub identity_test_ins: bool,
    /// MLLP over TLS with client certificates.
    pub mllp_tls: bool,
    /// OID of the regional patient identifier.
    pub identity_regional_oid: String,
    pub plugins_epoch_tick: Duration,
    pub plugins_max_memory: u64,
    pub plugins_default_memory: u64,
    pub plugins_default_timeout: Duration,
    pub plugins_default_concurrency: u32,
    pub plugins_watch_interval: Duration,
}

struct Typer<'a> {
    resolved: &'a Resolved,
}

impl Typer<'_> {
    fn entry(&self, key: &'static str) -> Option<&Entry> {
        self.resolved.get(key)
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let origin = self
            .resolved
            .get(key)
            .map(|e| e.source.clone())
            .unwrap_or(Source::Default);
        ConfigError::Invalid {
            key: key.to_string(),
            origin,
            reason: reason.into(),
        }
    }

    fn parse<T>(
        &self,
        key: &'static str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) if e.raw.trim().is_empty() => Ok(None),
            Some(e) => f(e.raw.trim())
                .map(Some)
                .map_err(|reason| self.invalid(key, format!("{:?}: {reason}", e.raw))),
        }
    }

    fn required<T>(
        &self,
        key: &'static str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(key, f)?
            .ok_or_else(|| self.invalid(key, "a value is required"))
    }
}

fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|_| "not a socket address (expected IP:PORT, e.g. 127.0.0.1:8443)".to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("not a duration ({e}); expected e.g. 500ms, 10s, 2m"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Sizes like `10MiB`, `512KiB`, `1GB` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a size such as 10MiB".to_string())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use B, KiB, MiB, GiB)"
            ));
        }
    };
    n.checked_mul(factor).ok_or_else(|| "size too large".into())
}

fn parse_public_url(s: &str) -> Result<String, String> {
    let (scheme, rest) = s
        .split_once("://")
        .ok_or("not an absolute URL (expected https://host[:port][/path])")?;
    if scheme != "https" && scheme != "http" {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('@') {
        return Err("missing or invalid host".into());
    }
    if rest.contains(['?', '#']) {
        return Err("a public URL has no query or fragment".into());
    }
    Ok(s.trim_end_matches('/').to_string())
}

fn positive_u32(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "expected a positive integer".to_string())
}

fn parse_database_url(s: &str) -> Result<String, String> {
    if s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_string())
    } else {
        Err("expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE".into())
    }
}

impl Settings {
    /// The value of a key that has no explicit value but is computed from others.
    fn derived(&self, key: &str) -> Option<String> {
        let path = |p: &PathBuf| Some(p.display().to_string());
        match key {
            "public_url" => Some(self.public_url.clone()),
            "database.url" => Some(self.database_url.clone()),
            "audit.signing_key" => path(&self.audit_signing_key),
            "audit.checkpoint_file" => path(&self.audit_checkpoint_file),
            "blobs.path" => path(&self.blobs_path),
            "plugins.config" => path(&self.plugins_config),
            "plugins.dir" => path(&self.plugins_dir),
            "cps.public_url" => self.cps_public_url.clone(),
            _ => None,
        }
    }

    /// Types and checks every value; the first problem is returned with its key and origin.
    pub fn from_resolved(resolved: &Resolved) -> Result<Settings, ConfigError> {
        let t = Typer { resolved };
        let data_dir: PathBuf = t.required("data_dir", |s| Ok(PathBuf::from(s)))?;
        let mode = t.required("mode", |s| match s {
            "production" => Ok(Mode::Production),
            "test" => Ok(Mode::Test),
            "demo" => Ok(Mode::Demo),
            _ => Err("expected production, test or demo".into()),
        })?;
        let listen = t.required("listen", parse_socket_addr)?;
        let public_url = match t.parse("public_url", parse_public_url)? {
            Some(url) => url,
            None => {
                // Without an explicit public URL, the HTTPS listener is what clients reach.
                let host = if listen.ip().is_unspecified() {
                    "localhost".to_string()
                } else if listen.is_ipv6() {
                    format!("[{}]", listen.ip())
                } else {
                    listen.ip().to_string()
                };
                format!("https://{host}:{}", listen.port())
            }
        };
        let trusted_proxies = t
            .parse("trusted_proxies", |s| {
                split_list(s)
                    .map(|item| {
                        item.parse::<IpNet>()
                            .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                            .map_err(|_| format!("{item:?} is not a CIDR (e.g. 10.0.0.0/8)"))
                    })
                    .collect()
            })?
            .unwrap_or_default();
        let database_url = t
            .parse("database.url", parse_database_url)?
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("megalis.db").display()));
        let in_data_dir = |key: &'static str, file: &str| -> Result<PathBuf, ConfigError> {
            Ok(t.parse(key, |s| Ok(PathBuf::from(s)))?
                .unwrap_or_else(|| data_dir.join(file)))
        };
        let tls_cert = t.parse("tls.cert", |s| Ok(PathBuf::from(s)))?;
        let tls_key = t.parse("tls.key", |s| Ok(PathBuf::from(s)))?;
        if tls_cert.is_some() != tls_key.is_some() {
            let missing = if tls_cert.is_none() {
                "tls.cert"
            } else {
                "tls.key"
            };
            return Err(t.invalid(missing, "tls.cert and tls.key must be given together"));
        }
        let mtls_listen = t.parse("mtls_listen", parse_socket_addr)?;
        let cps_ca = t.parse("cps.ca", |s| Ok(PathBuf::from(s)))?;
        if mtls_listen.is_some() && cps_ca.is_none() {
            return Err(t.invalid(
                "mtls_listen",
                "the mutual-TLS listener needs cps.ca, the trust bundle of the card certificates",
            ));
        }
        if mtls_listen.is_some() && mtls_listen == Some(listen) {
            return Err(t.invalid("mtls_listen", "must differ from listen"));
        }
        let cps_public_url = match (mtls_listen, t.parse("cps.public_url", parse_public_url)?) {
            (None, _) => None,
            (Some(_), Some(url)) => Some(url),
            (Some(addr), None) => {
                // The portal's host on the card listener's port.
                let rest = public_url.split_once("://").map_or("", |(_, r)| r);
                let host = match rest.strip_prefix('[') {
                    Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or("")),
                    None => rest.split([':', '/']).next().unwrap_or("").to_string(),
                };
                Some(format!("https://{host}:{}", addr.port()))
            }
        };
        let oidc_upstream = match t.parse("oidc.upstream_issuer", parse_public_url)? {
            None => None,
            Some(issuer) => {
                let text = |key: &'static str| t.parse(key, |s| Ok(s.to_string()));
                let needed = |key: &'static str| -> Result<String, ConfigError> {
                    text(key)?
                        .filter(|v| !v.trim().is_empty())
                        .ok_or_else(|| t.invalid(key, "required when oidc.upstream_issuer is set"))
                };
                Some(UpstreamOidc {
                    issuer,
                    client_id: needed("oidc.upstream_client_id")?,
                    client_secret: needed("oidc.upstream_client_secret")?,
                    scope: t.required("oidc.upstream_scope", |s| Ok(s.to_string()))?,
                    acr: t.required("oidc.upstream_acr", |s| Ok(s.to_string()))?,
                    national_id_claim: t
                        .required("oidc.upstream_national_id_claim", |s| Ok(s.to_string()))?,
                    extra_ca: t.parse("oidc.upstream_ca", |s| Ok(PathBuf::from(s)))?,
                })
            }
        };
        let blobs_backend = t.required("blobs.backend", |s| match s {
            "local" => Ok(BlobBackend::Local),
            "s3" => Ok(BlobBackend::S3),
            _ => Err("expected local or s3".into()),
        })?;
        let text = |key: &'static str| t.parse(key, |s| Ok(s.to_string()));
        let settings = Settings {
            config_file: resolved.config_file.clone(),
            mode,
            public_url,
            trusted_proxies,
            database_url,
            database_max_connections: t.required("database.max_connections", |s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "expected a positive integer".to_string())
            })?,
            log_format: t.required("log.format", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected text or json".into()),
            })?,
            log_level: t.required("log.level", |s| Ok(s.to_string()))?,
            listen,
            plain_http_listen: t.parse("plain_http_listen", parse_socket_addr)?,
            tls_cert,
            tls_key,
            mtls_listen,
            cps_ca,
            cps_crl: t.parse("cps.crl", |s| Ok(PathBuf::from(s)))?,
            cps_public_url,
            oidc_upstream,
            cps_reload_interval: t.required("cps.reload_interval", parse_duration)?,
            http_body_limit: t.required("http.body_limit", parse_size)?,
            documents_max_size: t.required("documents.max_size", parse_size)?,
            http_request_timeout: t.required("http.request_timeout", parse_duration)?,
            http_header_timeout: t.required("http.header_timeout", parse_duration)?,
            shutdown_grace_period: t.required("shutdown.grace_period", parse_duration)?,
            audit_signing_key: in_data_dir("audit.signing_key", "audit-signing-key.pk8")?,
            audit_checkpoint_file: in_data_dir("audit.checkpoint_file", "audit-checkpoints.jsonl")?,
            audit_checkpoint_interval: t.required("audit.checkpoint_interval", parse_duration)?,
            blobs_path: in_data_dir("blobs.path", "blobs")?,
            blobs_s3_bucket: text("blobs.s3_bucket")?,
            blobs_s3_endpoint: text("blobs.s3_endpoint")?,
            blobs_s3_region: text("blobs.s3_region")?,
            blobs_s3_access_key_id: text("blobs.s3_access_key_id")?,
            blobs_s3_secret_access_key: text("blobs.s3_secret_access_key")?,
            blobs_s3_allow_http: t.required("blobs.s3_allow_http", parse_bool)?,
            auth_session_idle_timeout: t.required("auth.session_idle_timeout", parse_duration)?,
            auth_session_absolute_timeout: t
                .required("auth.session_absolute_timeout", parse_duration)?,
            auth_access_token_lifetime: t.required("auth.access_token_lifetime", parse_duration)?,
            auth_refresh_token_lifetime: t
                .required("auth.refresh_token_lifetime", parse_duration)?,
            auth_key_rotation: t.required("auth.key_rotation", parse_duration)?,
            auth_access_token_algorithm: t.required(
                "auth.access_token_algorithm",
                |s| match s {
                    "ES256" | "RS256" => Ok(s.to_string()),
                    _ => Err("expected ES256 or RS256".to_string()),
                },
            )?,
            auth_lockout_threshold: t.required("auth.lockout_threshold", |s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| "expected a positive integer".to_string())
            })?,
            auth_lockout_duration: t.required("auth.lockout_duration", parse_duration)?,
            plugins_config: in_data_dir("plugins.config", "plugins.toml")?,
            plugins_dir: in_data_dir("plugins.dir", "plugins")?,
            plugins_max_instances: t.required("plugins.max_instances", positive_u32)?,
            mllp_listen: t.required("mllp.listen", parse_socket_addr)?,
            mllp_senders: in_data_dir("mllp.senders", "mllp-senders.toml")?,
            mllp_tls: {
                let on = t.required("mllp.tls", parse_bool)?;
                let addr = t.required("mllp.listen", parse_socket_addr)?;
                if !on && !addr.ip().is_loopback() {
                    return Err(t.invalid(
                        "mllp.listen",
                        "a non-loopback MLLP listener carries identities over the network: set \
                         mllp.tls = true (client certificates required)",
                    ));
                }
                on
            },
            identity_regional_oid: t.required("identity.regional_oid", |s| {
                let ok = !s.is_empty()
                    && s.split('.').all(|arc| {
                        !arc.is_empty()
                            && arc.bytes().all(|b| b.is_ascii_digit())
                            && (arc == "0" || !arc.starts_with('0'))
                    })
                    && s.contains('.');
                if ok {
                    Ok(s.to_string())
                } else {
                    Err("expected an OID such as 1.2.250.1.213.1.4.8 (digits and dots)".to_string())
                }
            })?,
            identity_test_ins: {
                let on = t.required("identity.test_ins", parse_bool)?;
                if on && mode == Mode::Production {
                    return Err(t.invalid(
                        "identity.test_ins",
                        "test and demonstration INS are never accepted in production mode",
                    ));
                }
                on
            },
            plugins_epoch_tick: t.required("plugins.epoch_tick", |s| {
                parse_duration(s).and_then(|d| {
                    if d.is_zero() {
                        Err("must be longer than zero".into())
                    } else {
                        Ok(d)
                    }
                })
            })?,
            plugins_max_memory: t.required("plugins.max_memory", parse_size)?,
            plugins_default_memory: t.required("plugins.default_memory", parse_size)?,
            plugins_default_timeout: t.required("plugins.default_timeout", parse_duration)?,
            plugins_default_concurrency: t.required("plugins.default_concurrency", positive_u32)?,
            plugins_watch_interval: t.required("plugins.watch_interval", parse_duration)?,
            blobs_backend,
            data_dir,
        };
        if settings.blobs_backend == BlobBackend::S3 && settings.blobs_s3_bucket.is_none() {
            return Err(t.invalid("blobs.s3_bucket", "required when blobs.backend = \"s3\""));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests;
