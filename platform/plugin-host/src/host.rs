//! The installed plugins and the request path into them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::access::{AccessDecider, AuditSink, AuthRefusal, Authenticator, Principal};
use crate::channels::session::ChannelSession;
use crate::channels::{ChannelHub, RoomKey, random_id, valid_room};
use crate::config::{PluginEntry, PluginsConfig};
use crate::engine::PluginEngine;
use crate::kv::KvStore;
use crate::manifest::RouteAuth;
use crate::plugin::LoadedPlugin;
use crate::services::{DirectoryService, EventLog, IdentityService};
use crate::state::{CallContext, DeadlineExceeded, HostState, Limiter, MemoryLimitExceeded};
use crate::{PluginError, PluginMetrics, ResponseBody};

/// What the host needs from the rest of the platform.
pub struct Services {
    pub kv: Arc<dyn KvStore>,
    pub access: Arc<dyn AccessDecider>,
    pub audit: Arc<dyn AuditSink>,
    pub auth: Arc<dyn Authenticator>,
    pub identity: Arc<dyn IdentityService>,
    pub directory: Arc<dyn DirectoryService>,
    pub events: Arc<dyn EventLog>,
    /// The `blobs` capability's store; `None` where there is none (the capability then answers
    /// `unavailable`).
    pub blobs: Option<Arc<crate::blobs::PluginBlobs>>,
}

/// Request facts established by the server before the plugin is called.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: String,
    /// The patient in context (portal), if any.
    pub patient: Option<String>,
    pub source_address: Option<String>,
}

type Installed = Arc<HashMap<String, Arc<LoadedPlugin>>>;

pub struct PluginHost {
    engine: PluginEngine,
    services: Arc<Services>,
    metrics: PluginMetrics,
    modules_dir: PathBuf,
    /// Swapped whole: a request takes the map it finds and keeps its plugin until it ends, so
    /// a reload never disturbs requests in flight.
    installed: RwLock<Installed>,
    /// The entry each plugin was loaded from, to tell what a new configuration changes.
    entries: tokio::sync::Mutex<HashMap<String, PluginEntry>>,
    /// Rooms of the plugins' WebSocket channels and the bus to other replicas.
    channels: Arc<ChannelHub>,
    /// Bumped at every swap of the installed set: open channel connections then check that
    /// the plugin version that admitted them still serves, and close otherwise.
    generation: tokio::sync::watch::Sender<u64>,
}

/// A call the host makes into a plugin on behalf of a principal it has already established
/// (a channel's join or message, later a TCP protocol gateway's association or message): no
/// route authentication, the path must still be covered by a route of the manifest.
#[derive(Debug, Clone)]
pub struct InternalCall {
    pub method: Method,
    /// Relative to the plugin's root, query included.
    pub path: String,
    /// Sent as they are, credentials excepted.
    pub headers: HeaderMap,
    pub body: Bytes,
    pub principal: Principal,
    pub meta: RequestMeta,
    /// A longer answer fails the call.
    pub max_response_bytes: usize,
}

/// A plugin's answer to an [`InternalCall`], read whole.
#[derive(Debug, Clone)]
pub struct InternalResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl PluginHost {
    pub fn new(
        engine: PluginEngine,
        services: Services,
        metrics: PluginMetrics,
        modules_dir: PathBuf,
    ) -> PluginHost {
        PluginHost {
            engine,
            services: Arc::new(services),
            metrics,
            modules_dir,
            installed: RwLock::new(Arc::new(HashMap::new())),
            entries: tokio::sync::Mutex::new(HashMap::new()),
            channels: ChannelHub::in_process(),
            generation: tokio::sync::watch::channel(0).0,
        }
    }

    /// Uses `hub` for the channels' rooms (the server's PostgreSQL bus); the default is one
    /// server alone.
    pub fn with_channels(mut self, hub: Arc<ChannelHub>) -> PluginHost {
        self.channels = hub;
        self
    }

    pub fn channels(&self) -> &Arc<ChannelHub> {
        &self.channels
    }

