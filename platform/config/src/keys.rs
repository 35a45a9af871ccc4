//! The table of every configuration key. Adding a capability with settings means adding rows
//! here (and typing them in `Settings`); names, flags, variables and docs follow.

/// Which subcommands see a key as a command-line flag. The TOML file and the environment may
/// set any key whatever the subcommand, so one file serves `serve`, `migrate` and the CLI tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Flags accepted by every subcommand (database, data directory, logging, mode…).
    Global,
    /// Flags of `megalis serve` only (listeners, TLS, HTTP limits…).
    Serve,
}

/// The type of a value, for validation, help and `config show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Path,
    Url,
    DatabaseUrl,
    SocketAddr,
    Duration,
    Size,
    Integer,
    Bool,
    CidrList,
    Choice(&'static [&'static str]),
}

impl Kind {
    pub fn value_name(self) -> &'static str {
        match self {
            Kind::Text => "TEXT",
            Kind::Path => "PATH",
            Kind::Url | Kind::DatabaseUrl => "URL",
            Kind::SocketAddr => "ADDR",
            Kind::Duration => "DURATION",
            Kind::Size => "SIZE",
            Kind::Integer => "N",
            Kind::Bool => "BOOL",
            Kind::CidrList => "CIDR[,CIDR…]",
            Kind::Choice(_) => "CHOICE",
        }
    }
}

#[derive(Debug)]
pub struct Key {
    /// `section.key`, or `key` for a top-level key.
    pub name: &'static str,
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub scope: Scope,
    pub help: &'static str,
}

impl Key {
    pub fn section(&self) -> Option<&'static str> {
        self.name.split_once('.').map(|(s, _)| s)
    }

    pub fn leaf(&self) -> &'static str {
        self.name.split_once('.').map_or(self.name, |(_, k)| k)
    }

    pub fn flag(&self) -> String {
        self.name.replace(['.', '_'], "-")
    }

    pub fn env_var(&self) -> String {
        format!(
            "MEGALIS_{}",
            self.name.replace('.', "_").to_ascii_uppercase()
        )
    }
}

const fn key(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    scope: Scope,
    help: &'static str,
) -> Key {
    Key {
        name,
        kind,
        default,
        secret: false,
        scope,
        help,
    }
}

const fn secret(name: &'static str, kind: Kind, scope: Scope, help: &'static str) -> Key {
    Key {
        name,
        kind,
        default: None,
        secret: true,
        scope,
        help,
    }
}

use Scope::{Global, Serve};

