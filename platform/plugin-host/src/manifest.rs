//! The plugin manifest (`plugin.toml`), written by the plugin's author and embedded in the
//! component (custom section `megalis-plugin-manifest`, see the SDK's `manifest!`), so that the
//! module's digest covers it.

use std::collections::BTreeSet;
use std::fmt;

use serde::Deserialize;

use crate::PluginError;

/// Version of the `megalis:platform` WIT package this host implements.
pub const WIT_VERSION: &str = "0.1.1";

/// Whether a requested package version is served by [`WIT_VERSION`] (0.x: same minor).
fn compatible(version: &str) -> bool {
    let mut asked = version.split('.');
    let mut ours = WIT_VERSION.split('.');
    asked.next() == ours.next() && asked.next() == ours.next()
}

/// Name of the custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "megalis-plugin-manifest";

/// A capability of package `megalis:platform`, by interface name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    Context,
    Consent,
    Store,
    Audit,
    Logging,
    Identity,
    Directory,
    Events,
    Blobs,
}

impl Capability {
    pub const ALL: [Capability; 9] = [
        Capability::Context,
        Capability::Consent,
        Capability::Store,
        Capability::Audit,
        Capability::Logging,
        Capability::Identity,
        Capability::Directory,
        Capability::Events,
        Capability::Blobs,
    ];

    /// The WIT interface name (`megalis:platform/<name>`).
    pub fn interface(self) -> &'static str {
        match self {
            Capability::Context => "context",
            Capability::Consent => "consent",
            Capability::Store => "store",
            Capability::Audit => "audit",
            Capability::Logging => "logging",
            Capability::Identity => "identity",
            Capability::Directory => "directory",
            Capability::Events => "events",
            Capability::Blobs => "blobs",
        }
    }

    /// A grant: the short name (`store`) or the WIT interface with a version this host
    /// implements (`megalis:platform/store@0.1.0`; semver: same major, and 0.x same minor).
    pub fn from_grant(name: &str) -> Option<Capability> {
        let short = match name.strip_prefix("megalis:platform/") {
            Some(rest) => {
                let (interface, version) = rest.split_once('@').unwrap_or((rest, WIT_VERSION));
                if !compatible(version) {
                    return None;
                }
                interface
            }
            None => name,
        };
        Capability::ALL.into_iter().find(|c| c.interface() == short)
    }

    pub fn from_interface(name: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.interface() == name)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.interface())
    }
}

/// How a route authenticates its callers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteAuth {
    /// Anyone; the plugin sees an anonymous principal.
    Public,
    /// Portal users with a session; the application grant is checked and the host enforces CSRF
    /// protection on state-changing methods.
    Session,
    /// API clients with a bearer token carrying all of these scopes; no CSRF (no cookies).
    Bearer(Vec<String>),
}

impl fmt::Display for RouteAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteAuth::Public => f.write_str("public"),
            RouteAuth::Session => f.write_str("session"),
            RouteAuth::Bearer(scopes) => write!(f, "bearer({})", scopes.join(" ")),
        }
    }
}

/// One route: a path prefix under the plugin's root and its authentication.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub path: String,
    pub auth: RouteAuth,
}

/// What the host does with a message a member of a channel's room sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Deliver {
    /// Each message goes to the other members of the room as it is (signalling: offers,
    /// answers, ICE candidates); the plugin is not called per message.
    #[default]
    Relay,
    /// Each message is POSTed to the channel's `on-message` route; a 2xx answer with a
    /// non-empty body is what the other members receive.
    Plugin,
}

/// Default and ceiling of `max-message-bytes`.
pub const DEFAULT_CHANNEL_MESSAGE_BYTES: usize = 64 * 1024;
pub const MAX_CHANNEL_MESSAGE_BYTES: usize = 1024 * 1024;
/// Default and ceiling of `max-members`.
pub const DEFAULT_CHANNEL_MEMBERS: usize = 16;
pub const MAX_CHANNEL_MEMBERS: usize = 1024;

fn default_message_bytes() -> usize {
    DEFAULT_CHANNEL_MESSAGE_BYTES
}

fn default_members() -> usize {
    DEFAULT_CHANNEL_MEMBERS
}

/// A WebSocket channel the host terminates for the plugin (`[[channels]]`): clients join a
/// room of it at `GET {path}?room=ROOM` with a WebSocket upgrade; the host authenticates them
/// as `auth` says and asks the plugin (`join`) before admitting them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Channel {
    /// Exact path under the plugin's root; requests for it are the host's, never a route's.
    pub path: String,
    pub auth: RouteAuth,
    /// Plugin path the host POSTs `{"room", "channel"}` to with the joining principal in
    /// context: a 2xx answer admits the member.
    pub join: String,
    #[serde(default)]
    pub deliver: Deliver,
    /// Plugin path receiving each message when `deliver = "plugin"`.
    #[serde(default)]
    pub on_message: Option<String>,
    #[serde(default = "default_message_bytes")]
    pub max_message_bytes: usize,
    /// Members of one room on one server (see the plugin guide for several replicas).
    #[serde(default = "default_members")]
    pub max_members: usize,
}