    pub(crate) fn reloads(&self) -> tokio::sync::watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    pub fn get(&self, id: &str) -> Option<Arc<LoadedPlugin>> {
        self.snapshot().get(id).cloned()
    }

    /// The installed plugins, sorted by id.
    pub fn installed(&self) -> Vec<Arc<LoadedPlugin>> {
        let mut all: Vec<_> = self.snapshot().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    fn snapshot(&self) -> Installed {
        // The lock only guards an Arc swap; a panic cannot leave it half-written.
        self.installed
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn swap(&self, next: HashMap<String, Arc<LoadedPlugin>>) {
        *self.installed.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Installs (or replaces) one plugin directly: `megalis plugin run` and tests.
    pub fn install(&self, plugin: LoadedPlugin) {
        let mut next = (*self.snapshot()).clone();
        next.insert(plugin.id.clone(), Arc::new(plugin));
        self.swap(next);
    }

    /// Brings the installed set in line with `config`: unchanged plugins are kept as they are,
    /// changed ones are loaded anew, absent ones removed; then the whole set is swapped at once.
    /// A changed plugin that fails to load keeps its previous version only when just its module
    /// changed (a bad upload); a change of grants, limits or configuration that fails removes
    /// it, so a revoked grant never outlives its revocation. Returns the load failures.
    pub async fn apply(&self, config: &PluginsConfig) -> Vec<PluginError> {
        let mut entries = self.entries.lock().await;
        let current = self.snapshot();
        let mut next = HashMap::new();
        let mut failures = Vec::new();
        for entry in &config.plugins {
            let previous = entries.get(&entry.id);
            if previous == Some(entry)
                && let Some(p) = current.get(&entry.id)
            {
                next.insert(entry.id.clone(), p.clone());
                continue;
            }
            match self.load_entry(entry).await {
                Ok(plugin) => {
                    next.insert(entry.id.clone(), Arc::new(plugin));
                }
                Err(e) => {
                    tracing::error!(plugin = %entry.id, error = %e, "plugin load refused");
                    self.metrics
                        .load_failures
                        .with_label_values(&[&entry.id])
                        .inc();
                    let only_module_changed = previous.is_some_and(|p| {
                        p.grants == entry.grants
                            && p.limits == entry.limits
                            && p.config == entry.config
                    });
                    if only_module_changed && let Some(p) = current.get(&entry.id) {
                        tracing::warn!(plugin = %entry.id, digest = %p.digest, "previous version keeps serving");
                        next.insert(entry.id.clone(), p.clone());
                    }
                    failures.push(e);
                }
            }
        }
        let kept: Vec<&str> = next.values().map(|p| p.digest.as_str()).collect();
        self.engine.retain_compiled(&kept);
        entries.retain(|id, _| next.contains_key(id));
        for entry in &config.plugins {
            if next
                .get(&entry.id)
                .is_some_and(|p| p.digest == entry.sha256.to_lowercase())
            {
                entries.insert(entry.id.clone(), entry.clone());
            }
        }
        self.swap(next);
        failures
    }

    async fn load_entry(&self, entry: &PluginEntry) -> Result<LoadedPlugin, PluginError> {
        let path = module_path(&self.modules_dir, &entry.sha256);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|source| PluginError::ReadModule {
                plugin: entry.id.clone(),
                path: path.display().to_string(),
                source,
            })?;
        LoadedPlugin::load(&self.engine, entry, bytes).await
    }

    /// Polls `config_path` every `interval` and applies it when its content changes (a
    /// Kubernetes ConfigMap is updated by swapping a symlink, which file events report poorly).
    pub fn watch(
        self: &Arc<Self>,
        config_path: PathBuf,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let host = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last: Option<Vec<u8>> = None;
            loop {
                let Some(host) = host.upgrade() else { return };
                let content = tokio::fs::read(&config_path).await.unwrap_or_default();
                if last.as_ref() != Some(&content) {
                    match PluginsConfig::load(&config_path) {
                        Ok(config) => {
                            let failures = host.apply(&config).await;
                            tracing::info!(
                                path = %config_path.display(),
                                installed = host.installed().len(),
                                failures = failures.len(),
                                "plugins configuration applied"
                            );
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "plugins configuration refused; current plugins keep serving");
                        }
                    }
                    last = Some(content);
                }
                drop(host);
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Serves one request with plugin `id`. The request's path is relative to the plugin's root
    /// (the server removes `/apps/{id}`). The route's authentication runs first; credentials
    /// are then stripped, and the plugin runs in a fresh store under its limits.
    pub async fn invoke<B>(
        &self,
        id: &str,
        mut request: http::Request<B>,
        meta: RequestMeta,
    ) -> Result<http::Response<ResponseBody>, PluginError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let plugin = self
            .get(id)
            .ok_or_else(|| PluginError::NotInstalled(id.to_owned()))?;
        let outcome = self.admit(&plugin, &mut request).await;
        let principal = match outcome {
            Ok(p) => p,
            Err(e) => {
                self.count_error(&plugin.id, &e);
                return Err(e);
            }
        };
        let result = self.run(plugin.clone(), request, principal, meta).await;
        if let Err(e) = &result {
            tracing::warn!(plugin = %plugin.id, error = %e, "plugin request failed");
        }
        result
    }

    fn count_error(&self, plugin: &str, e: &PluginError) {
        self.metrics
            .errors
            .with_label_values(&[plugin, e.kind()])
            .inc();
    }

    /// Route, authentication, CSRF, credential stripping.
    async fn admit<B>(
        &self,
        plugin: &LoadedPlugin,
        request: &mut http::Request<B>,
    ) -> Result<Principal, PluginError> {
        let path = request.uri().path();
        let route = plugin
            .manifest
            .route_for(path)
            .ok_or_else(|| PluginError::NoRoute {
                plugin: plugin.id.clone(),
                path: path.to_owned(),
            })?;
        // A channel's join and message paths are the host's to call: refusing them to clients
        // lets the plugin trust that such a request comes from the host, for a member it
        // authenticated.
        if plugin.manifest.is_channel_hook(path) {
            return Err(PluginError::NoRoute {
                plugin: plugin.id.clone(),
                path: path.to_owned(),
            });
        }
        let principal = self
            .services
            .auth
            .authenticate(&plugin.id, &route.auth, request.headers())
            .await
            .map_err(|r| match r {
                AuthRefusal::Unauthenticated => PluginError::Unauthenticated,
                AuthRefusal::Forbidden(why) => PluginError::Forbidden(why),
                AuthRefusal::Unavailable => PluginError::AuthUnavailable,
            })?;
        if route.auth == RouteAuth::Session && !is_safe(request.method()) {
            check_same_origin(request.headers())?;
        }
        strip_credentials(request.headers_mut());
        Ok(principal)
    }

    /// Calls plugin `id` as the host, for `call.principal` (already authenticated by whoever
    /// terminates the protocol). The plugin runs exactly as for an HTTP request — fresh
    /// store, limits, metrics — and sees the principal through `context`. The channels' join
    /// and message calls use it; a gateway for a TCP protocol (DICOM DIMSE, SMTP) is meant to
    /// call plugins the same way.
    pub async fn invoke_internal(
        &self,
        id: &str,
        call: InternalCall,
    ) -> Result<InternalResponse, PluginError> {
        let plugin = self
            .get(id)
            .ok_or_else(|| PluginError::NotInstalled(id.to_owned()))?;
        let path = call.path.split('?').next().unwrap_or_default();
        if plugin.manifest.route_for(path).is_none() {
            return Err(PluginError::NoRoute {
                plugin: plugin.id.clone(),
                path: path.to_owned(),
            });
        }
        let mut request = http::Request::builder()
            .method(call.method)
            .uri(&call.path)
            .body(Full::new(call.body))
            .map_err(|e| PluginError::BadRequest(format!("internal call: {e}")))?;
        *request.headers_mut() = call.headers;
        strip_credentials(request.headers_mut());
        let response = self
            .run(plugin.clone(), request, call.principal, call.meta)
            .await?;
        let (parts, mut body) = response.into_parts();
        let mut out = BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| PluginError::Trap {
                plugin: plugin.id.clone(),
                reason: format!("response body: {e:?}"),
            })?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > call.max_response_bytes {
                    return Err(PluginError::Trap {
                        plugin: plugin.id.clone(),
                        reason: format!(
                            "answer longer than {} bytes to an internal call",
                            call.max_response_bytes
                        ),
                    });
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(InternalResponse {
            status: parts.status,
            headers: parts.headers,
            body: out.freeze(),
        })
    }

    /// Admits a client to a room of a plugin's WebSocket channel, before the upgrade: `uri`
    /// is plugin-relative (`/signal?room=ROOM`), `headers` the upgrade request's. The client
    /// is authenticated as the channel says (a `session` channel must be same-origin: a
    /// browser sends the cookie with a WebSocket opened by any site; a `public` channel
    /// ignores cross-site cookies), then the plugin's `join` path is asked, with the
    /// principal in context. Every refusal happens here, so it is an HTTP answer.
    pub async fn join_channel(
        self: &Arc<Self>,
        id: &str,
        uri: &http::Uri,
        headers: &HeaderMap,
        meta: RequestMeta,
    ) -> Result<ChannelSession, PluginError> {
        let plugin = self
            .get(id)
            .ok_or_else(|| PluginError::NotInstalled(id.to_owned()))?;
        let Some(channel) = plugin.manifest.channel_at(uri.path()).cloned() else {
            return Err(PluginError::NoRoute {
                plugin: plugin.id.clone(),
                path: uri.path().to_owned(),
            });
        };
        let refused = |reason: &str, e: PluginError| {
            self.metrics
                .channel_joins_refused
                .with_label_values(&[&plugin.id, reason])
                .inc();
            e
        };
        let room = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("room="))
            .unwrap_or_default()
            .to_owned();
        if !valid_room(&room) {
            return Err(refused(
                "invalid",
                PluginError::BadRequest(
                    "A channel is joined with ?room=NAME, 1 to 128 characters of A-Z a-z 0-9 . _ : -"
                        .into(),
                ),
            ));
        }
        let mut headers = headers.clone();
        match channel.auth {
            RouteAuth::Session => {
                if let Err(e) = check_same_origin(&headers) {
                    return Err(refused("cross_origin", e));
                }
            }
            RouteAuth::Public => {
                if check_same_origin(&headers).is_err() {
                    headers.remove(header::COOKIE);
                }
            }
            RouteAuth::Bearer(_) => {}
        }
        let principal = match self
            .services
            .auth
            .authenticate(&plugin.id, &channel.auth, &headers)
            .await
        {
            Ok(p) => p,
            Err(AuthRefusal::Unauthenticated) => {
                return Err(refused("unauthenticated", PluginError::Unauthenticated));
            }
            Err(AuthRefusal::Forbidden(why)) => {
                return Err(refused("forbidden", PluginError::Forbidden(why)));
            }
            Err(AuthRefusal::Unavailable) => {
                return Err(refused("unavailable", PluginError::AuthUnavailable));
            }
        };
        if let Err(e) = self.channels.ready().await {
            tracing::warn!(plugin = %plugin.id, error = %e, "channel join refused: no bus");
            return Err(refused(
                "unavailable",
                PluginError::ChannelsUnavailable(
                    "Channels are temporarily unavailable on this server.".into(),
                ),
            ));
        }
        let key = RoomKey {
            plugin: plugin.id.clone(),
            channel: channel.path.clone(),
            room: room.clone(),
        };
        let full = || PluginError::RoomFull {
            plugin: plugin.id.clone(),
            room: room.clone(),
            limit: channel.max_members,
        };
        // A full room need not cost the plugin a call; `enter` checks again, atomically.
        if self.channels.rooms().members(&key) >= channel.max_members {
            return Err(refused("full", full()));
        }
        let member: Arc<str> = random_id().into();
        let join = InternalCall {
            method: Method::POST,
            path: channel.join.clone(),
            headers: hook_headers("application/json", &channel.path, &room, &member),
            body: serde_json::to_vec(&serde_json::json!({
                "room": room,
                "channel": channel.path,
                "member": &*member,
            }))
            .expect("strings serialise")
            .into(),
            principal: principal.clone(),
            meta: meta.clone(),
            max_response_bytes: 64 * 1024,
        };
        match self.invoke_internal(&plugin.id, join).await {
            Ok(answer) if answer.status.is_success() => {}
            Ok(answer) => {
                tracing::info!(plugin = %plugin.id, room = %room, status = answer.status.as_u16(), "channel join refused by the plugin");
                return Err(refused(
                    "plugin",
                    PluginError::Forbidden(format!(
                        "The application {} refused to let you join room {room}.",
                        plugin.id
                    )),
                ));
            }
            Err(e) => return Err(refused("error", e)),
        }
        let Some(membership) = self.channels.enter(key, member, channel.max_members).await else {
            return Err(refused("full", full()));
        };
        Ok(ChannelSession::new(
            self.clone(),
            plugin,
            channel,
            principal,
            meta,
            membership,
        ))
    }

    async fn run<B>(
        &self,
        plugin: Arc<LoadedPlugin>,
        request: http::Request<B>,
        principal: Principal,
        meta: RequestMeta,
    ) -> Result<http::Response<ResponseBody>, PluginError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let id = plugin.id.clone();
        let permit = plugin.permits.clone().try_acquire_owned().map_err(|_| {
            let e = PluginError::Busy {
                plugin: id.clone(),
                limit: plugin.limits.max_concurrency,
            };
            self.count_error(&id, &e);
            e
        })?;
        self.metrics.invocations.with_label_values(&[&id]).inc();

        let limits = plugin.limits;
        let started = Instant::now();
        let deadline = started + limits.timeout;
        let state = HostState::new(
            CallContext {
                plugin: Arc::from(id.as_str()),
                principal,
                request_id: meta.request_id,
                patient: meta.patient,
                config: plugin.config.clone(),
                source_address: meta.source_address,
                subscriptions: plugin.subscriptions.clone(),
            },
            self.services.clone(),
            Limiter::new(limits.memory_bytes, limits.table_elements),
        );
        let mut store = Store::new(self.engine.engine(), state);
        store.limiter(|s| &mut s.limiter);
        // Every tick the guest yields to the executor (so a busy plugin cannot starve others)
        // and traps once its deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });

        let request = with_authority(request).map(|body| {
            body.map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                .boxed_unsync()
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let (req, out) = {
            let mut http = store.data_mut().http();
            let req = http.new_incoming_request(Scheme::Http, request);
            let out = http.new_response_outparam(sender);
            match (req, out) {
                (Ok(req), Ok(out)) => (req, out),
                (Err(e), _) | (_, Err(e)) => {
                    return Err(PluginError::Trap {
                        plugin: id,
                        reason: format!("cannot hand the request over: {e:#}"),
                    });
                }
            }
        };

        let pre = plugin.pre.clone();
        let metrics = self.metrics.clone();
        let task_plugin = plugin.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let in_flight = metrics.in_flight.with_label_values(&[&task_plugin.id]);
            in_flight.inc();
            // Wall-clock bound too: a plugin waiting on a host call does not tick the epoch.
            let run = tokio::time::timeout(limits.timeout, async {
                let t0 = Instant::now();
                let proxy = pre.instantiate_async(&mut store).await?;
                metrics
                    .instantiation
                    .with_label_values(&[&task_plugin.id])
                    .observe(t0.elapsed().as_secs_f64());
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
            })
            .await;
            in_flight.dec();
            metrics
                .duration
                .with_label_values(&[&task_plugin.id])
                .observe(started.elapsed().as_secs_f64());
            metrics.observe_memory(&task_plugin.id, store.data().limiter.high_water);
            let result = match run {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(classify(&task_plugin, e)),
                Err(_) => Err(PluginError::Deadline {
                    plugin: task_plugin.id.clone(),
                    timeout_ms: limits.timeout.as_millis() as u64,
                }),
            };
            if let Err(e) = &result {
                metrics
                    .errors
                    .with_label_values(&[&task_plugin.id, e.kind()])
                    .inc();
            }
            result
        });

        match receiver.await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(code)) => Err(PluginError::Trap {
                plugin: id,
                reason: format!("the plugin answered with error {code:?}"),
            }),
            // The handler ended without answering: its own result says why.
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(())) => Err(PluginError::Trap {
                    plugin: id,
                    reason: "the handler returned without a response".into(),
                }),
                Err(e) => Err(PluginError::Trap {
                    plugin: id,
                    reason: format!("the request task failed: {e}"),
                }),
            },
        }
    }
}

