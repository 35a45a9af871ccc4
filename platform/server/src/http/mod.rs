//! The HTTP surface: the router, the front middleware every request passes through, and the
//! listeners (HTTPS over rustls, optional plain HTTP behind an ingress).

pub mod access;
pub mod auth_glue;
pub mod cps;
pub mod directory_lookup;
pub mod documents_fhir;
pub mod documents_portal;
pub mod federation;
pub mod fhir;
pub mod forwarded;
pub mod listener;
pub mod oauth;
pub mod patient_access;
pub mod patient_fhir;
pub mod patient_space;
pub mod patients_portal;
pub mod portal;
pub mod problem;
pub mod publications;
pub mod routes;
pub mod sharing_fhir;
pub mod sharing_portal;
mod testing;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderName, HeaderValue, StatusCode, header};
use megalis_audit::AuditLog;
use megalis_auth::{Auth, AuthSettings};
use megalis_blobs::BlobStore;
use megalis_config::{Mode, Settings};
use megalis_store::Database;
use tracing::Instrument;

use crate::metrics::Metrics;
use forwarded::ClientInfo;
pub use problem::ApiError;

/// What every handler may reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub settings: Settings,
    pub db: Database,
    pub audit: AuditLog,
    pub blobs: Arc<dyn BlobStore>,
    pub metrics: Metrics,
    /// Accounts, sessions, the OpenID Provider and per-application grants.
    pub auth: Arc<Auth>,
    /// The WebAssembly plugin host (`/apps/{plugin}/…`); `None` when its engine could not start.
    pub plugins: Option<Arc<megalis_plugin_host::PluginHost>>,
    /// Trust in CPS cards, when the mutual-TLS listener is configured.
    pub card_trust: Option<Arc<crate::cps::CardTrust>>,
    /// The upstream OpenID Provider (Pro Santé Connect), when configured.
    pub upstream_oidc: Option<Arc<federation::Upstream>>,
    /// The regional patient index (FHIR Patient, the MLLP feed, the portal's patient pages).
    pub identity: megalis_identity_index::PatientIndex,
    /// Care relationships, the patients' directives and emergency accesses: the facts of every
    /// access decision on patient data (`http/access.rs`).
    pub sharing: megalis_sharing::SharingStore,
    /// Set once migrations have been applied (they may wait for the database at start).
    pub migrated: AtomicBool,
    /// Set when shutdown begins, so load balancers stop sending new requests.
    pub shutting_down: AtomicBool,
    security_headers: SecurityHeaders,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(
        settings: Settings,
        db: Database,
        audit: AuditLog,
        blobs: Arc<dyn BlobStore>,
        metrics: Metrics,
        card_trust: Option<Arc<crate::cps::CardTrust>>,
        upstream_oidc: Option<Arc<federation::Upstream>>,
    ) -> Self {
        let security_headers = SecurityHeaders::new(&settings);
        // Practitioners come from the directory; demo and test modes also know the documented
        // demo region's practitioners when the directory has not imported them.
        let demo = (settings.mode != Mode::Production).then(|| crate::demo::directory(true));
        let directory = Arc::new(directory_lookup::DirectoryLookup::new(db.clone(), demo));
        let auth = Auth::new(db.clone(), auth_settings(&settings), directory);
        let identity = megalis_identity_index::PatientIndex::new(
            db.clone(),
            audit.clone(),
            megalis_identity_index::IndexSettings::default(),
        )
        .expect("the built-in matching configuration is valid");
        let sharing = megalis_sharing::SharingStore::new(
            db.clone(),
            megalis_sharing::SharingSettings::default(),
        );
        let plugins = crate::plugins::start(
            &settings,
            &db,
            &audit,
            &metrics,
            &auth,
            crate::plugins::Platform {
                identity: &identity,
                sharing: &sharing,
                blobs: &blobs,
            },
        );
        AppState(Arc::new(Shared {
            settings,
            db,
            audit,
            blobs,
            metrics,
            auth,
            plugins,
            card_trust,
            upstream_oidc,
            identity,
            sharing,
            migrated: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            security_headers,
        }))
    }
}

