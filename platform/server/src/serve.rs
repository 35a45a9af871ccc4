//! `megalis serve`: start everything, serve until SIGTERM/SIGINT, then drain and stop cleanly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hyper_util::server::graceful::GracefulShutdown;
use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_config::{BlobBackend, Mode, Settings};
use megalis_store::{Database, PoolSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ServerError;
use crate::http::{self, AppState, listener};
use crate::metrics::Metrics;

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Creates the data directory readable by the service account only: it holds keys.
pub fn prepare_data_dir(settings: &Settings) -> Result<(), ServerError> {
    let dir = &settings.data_dir;
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(|source| ServerError::DataDir {
            path: dir.clone(),
            source,
        })?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| ServerError::DataDir {
                path: dir.clone(),
                source,
            },
        )?;
    }
    Ok(())
}

pub fn open_database(settings: &Settings) -> Result<Database, ServerError> {
    Ok(Database::open(
        &settings.database_url,
        &PoolSettings {
            max_connections: settings.database_max_connections,
            ..PoolSettings::default()
        },
    )?)
}

pub fn audit_settings(settings: &Settings) -> AuditSettings {
    AuditSettings {
        checkpoint_interval: settings.audit_checkpoint_interval,
        signing_key_path: settings.audit_signing_key.clone(),
        checkpoint_file: settings.audit_checkpoint_file.clone(),
        ..AuditSettings::for_data_dir(&settings.data_dir)
    }
}