pub static KEYS: &[Key] = &[
    key(
        "data_dir",
        Kind::Path,
        Some("./megalis-data"),
        Global,
        "Directory for the SQLite database, blobs, keys and certificates",
    ),
    key(
        "mode",
        Kind::Choice(&["production", "test", "demo"]),
        Some("production"),
        Global,
        "production, test (test-only endpoints enabled) or demo (demo data seeded)",
    ),
    key(
        "public_url",
        Kind::Url,
        None,
        Global,
        "External URL of the platform, the source of every absolute URL it emits [default: https://<listen>]",
    ),
    key(
        "trusted_proxies",
        Kind::CidrList,
        None,
        Global,
        "Networks whose X-Forwarded-For/-Proto headers are trusted (the ingress controller)",
    ),
    secret(
        "database.url",
        Kind::DatabaseUrl,
        Global,
        "sqlite:PATH or postgres://… [default: SQLite file megalis.db in the data directory]",
    ),
    key(
        "database.max_connections",
        Kind::Integer,
        Some("16"),
        Global,
        "Size of the connection pool",
    ),
    key(
        "log.format",
        Kind::Choice(&["text", "json"]),
        Some("text"),
        Global,
        "Log format: text for people, json for log collectors",
    ),
    key(
        "log.level",
        Kind::Text,
        Some("info"),
        Global,
        "Log filter (tracing syntax, e.g. info or megalis_server=debug,info)",
    ),
    key(
        "listen",
        Kind::SocketAddr,
        Some("127.0.0.1:8443"),
        Serve,
        "HTTPS listener address",
    ),
    key(
        "plain_http_listen",
        Kind::SocketAddr,
        None,
        Serve,
        "Optional plain-HTTP listener, for an ingress that terminates TLS",
    ),
    key(
        "mtls_listen",
        Kind::SocketAddr,
        None,
        Serve,
        "Mutual-TLS listener for CPS smart cards (client certificate required; needs cps.ca)",
    ),
    key(
        "cps.ca",
        Kind::Path,
        None,
        Serve,
        "PEM trust bundle of the card certificates (IGC-Santé CAs; a test CA in tests)",
    ),
    key(
        "cps.crl",
        Kind::Path,
        None,
        Serve,
        "PEM or DER revocation list(s) of the card CAs; card login is refused once one is past \
         its nextUpdate",
    ),
    key(
        "cps.public_url",
        Kind::Url,
        None,
        Serve,
        "External URL of the mutual-TLS listener, where the login page sends card users \
         [default: the public_url host on the mtls_listen port]",
    ),
    key(
        "cps.reload_interval",
        Kind::Duration,
        Some("10s"),
        Serve,
        "How often cps.ca and cps.crl are checked for changes (reloaded without restart)",
    ),
    key(
        "tls.cert",
        Kind::Path,
        None,
        Serve,
        "PEM certificate chain of the HTTPS listener [default: self-signed, generated in the data directory]",
    ),
    key(
        "tls.key",
        Kind::Path,
        None,
        Serve,
        "PEM private key of the HTTPS listener",
    ),
    key(
        "oidc.upstream_issuer",
        Kind::Url,
        None,
        Serve,
        "Issuer of the upstream OpenID Provider for federated login (Pro Santé Connect); its \
         /.well-known/openid-configuration is read at first use",
    ),
    key(
        "oidc.upstream_client_id",
        Kind::Text,
        None,
        Serve,
        "Client id of this platform at the upstream provider",
    ),
    secret(
        "oidc.upstream_client_secret",
        Kind::Text,
        Serve,
        "Client secret of this platform at the upstream provider",
    ),
    key(
        "oidc.upstream_scope",
        Kind::Text,
        Some("openid scope_all"),
        Serve,
        "Scopes asked of the upstream provider",
    ),
    key(
        "oidc.upstream_acr",
        Kind::Text,
        Some("eidas1"),
        Serve,
        "acr_values sent to the upstream provider and required in its ID tokens",
    ),
    key(
        "oidc.upstream_national_id_claim",
        Kind::Text,
        Some("SubjectNameID"),
        Serve,
        "Claim (ID token, else /userinfo) holding the national id (8 + RPPS)",
    ),
    key(
        "oidc.upstream_ca",
        Kind::Path,
        None,
        Serve,
        "Extra PEM CA trusted for the upstream provider's HTTPS (tests, private providers); the \
         system's roots are always trusted",
    ),
    key(
        "http.body_limit",
        Kind::Size,
        Some("10MiB"),
        Serve,
        "Largest request body accepted by ordinary routes",
    ),
    key(
        "http.request_timeout",
        Kind::Duration,
        Some("30s"),
        Serve,
        "Longest time a request may take, body included",
    ),
    key(
        "http.header_timeout",
        Kind::Duration,
        Some("10s"),
        Serve,
        "Longest time a client may take to send the TLS handshake and request headers",
    ),
    key(
        "shutdown.grace_period",
        Kind::Duration,
        Some("20s"),
        Serve,
        "How long in-flight requests may run after SIGTERM",
    ),
    key(
        "audit.signing_key",
        Kind::Path,
        None,
        Global,
        "Ed25519 PKCS#8 key signing audit checkpoints, kept outside the database [default: <data_dir>/audit-signing-key.pk8]",
    ),
    key(
        "audit.checkpoint_file",
        Kind::Path,
        None,
        Global,
        "Copy of the signed checkpoints outside the database [default: <data_dir>/audit-checkpoints.jsonl]",
    ),
    key(
        "audit.checkpoint_interval",
        Kind::Duration,
        Some("10s"),
        Serve,
        "How often the audit chain head is signed (only when it moved)",
    ),
    key(
        "auth.session_idle_timeout",
        Kind::Duration,
        Some("30m"),
        Global,
        "A portal session unused this long ends",
    ),
    key(
        "auth.session_absolute_timeout",
        Kind::Duration,
        Some("12h"),
        Global,
        "A portal session ends this long after login, however active",
    ),
    key(
        "auth.access_token_lifetime",
        Kind::Duration,
        Some("5m"),
        Global,
        "Lifetime of OAuth access tokens and ID tokens",
    ),
    key(
        "auth.refresh_token_lifetime",
        Kind::Duration,
        Some("12h"),
        Global,
        "Lifetime of a refresh token family (rotation does not extend it)",
    ),
    key(
        "auth.key_rotation",
        Kind::Duration,
        Some("30days"),
        Global,
        "Age at which a new token signing key is made",
    ),
    key(
        "auth.access_token_algorithm",
        Kind::Choice(&["ES256", "RS256"]),
        Some("ES256"),
        Global,
        "Signature of access tokens: ES256 (cheap to issue) or RS256 (cheap to verify: for \
         resource servers that validate many distinct tokens). ID tokens are RS256 (OpenID \
         Connect's default algorithm)",
    ),
    key(
        "auth.lockout_threshold",
        Kind::Integer,
        Some("5"),
        Global,
        "Consecutive failed logins for a user name before it is locked",
    ),
    key(
        "auth.lockout_duration",
        Kind::Duration,
        Some("15m"),
        Global,
        "How long a user name stays locked after too many failures",
    ),
    key(
        "blobs.backend",
        Kind::Choice(&["local", "s3"]),
        Some("local"),
        Global,
        "Blob store: local filesystem or S3-compatible object storage",
    ),
    key(
        "blobs.path",
        Kind::Path,
        None,
        Global,
        "Directory of the local blob store [default: <data_dir>/blobs]",
    ),
    key("blobs.s3_bucket", Kind::Text, None, Global, "S3 bucket"),
    key(
        "blobs.s3_endpoint",
        Kind::Url,
        None,
        Global,
        "S3 endpoint URL (for S3-compatible services)",
    ),
    key("blobs.s3_region", Kind::Text, None, Global, "S3 region"),
    key(
        "blobs.s3_access_key_id",
        Kind::Text,
        None,
        Global,
        "S3 access key id",
    ),
    secret(
        "blobs.s3_secret_access_key",
        Kind::Text,
        Global,
        "S3 secret access key",
    ),
    key(
        "blobs.s3_allow_http",
        Kind::Bool,
        Some("false"),
        Global,
        "Allow a plain-HTTP S3 endpoint (tests only)",
    ),
    key(
        "documents.max_size",
        Kind::Size,
        Some("1GiB"),
        Serve,
        "Largest shared document content, streamed to the blob store (POST /fhir/Binary): EEG \
         recordings reach hundreds of MB",
    ),
    key(
        "plugins.config",
        Kind::Path,
        None,
        Global,
        "The operator's plugins.toml (which plugins, grants, limits), watched for changes \
         [default: <data_dir>/plugins.toml]",
    ),
    key(
        "plugins.dir",
        Kind::Path,
        None,
        Global,
        "Directory of plugin modules, named <sha256>.wasm [default: <data_dir>/plugins]",
    ),
    key(
        "plugins.max_instances",
        Kind::Integer,
        Some("256"),
        Global,
        "Plugin instances alive at once, all plugins together (sizes the instance pool)",
    ),
    key(
        "plugins.epoch_tick",
        Kind::Duration,
        Some("10ms"),
        Global,
        "Granularity of plugin deadlines (epoch ticker period)",
    ),
    key(
        "plugins.max_memory",
        Kind::Size,
        Some("256MiB"),
        Global,
        "Most linear memory any plugin instance may use, whatever its grants",
    ),
    key(
        "plugins.default_memory",
        Kind::Size,
        Some("64MiB"),
        Global,
        "Memory limit of a plugin whose manifest and grants set none",
    ),
    key(
        "plugins.default_timeout",
        Kind::Duration,
        Some("5s"),
        Global,
        "Deadline of a plugin request when the manifest and grants set none",
    ),
    key(
        "plugins.default_concurrency",
        Kind::Integer,
        Some("64"),
        Global,
        "Concurrent requests per plugin when the manifest and grants set no limit",
    ),
    key(
        "plugins.watch_interval",
        Kind::Duration,
        Some("2s"),
        Global,
        "How often plugins.toml is checked for changes",
    ),
    key(
        "mllp.listen",
        Kind::SocketAddr,
        Some("127.0.0.1:2575"),
        Serve,
        "HL7 v2 MLLP listener of the patient identity feed (IHE PAM-FR)",
    ),
    key(
        "mllp.senders",
        Kind::Path,
        None,
        Serve,
        "TOML table binding each HL7 sender \"MSH-3|MSH-4\" to the assigning-authority OIDs it may \
         feed [default: <data_dir>/mllp-senders.toml]",
    ),
    key(
        "mllp.tls",
        Kind::Bool,
        Some("false"),
        Serve,
        "Serve MLLP over TLS with a required client certificate, registered to an OAuth client \
         (`megalis admin client add --certificate`) whose assigning authorities it may feed; \
         required when mllp.listen is not a loopback address",
    ),
    key(
        "identity.regional_oid",
        Kind::Text,
        Some("2.25.209110688253160210146960710058954688142"),
        Global,
        "OID of the regional patient identifier (FHIR system urn:oid:…); the default is a UUID-based \
         OID (2.25, ITU-T X.667): replace it with the OID registered for the region",
    ),
    key(
        "identity.test_ins",
        Kind::Bool,
        Some("false"),
        Global,
        "Accept INS under the test (.10) and demonstration (.11) OIDs (refused in production mode)",
    ),
];
