//! TLS of the HTTPS listener: the configured certificate, or a self-signed one generated once
//! into the data directory so that a laptop run is HTTPS from the first second.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServerError;

pub struct TlsMaterial {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate (colon-separated hex), printed at start so a user can
    /// check what the browser shows.
    pub fingerprint: String,
    /// Where the self-signed certificate was written, when we made one.
    pub self_signed: Option<PathBuf>,
    /// The chain and key, kept for the mutual-TLS listener (same server identity, other
    /// client-certificate policy).
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

fn tls_error(path: &Path, reason: impl std::fmt::Display) -> ServerError {
    ServerError::Tls {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Loads the listener's certificate and key, generating a self-signed pair when none is set.
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    public_host: &str,
) -> Result<TlsMaterial, ServerError> {
    let (cert_path, key_path, self_signed) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf(), None),
        _ => {
            let dir = data_dir.join("tls");
            let c = dir.join("self-signed-cert.pem");
            let k = dir.join("self-signed-key.pem");
            if !c.exists() || !k.exists() {
                generate_self_signed(&dir, &c, &k, public_host)?;
            }
            (c.clone(), k, Some(c))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| tls_error(&cert_path, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(&cert_path, e))?;
    let Some(leaf) = chain.first() else {
        return Err(tls_error(&cert_path, "no certificate in PEM file"));
    };
    let fingerprint = fingerprint(leaf);
    let private_key =
        PrivateKeyDer::from_pem_file(&key_path).map_err(|e| tls_error(&key_path, e))?;
    let config =
        server_config(chain.clone(), private_key.clone_key(), ClientAuth::None).map_err(|e| {
            tls_error(
                &key_path,
                format!("certificate and key do not form a usable pair: {e}"),
            )
        })?;
    Ok(TlsMaterial {
        config: Arc::new(config),
        fingerprint,
        self_signed,
        chain,
        key: private_key,
    })
}

/// Whether a listener asks for client certificates.
pub enum ClientAuth {
    /// The HTTPS listener: never (a browser would prompt for a certificate on every visit).
    None,
    /// The mutual-TLS listener: this verifier decides.
    Required(Arc<dyn rustls::server::danger::ClientCertVerifier>),
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration with our one policy: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<ServerConfig, rustls::Error> {
    let builder = ServerConfig::builder_with_provider(provider())
        // rustls implements only TLS 1.2 and 1.3: older versions are refused by construction.
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Required(verifier) => builder.with_client_cert_verifier(verifier),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn generate_self_signed(
    dir: &Path,
    cert_path: &Path,
    key_path: &Path,
    public_host: &str,
) -> Result<(), ServerError> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !names.iter().any(|n| n == public_host) && !public_host.is_empty() {
        names.push(public_host.to_string());
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| tls_error(cert_path, format!("cannot generate a certificate: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| tls_error(dir, e))?;
    write_private(key_path, certified.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert_path, certified.cert.pem()).map_err(|e| tls_error(cert_path, e))?;
    tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), ServerError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| tls_error(path, e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| tls_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, None, dir.path(), "megalis.example").unwrap();
        let second = load(None, None, dir.path(), "megalis.example").unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let key = dir.path().join("tls/self-signed-key.pem");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn unreadable_or_mismatched_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = load(Some(&missing), Some(&missing), dir.path(), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();
        let err = load(Some(&garbage), Some(&garbage), dir.path(), "x")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("garbage.pem"), "{err}");

        // A certificate with somebody else's key.
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        load(None, None, a.path(), "x").unwrap();
        load(None, None, b.path(), "x").unwrap();
        let err = load(
            Some(&a.path().join("tls/self-signed-cert.pem")),
            Some(&b.path().join("tls/self-signed-key.pem")),
            dir.path(),
            "x",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("usable pair"), "{err}");
    }
}