pub fn blob_store_config(settings: &Settings) -> megalis_blobs::BlobStoreConfig {
    megalis_blobs::BlobStoreConfig {
        backend: match settings.blobs_backend {
            BlobBackend::Local => megalis_blobs::BlobBackend::Local,
            BlobBackend::S3 => megalis_blobs::BlobBackend::S3,
        },
        path: Some(settings.blobs_path.clone()),
        s3_bucket: settings.blobs_s3_bucket.clone(),
        s3_endpoint: settings.blobs_s3_endpoint.clone(),
        s3_region: settings.blobs_s3_region.clone(),
        s3_access_key_id: settings.blobs_s3_access_key_id.clone(),
        s3_secret_access_key: settings.blobs_s3_secret_access_key.clone(),
        s3_allow_http: settings.blobs_s3_allow_http,
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}

pub async fn run(settings: Settings) -> Result<(), ServerError> {
    prepare_data_dir(&settings)?;
    let tls = http::tls::load(
        settings.tls_cert.as_deref(),
        settings.tls_key.as_deref(),
        &settings.data_dir,
        host_of(&settings.public_url),
    )?;
    // Bind before anything slow so that a port conflict is reported at once.
    let https_listener = bind(settings.listen).await?;
    let plain_listener = match settings.plain_http_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let card_listener = match settings.mtls_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    // The card trust is read before serving: a missing or broken bundle stops the start.
    let card_trust = match &settings.cps_ca {
        Some(ca) if settings.mtls_listen.is_some() => Some(Arc::new(crate::cps::CardTrust::load(
            ca,
            settings.cps_crl.as_deref(),
        )?)),
        _ => None,
    };
    let mllp_listener = bind(settings.mllp_listen).await?;
    let mllp_settings = megalis_identity_index::mllp::MllpSettings::load(
        &settings.mllp_senders,
        settings.identity_test_ins,
    )
    .map_err(|e| ServerError::Fatal(e.to_string()))?;

    let db = open_database(&settings)?;
    let key = SigningKey::load_or_create(&settings.audit_signing_key)?;
    let audit = AuditLog::start(db.clone(), key, audit_settings(&settings));
    let blobs = megalis_blobs::open(&blob_store_config(&settings))?;
    let state = AppState::new(
        settings.clone(),
        db.clone(),
        audit.clone(),
        blobs,
        Metrics::new(),
        card_trust.clone(),
        http::federation::upstream(&settings)?,
    );
    let app = http::router(state.clone());
    // The identity feed. Until the migrations are done its messages are answered AE (code 207,
    // the sender retries), never AA.
    let identity = state.identity.clone();

    // Migrations wait for the database if it is not there yet; meanwhile /readyz says 503.
    let fatal = CancellationToken::new();
    // What stopped the start, for the exit message (the log has the details).
    let fatal_reason: Arc<std::sync::Mutex<&'static str>> =
        Arc::new(std::sync::Mutex::new("database migration failed"));
    let auth_refresher: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>> = Arc::default();
    let migration = {
        let state = state.clone();
        let fatal = fatal.clone();
        let fatal_reason = fatal_reason.clone();
        let auth_refresher = auth_refresher.clone();
        tokio::spawn(async move {
            match state.db.migrate_when_available(None).await {
                Ok(()) => {
                    // Signing keys, grants and the revocation list come from the database.
                    match state.identity.backfill_search_keys().await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(patients = n, "patient search keys computed"),
                        Err(e) => {
                            tracing::error!(error = %e, "patient search keys could not be computed");
                            fatal.cancel();
                            return;
                        }
                    }
                    if let Err(e) = state.auth.init().await {
                        tracing::error!(error = %e, "authentication service failed to start");
                        *fatal_reason.lock().expect("lock") =
                            "the authentication service failed to start";
                        fatal.cancel();
                        return;
                    }
                    if state.settings.mode == Mode::Demo {
                        if let Err(e) =
                            crate::demo::seed(&state.auth, &state.settings.public_url).await
                        {
                            tracing::error!(error = %e, "demo region could not be seeded");
                            *fatal_reason.lock().expect("lock") =
                                "the demo region could not be seeded";
                            fatal.cancel();
                            return;
                        }
                        // Before readiness, so the patient pages show the population at once.
                        match crate::demo::patients::seed(&state.identity).await {
                            // Zero on a restart: every message was applied before.
                            Ok(n) => tracing::info!(messages_applied = n, "demo patients fed"),
                            Err(e) => {
                                tracing::error!(error = %e, "demo patients could not be fed");
                                *fatal_reason.lock().expect("lock") =
                                    "the demo patients could not be fed";
                                fatal.cancel();
                                return;
                            }
                        }
                        let now = megalis_audit::record::now_us();
                        match crate::demo::publications::seed(&state.auth, now).await {
                            Ok(n) => tracing::info!(articles = n, "demo publications written"),
                            // Articles are not vital to a demonstration: log and go on.
                            Err(e) => tracing::error!(error = %e, "demo publications failed"),
                        }
                    }
                    auth_refresher
                        .lock()
                        .expect("lock")
                        .replace(state.auth.spawn_refresher());
                    state.migrated.store(true, Ordering::Release);
                    tracing::info!(backend = state.db.backend().name(), "database ready");
                }
                Err(e) => {
                    tracing::error!(error = %e, "database migration failed");
                    fatal.cancel();
                }
            }
        })
    };

    let graceful = Arc::new(GracefulShutdown::new());
    let stop = CancellationToken::new();
    let listener_settings = || listener::ListenerSettings {
        header_timeout: settings.http_header_timeout,
    };
    let mut servers = vec![tokio::spawn(listener::serve(
        https_listener,
        Some(listener::TlsConfig::new(tls.config.clone())),
        app.clone(),
        listener_settings(),
        graceful.clone(),
        stop.clone(),
    ))];
    if let Some(l) = plain_listener {
        servers.push(tokio::spawn(listener::serve(
            l,
            None,
            app.clone(),
            listener_settings(),
            graceful.clone(),
            stop.clone(),
        )));
    }
    let mut card_reloader = None;
    if let (Some(l), Some(trust)) = (card_listener, &card_trust) {
        // Same server identity as the HTTPS listener; the card trust decides the client side.
        let (chain, key) = (tls.chain.clone(), tls.key.clone_key());
        let card_tls = move |trust: &crate::cps::CardTrust| {
            http::tls::server_config(
                chain.clone(),
                key.clone_key(),
                http::tls::ClientAuth::Required(trust.handshake_verifier()),
            )
            .map(Arc::new)
        };
        let config = listener::TlsConfig::new(
            card_tls(trust).map_err(|e| ServerError::Fatal(format!("mutual-TLS listener: {e}")))?,
        );
        // A reloaded bundle changes the CA names the handshake offers to browsers.
        let on_reload = {
            let config = config.clone();
            let trust = trust.clone();
            move || match card_tls(&trust) {
                Ok(c) => config.replace(c),
                Err(e) => tracing::error!(error = %e, "mutual-TLS configuration not rebuilt"),
            }
        };
        card_reloader =
            Some(trust.spawn_reloader(settings.cps_reload_interval, on_reload, stop.clone()));
        servers.push(tokio::spawn(listener::serve(
            l,
            Some(config),
            http::card_listener_router(state.clone()),
            listener_settings(),
            graceful.clone(),
            stop.clone(),
        )));
    }

    let mllp = if settings.mllp_tls {
        let mut config = http::tls::server_config(
            tls.chain.clone(),
            tls.key.clone_key(),
            http::tls::ClientAuth::Required(crate::cps::any_client_certificate()),
        )
        .map_err(|e| ServerError::Fatal(format!("MLLP TLS listener: {e}")))?;
        config.alpn_protocols.clear();
        tokio::spawn(serve_mllp_tls(
            mllp_listener,
            tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            identity,
            Arc::new(mllp_settings),
            state.auth.clone(),
            stop.clone(),
        ))
    } else {
        tokio::spawn(megalis_identity_index::mllp::serve(
            mllp_listener,
            identity,
            Arc::new(mllp_settings),
            stop.clone().cancelled_owned(),
        ))
    };

    print_banner(&settings, &tls, &db);

    let reason = tokio::select! {
        signal = shutdown_signal() => signal,
        () = fatal.cancelled() => "fatal error",
    };
    tracing::info!(
        reason,
        "shutting down: no new connections; draining in-flight requests"
    );
    state.shutting_down.store(true, Ordering::Relaxed);
    stop.cancel();
    for s in servers {
        let _ = s.await;
    }
    let _ = mllp.await;
    if let Some(task) = card_reloader {
        let _ = task.await;
    }
    migration.abort();
    if let Some(task) = auth_refresher.lock().expect("lock").take() {
        task.abort();
    }
    let graceful = Arc::into_inner(graceful).expect("listeners have stopped");
    let drained = tokio::time::timeout(settings.shutdown_grace_period, graceful.shutdown()).await;
    if drained.is_err() {
        tracing::warn!(
            grace_period = ?settings.shutdown_grace_period,
            "some requests were still running at the end of the grace period"
        );
    }
    match audit.shutdown().await {
        Ok(Some(cp)) => tracing::info!(seq = cp.seq, "audit chain head signed at shutdown"),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not sign the audit chain head at shutdown"),
    }
    db.close().await;
    tracing::info!("stopped");
    if reason == "fatal error" {
        let why = *fatal_reason.lock().expect("lock");
        return Err(ServerError::Fatal(format!("{why} (see the log above)")));
    }
    Ok(())
}