/// The module file of a digest under the plugins directory.
pub fn module_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join(format!("{}.wasm", sha256.to_lowercase()))
}

fn classify(plugin: &LoadedPlugin, e: wasmtime::Error) -> PluginError {
    if e.downcast_ref::<DeadlineExceeded>().is_some()
        || matches!(
            e.downcast_ref::<wasmtime::Trap>(),
            Some(wasmtime::Trap::Interrupt)
        )
    {
        PluginError::Deadline {
            plugin: plugin.id.clone(),
            timeout_ms: plugin.limits.timeout.as_millis() as u64,
        }
    } else if e.downcast_ref::<MemoryLimitExceeded>().is_some() {
        PluginError::MemoryLimit {
            plugin: plugin.id.clone(),
            limit_bytes: plugin.limits.memory_bytes,
        }
    } else if e
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_some()
    {
        PluginError::PoolExhausted
    } else {
        PluginError::Trap {
            plugin: plugin.id.clone(),
            reason: format!("{e:#}"),
        }
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Session routes are reached with the portal's cookie, which a browser also sends on requests
/// other sites forge; a state-changing request must prove it comes from the platform's own
/// pages (Fetch Metadata, or an Origin equal to the Host).
fn check_same_origin(headers: &HeaderMap) -> Result<(), PluginError> {
    let refused = || PluginError::Forbidden("Cross-site request refused (CSRF protection).".into());
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(refused()),
        };
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
            if origin_host.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err(refused())
            }
        }
        _ => Err(refused()),
    }
}

