//! The plugin host inside the platform: `/apps/{plugin}/…` routes and the `megalis plugin`
//! commands (`run`, `check`, `fetch`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use clap::{Arg, ArgAction, ArgMatches, Command};
use http::{StatusCode, Uri};
use http_body_util::BodyExt;
use megalis_audit::AuditLog;
use megalis_config::Settings;
use megalis_plugin_host::access::{AllowAllLocal, LocalDeveloper, LogAudit};
use megalis_plugin_host::blobs::PluginBlobs;
use megalis_plugin_host::channels::pg::PgBus;
use megalis_plugin_host::channels::session::ChannelSession;
use megalis_plugin_host::channels::{ChannelHub, Payload, Rooms};
use megalis_plugin_host::kv::{MemoryKv, SqlKv};
use megalis_plugin_host::services::{MemoryDirectory, MemoryEvents, SqlEvents};

/// `megalis plugin run` keeps blobs in memory: a cap that a developer's machine survives.
const LOCAL_BLOB_LIMIT: u64 = 256 << 20;
use megalis_plugin_host::{
    Capability, EngineSettings, LoadedPlugin, PluginEngine, PluginEntry, PluginError, PluginHost,
    PluginLimits, PluginMetrics, RequestMeta, Services,
};
use megalis_store::Database;

use crate::http::forwarded::ClientInfo;
use crate::http::{ApiError, AppState, RequestId};
use crate::metrics::Metrics;

fn engine_settings(settings: &Settings) -> EngineSettings {
    EngineSettings {
        max_instances: settings.plugins_max_instances,
        epoch_tick: settings.plugins_epoch_tick,
        default_limits: PluginLimits {
            memory_bytes: settings.plugins_default_memory,
            timeout: settings.plugins_default_timeout,
            max_concurrency: settings.plugins_default_concurrency as usize,
            table_elements: EngineSettings::default().default_limits.table_elements,
        },
        max_memory_bytes: settings.plugins_max_memory,
        cache_dir: Some(settings.plugins_dir.join(".compiled")),
        pooling: true,
    }
}

/// The core services the plugin host's capabilities reach.
pub struct Platform<'a> {
    pub identity: &'a megalis_identity_index::PatientIndex,
    pub sharing: &'a megalis_sharing::SharingStore,
    pub blobs: &'a Arc<dyn megalis_blobs::BlobStore>,
}

/// The platform's plugin host, or `None` (logged) when the engine cannot start; `/apps/…`
/// then answers 503 and the rest of the platform still serves. The watcher of `plugins.toml`
/// starts with it when called inside the runtime (as `serve` does).
pub fn start(
    settings: &Settings,
    db: &Database,
    audit: &AuditLog,
    metrics: &Metrics,
    auth: &Arc<megalis_auth::Auth>,
    platform: Platform<'_>,
) -> Option<Arc<PluginHost>> {
    let engine = match PluginEngine::new(engine_settings(settings)) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "plugin engine failed to start; /apps is unavailable");
            return None;
        }
    };
    let plugin_metrics = PluginMetrics::new();
    metrics.register_plugin_metrics(&plugin_metrics);
    let records = Arc::new(crate::plugin_platform::PlatformRecords::new(
        db.clone(),
        platform.identity.clone(),
    ));
    let services = Services {
        kv: Arc::new(SqlKv::new(db.clone())),
        access: Arc::new(crate::plugin_platform::PlatformAccess::new(
            db.clone(),
            platform.sharing.clone(),
            metrics,
        )),
        audit: Arc::new(audit.clone()),
        identity: records.clone(),
        directory: records,
        events: Arc::new(SqlEvents::new(db.clone())),
        // Plugin blobs share the platform's store and the documents' size cap.
        blobs: Some(Arc::new(PluginBlobs {
            store: platform.blobs.clone(),
            max_size: settings.documents_max_size,
        })),
        auth: Arc::new(crate::plugin_auth::PlatformAuthenticator::new(
            Arc::clone(auth),
            audit.clone(),
        )),
    };
    // Several replicas share one PostgreSQL database: their channel rooms meet on it. SQLite
    // means one server, whose rooms are all the rooms.
    let channels = match db {
        Database::Postgres(pool) if tokio::runtime::Handle::try_current().is_ok() => {
            let rooms = Rooms::new();
            let bus = PgBus::start(
                pool.clone(),
                &rooms,
                plugin_metrics.channel_bus_reconnects.clone(),
            );
            ChannelHub::new(rooms, Arc::new(bus))
        }
        _ => ChannelHub::in_process(),
    };
    let host = Arc::new(
        PluginHost::new(
            engine,
            services,
            plugin_metrics,
            settings.plugins_dir.clone(),
        )
        .with_channels(channels),
    );
    if tokio::runtime::Handle::try_current().is_ok() {
        host.watch(
            settings.plugins_config.clone(),
            settings.plugins_watch_interval,
        );
    }
    Some(host)
}