impl Channel {
    /// The plugin paths the host calls for this channel: only the host may call them.
    pub fn hook_paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.join.as_str()).chain(self.on_message.as_deref())
    }
}

/// Limits the author asks for; the operator's limits, when lower, win.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestLimits {
    pub memory_mib: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_concurrency: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub id: String,
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub capabilities: BTreeSet<Capability>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub limits: ManifestLimits,
    /// Core event topics the plugin reads through `events.poll` (see [`CORE_TOPICS`]).
    #[serde(default)]
    pub subscribe: BTreeSet<String>,
}

/// The topics the core publishes: a document deposited or replaced in the shared record, two
/// regional ids merged into one (plugins holding records under the merged id re-key them), and
/// such a merge undone.
pub const CORE_TOPICS: [&str; 3] = [
    "core.document.shared",
    "core.patient.merged",
    "core.patient.unmerged",
];

impl Manifest {
    pub fn parse(plugin: &str, text: &str) -> Result<Manifest, PluginError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| PluginError::Manifest {
            plugin: plugin.to_owned(),
            reason: e.to_string(),
        })?;
        manifest.validate(plugin)?;
        Ok(manifest)
    }

    /// The manifest of a component that embeds none (a plain `wasi:http` component): no
    /// capability, one public route for everything.
    pub fn plain(id: &str) -> Manifest {
        Manifest {
            id: id.to_owned(),
            version: "0.0.0".to_owned(),
            description: None,
            capabilities: BTreeSet::new(),
            routes: vec![Route {
                path: "/".to_owned(),
                auth: RouteAuth::Public,
            }],
            channels: Vec::new(),
            limits: ManifestLimits::default(),
            subscribe: BTreeSet::new(),
        }
    }

    fn validate(&self, plugin: &str) -> Result<(), PluginError> {
        let invalid = |reason: String| PluginError::Manifest {
            plugin: plugin.to_owned(),
            reason,
        };
        if !valid_id(&self.id) {
            return Err(invalid(format!(
                "id {:?} must be 1-63 characters of a-z, 0-9 and '-', starting with a letter",
                self.id
            )));
        }
        for topic in &self.subscribe {
            if !CORE_TOPICS.contains(&topic.as_str()) {
                return Err(invalid(format!(
                    "subscribe names {topic:?}; the core publishes {}",
                    CORE_TOPICS.join(", ")
                )));
            }
        }
        if !self.subscribe.is_empty() && !self.capabilities.contains(&Capability::Events) {
            return Err(invalid(
                "subscribe needs the `events` capability in capabilities".into(),
            ));
        }
        for route in &self.routes {
            if !route.path.starts_with('/') {
                return Err(invalid(format!(
                    "route path {:?} must start with '/'",
                    route.path
                )));
            }
            if let RouteAuth::Bearer(scopes) = &route.auth
                && scopes.is_empty()
            {
                return Err(invalid(format!(
                    "route {} declares bearer authentication without a scope",
                    route.path
                )));
            }
        }
        let mut paths = BTreeSet::new();
        for channel in &self.channels {
            self.validate_channel(channel).map_err(invalid)?;
            if !paths.insert(channel.path.as_str()) {
                return Err(invalid(format!(
                    "channel path {:?} is declared twice",
                    channel.path
                )));
            }
        }
        Ok(())
    }

    fn validate_channel(&self, c: &Channel) -> Result<(), String> {
        let name = &c.path;
        if !c.path.starts_with('/') || c.path.contains('?') {
            return Err(format!(
                "channel path {name:?} must start with '/' and hold no query"
            ));
        }
        if let RouteAuth::Bearer(scopes) = &c.auth
            && scopes.is_empty()
        {
            return Err(format!(
                "channel {name} declares bearer authentication without a scope"
            ));
        }
        match (c.deliver, &c.on_message) {
            (Deliver::Plugin, None) => {
                return Err(format!(
                    "channel {name} delivers to the plugin but names no on-message path"
                ));
            }
            (Deliver::Relay, Some(_)) => {
                return Err(format!(
                    "channel {name} relays messages: on-message is only for deliver = \"plugin\""
                ));
            }
            _ => {}
        }
        for hook in c.hook_paths() {
            if !hook.starts_with('/') || hook.contains('?') {
                return Err(format!(
                    "channel {name}: path {hook:?} must start with '/' and hold no query"
                ));
            }
            // The hook runs in the plugin like any request; a path no route covers would
            // refuse every join (or message) at run time, so it is refused here instead.
            if self.route_for(hook).is_none() {
                return Err(format!(
                    "channel {name}: no route covers its plugin path {hook}"
                ));
            }
        }
        if !(1..=MAX_CHANNEL_MESSAGE_BYTES).contains(&c.max_message_bytes) {
            return Err(format!(
                "channel {name}: max-message-bytes must be 1 to {MAX_CHANNEL_MESSAGE_BYTES}"
            ));
        }
        if !(1..=MAX_CHANNEL_MEMBERS).contains(&c.max_members) {
            return Err(format!(
                "channel {name}: max-members must be 1 to {MAX_CHANNEL_MEMBERS}"
            ));
        }
        Ok(())
    }

    /// The channel at exactly `path` (no prefix matching: a channel is one endpoint).
    pub fn channel_at(&self, path: &str) -> Option<&Channel> {
        self.channels.iter().find(|c| c.path == path)
    }

    /// Whether `path` is a plugin path the host calls for a channel (join, on-message), which
    /// clients may not call directly: the plugin can trust that such a call comes from the host.
    pub fn is_channel_hook(&self, path: &str) -> bool {
        self.channels.iter().any(|c| {
            c.hook_paths()
                .any(|h| h.trim_end_matches('/') == path.trim_end_matches('/'))
        })
    }

    /// The route serving `path`: the longest matching prefix, on segment boundaries. No route
    /// means no access (deny by default).
    pub fn route_for(&self, path: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| prefix_matches(&r.path, path))
            .max_by_key(|r| r.path.trim_end_matches('/').len())
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
        None => false,
    }
}