fn print_banner(settings: &Settings, tls: &http::tls::TlsMaterial, db: &Database) {
    let mode = match settings.mode {
        Mode::Production => "production",
        Mode::Test => "test",
        Mode::Demo => "démo",
    };
    println!("Megalis {} — mode {mode}", env!("CARGO_PKG_VERSION"));
    println!("  URL :                 {}/", settings.public_url);
    println!("  HTTPS :               {}", settings.listen);
    if let Some(plain) = settings.plain_http_listen {
        println!("  HTTP (derrière un proxy) : {plain}");
    }
    if let (Some(addr), Some(url)) = (settings.mtls_listen, &settings.cps_public_url) {
        println!("  Carte CPS (TLS mutuel)   : {url}/auth/cps  (écoute {addr})");
    }
    println!("  HL7 MLLP (identité) : {}", settings.mllp_listen);
    println!("  Certificat TLS SHA-256 : {}", tls.fingerprint);
    if let Some(path) = &tls.self_signed {
        println!("  (certificat auto-signé : {})", path.display());
    }
    println!(
        "  Base de données :     {} ({})",
        db.backend().name(),
        megalis_store::redact_url(&settings.database_url)
    );
    println!("  Données :             {}", settings.data_dir.display());
    if settings.mode == Mode::Demo {
        println!("  Comptes de démonstration (mots de passe connus, jamais en production) :");
        for u in crate::demo::USERS {
            println!(
                "    {:<20} {:<28} {}",
                u.username, u.password, u.display_name
            );
        }
        println!(
            "  (les pages d'administration demandent un second facteur : activez-le sur /profile)"
        );
    }
}

/// The MLLP listener over TLS: the handshake requires a client certificate and proof of its key;
/// the certificate's thumbprint names the OAuth client (`megalis admin client add
/// --certificate`), whose assigning-authority bindings decide what it may feed. An unknown
/// certificate gets its messages refused with `AR` (the sender's logs say why) rather than a TLS
/// alert.
async fn serve_mllp_tls(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    index: megalis_identity_index::PatientIndex,
    settings: Arc<megalis_identity_index::mllp::MllpSettings>,
    auth: Arc<megalis_auth::Auth>,
    stop: CancellationToken,
) {
    use megalis_identity_index::mllp::{Feeder, connection};
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "MLLP accept failed");
                    continue;
                }
            },
        };
        let (acceptor, index, settings, auth) = (
            acceptor.clone(),
            index.clone(),
            settings.clone(),
            auth.clone(),
        );
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            let tls = match handshake.await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "MLLP TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "MLLP TLS handshake timed out");
                    return;
                }
            };
            let thumbprint = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| megalis_auth::oidc::certificate_thumbprint(c.as_ref()));
            let feeder = match thumbprint {
                None => Feeder::Refused("a client certificate is required".into()),
                Some(t) => match auth.client_by_certificate(&t).await {
                    Ok(Some(client_id)) => {
                        let auth = auth.clone();
                        tracing::info!(%peer, client = %client_id, "MLLP client connected");
                        Feeder::Client {
                            client_id,
                            authorities: Arc::new(move |c: &str| auth.authorities_of(c)),
                        }
                    }
                    Ok(None) => Feeder::Refused(format!(
                        "the certificate {t} is registered to no active client \
                         (megalis admin client add --certificate)"
                    )),
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "MLLP client lookup failed");
                        Feeder::Refused("the platform is unavailable; retry".into())
                    }
                },
            };
            if let Err(e) = connection(tls, index, settings, feeder).await {
                tracing::debug!(%peer, error = %e, "MLLP connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn host_of_public_urls() {
        assert_eq!(host_of("https://sante.bzh:8443/x"), "sante.bzh");
        assert_eq!(host_of("https://[::1]:8443"), "::1");
        assert_eq!(host_of("https://127.0.0.1"), "127.0.0.1");
    }
}