/// `/apps/{plugin}/` itself belongs to the portal (the launcher's entry, which checks the
/// application grant); a plugin's root page is `/apps/{plugin}`, everything below it is the
/// plugin's.
pub fn routes() -> Vec<crate::http::routes::Route> {
    use crate::http::routes::Route;
    vec![
        Route::plugin("/apps/{plugin}", any(serve_plugin)),
        Route::plugin("/apps/{plugin}/{*rest}", any(serve_plugin)),
    ]
}

/// `/apps/{plugin}/rest?query` → plugin `plugin`, path `/rest?query`.
fn split_apps_path(uri: &Uri) -> Option<(String, Uri)> {
    let rest = uri.path().strip_prefix("/apps/")?;
    let (plugin, tail) = match rest.split_once('/') {
        Some((p, t)) => (p, format!("/{t}")),
        None => (rest, "/".to_owned()),
    };
    let path_and_query = match uri.query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail,
    };
    Some((plugin.to_owned(), path_and_query.parse().ok()?))
}

pub(crate) async fn serve_plugin(State(state): State<AppState>, request: Request) -> Response {
    let Some(host) = state.plugins.clone() else {
        return ApiError::unavailable("The plugin host is not running on this server.")
            .into_response();
    };
    let Some((plugin, uri)) = split_apps_path(request.uri()) else {
        return ApiError::new(StatusCode::NOT_FOUND, "").into_response();
    };
    let meta = RequestMeta {
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.to_string())
            .unwrap_or_default(),
        patient: patient_in_context(request.uri()),
        source_address: request
            .extensions()
            .get::<ClientInfo>()
            .map(|c| c.address.to_string()),
    };
    let (mut parts, body) = request.into_parts();
    // Read before the host strips the credentials: the shell shows who is signed in.
    let shell = crate::plugin_shell::ShellRequest::of(&parts.headers, parts.uri.query());
    // HTTP/2 carries the host in `:authority`, not in a `Host` header: keep it as `Host` before
    // the URI becomes plugin-relative, for the host's same-origin check and the plugin's own view
    // of the request.
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, value);
    }
    if let Some(answer) = channel_upgrade(&host, &plugin, &mut parts, &uri, meta.clone()).await {
        return answer.unwrap_or_else(|e| plugin_error(e).into_response());
    }
    parts.uri = uri;
    let request = http::Request::from_parts(parts, body);
    match host.invoke(&plugin, request, meta).await {
        Ok(response) => {
            let mut response = response
                .map(|body| Body::new(body.map_err(|e| e.to_string())))
                .into_response();
            // The plugin's own error answers keep their format; host failures (deadline, trap,
            // limits) below are the platform's and go through the mapper.
            crate::http::problem::keep_as_is(&mut response);
            crate::plugin_shell::render(&state, &plugin, shell, response).await
        }
        Err(e) => plugin_error(e).into_response(),
    }
}