/// The auth service's settings, from the one configuration.
pub fn auth_settings(settings: &Settings) -> AuthSettings {
    AuthSettings {
        session_idle_timeout: settings.auth_session_idle_timeout,
        session_absolute_timeout: settings.auth_session_absolute_timeout,
        access_token_lifetime: settings.auth_access_token_lifetime,
        refresh_token_lifetime: settings.auth_refresh_token_lifetime,
        key_rotation: settings.auth_key_rotation,
        max_failures: i64::from(settings.auth_lockout_threshold),
        lockout: settings.auth_lockout_duration,
        mtls_base_url: settings.cps_public_url.clone(),
        access_token_algorithm: match settings.auth_access_token_algorithm.as_str() {
            "RS256" => megalis_auth::SigningAlgorithm::RS256,
            _ => megalis_auth::SigningAlgorithm::ES256,
        },
        ..AuthSettings::new(&settings.public_url)
    }
}

/// Security headers, precomputed once: every response gets the common set; HTML pages (the
/// portal, error pages, plugin pages) get the full browser policy, other responses a CSP that
/// allows nothing — smaller on the wire for API and probe traffic, and just as strict.
pub struct SecurityHeaders {
    common: Vec<(HeaderName, HeaderValue)>,
    html: Vec<(HeaderName, HeaderValue)>,
    other: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    fn new(settings: &Settings) -> Self {
        let mut common = vec![(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        )];
        // HSTS only makes sense when clients reach us over HTTPS, which the public URL says.
        if settings.public_url.starts_with("https://") {
            common.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            ));
        }
        let html = vec![
            (
                header::CONTENT_SECURITY_POLICY,
                // Pages are server-rendered with no inline script; plugins render inside this shell.
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
                ),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static("camera=(self), microphone=(self), geolocation=()"),
            ),
        ];
        let other = vec![(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        )];
        SecurityHeaders {
            common,
            html,
            other,
        }
    }

    fn apply(&self, headers: &mut http::HeaderMap) {
        let is_html = headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|ct| ct.as_bytes().starts_with(b"text/html"));
        let specific = if is_html { &self.html } else { &self.other };
        // A handler that set its own frame policy (the inline document content, framed by the
        // portal's own pages) keeps it; everything else gets the platform's.
        let own_policy = !is_html && headers.contains_key(header::CONTENT_SECURITY_POLICY);
        for (name, value) in self.common.iter().chain(specific) {
            if own_policy && *name == header::CONTENT_SECURITY_POLICY {
                continue;
            }
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// Connection facts the listener attaches to each request.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// The request's correlation id, as accepted or generated by the front middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn acceptable_request_id(v: &HeaderValue) -> Option<&str> {
    // Ids end up in logs and audit records: accept only short, plain tokens from clients.
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')))
    .then_some(s)
}

fn new_request_id() -> Arc<str> {
    use rand::Rng;
    let bytes: [u8; 16] = rand::rng().random();
    let mut hex = [0u8; 32];
    hex::encode_to_slice(bytes, &mut hex).expect("32 hex digits for 16 bytes");
    Arc::from(std::str::from_utf8(&hex).expect("hex is ASCII"))
}

/// Every request passes here first: correlation id, client address, tracing span, metrics,
/// the error mapper and the security headers. A plain tower service rather than
/// `middleware::from_fn`, which boxes the rest of the stack on every request: this runs on every
/// request of the platform, probes included, and its cost is benchmarked against a bare server.
#[derive(Clone)]
struct FrontLayer(AppState);

impl<S> tower::Layer<S> for FrontLayer {
    type Service = Front<S>;
    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            state: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Front<S> {
    inner: S,
    state: AppState,
}

impl<S> tower::Service<Request> for Front<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready is the one to call (tower's contract).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(front(self.state.clone(), inner, request))
    }
}