/// Plugin ids name URL segments, metric labels and store namespaces.
pub fn valid_id(id: &str) -> bool {
    (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// The manifest embedded in a component, if any (searched in nested modules too, where the
/// Rust toolchain leaves the section).
pub fn read_embedded_manifest(plugin: &str, bytes: &[u8]) -> Result<Option<Manifest>, PluginError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| PluginError::Compile {
            plugin: plugin.to_owned(),
            reason: e.to_string(),
        })?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == MANIFEST_SECTION
        {
            let text = std::str::from_utf8(section.data()).map_err(|e| PluginError::Manifest {
                plugin: plugin.to_owned(),
                reason: format!("not UTF-8: {e}"),
            })?;
            return Manifest::parse(plugin, text).map(Some);
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
        id = "imaging"
        version = "1.2.0"
        capabilities = ["context", "store"]
        [[routes]]
        path = "/"
        auth = "public"
        [[routes]]
        path = "/studies"
        auth = "session"
        [[routes]]
        path = "/dicomweb/"
        auth = { bearer = ["imaging.read"] }
        [limits]
        memory_mib = 64
    "#;

    #[test]
    fn parses_routes_capabilities_and_limits() {
        let m = Manifest::parse("imaging", MANIFEST).unwrap();
        assert_eq!(
            m.capabilities.iter().copied().collect::<Vec<_>>(),
            vec![Capability::Context, Capability::Store]
        );
        assert_eq!(m.limits.memory_mib, Some(64));
        assert_eq!(
            m.routes[2].auth,
            RouteAuth::Bearer(vec!["imaging.read".into()])
        );
    }

    #[test]
    fn longest_prefix_on_segment_boundaries_wins() {
        let m = Manifest::parse("imaging", MANIFEST).unwrap();
        let cases = [
            ("/", "/"),
            ("/index.html", "/"),
            ("/studies", "/studies"),
            ("/studies/1.2.3", "/studies"),
            ("/studiesx", "/"),
            ("/dicomweb/studies", "/dicomweb/"),
            ("/dicomweb", "/dicomweb/"),
        ];
        for (path, route) in cases {
            assert_eq!(m.route_for(path).unwrap().path, route, "{path}");
        }
    }

    #[test]
    fn no_route_means_no_access() {
        let mut m = Manifest::parse("imaging", MANIFEST).unwrap();
        m.routes.retain(|r| r.path != "/");
        assert!(m.route_for("/other").is_none());
    }

    #[test]
    fn refuses_bad_manifests() {
        let cases = [
            ("id = \"Bad_Id\"\nversion = \"1\"", "id"),
            (
                "id = \"ok\"\nversion = \"1\"\ncapabilities = [\"files\"]",
                "unknown variant",
            ),
            (
                "id = \"ok\"\nversion = \"1\"\n[[routes]]\npath = \"x\"\nauth = \"public\"",
                "must start with '/'",
            ),
            (
                "id = \"ok\"\nversion = \"1\"\n[[routes]]\npath = \"/\"\nauth = { bearer = [] }",
                "without a scope",
            ),
            (
                "id = \"ok\"\nversion = \"1\"\nsurprise = 1",
                "unknown field",
            ),
            (
                "id = \"ok\"\nversion = \"1\"\ncapabilities = [\"events\"]\n\
                 subscribe = [\"core.everything\"]",
                "the core publishes core.document.shared",
            ),
            (
                "id = \"ok\"\nversion = \"1\"\nsubscribe = [\"core.patient.merged\"]",
                "needs the `events` capability",
            ),
        ];
        for (text, expected) in cases {
            let err = Manifest::parse("t", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }
}
