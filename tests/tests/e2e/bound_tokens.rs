//! RFC 8705 on the mutual-TLS listener: a hospital system registered with its certificate
//! authenticates with it (no secret) and gets access tokens bound to it, which are refused
//! without that certificate. Driven with `curl`; the thumbprint is computed with `openssl`.

use std::path::{Path, PathBuf};
use std::process::Command;

use megalis_e2e::{Server, megalis, server, stderr, stdout};
use megalis_testkit::free_port;
use rcgen::{CertificateParams, DnType, KeyPair};

use super::cps::{ca, no_redirect_client};

/// A self-signed client certificate, as a hospital's integration engine would make.
fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(vec![format!("{name}.chu-rennes.test")]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// `x5t#S256` of a PEM certificate, by the openssl command line.
fn thumbprint(cert: &Path) -> String {
    let script = format!(
        "openssl x509 -in '{}' -outform DER | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\\n'",
        cert.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// `curl` over mutual TLS: status and body.
fn curl(s: &Server, url: &str, cert: (&Path, &Path), args: &[&str]) -> (u16, String) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .arg("--cacert")
        .arg(s.cert_path())
        .arg("--cert")
        .arg(cert.0)
        .arg("--key")
        .arg(cert.1)
        .arg("-o")
        .arg(body.path())
        .args(["-w", "%{http_code}"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).parse().unwrap(),
        std::fs::read_to_string(body.path()).unwrap(),
    )
}

fn claims_of(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_system_client_gets_tokens_bound_to_its_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    std::fs::write(dir.join("cards-ca.pem"), ca("IGC-Sante TEST").pem).unwrap();
    let sih = self_signed(dir, "sih-chu");
    let intruder = self_signed(dir, "intruder");
    let port = free_port();
    let s = server()
        .arg("--mtls-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .arg("--cps-ca")
        .arg(dir.join("cards-ca.pem").to_str().unwrap())
        .start()
        .await;
    let secret = dir.join("secret");
    std::fs::write(&secret, "sih-chu-secret-0123456789abcdef0123456789").unwrap();
    let o = megalis(
        &[
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "--mode",
            "test",
            "admin",
            "client",
            "add",
            "--id",
            "sih-chu",
            "--secret-file",
            secret.to_str().unwrap(),
            "--grant",
            "client_credentials",
            "--scope",
            "openid system/Patient.rs",
            "--certificate",
            sih.0.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    let mtls = format!("https://localhost:{port}");
    let discovery: serde_json::Value = no_redirect_client(&s)
        .get(s.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["tls_client_certificate_bound_access_tokens"],
        true
    );
    assert!(
        discovery["mtls_endpoint_aliases"]["token_endpoint"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{port}/oauth2/token"))
    );

    // The certificate is the credential: no secret.
    let grant = [
        "-d",
        "grant_type=client_credentials",
        "-d",
        "client_id=sih-chu",
    ];
    let (status, body) = curl(
        &s,
        &format!("{mtls}/oauth2/token"),
        (&sih.0, &sih.1),
        &grant,
    );
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let access = token["access_token"].as_str().unwrap().to_string();
    assert_eq!(claims_of(&access)["cnf"]["x5t#S256"], thumbprint(&sih.0));

    // Another certificate does not authenticate the client.
    let (status, body) = curl(
        &s,
        &format!("{mtls}/oauth2/token"),
        (&intruder.0, &intruder.1),
        &grant,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("invalid_client"), "{body}");

    // The bound token works only with its certificate.
    let bearer = format!("Authorization: Bearer {access}");
    let (status, body) = curl(
        &s,
        &format!("{mtls}/oauth2/userinfo"),
        (&sih.0, &sih.1),
        &["-H", &bearer],
    );
    assert_eq!(status, 200, "{body}");
    let (status, _) = curl(
        &s,
        &format!("{mtls}/oauth2/userinfo"),
        (&intruder.0, &intruder.1),
        &["-H", &bearer],
    );
    assert_eq!(status, 401, "another certificate");
    let stolen = no_redirect_client(&s)
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 401, "no certificate on the main listener");
    let www = stolen.headers()["www-authenticate"].to_str().unwrap();
    assert!(www.contains("invalid_token"), "{www}");

    // Introspection tells a resource server which certificate goes with the token.
    let introspected: serde_json::Value = no_redirect_client(&s)
        .post(s.url("/oauth2/introspect"))
        .basic_auth("sih-chu", Some("sih-chu-secret-0123456789abcdef0123456789"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["cnf"]["x5t#S256"], thumbprint(&sih.0));
}