/// The patient the caller is working on, from the `patient` query parameter the portal puts on
/// links to applications (`/apps/breizh-rein/?patient=…`), when it is a well-formed regional id.
/// It is a pointer only: whatever the plugin reads about that patient still goes through the
/// access decision, so the host neither looks the id up nor tells whether it exists.
fn patient_in_context(uri: &Uri) -> Option<String> {
    let value = uri
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("patient="))?;
    megalis_identity_index::identity::RegionalId::parse(value)
        .ok()
        .map(|id| id.as_str().to_owned())
}

/// A request for one of the plugin's channels (`uri` plugin-relative): `None` when the path is
/// no channel of an installed plugin (the plugin's routes serve it). A channel path is only
/// ever a WebSocket endpoint (426 otherwise). The member is admitted — authenticated, the
/// plugin's join asked — before the upgrade, so that every refusal is an HTTP answer; then the
/// socket is driven on its own task.
async fn channel_upgrade(
    host: &Arc<PluginHost>,
    plugin: &str,
    parts: &mut http::request::Parts,
    uri: &Uri,
    meta: RequestMeta,
) -> Option<Result<Response, PluginError>> {
    use axum::extract::FromRequestParts;
    use axum::extract::ws::WebSocketUpgrade;

    host.get(plugin)?.manifest.channel_at(uri.path())?;
    let Ok(upgrade) = WebSocketUpgrade::from_request_parts(parts, &()).await else {
        return Some(Err(PluginError::UpgradeRequired));
    };
    let session = match host.join_channel(plugin, uri, &parts.headers, meta).await {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let limit = session.max_message_bytes();
    Some(Ok(upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| drive_channel(socket, session))
        .into_response()))
}