/// Headers of the host's calls for a channel: what the plugin needs to know about the member
/// beyond the principal.
pub(crate) fn hook_headers(
    content_type: &str,
    channel: &str,
    room: &str,
    member: &str,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("content-type", content_type);
    put("x-megalis-channel", channel);
    put("x-megalis-room", room);
    put("x-megalis-member", member);
    h
}

/// The plugin learns who calls through `context`, never through credentials it could replay.
fn strip_credentials(headers: &mut HeaderMap) {
    headers.remove(header::COOKIE);
    headers.remove(header::AUTHORIZATION);
    headers.remove(header::PROXY_AUTHORIZATION);
}

/// wasi:http needs an authority; a request without `Host` (HTTP/1.0) gets `localhost`.
fn with_authority<B>(mut request: http::Request<B>) -> http::Request<B> {
    if request.uri().authority().is_none() && !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn csrf_table() {
        let cases: [(&[(&str, &str)], bool); 7] = [
            (&[("sec-fetch-site", "same-origin")], true),
            (&[("sec-fetch-site", "none")], true),
            (&[("sec-fetch-site", "cross-site")], false),
            (&[("sec-fetch-site", "same-site")], false),
            (
                &[("origin", "https://portal.bzh"), ("host", "portal.bzh")],
                true,
            ),
            (
                &[("origin", "https://evil.example"), ("host", "portal.bzh")],
                false,
            ),
            (&[("host", "portal.bzh")], false),
        ];
        for (h, ok) in cases {
            assert_eq!(check_same_origin(&headers(h)).is_ok(), ok, "{h:?}");
        }
    }

    #[test]
    fn credentials_are_stripped() {
        let mut h = headers(&[
            ("cookie", "session=secret"),
            ("authorization", "Bearer t"),
            ("proxy-authorization", "Basic x"),
            ("accept", "text/html"),
        ]);
        strip_credentials(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }
}
