//! Trust in CPS smart cards: the CA bundle and revocation lists of `cps.ca` / `cps.crl`, reloaded
//! when the files change, and the check of a card certificate presented on the mutual-TLS
//! listener.
//!
//! The TLS handshake of that listener requires a certificate and checks that the client holds
//! its private key, but it does not judge the certificate itself: [`CardTrust::check`] does, per
//! request, so that an expired, revoked or foreign card gets a page that says so (and an audit
//! record) instead of a bare TLS alert the browser shows as "connection reset". Nothing is
//! served on that listener except the card login route, which always calls the check.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore};

use crate::ServerError;
use crate::http::tls;

/// Why a card certificate is refused. Each has its own message for the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardProblem {
    /// No certificate reached us (should not happen: the handshake requires one).
    Missing,
    Expired,
    NotYetValid,
    Revoked,
    /// Not issued by a CA of the bundle (another CA, a self-made certificate).
    UntrustedIssuer,
    /// A revocation list is past its `nextUpdate`: we cannot tell revoked cards apart.
    StaleRevocationList,
    /// No revocation list covers the card's CA although lists are configured.
    UnknownRevocationStatus,
    /// Not a card certificate: no client-authentication usage, or no national id in its `CN`.
    NotACard,
}

impl CardProblem {
    /// For the audit record and logs.
    pub fn code(self) -> &'static str {
        match self {
            CardProblem::Missing => "no certificate",
            CardProblem::Expired => "certificate expired",
            CardProblem::NotYetValid => "certificate not yet valid",
            CardProblem::Revoked => "certificate revoked",
            CardProblem::UntrustedIssuer => "issuer not trusted",
            CardProblem::StaleRevocationList => "revocation list out of date",
            CardProblem::UnknownRevocationStatus => "no revocation list for the issuer",
            CardProblem::NotACard => "not a CPS card certificate",
        }
    }

    /// What the user reads, French then English.
    pub fn message(self) -> &'static str {
        match self {
            CardProblem::Missing => {
                "Aucune carte CPS n'a été présentée. Insérez votre carte et réessayez. / No CPS card was presented. Insert your card and try again."
            }
            CardProblem::Expired => {
                "Votre carte CPS a expiré. Demandez son renouvellement à l'Agence du numérique en santé. / Your CPS card has expired."
            }
            CardProblem::NotYetValid => {
                "Votre carte CPS n'est pas encore valide. / Your CPS card is not valid yet."
            }
            CardProblem::Revoked => {
                "Votre carte CPS a été révoquée (perte, vol ou fin d'exercice). / Your CPS card has been revoked."
            }
            CardProblem::UntrustedIssuer => {
                "Ce certificat n'a pas été émis par une autorité de certification reconnue (IGC-Santé). / This certificate was not issued by a trusted authority."
            }
            CardProblem::StaleRevocationList | CardProblem::UnknownRevocationStatus => {
                "La connexion par carte CPS est momentanément indisponible : la liste de révocation des cartes n'est pas à jour. Connectez-vous par mot de passe ou contactez le support. / Card login is unavailable: the revocation list is out of date."
            }
            CardProblem::NotACard => {
                "Ce certificat n'est pas celui d'une carte CPS (identifiant national absent). / This certificate is not a CPS card certificate."
            }
        }
    }
}

/// What a valid card tells us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardHolder {
    /// `8` + RPPS, from the subject `CN`.
    pub national_id: String,
    /// Serial number (hex), for the audit record.
    pub serial: String,
}

/// One loaded version of the trust files.
struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    stamp: Vec<Option<(SystemTime, u64)>>,
}

/// The trust of the mutual-TLS listener, swapped atomically when its files change.
pub struct CardTrust {
    ca: PathBuf,
    crl: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
}

