use http::StatusCode;

/// Errors of the plugin host: refusals at load time and failures of a request.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    // --- Loading -------------------------------------------------------------------------
    #[error("plugins configuration {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("plugin {plugin}: invalid manifest: {reason}")]
    Manifest { plugin: String, reason: String },
    #[error("plugin {plugin}: cannot read module {path}: {source}")]
    ReadModule {
        plugin: String,
        path: String,
        source: std::io::Error,
    },
    #[error("plugin {plugin}: module digest is {actual}, but {expected} was configured")]
    DigestMismatch {
        plugin: String,
        expected: String,
        actual: String,
    },
    #[error("plugin {plugin}: not a valid component: {reason}")]
    Compile { plugin: String, reason: String },
    #[error("plugin {plugin} imports `{import}`, which is refused: {reason}")]
    UngrantedImport {
        plugin: String,
        import: String,
        reason: String,
    },
    #[error("plugin {plugin}: does not export wasi:http/incoming-handler@0.2")]
    NotAHandler { plugin: String },
    #[error("plugin {plugin}: linking failed: {reason}")]
    Link { plugin: String, reason: String },
    #[error("plugin engine: {0}")]
    Engine(String),

    // --- Requests ------------------------------------------------------------------------
    #[error("no plugin named {0} is installed")]
    NotInstalled(String),
    #[error("plugin {plugin} has no route for {path}")]
    NoRoute { plugin: String, path: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("authentication is temporarily unavailable")]
    AuthUnavailable,
    #[error("plugin {plugin} is at its limit of {limit} concurrent requests")]
    Busy { plugin: String, limit: usize },
    #[error("every plugin instance slot of this server is in use")]
    PoolExhausted,
    #[error("plugin {plugin} exceeded its deadline of {timeout_ms} ms")]
    Deadline { plugin: String, timeout_ms: u64 },
    #[error("plugin {plugin} exceeded its memory limit of {limit_bytes} bytes")]
    MemoryLimit { plugin: String, limit_bytes: u64 },
    #[error("plugin {plugin} failed: {reason}")]
    Trap { plugin: String, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("room {room} of {plugin} is full ({limit} members on this server)")]
    RoomFull {
        plugin: String,
        room: String,
        limit: usize,
    },
    #[error("{0}")]
    ChannelsUnavailable(String),
    #[error("this path is a WebSocket channel: connect with a WebSocket upgrade")]
    UpgradeRequired,
}

impl PluginError {
    /// The HTTP status of a request that ended with this error.
    pub fn status(&self) -> StatusCode {
        match self {
            PluginError::NotInstalled(_) | PluginError::NoRoute { .. } => StatusCode::NOT_FOUND,
            PluginError::Unauthenticated => StatusCode::UNAUTHORIZED,
            PluginError::Forbidden(_) => StatusCode::FORBIDDEN,
            PluginError::Busy { .. }
            | PluginError::PoolExhausted
            | PluginError::AuthUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::Deadline { .. } => StatusCode::GATEWAY_TIMEOUT,
            PluginError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PluginError::RoomFull { .. } => StatusCode::CONFLICT,
            PluginError::ChannelsUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            PluginError::UpgradeRequired => StatusCode::UPGRADE_REQUIRED,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `kind` label of the error counter in the per-plugin metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            PluginError::NotInstalled(_) | PluginError::NoRoute { .. } => "not_found",
            PluginError::Unauthenticated => "unauthenticated",
            PluginError::Forbidden(_) => "forbidden",
            PluginError::AuthUnavailable => "auth_unavailable",
            PluginError::Busy { .. } => "busy",
            PluginError::PoolExhausted => "pool_exhausted",
            PluginError::Deadline { .. } => "deadline",
            PluginError::MemoryLimit { .. } => "memory",
            PluginError::Trap { .. } => "trap",
            PluginError::BadRequest(_) => "bad_request",
            PluginError::RoomFull { .. } => "room_full",
            PluginError::ChannelsUnavailable(_) => "channels_unavailable",
            PluginError::UpgradeRequired => "upgrade_required",
            _ => "load",
        }
    }

    /// What the client may be told. Details of a trap stay in the log (they may reveal the
    /// plugin's internals); limits and refusals are stated plainly.
    pub fn public_detail(&self) -> String {
        match self {
            PluginError::Trap { plugin, .. } => {
                format!("The application {plugin} failed while handling the request.")
            }
            PluginError::Unauthenticated => {
                "This application route requires authentication.".to_owned()
            }
            other => {
                let mut s = other.to_string();
                if let Some(first) = s.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                s.push('.');
                s
            }
        }
    }
}
