//! Login federated to an upstream OpenID Provider (the Pro Santé Connect flow). The upstream is a
//! second, real `megalis` (itself an OpenID Provider), where the practitioner holds a strong
//! session opened with a CPS card; the relying party is the `megalis` under test.

use std::time::Duration;

use megalis_e2e::{Server, megalis, server, stderr, stdout};
use megalis_testkit::free_port;
use time::OffsetDateTime;

use super::cps::{audit_actions, ca, card, curl_card, no_redirect_client};

const ANNE: &str = "810001234567";
const SECRET: &str = "psc-test-secret-0123456789abcdef";
/// What the upstream `megalis` says of a session with a second factor (Pro Santé Connect says
/// `eidas1`; the relying party is configured with the provider's value).
const STRONG_ACR: &str = "urn:megalis:acr:mfa";

struct Upstream {
    _pki: tempfile::TempDir,
    server: Server,
    /// Anne's session cookie on the upstream.
    session: String,
}

/// The upstream provider, with Anne logged in by card.
async fn upstream() -> Upstream {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    let now = OffsetDateTime::now_utc();
    let igc = ca("IGC-Sante TEST");
    std::fs::write(dir.join("ca.pem"), &igc.pem).unwrap();
    let anne = card(
        dir,
        "anne",
        &igc,
        ANNE,
        1,
        (
            now - time::Duration::days(1),
            now + time::Duration::days(30),
        ),
    );
    let port = free_port();
    let server = server()
        .arg("--mtls-listen")
        .arg(&format!("127.0.0.1:{port}"))
        .arg("--cps-ca")
        .arg(dir.join("ca.pem").to_str().unwrap())
        .start()
        .await;
    let a = curl_card(&server, port, Some((&anne.0, &anne.1))).unwrap();
    assert_eq!(a.status, 303, "{}", a.body);
    let r = no_redirect_client(&server)
        .get(&a.location)
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_string();
    Upstream {
        _pki: pki,
        server,
        session,
    }
}

/// A relying party federated to `up`, registered there as client `id`.
async fn relying_party(up: &Upstream, id: &str, acr: &str) -> Server {
    let issuer = format!("https://127.0.0.1:{}", up.server.https.port());
    let secret_file = up.server.data_dir.with_extension(format!("{id}.secret"));
    std::fs::write(&secret_file, SECRET).unwrap();
    let rp = server()
        .arg("--oidc-upstream-issuer")
        .arg(&issuer)
        .arg("--oidc-upstream-client-id")
        .arg(id)
        .arg("--oidc-upstream-scope")
        .arg("openid profile")
        .arg("--oidc-upstream-acr")
        .arg(acr)
        .arg("--oidc-upstream-national-id-claim")
        .arg("national_id")
        .arg("--oidc-upstream-ca")
        .arg(up.server.cert_path().to_str().unwrap())
        .env(
            "MEGALIS_OIDC_UPSTREAM_CLIENT_SECRET_FILE",
            secret_file.to_str().unwrap(),
        )
        .start()
        .await;
    // Registered at the upstream with the relying party's callback, and granted to physicians.
    let data = up.server.data_dir.to_str().unwrap();
    let callback = format!("https://127.0.0.1:{}/auth/psc/callback", rp.https.port());
    for args in [
        vec![
            "client",
            "add",
            "--id",
            id,
            "--secret-file",
            secret_file.to_str().unwrap(),
            "--grant",
            "authorization_code",
            "--redirect-uri",
            &callback,
            "--scope",
            "openid profile",
        ],
        vec!["grant", "add", "--application", id, "--profession", "10"],
    ] {
        let mut all = vec!["--data-dir", data, "--mode", "test", "admin"];
        all.extend(args);
        let o = megalis(&all, &[]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    }
    // The upstream reads grants into its cache every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rp
}

/// Runs the flow from the relying party's button to its callback; returns the callback's answer.
async fn federate(up: &Upstream, rp: &Server) -> reqwest::Response {
    let c = no_redirect_client(rp);
    let start = c
        .get(rp.url("/auth/psc?next=/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303, "{}", rp.log());
    let authorize = start.headers()["location"].to_str().unwrap().to_string();
    let issuer = format!("https://127.0.0.1:{}", up.server.https.port());
    assert!(
        authorize.starts_with(&format!("{issuer}/oauth2/authorize?")),
        "{authorize}"
    );
    for part in [
        "response_type=code",
        "code_challenge_method=S256",
        "acr_values=",
        "nonce=",
        "state=",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    // At the provider, Anne's session answers at once with a code for the relying party.
    let at_provider = no_redirect_client(&up.server)
        .get(&authorize)
        .header("cookie", &up.session)
        .send()
        .await
        .unwrap();
    assert_eq!(at_provider.status(), 303, "{}", up.server.log());
    let callback = at_provider.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        callback.starts_with(
            &rp.url("/auth/psc/callback")
                .replace("localhost", "127.0.0.1")
        ),
        "{callback}"
    );
    let answer = c.get(&callback).send().await.unwrap();
    // The state served once: replaying the callback is refused.
    if answer.status() == 303 {
        let replay = c.get(&callback).send().await.unwrap();
        assert_eq!(replay.status(), 400);
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pro_sante_connect_federation_opens_a_session_for_the_practitioner() {
    let up = upstream().await;
    let rp = relying_party(&up, "megalis-rp", STRONG_ACR).await;

    let login = no_redirect_client(&rp)
        .get(rp.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        login.contains("id=\"psc-login\""),
        "the login page offers the provider"
    );

    let answer = federate(&up, &rp).await;
    assert_eq!(answer.status(), 303, "{}", rp.log());
    assert_eq!(answer.headers()["location"], "/profile");
    let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-megalis-session="), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let home = no_redirect_client(&rp)
        .get(rp.url("/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Anne Le Goff"));

    let actions = audit_actions(&rp).await;
    assert!(
        actions
            .iter()
            .any(|(a, o, d)| a == "login" && o == "success" && d.contains("Pro Santé Connect")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|(a, o, _)| a == "auth.account.provisioned" && o == "success"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weaker_authentication_than_required_is_refused() {
    let up = upstream().await;
    // The relying party requires eidas1; this provider asserts its own level.
    let rp = relying_party(&up, "megalis-strict", "eidas1").await;
    let answer = federate(&up, &rp).await;
    assert_eq!(answer.status(), 403);
    assert!(answer.headers().get("set-cookie").is_none());
    let actions = audit_actions(&rp).await;
    assert!(
        actions
            .iter()
            .any(|(a, o, d)| a == "auth.psc.refused" && o == "denied" && d.contains(STRONG_ACR)),
        "{actions:?}"
    );
}

#[tokio::test]
async fn without_an_upstream_the_button_is_absent_and_the_route_says_so() {
    let rp = server().start().await;
    let c = no_redirect_client(&rp);
    let r = c
        .get(rp.url("/auth/psc"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("pas configurée"));
    let out = megalis(
        &["serve", "--oidc-upstream-issuer", "https://psc.example"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("oidc.upstream_client_id"),
        "{}",
        stderr(&out)
    );
}