fn trust_error(path: &Path, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Tls {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Reads revocation lists in PEM (`X509 CRL` blocks) or DER.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, ServerError> {
    let bytes = std::fs::read(path).map_err(|e| trust_error(path, e))?;
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        let crls = CertificateRevocationListDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| trust_error(path, e))?;
        if crls.is_empty() {
            return Err(trust_error(path, "no X509 CRL block in the file"));
        }
        Ok(crls)
    } else {
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
}

impl CardTrust {
    /// Loads the bundle and lists; an unreadable or empty bundle is an error at start.
    pub fn load(ca: &Path, crl: Option<&Path>) -> Result<Self, ServerError> {
        let trust = CardTrust {
            ca: ca.to_path_buf(),
            crl: crl.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(Loaded {
                verifier: WebPkiClientVerifier::no_client_auth(),
                stamp: vec![],
            })),
        };
        let loaded = trust.read()?;
        *trust.current.write().expect("lock") = Arc::new(loaded);
        Ok(trust)
    }

    /// Modification time and size of each trust file: what tells a reload is due.
    fn stamps(&self) -> Vec<Option<(SystemTime, u64)>> {
        std::iter::once(stamp(&self.ca))
            .chain(self.crl.iter().map(|p| stamp(p)))
            .collect()
    }

    fn read(&self) -> Result<Loaded, ServerError> {
        let stamps = self.stamps();
        let mut roots = RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&self.ca)
            .map_err(|e| trust_error(&self.ca, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| trust_error(&self.ca, e))?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(trust_error(
                &self.ca,
                "no usable CA certificate in the bundle",
            ));
        }
        let crls = match &self.crl {
            Some(path) => read_crls(path)?,
            None => vec![],
        };
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::provider())
                .with_crls(crls)
                // A list past its nextUpdate no longer says which cards were revoked since.
                .enforce_revocation_expiration()
                .build()
                .map_err(|e| trust_error(self.crl.as_deref().unwrap_or(&self.ca), e))?;
        Ok(Loaded {
            verifier,
            stamp: stamps,
        })
    }

    /// Reloads when a file changed. A broken new file is logged and the previous trust kept,
    /// so that a bad copy does not lock every clinician out. Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> bool {
        let now = self.stamps();
        if now == self.current.read().expect("lock").stamp {
            return false;
        }
        match self.read() {
            Ok(loaded) => {
                *self.current.write().expect("lock") = Arc::new(loaded);
                tracing::info!(ca = %self.ca.display(), "CPS trust bundle and revocation lists reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "CPS trust files changed but cannot be loaded; keeping the previous ones");
                // Remember the broken stamp so the error is logged once per change.
                let mut current = self.current.write().expect("lock");
                *current = Arc::new(Loaded {
                    verifier: current.verifier.clone(),
                    stamp: now,
                });
                false
            }
        }
    }

    /// Checks a chain presented on the mutual-TLS listener, at `now`.
    pub fn check(
        &self,
        chain: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<CardHolder, CardProblem> {
        let (leaf, intermediates) = chain.split_first().ok_or(CardProblem::Missing)?;
        let verifier = self.current.read().expect("lock").verifier.clone();
        verifier
            .verify_client_cert(leaf, intermediates, now)
            .map_err(problem_of)?;
        card_holder(leaf).ok_or(CardProblem::NotACard)
    }

    /// The verifier the TLS handshake uses: requires a certificate and proof of its key.
    pub fn handshake_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(HandshakeVerifier {
            hints: self
                .current
                .read()
                .expect("lock")
                .verifier
                .root_hint_subjects()
                .to_vec(),
            algorithms: tls::provider().signature_verification_algorithms,
        })
    }

    /// Polls the files every `interval` until `stop`.
    pub fn spawn_reloader(
        self: &Arc<Self>,
        interval: Duration,
        on_reload: impl Fn() + Send + 'static,
        stop: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let trust = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                let t = trust.clone();
                let reloaded = tokio::task::spawn_blocking(move || t.reload_if_changed())
                    .await
                    .unwrap_or(false);
                if reloaded {
                    on_reload();
                }
            }
        })
    }
}

fn problem_of(e: rustls::Error) -> CardProblem {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                CardProblem::Expired
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                CardProblem::NotYetValid
            }
            CertificateError::Revoked => CardProblem::Revoked,
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => {
                CardProblem::StaleRevocationList
            }
            CertificateError::UnknownRevocationStatus => CardProblem::UnknownRevocationStatus,
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                CardProblem::NotACard
            }
            _ => CardProblem::UntrustedIssuer,
        },
        _ => CardProblem::UntrustedIssuer,
    }
}

/// The national id (`8` + RPPS) in the subject `CN`, and the serial number.
fn card_holder(leaf: &CertificateDer<'_>) -> Option<CardHolder> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?.as_str().ok()?;
    let national_id = cn.trim();
    if !megalis_auth::account::valid_national_id(national_id) || !national_id.starts_with('8') {
        return None;
    }
    Some(CardHolder {
        national_id: national_id.to_string(),
        serial: cert.raw_serial_as_string().replace(':', ""),
    })
}

/// A verifier that requires a client certificate and proof of its key, and leaves the judgement
/// of the certificate to the caller (the MLLP listener looks its thumbprint up among the
/// clients' registered certificates, RFC 8705 `self_signed_tls_client_auth`).
pub fn any_client_certificate() -> Arc<dyn ClientCertVerifier> {
    Arc::new(HandshakeVerifier {
        hints: Vec::new(),
        algorithms: tls::provider().signature_verification_algorithms,
    })
}

/// Requires a client certificate and checks the handshake signature (the client holds the
/// card's key); the certificate itself is judged by [`CardTrust::check`] on the request.
#[derive(Debug)]
struct HandshakeVerifier {
    hints: Vec<DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for HandshakeVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Lets the browser offer only certificates of the card CAs.
        &self.hints
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Deferred to CardTrust::check (see the module comment): the only route of this
        // listener calls it before anything else.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
