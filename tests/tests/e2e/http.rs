//! The HTTPS surface on the default SQLite database.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use megalis_e2e::server;
use serde_json::Value;

#[tokio::test]
async fn probes_metrics_and_request_ids() {
    let mut s = server().start().await;
    let c = s.client();

    let r = c.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiates HTTP/2"
    );
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(
        generated.len(),
        32,
        "a generated id is 128 random bits in hex"
    );

    let r = c
        .get(s.url("/readyz"))
        .header("x-request-id", "hospital-42:abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-request-id"],
        "hospital-42:abc",
        "a valid id is echoed"
    );

    let r = c
        .get(s.url("/healthz"))
        .header("x-request-id", "<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(
        r.headers()["x-request-id"],
        "<script>",
        "an unsafe id is replaced"
    );

    // Security headers on every response, errors included.
    for path in ["/healthz", "/does-not-exist"] {
        let r = c.get(s.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(
            h["strict-transport-security"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
    }

    c.post(s.url("/_test/audit")).send().await.unwrap();
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        "megalis_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"}",
        "megalis_http_request_duration_seconds_bucket{method=\"GET\",route=\"/readyz\"",
        "megalis_db_pool_connections{state=\"idle\"}",
        "megalis_audit_chain_length 1",
        "megalis_build_info{version=",
        // Unknown paths are not labelled with their raw path (cardinality, identifiers).
        "route=\"unmatched\",status=\"404\"",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
    assert!(!metrics.contains("does-not-exist"));
}

#[tokio::test]
async fn errors_take_the_format_of_their_route_family() {
    let mut s = server().start().await;
    let c = s.client();

    let r = c.get(s.url("/fhir/Observation/123")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["resourceType"], "OperationOutcome");
    assert_eq!(v["issue"][0]["code"], "not-found");
    assert!(
        v["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(&rid)
    );

    let r = c
        .post(s.url("/oauth2/no-such-endpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    assert!(v["error_description"].is_string());

    let r = c
        .get(s.url("/portail"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("<html lang=\"fr\">") && page.contains("Identifiant de corrélation"));

    let r = c
        .get(s.url("/portail"))
        .header("accept", "text/html")
        .header("accept-language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Correlation id"));

    let r = c.delete(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 405);
    assert_eq!(v["instance"], "/healthz");
    assert!(v["request_id"].is_string());
}

#[tokio::test]
async fn oversized_bodies_are_refused_and_nothing_is_written() {
    let mut s = server().arg("--http-body-limit").arg("1KiB").start().await;
    let c = s.client();
    let r = c
        .post(s.url("/_test/audit"))
        .body(vec![b'x'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("megalis_audit_chain_length 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_the_family_format() {
    let mut s = server()
        .arg("--http-request-timeout")
        .arg("300ms")
        .start()
        .await;
    let c = s.client();
    let r = c.get(s.url("/_test/slow?ms=5000")).send().await.unwrap();
    assert_eq!(r.status(), 408);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], 408);
}

#[tokio::test]
async fn slow_clients_are_disconnected() {
    let s = server()
        .arg("--http-header-timeout")
        .arg("1s")
        .start()
        .await;
    // A client that opens a connection and never starts the TLS handshake.
    let started = Instant::now();
    let mut tcp = TcpStream::connect(s.https).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 16];
    let n = tcp.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closes the connection");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after the header timeout"
    );

    // A plain-HTTP client that sends half a request line and stalls (slowloris).
    let s = server()
        .plain_http()
        .arg("--http-header-timeout")
        .arg("1s")
        .start()
        .await;
    let started = Instant::now();
    let mut tcp = TcpStream::connect(s.plain.unwrap()).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after the header timeout"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn plain_http_listener_serves_the_same_application() {
    let s = server().plain_http().start().await;
    let r = reqwest::get(s.plain_url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = reqwest::get(s.plain_url("/nowhere")).await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

fn openssl_handshake(port: u16, version_flag: &str) -> bool {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version_flag,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl is installed (scripts/test.sh installs it)");
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("Cipher is") && !text.contains("Cipher is (NONE)")
}

#[tokio::test]
async fn only_tls_1_2_and_1_3_are_offered() {
    let s = server().start().await;
    let port = s.https.port();
    assert!(openssl_handshake(port, "-tls1_3"), "TLS 1.3 accepted");
    assert!(openssl_handshake(port, "-tls1_2"), "TLS 1.2 accepted");
    assert!(!openssl_handshake(port, "-tls1_1"), "TLS 1.1 refused");
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let mut s = server().start().await;
    let c = s.client();
    assert_eq!(
        c.post(s.url("/_test/audit")).send().await.unwrap().status(),
        200
    );
    let slow = tokio::spawn({
        let url = s.url("/_test/slow?ms=1500");
        let c = c.clone();
        async move { c.get(url).send().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.sigterm();
    let response = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done\n");
    let status = s.wait_exit(Duration::from_secs(20)).await;
    assert!(status.success(), "exit status {status}:\n{}", s.log());
    assert!(
        s.log().contains("audit chain head signed at shutdown"),
        "{}",
        s.log()
    );
    // Nothing listens any more.
    assert!(TcpStream::connect(s.https).is_err());
}
