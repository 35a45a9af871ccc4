//! CPS card login over the mutual-TLS listener, driven with `curl` presenting card certificates
//! issued by a test PKI (a CA standing in for IGC-Santé, a foreign CA, a revocation list).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use megalis_e2e::{Server, server};
use megalis_testkit::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;

const ANNE: &str = "810001234567";

pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pub pem: String,
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// A card certificate: CN = national id, client-authentication usage, given validity.
pub fn card(
    dir: &Path,
    name: &str,
    ca: &Ca,
    national_id: &str,
    serial: u8,
    validity: (OffsetDateTime, OffsetDateTime),
) -> (PathBuf, PathBuf) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, national_id);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "CPS test");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.serial_number = Some(SerialNumber::from(vec![serial]));
    params.not_before = validity.0;
    params.not_after = validity.1;
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

pub fn crl(ca: &Ca, revoked: &[u8], next_update: OffsetDateTime, number: u8) -> String {
    let now = OffsetDateTime::now_utc();
    CertificateRevocationListParams {
        this_update: now - time::Duration::hours(2),
        next_update,
        crl_number: SerialNumber::from(vec![number]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(vec![*s]),
                revocation_time: now - time::Duration::hours(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .pem()
    .unwrap()
}

pub struct Answer {
    pub status: u16,
    pub location: String,
    pub body: String,
}

/// `GET /auth/cps` on the card listener with `curl`, presenting a certificate (or none).
pub fn curl_card(s: &Server, port: u16, cert: Option<(&Path, &Path)>) -> Result<Answer, String> {
    let body = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "20", "-H", "Accept: text/html"])
        .arg("--cacert")
        .arg(s.cert_path())
        .arg("-o")
        .arg(body.path())
        .args(["-w", "%{http_code} %{redirect_url}"]);
    if let Some((c, k)) = cert {
        cmd.arg("--cert").arg(c).arg("--key").arg(k);
    }
    cmd.arg(format!("https://localhost:{port}/auth/cps"));
    let out = cmd
        .output()
        .expect("curl is installed (scripts/test.sh installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let written = String::from_utf8_lossy(&out.stdout).into_owned();
    let (status, location) = written.split_once(' ').unwrap_or((&written, ""));
    Ok(Answer {
        status: status.parse().unwrap(),
        location: location.to_string(),
        body: std::fs::read_to_string(body.path()).unwrap(),
    })
}

pub fn no_redirect_client(s: &Server) -> reqwest::Client {
    let pem = std::fs::read(s.cert_path()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// (action, outcome, detail) of every audit record, read from the server's SQLite database.
pub async fn audit_actions(s: &Server) -> Vec<(String, String, String)> {
    let db = megalis_store::Database::open(
        &megalis_store::Database::default_url(&s.data_dir),
        &megalis_store::PoolSettings::default(),
    )
    .unwrap();
    match &db {
        megalis_store::Database::Sqlite(pool) => sqlx::query_as(
            "SELECT action, outcome, COALESCE(detail, '') FROM audit_record ORDER BY seq",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        megalis_store::Database::Postgres(_) => unreachable!("the default database is SQLite"),
    }
}

#[tokio::test]
async fn a_cps_card_opens_a_portal_session_and_bad_cards_get_a_clear_page() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let now = OffsetDateTime::now_utc();
    let valid = (
        now - time::Duration::days(1),
        now + time::Duration::days(365),
    );
    let igc = ca("IGC-Sante TEST AC CLASSE-1");
    let foreign = ca("Another CA");
    std::fs::write(dir.join("ca.pem"), &igc.pem).unwrap();
    std::fs::write(
        dir.join("crl.pem"),
        crl(&igc, &[9], now + time::Duration::days(7), 1),
    )
    .unwrap();

    let anne = card(dir, "anne", &igc, ANNE, 1, valid);
    let expired = card(
        dir,
        "expired",
        &igc,
        ANNE,
        2,
        (
            now - time::Duration::days(400),
            now - time::Duration::days(1),
        ),
    );
    let revoked = card(dir, "revoked", &igc, ANNE, 9, valid);
    let stranger = card(dir, "stranger", &foreign, ANNE, 3, valid);
    let unknown = card(dir, "unknown", &igc, "810000000099", 4, valid);
    let not_a_card = card(dir, "not-a-card", &igc, "Anne Le Goff", 5, valid);

    let mtls_port = free_port();
    let s = server()
        .arg("--mtls-listen")
        .arg(&format!("127.0.0.1:{mtls_port}"))
        .arg("--cps-ca")
        .arg(dir.join("ca.pem").to_str().unwrap())
        .arg("--cps-crl")
        .arg(dir.join("crl.pem").to_str().unwrap())
        .arg("--cps-reload-interval")
        .arg("200ms")
        .start()
        .await;

    // The main listener never asks for a certificate; its /auth/cps sends browsers to the card
    // listener.
    let c = no_redirect_client(&s);
    let r = c.get(s.url("/auth/cps")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // (The public URL defaults to the listen address, 127.0.0.1 here.)
    assert_eq!(
        r.headers()["location"],
        format!("https://127.0.0.1:{mtls_port}/auth/cps")
    );

    let login = c
        .get(s.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("id=\"cps-login\""),
        "the login page offers the card"
    );
    assert!(
        !login.contains("id=\"psc-login\""),
        "no upstream provider configured"
    );

    // The card listener requires a certificate: without one the handshake fails.
    assert!(
        curl_card(&s, mtls_port, None).is_err(),
        "no certificate, no connection"
    );

    // A valid card: a redirect to the portal's host with a one-time ticket.
    let a = curl_card(&s, mtls_port, Some((&anne.0, &anne.1))).unwrap();
    assert_eq!(a.status, 303, "{}", a.body);
    let prefix = format!(
        "https://127.0.0.1:{}/auth/cps/complete?ticket=",
        s.https.port()
    );
    assert!(a.location.starts_with(&prefix), "{}", a.location);
    let r = c.get(&a.location).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-megalis-session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly"));
    let session = cookie.split(';').next().unwrap().to_string();
    let home = c
        .get(s.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let page = home.text().await.unwrap();
    assert!(page.contains("Anne Le Goff"), "{page}");
    // The ticket served once.
    let again = c.get(&a.location).send().await.unwrap();
    assert_eq!(again.status(), 400);

    // Refusals: each a page saying why, over the same listener.
    for (cert, status, words) in [
        (&expired, 403, "a expiré"),
        (&revoked, 403, "révoquée"),
        (&stranger, 403, "autorité de certification reconnue"),
        (&unknown, 403, "aucun professionnel actif"),
        (&not_a_card, 403, "pas celui"),
    ] {
        let a = curl_card(&s, mtls_port, Some((&cert.0, &cert.1))).unwrap();
        assert_eq!(a.status, status, "{}: {}", cert.0.display(), a.body);
        assert!(a.body.contains(words), "{}: {}", cert.0.display(), a.body);
        assert!(a.body.contains("<html"), "an HTML page: {}", a.body);
    }

    // A new list revoking Anne's card is picked up without restart.
    std::fs::write(
        dir.join("crl.pem"),
        crl(&igc, &[9, 1], now + time::Duration::days(7), 2),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = curl_card(&s, mtls_port, Some((&anne.0, &anne.1))).unwrap();
        if a.status == 403 {
            assert!(a.body.contains("révoquée"), "{}", a.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "CRL not reloaded: {}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A list past its nextUpdate stops card logins (even of cards it does not list).
    std::fs::write(
        dir.join("crl.pem"),
        crl(&igc, &[9], now - time::Duration::minutes(30), 3),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let a = curl_card(&s, mtls_port, Some((&anne.0, &anne.1))).unwrap();
        if a.status == 503 {
            assert!(a.body.contains("liste de révocation"), "{}", a.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stale CRL not refused: {}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every attempt is in the audit trail.
    let actions = audit_actions(&s).await;
    let count = |action: &str, outcome: &str, detail: &str| {
        actions
            .iter()
            .filter(|(a, o, d)| a == action && o == outcome && d.contains(detail))
            .count()
    };
    // (Logins while the new list was awaited count too.)
    assert!(
        count("auth.cps.login", "success", "card serial 01") >= 1,
        "{actions:?}"
    );
    assert_eq!(count("login", "success", "CPS card"), 1, "{actions:?}");
    assert_eq!(count("login", "denied", "CPS ticket"), 1, "{actions:?}");
    assert_eq!(
        count("auth.account.provisioned", "success", ""),
        1,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "certificate expired") >= 1,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "certificate revoked") >= 2,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "issuer not trusted") >= 1,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "no active practitioner") >= 1,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "not a CPS card") >= 1,
        "{actions:?}"
    );
    assert!(
        count("auth.cps.refused", "denied", "revocation list out of date") >= 1,
        "{actions:?}"
    );
}

#[tokio::test]
async fn the_card_listener_needs_a_trust_bundle() {
    let out = megalis_e2e::megalis(&["serve", "--mtls-listen", "127.0.0.1:0"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", megalis_e2e::stderr(&out));
    assert!(
        megalis_e2e::stderr(&out).contains("cps.ca"),
        "{}",
        megalis_e2e::stderr(&out)
    );
}
