//! Plugin WebSocket channels through the real binary, with a real WebSocket client
//! (tokio-tungstenite over rustls): two replicas on one PostgreSQL database relay each other's
//! messages, small and large; joins are refused before the upgrade (the plugin's refusal, no
//! session, another origin); one server on SQLite relays on its own, and so does
//! `megalis plugin run`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use megalis_e2e::{Server, fresh_postgres_url, server};
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::plugins::{fetch_into, plugins_toml};

type Socket = WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A data directory with the probe plugin installed.
fn data_with_probe(root: &Path, name: &str) -> std::path::PathBuf {
    let data = root.join(name);
    std::fs::create_dir_all(&data).unwrap();
    let probe = fetch_into(&data, "probe");
    std::fs::write(
        data.join("plugins.toml"),
        plugins_toml(&[("probe", &probe, "\"context\", \"store\", \"logging\"")]),
    )
    .unwrap();
    data
}

async fn wait_for_probe(s: &mut Server) {
    let c = s.client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c
        .get(s.url("/apps/probe/hello"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "probe never loaded:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `wss://localhost:PORT{path}` trusting only the server's certificate; `Err` is the
/// HTTP status and body of a refused handshake.
async fn connect(
    s: &Server,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Socket, (u16, String)> {
    let pem = std::fs::read(s.cert_path()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // The upgrade is an HTTP/1.1 mechanism.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(s.https).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let url = format!("wss://localhost:{}{path}", s.https.port());
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    match tokio_tungstenite::client_async(request, tls).await {
        Ok((socket, response)) => {
            assert_eq!(response.status(), 101);
            Ok(socket)
        }
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert_eq!(content_type, "application/problem+json", "{status}: {body}");
            Err((status, body))
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

/// A handshake the server must refuse: its status and problem+json body.
async fn refused(s: &Server, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    match connect(s, path, headers).await {
        Ok(_) => panic!("{path} {headers:?} was admitted"),
        Err(refusal) => refusal,
    }
}

async fn next_message(socket: &mut Socket) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s")
            .expect("socket open")
            .expect("frame");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

async fn next_text(socket: &mut Socket) -> String {
    match next_message(socket).await {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The next frame another member sent, past presence: a member's `joined` may reach the other
/// server after a member there entered the room.
async fn next_relayed(socket: &mut Socket) -> Message {
    loop {
        let m = next_message(socket).await;
        if let Message::Text(t) = &m
            && t.as_str().starts_with(r#"{"megalis":"joined""#)
        {
            continue;
        }
        return m;
    }
}

async fn next_host_frame(socket: &mut Socket) -> Value {
    let text = next_text(socket).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["megalis"].is_string(), "not a host frame: {text}");
    v
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database_share_channel_rooms() {
    let url = fresh_postgres_url().await;
    let tmp = tempfile::tempdir().unwrap();
    let mut a = server()
        .data_dir(&data_with_probe(tmp.path(), "a"))
        .database(&url)
        .start()
        .await;
    let mut b = server()
        .data_dir(&data_with_probe(tmp.path(), "b"))
        .database(&url)
        .start()
        .await;
    wait_for_probe(&mut a).await;
    wait_for_probe(&mut b).await;

    let mut on_a = connect(&a, "/apps/probe/signal?room=ok-consult", &[])
        .await
        .unwrap();
    let welcome = next_host_frame(&mut on_a).await;
    assert_eq!(welcome["megalis"], "welcome");
    assert_eq!(welcome["room"], "ok-consult");
    let mut on_b = connect(&b, "/apps/probe/signal?room=ok-consult", &[])
        .await
        .unwrap();
    let b_member = next_host_frame(&mut on_b).await["member"].clone();
    // B's arrival crossed from server b to server a.
    let joined = next_host_frame(&mut on_a).await;
    assert_eq!(joined["megalis"], "joined");
    assert_eq!(joined["member"], b_member);

    send(&mut on_a, r#"{"type":"offer","sdp":"v=0"}"#).await;
    assert_eq!(
        next_relayed(&mut on_b).await,
        Message::text(r#"{"type":"offer","sdp":"v=0"}"#)
    );
    send(&mut on_b, r#"{"type":"answer","sdp":"v=0"}"#).await;
    assert_eq!(
        next_text(&mut on_a).await,
        r#"{"type":"answer","sdp":"v=0"}"#
    );
    // Larger than a NOTIFY payload (8000 bytes): it crosses through the database table.
    let large = format!("{{\"candidates\":\"{}\"}}", "c".repeat(20_000));
    send(&mut on_b, &large).await;
    assert_eq!(next_text(&mut on_a).await, large);
    let binary = vec![0u8, 1, 2, 255];
    on_a.send(Message::binary(binary.clone())).await.unwrap();
    assert_eq!(
        next_message(&mut on_b).await,
        Message::binary(binary.clone())
    );
    // Nothing came back to its sender.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), on_a.next())
            .await
            .is_err(),
        "a received an echo"
    );

    // The plugin refuses rooms it does not open: before the upgrade, as problem+json.
    let (status, body) = refused(&b, "/apps/probe/signal?room=closed", &[]).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("closed"), "{body}");

    // A departure on b is told on a.
    on_b.close(None).await.unwrap();
    let left = next_host_frame(&mut on_a).await;
    assert_eq!(
        (left["megalis"].as_str(), &left["member"]),
        (Some("left"), &b_member)
    );

    let metrics = a
        .client()
        .get(a.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "megalis_plugin_channel_connections{plugin=\"probe\"} 1",
        "megalis_plugin_channel_messages_total{plugin=\"probe\"} 2",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}");
    }
    let metrics_b = b
        .client()
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics_b.contains(
            "megalis_plugin_channel_joins_refused_total{plugin=\"probe\",reason=\"plugin\"} 1"
        ),
        "{metrics_b}"
    );

    // A third-party client (Python's `websockets`) in a room spanning both servers.
    let python = std::env::var("MEGALIS_PYTHON")
        .expect("MEGALIS_PYTHON is not set (scripts/test.sh sets it)");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/channel_client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .args([
            &format!("wss://{}/apps/probe/signal?room=ok-python", a.https),
            a.cert_path().to_str().unwrap(),
            &format!("wss://{}/apps/probe/signal?room=ok-python", b.https),
            b.cert_path().to_str().unwrap(),
        ])
        .output()
        .expect("run the Python WebSocket client");
    assert!(
        out.status.success(),
        "python websockets client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let members: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(members["a"], members["b"]);
}

/// One server on SQLite: the room relays on its own; a session channel admits a granted user's
/// session from the platform's origin only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sqlite_server_relays_and_guards_session_channels() {
    use super::auth::{admin, ok, password_login};

    const PASSWORD: &str = "Ty-Kreiz-Kemper-29!";
    let tmp = tempfile::tempdir().unwrap();
    let data = data_with_probe(tmp.path(), "data");
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    ok(admin(
        &data,
        &[
            "user",
            "add",
            "--username",
            "alegoff",
            "--kind",
            "professional",
            "--name",
            "Anne Le Goff",
            "--password-file",
            pw.to_str().unwrap(),
            "--national-id",
            "810001234567",
        ],
    ));
    ok(admin(
        &data,
        &[
            "grant",
            "add",
            "--application",
            "probe",
            "--individual",
            "810001234567",
        ],
    ));
    let mut s = server().data_dir(&data).start().await;
    wait_for_probe(&mut s).await;

    // Public channel, one server: relay between two members.
    let mut one = connect(&s, "/apps/probe/signal?room=ok-local", &[])
        .await
        .unwrap();
    let mut two = connect(&s, "/apps/probe/signal?room=ok-local", &[])
        .await
        .unwrap();
    assert_eq!(next_host_frame(&mut one).await["megalis"], "welcome");
    assert_eq!(next_host_frame(&mut two).await["megalis"], "welcome");
    assert_eq!(next_host_frame(&mut one).await["megalis"], "joined");
    send(&mut two, "candidate:1").await;
    assert_eq!(next_text(&mut one).await, "candidate:1");

    // A channel path is only a WebSocket endpoint, and its hooks are the host's.
    let http = s.no_redirect_client();
    let r = http
        .get(s.url("/apps/probe/signal?room=ok-local"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 426);
    let r = http
        .post(s.url("/apps/probe/channels/join"))
        .body(r#"{"room":"ok-x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Session channel.
    let origin = s.url("/").trim_end_matches('/').to_string();
    let cookie = password_login(&http, &s, "alegoff", PASSWORD).await;
    let path = "/apps/probe/private/signal?room=ok-private";
    let (status, _) = refused(&s, path, &[("origin", &origin)]).await;
    assert_eq!(status, 401);
    // Cross-site WebSocket hijacking: another site's page opening the socket with the
    // user's cookie.
    let (status, body) = refused(
        &s,
        path,
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = refused(&s, path, &[("cookie", &cookie)]).await;
    assert_eq!(status, 403);
    let mut mine = connect(&s, path, &[("cookie", &cookie), ("origin", &origin)])
        .await
        .unwrap();
    assert_eq!(next_host_frame(&mut mine).await["megalis"], "welcome");
    let mut peer = connect(&s, path, &[("cookie", &cookie), ("origin", &origin)])
        .await
        .unwrap();
    assert_eq!(next_host_frame(&mut peer).await["megalis"], "welcome");
    assert_eq!(next_host_frame(&mut mine).await["megalis"], "joined");
    send(&mut peer, "private hello").await;
    assert_eq!(next_text(&mut mine).await, "private hello");
    // A member cannot forge the host's frames.
    send(&mut peer, r#"{"megalis":"left","member":"x"}"#).await;
    assert_eq!(next_host_frame(&mut peer).await["megalis"], "refused");
    // The plugin's own log line shows it saw the member's principal at the join.
    assert!(
        s.log().contains("joins ok-private on /private/signal"),
        "{}",
        s.log()
    );
}

/// `megalis plugin run` serves a plugin's channels too, with rooms in memory.
#[tokio::test]
async fn plugin_run_serves_channels_in_memory() {
    let probe = megalis_testkit::test_plugins_dir().join("probe.wasm");
    let port = megalis_e2e::free_port();
    let mut child = std::process::Command::new(megalis_e2e::megalis_bin())
        .args(["plugin", "run", probe.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--grant", "context,store,logging"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let plain = |path: &str| {
        let url = format!("ws://127.0.0.1:{port}{path}");
        async move {
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
            tokio_tungstenite::client_async(url, tcp)
                .await
                .map(|(socket, _)| socket)
                .map_err(std::io::Error::other)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut one = loop {
        match plain("/signal?room=ok-run").await {
            Ok(socket) => break socket,
            Err(e) => assert!(Instant::now() < deadline, "plugin run never served: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut two = plain("/signal?room=ok-run").await.unwrap();
    let text = |m: Message| match m {
        Message::Text(t) => t.as_str().to_owned(),
        other => panic!("{other:?}"),
    };
    let next = async |s: &mut WebSocketStream<tokio::net::TcpStream>| {
        tokio::time::timeout(Duration::from_secs(10), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert!(text(next(&mut one).await).contains("welcome"));
    assert!(text(next(&mut two).await).contains("welcome"));
    assert!(text(next(&mut one).await).contains("joined"));
    two.send(Message::text("from two")).await.unwrap();
    assert_eq!(text(next(&mut one).await), "from two");
    // The plugin's refusal, as the platform's.
    match plain("/signal?room=shut").await {
        Err(e) => assert!(e.to_string().contains("403"), "{e}"),
        Ok(_) => panic!("room shut was admitted"),
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