/// Copies frames between the socket and the member's session until either ends.
async fn drive_channel(mut socket: axum::extract::ws::WebSocket, mut session: ChannelSession) {
    use axum::extract::ws::{CloseFrame, Message};

    fn message(payload: Payload) -> Message {
        match payload {
            Payload::Text(t) => Message::Text(t.into()),
            Payload::Binary(b) => Message::Binary(b),
        }
    }
    let close = |c: megalis_plugin_host::channels::session::ChannelClose| {
        Message::Close(Some(CloseFrame {
            code: c.code,
            reason: c.reason.into(),
        }))
    };
    loop {
        // Both futures are cancel-safe: a socket read and a broadcast receive lose nothing
        // when the other side wins.
        let next = tokio::select! {
            incoming = socket.recv() => Ok(incoming),
            outgoing = session.outgoing() => Err(outgoing),
        };
        let reply = match next {
            Ok(incoming) => {
                let payload = match incoming {
                    Some(Ok(Message::Text(t))) => Payload::Text(t.as_str().to_owned()),
                    Some(Ok(Message::Binary(b))) => Payload::Binary(b),
                    // axum answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::debug!(plugin = session.plugin(), error = %e, "channel socket failed");
                        break;
                    }
                };
                match session.incoming(payload).await {
                    Ok(None) => continue,
                    Ok(Some(frame)) => message(frame),
                    Err(c) => {
                        let _ = socket.send(close(c)).await;
                        break;
                    }
                }
            }
            Err(Ok(frame)) => message(frame),
            Err(Err(c)) => {
                let _ = socket.send(close(c)).await;
                break;
            }
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

fn plugin_error(e: PluginError) -> ApiError {
    let error = ApiError::new(e.status(), e.public_detail());
    if e.status().is_server_error() {
        tracing::warn!(error = %e, "plugin request failed");
    }
    error
}

// --- megalis plugin … -------------------------------------------------------------------------

pub fn command() -> Command {
    let file = || {
        Arg::new("file")
            .value_name("FILE.wasm")
            .required(true)
            .value_parser(clap::value_parser!(PathBuf))
    };
    Command::new("plugin")
        .about("Plugin tools: run one locally, check a component, fetch a module by digest")
        .subcommand_required(true)
        .subcommand(
            Command::new("run")
                .about(
                    "Serve one plugin at the root path over plain HTTP, with in-memory \
                     capabilities (store, consent allowing everything, audit to the log): \
                     for plugin authors",
                )
                .arg(file())
                .arg(
                    Arg::new("plugin_listen")
                        .long("listen")
                        .value_name("ADDR")
                        .default_value("127.0.0.1:8080")
                        .value_parser(clap::value_parser!(SocketAddr))
                        .help("Address to listen on"),
                )
                .arg(
                    Arg::new("grant")
                        .long("grant")
                        .value_name("CAPABILITY")
                        .action(ArgAction::Append)
                        .value_delimiter(',')
                        .help("Capability to grant (context, consent, store, audit, logging); repeatable"),
                )
                .arg(
                    Arg::new("set")
                        .long("set")
                        .value_name("KEY=VALUE")
                        .action(ArgAction::Append)
                        .help("A value the plugin reads with context.config(KEY); repeatable"),
                ),
        )
        .subcommand(
            Command::new("check")
                .about(
                    "Validate a component against the megalis:platform world; print its \
                     manifest, imports and exports (exit status 1 when it cannot be a plugin)",
                )
                .arg(file()),
        )
        .subcommand(
            Command::new("fetch")
                .about(
                    "Download a module, verify its SHA-256 and store it as \
                     <plugins.dir>/<sha256>.wasm",
                )
                .arg(Arg::new("url").value_name("URL").required(true).help(
                    "http://, https:// or file:// URL (a plain path works too)",
                ))
                .arg(
                    Arg::new("sha256")
                        .long("sha256")
                        .value_name("DIGEST")
                        .required(true)
                        .help("Expected SHA-256 of the module, 64 hexadecimal digits"),
                ),
        )
}

pub fn dispatch(sub: &str, matches: &ArgMatches, settings: Settings) -> ExitCode {
    let runtime = crate::runtime();
    let result = match sub {
        "run" => runtime.block_on(run(matches, &settings)),
        "check" => runtime.block_on(check(matches)),
        "fetch" => runtime.block_on(fetch(matches, &settings)),
        _ => unreachable!("clap requires a known subcommand"),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("megalis plugin {sub}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_grants(matches: &ArgMatches) -> Result<std::collections::BTreeSet<Capability>, String> {
    matches
        .get_many::<String>("grant")
        .into_iter()
        .flatten()
        .map(|g| {
            Capability::from_interface(g.trim()).ok_or_else(|| {
                format!("unknown capability {g:?} (context, consent, store, audit, logging)")
            })
        })
        .collect()
}

async fn run(matches: &ArgMatches, settings: &Settings) -> Result<ExitCode, String> {
    let file = matches.get_one::<PathBuf>("file").expect("required");
    let listen = *matches
        .get_one::<SocketAddr>("plugin_listen")
        .expect("has a default");
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut config = std::collections::BTreeMap::new();
    for pair in matches.get_many::<String>("set").into_iter().flatten() {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("--set {pair:?}: expected KEY=VALUE"))?;
        config.insert(k.to_owned(), v.to_owned());
    }
    let id = megalis_plugin_host::read_embedded_manifest("plugin", &bytes)
        .map_err(|e| e.to_string())?
        .map(|m| m.id)
        .unwrap_or_else(|| {
            file.file_stem()
                .map(|s| s.to_string_lossy().to_lowercase().replace('_', "-"))
                .unwrap_or_else(|| "plugin".into())
        });
    let engine = PluginEngine::new(EngineSettings {
        cache_dir: None,
        ..engine_settings(settings)
    })
    .map_err(|e| e.to_string())?;
    let entry = PluginEntry {
        id: id.clone(),
        sha256: megalis_plugin_host::digest(&bytes),
        grants: parse_grants(matches)?,
        limits: Default::default(),
        config,
    };
    let plugin = LoadedPlugin::load(&engine, &entry, bytes)
        .await
        .map_err(|e| match e {
            PluginError::UngrantedImport { .. } => format!("{e} (grant it with --grant)"),
            other => other.to_string(),
        })?;
    let synthetic = Arc::new(MemoryDirectory::synthetic());
    let host = Arc::new(PluginHost::new(
        engine,
        Services {
            kv: Arc::new(MemoryKv::default()),
            access: Arc::new(AllowAllLocal),
            audit: Arc::new(LogAudit),
            auth: Arc::new(LocalDeveloper),
            // Synthetic patients and professionals (see MemoryDirectory::synthetic): a plugin
            // author never holds real patient data on a development machine.
            identity: synthetic.clone(),
            directory: synthetic,
            events: Arc::new(MemoryEvents::default()),
            blobs: Some(Arc::new(PluginBlobs {
                store: megalis_blobs::in_memory(),
                max_size: LOCAL_BLOB_LIMIT,
            })),
        },
        PluginMetrics::new(),
        PathBuf::new(),
    ));
    host.install(plugin);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    // A plugin's response goes out as a head then a streamed body: without TCP_NODELAY, Nagle
    // holds the body until the client's delayed ACK (40 ms on Linux) — a 40 ms p99 at one
    // connection. The platform's own listener sets it too (`http::listener`).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    println!("serving plugin {id} on http://{local}/");
    let app = axum::Router::new().fallback(move |request: Request| {
        let host = host.clone();
        let id = id.clone();
        async move { run_request(&host, &id, request).await }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

async fn run_request(host: &Arc<PluginHost>, id: &str, request: Request) -> Response {
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let meta = RequestMeta {
        request_id: format!("local-{n}"),
        ..RequestMeta::default()
    };
    let (mut parts, body) = request.into_parts();
    let uri = parts.uri.clone();
    let answer = match channel_upgrade(host, id, &mut parts, &uri, meta.clone()).await {
        Some(answer) => answer,
        None => host
            .invoke(id, Request::from_parts(parts, body), meta)
            .await
            .map(|response| {
                response
                    .map(|body| Body::new(body.map_err(|e| e.to_string())))
                    .into_response()
            }),
    };
    match answer {
        Ok(response) => response,
        Err(e) => {
            if e.status().is_server_error() {
                eprintln!("plugin {id}: {e}");
            }
            let body = serde_json::json!({
                "type": "about:blank",
                "title": e.status().canonical_reason().unwrap_or(""),
                "status": e.status().as_u16(),
                "detail": e.public_detail(),
                "instance": meta_instance(n),
            });
            (
                e.status(),
                [(http::header::CONTENT_TYPE, "application/problem+json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn meta_instance(n: u64) -> String {
    format!("urn:megalis:request:local-{n}")
}

async fn check(matches: &ArgMatches) -> Result<ExitCode, String> {
    let file = matches.get_one::<PathBuf>("file").expect("required");
    let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    // A one-off compile: no instance pool to reserve.
    let engine = PluginEngine::new(EngineSettings {
        pooling: false,
        ..EngineSettings::default()
    })
    .map_err(|e| e.to_string())?;
    let report = match megalis_plugin_host::inspect_component(&engine, bytes).await {
        Ok(r) => r,
        Err(e) => {
            println!("{}: NOT a plugin: {e}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    println!("{}", file.display());
    println!("  sha256   {}", report.digest);
    match &report.manifest {
        Some(m) => {
            println!("  manifest {} {}", m.id, m.version);
            let caps: Vec<String> = m.capabilities.iter().map(ToString::to_string).collect();
            println!("  requests [{}]", caps.join(", "));
            for r in &m.routes {
                println!("  route    {} ({})", r.path, r.auth);
            }
            for c in &m.channels {
                let deliver = match (&c.deliver, &c.on_message) {
                    (megalis_plugin_host::Deliver::Plugin, Some(path)) => format!("plugin {path}"),
                    _ => "relay".to_owned(),
                };
                println!(
                    "  channel  {} ({}; join {}; deliver {deliver}; max {} bytes, {} members)",
                    c.path, c.auth, c.join, c.max_message_bytes, c.max_members
                );
            }
        }
        None => println!("  manifest none (a plain wasi:http component: every path public)"),
    }
    for (name, kind) in &report.imports {
        let what = match kind {
            megalis_plugin_host::ImportKind::Sandboxed => "sandboxed".to_owned(),
            megalis_plugin_host::ImportKind::Capability(c) => format!("capability {c}"),
            megalis_plugin_host::ImportKind::Unavailable(why) => format!("REFUSED: {why}"),
        };
        println!("  import   {name}  ({what})");
    }
    for name in &report.exports {
        println!("  export   {name}");
    }
    let problems = report.problems();
    if problems.is_empty() {
        println!("  ok: a valid megalis:platform@0.1 plugin");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("  problem  {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

async fn fetch(matches: &ArgMatches, settings: &Settings) -> Result<ExitCode, String> {
    let url = matches.get_one::<String>("url").expect("required");
    let expected = matches
        .get_one::<String>("sha256")
        .expect("required")
        .to_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("--sha256 must be 64 hexadecimal digits".into());
    }
    let bytes = download(url).await?;
    let actual = megalis_plugin_host::digest(&bytes);
    if actual != expected {
        return Err(format!(
            "{url}: SHA-256 is {actual}, not {expected}; nothing was stored"
        ));
    }
    let dir = &settings.plugins_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let target = dir.join(format!("{actual}.wasm"));
    // Written aside then renamed, so the server never sees half a module under its digest.
    let partial = dir.join(format!(".{actual}.partial"));
    std::fs::write(&partial, &bytes).map_err(|e| format!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, &target).map_err(|e| format!("{}: {e}", target.display()))?;
    println!("{}", target.display());
    Ok(ExitCode::SUCCESS)
}

/// Largest module accepted (compiled code is several times larger).
const MAX_MODULE: usize = 256 << 20;

async fn download(url: &str) -> Result<Vec<u8>, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        let response = reqwest::get(url).await.map_err(|e| format!("{url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("{url}: HTTP {}", response.status()));
        }
        let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
        if bytes.len() > MAX_MODULE {
            return Err(format!("{url}: larger than {MAX_MODULE} bytes"));
        }
        return Ok(bytes.to_vec());
    }
    let path = Path::new(url.strip_prefix("file://").unwrap_or(url));
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patient_in_context_is_a_well_formed_regional_id_or_none() {
        let id = megalis_identity_index::identity::RegionalId::from_sequence(42);
        let uri: Uri = format!("/apps/breizh-rein/?lang=fr&patient={}", id.as_str())
            .parse()
            .unwrap();
        assert_eq!(patient_in_context(&uri).as_deref(), Some(id.as_str()));
        for bad in [
            "/apps/x/?patient=",
            "/apps/x/?patient=../../etc",
            "/apps/x/?patients=1",
            "/apps/x/",
        ] {
            assert_eq!(patient_in_context(&bad.parse().unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn apps_paths_split_into_plugin_and_relative_uri() {
        let cases = [
            ("/apps/imaging", Some(("imaging", "/"))),
            ("/apps/imaging/", Some(("imaging", "/"))),
            (
                "/apps/imaging/studies/1?x=1",
                Some(("imaging", "/studies/1?x=1")),
            ),
            ("/other", None),
        ];
        for (uri, expected) in cases {
            let got = split_apps_path(&uri.parse().unwrap());
            let got = got.as_ref().map(|(p, u)| (p.as_str(), u.to_string()));
            assert_eq!(
                got.as_ref().map(|(p, u)| (*p, u.as_str())),
                expected,
                "{uri}"
            );
        }
    }
}
