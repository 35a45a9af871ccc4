//! The installed plugins and the request path into them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

use crate::access::{AccessDecider, AuditSink, AuthRefusal, Authenticator, Principal};
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
        }
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
