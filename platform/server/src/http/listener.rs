//! Accept loops. We drive hyper directly (rather than `axum::serve`) because we need, per
//! connection: a TLS handshake bounded in time (slow clients must not hold sockets), the peer
//! address and transport for the trusted-proxy logic, HTTP/1.1 and HTTP/2 on one port, and
//! graceful draining on shutdown.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use megalis_auth::principal::PresentedCertificate;

use super::Connection;

/// The TLS configuration of a listener, read per connection: the mutual-TLS listener's is
/// replaced when the card trust files are reloaded, without dropping open connections.
#[derive(Clone)]
pub struct TlsConfig(Arc<RwLock<Arc<rustls::ServerConfig>>>);

impl TlsConfig {
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        TlsConfig(Arc::new(RwLock::new(config)))
    }

    pub fn replace(&self, config: Arc<rustls::ServerConfig>) {
        *self.0.write().expect("lock") = config;
    }

    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.0.read().expect("lock").clone()
    }
}

/// The client certificate chain of a TLS connection, when the client sent one (only the
/// mutual-TLS listener asks), as a request extension.
#[derive(Clone)]
pub struct PeerCertificates(pub Arc<[rustls::pki_types::CertificateDer<'static>]>);

pub struct ListenerSettings {
    pub header_timeout: Duration,
}

fn builder(settings: &ListenerSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(256);
    builder
}

/// Serves `app` on `listener` until `stop` fires; connections are registered with `graceful` so
/// the caller can wait for them to drain.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    app: Router,
    settings: ListenerSettings,
    graceful: Arc<GracefulShutdown>,
    stop: CancellationToken,
) {
    let builder = Arc::new(builder(&settings));
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = tls.as_ref().map(|t| TlsAcceptor::from(t.current()));
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let header_timeout = settings.header_timeout;
        tokio::spawn(async move {
            let connection = Connection {
                peer,
                tls: acceptor.is_some(),
            };
            let service =
                move |peer_certificates: Option<(PeerCertificates, PresentedCertificate)>| {
                    hyper::service::service_fn(
                        move |mut request: hyper::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(connection);
                            if let Some((certs, thumbprint)) = &peer_certificates {
                                request.extensions_mut().insert(certs.clone());
                                request.extensions_mut().insert(thumbprint.clone());
                            }
                            app.clone().oneshot(request)
                        },
                    )
                };
            let result = match acceptor {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    // The chain (judged by the card login route) and the leaf's RFC 8705
                    // thumbprint (certificate-bound tokens), computed once per connection.
                    let peer_certificates = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|c| !c.is_empty())
                        .map(|c| {
                            let chain = PeerCertificates(
                                c.iter().map(|c| c.clone().into_owned()).collect(),
                            );
                            let thumbprint = PresentedCertificate(
                                megalis_auth::oidc::certificate_thumbprint(c[0].as_ref()),
                            );
                            (chain, thumbprint)
                        });
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        service(peer_certificates),
                    );
                    watcher.watch(conn.into_owned()).await
                }
                None => {
                    let conn =
                        builder.serve_connection_with_upgrades(TokioIo::new(tcp), service(None));
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
}