async fn front<S>(
    state: AppState,
    mut inner: S,
    mut request: Request,
) -> Result<Response, std::convert::Infallible>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>,
{
    let started = Instant::now();
    let request_id: Arc<str> = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(acceptable_request_id)
        .map(Arc::from)
        .unwrap_or_else(new_request_id);
    let connection = request.extensions().get::<Connection>().copied();
    let client = connection.map(|c| {
        forwarded::client_info(
            c.peer,
            c.tls,
            request.headers(),
            &state.settings.trusted_proxies,
        )
    });
    if let Some(client) = client {
        request.extensions_mut().insert(client);
    }
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));
    // The route template, not the raw path, labels metrics: raw paths would carry identifiers.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route_label = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = request.method().clone();
    let facts = problem::RequestFacts::new(request.uri(), request.headers(), request_id.clone());

    let span = tracing::info_span!("request", id = %request_id, %method, route = route_label,
        client = client.map(|c| c.address.to_string()).unwrap_or_default());
    // Until the schema is current nothing but the probes may run: a handler would fail on a
    // missing table with a 500 where the truth is "not ready yet" (503, retry).
    let response = if !state.migrated.load(Ordering::Acquire) && !is_probe(request.uri().path()) {
        ApiError::unavailable("The platform is starting: its database is not ready yet.")
            .into_response()
    } else {
        match inner.call(request).instrument(span.clone()).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    };
    let mut response = problem::render(&facts, response).await;

    let status = response.status();
    let elapsed = started.elapsed();
    let headers = response.headers_mut();
    // Room for the id and security headers at once, instead of growing the map step by step.
    headers.reserve(8);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
    state.security_headers.apply(headers);
    state
        .metrics
        .http_requests
        .with_label_values(&[route_label, method.as_str(), status.as_str()])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[route_label, method.as_str()])
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        let elapsed_ms = elapsed.as_millis() as u64;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), elapsed_ms, "request failed");
        } else {
            // Per-request lines at debug: at info they would cost more than /healthz itself.
            tracing::debug!(status = status.as_u16(), elapsed_ms, "request");
        }
    });
    Ok(response)
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and the schema is current; 503 otherwise (including during
/// shutdown), so that Kubernetes sends traffic only to replicas that can serve it.
async fn readyz(State(state): State<AppState>) -> Response {
    if state.shutting_down.load(Ordering::Relaxed) {
        return ApiError::unavailable("shutting down").into_response();
    }
    let db_ok = state.db.ping().await.is_ok();
    state.metrics.db_up.set(i64::from(db_ok));
    if !db_ok {
        return ApiError::unavailable("database unreachable").into_response();
    }
    if !state.migrated.load(Ordering::Acquire) {
        return ApiError::unavailable("database migrations not applied yet").into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.record_pool(state.db.pool_stats());
    state
        .metrics
        .audit_chain_length
        .set(i64::try_from(state.audit.head_seq()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "")
}

/// Builds the whole application router.
pub fn router(state: AppState) -> Router {
    let settings = &state.settings;
    // One table: each route says whether it touches patient data (`routes.rs`).
    let mut app = Router::new();
    let body_limit = usize::try_from(settings.http_body_limit).unwrap_or(usize::MAX);
    for route in routes::table(settings.mode == Mode::Test) {
        // The body limit is per route: a streamed upload enforces its own, larger one.
        let handler = if route.streamed {
            route.handler
        } else {
            route
                .handler
                .layer(tower_http::limit::RequestBodyLimitLayer::new(body_limit))
        };
        app = app.route(route.path, handler);
    }
    with_front_layers(app, state, false)
}

/// The router of the mutual-TLS listener: the CPS card login, the OAuth endpoints where system
/// clients authenticate with their certificate (RFC 8705), and the probe, with the same front
/// layers (request id, error pages, metrics, security headers) as the main one.
pub fn card_listener_router(state: AppState) -> Router {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .merge(cps::card_listener_routes())
        .merge(oauth::mtls_routes());
    with_front_layers(app, state, true)
}

/// The layers every request of a listener passes. `body_limit`: apply `http.body_limit` to
/// the whole router (the main router applies it per route instead, see [`router`]).
fn with_front_layers(app: Router<AppState>, state: AppState, body_limit: bool) -> Router {
    let settings = &state.settings;
    let mut app = app
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.http_request_timeout,
        ));
    if body_limit {
        app = app.layer(tower_http::limit::RequestBodyLimitLayer::new(
            usize::try_from(settings.http_body_limit).unwrap_or(usize::MAX),
        ));
    }
    app.layer(FrontLayer(state.clone())).with_state(state)
}

/// The client info of a request, for handlers that audit (falls back to "unknown").
pub fn client_address(request_extensions: &http::Extensions) -> Option<String> {
    request_extensions
        .get::<ClientInfo>()
        .map(|c| c.address.to_string())
}
