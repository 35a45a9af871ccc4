//! `megalis`: the regional e-health platform's server and administration CLI.
//!
//! Every subcommand goes through the one configuration loader (`megalis-config`), so
//! `megalis migrate` or `megalis audit verify` see exactly the database and files `serve` uses.

mod admin;
mod cli;
mod cps;
mod demo;
mod directory;
mod http;
mod metrics;
mod plugin_auth;
mod plugin_platform;
mod plugin_shell;
mod plugins;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use http::ApiError;

// glibc's allocator showed up as a tenth of the CPU time of a request in profiles (many small,
// short-lived allocations across worker threads); mimalloc handles that pattern far better.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use megalis_config::{LogFormat, Settings, Source};

/// Errors of the server crate; each becomes a message and a non-zero exit code.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(#[from] megalis_config::ConfigError),
    #[error("TLS: {path}: {reason}")]
    Tls { path: PathBuf, reason: String },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(#[from] megalis_store::StoreError),
    #[error("audit: {0}")]
    Audit(#[from] megalis_audit::AuditError),
    #[error("blob store: {0}")]
    Blobs(#[from] megalis_blobs::BlobError),
    #[error("{0}")]
    Auth(#[from] megalis_auth::AuthError),
    #[error("{0}")]
    Fatal(String),
}

/// Maps an audit failure to an HTTP error: a database outage is a 503 the client may retry;
/// anything else is logged and hidden behind a 500.
pub fn audit_error(e: megalis_audit::AuditError) -> ApiError {
    if e.is_unavailable() {
        ApiError::unavailable("The audit trail cannot be written right now; nothing was done.")
    } else {
        tracing::error!(error = %e, "audit append failed");
        ApiError::internal()
    }
}

/// Starts logging; an invalid `log.level` filter is a configuration error like any other (it
/// used to fall back to `info` silently, hiding the typo and the logs asked for).
fn init_logging(settings: &Settings) -> Result<(), String> {
    // rustls warns about every client that sends an IP address as SNI (curl, wrk, probes): noise
    // that would also cost a log line per connection, so it is quiet unless asked for.
    let directives = if settings.log_level.contains("rustls") {
        settings.log_level.clone()
    } else {
        format!("{},rustls=error", settings.log_level)
    };
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| {
            format!(
                "invalid value {:?} for log.level: {e} (expected a tracing filter such as \
                 `info` or `megalis=debug,info`)",
                settings.log_level
            )
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("start the Tokio runtime")
}

fn main() -> ExitCode {
    let matches = cli::command().get_matches();
    // Global flags propagate to the deepest subcommand, whose matches hold every value.
    let mut path = Vec::new();
    let mut leaf = &matches;
    while let Some((name, sub)) = leaf.subcommand() {
        path.push(name.to_string());
        leaf = sub;
    }
    let mut resolved = match megalis_config::resolve(leaf, &|name| std::env::var(name).ok()) {
        Ok(r) => r,
        Err(e) => return usage_error(&e),
    };
    if path.first().map(String::as_str) == Some("serve") && leaf.get_flag("demo") {
        resolved.set("mode", "demo", Source::Flag("--demo".into()));
    }
    let settings = match Settings::from_resolved(&resolved) {
        Ok(s) => s,
        Err(e) => return usage_error(&e),
    };
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    if path == ["config", "show"] {
        print!("{}", resolved.show(&settings));
        return ExitCode::SUCCESS;
    }
    if let Err(e) = init_logging(&settings) {
        eprintln!("megalis: {e}");
        return ExitCode::from(2);
    }
    let result = match path.as_slice() {
        ["serve"] => runtime().block_on(serve::run(settings)),
        ["migrate"] => runtime().block_on(cli::migrate(settings)),
        ["audit", "verify"] => return runtime().block_on(cli::audit_verify(settings)),
        ["plugin", sub] => return plugins::dispatch(sub, leaf, settings),
        ["admin", ..] => runtime().block_on(admin::run(&path, leaf, settings)),
        ["directory", "import"] => {
            return runtime().block_on(directory::import(settings, leaf));
        }
        ["directory", "generate"] => return directory::generate(leaf),
        _ => unreachable!("clap requires a known subcommand"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("megalis: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(e: &megalis_config::ConfigError) -> ExitCode {
    eprintln!("megalis: {e}");
    ExitCode::from(2)
}
