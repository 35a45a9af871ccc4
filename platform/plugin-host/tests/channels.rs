//! WebSocket channels of plugins, below the socket: the manifest's `[[channels]]`, the rooms
//! and their relay on one server, the join the plugin authorises and delivery through the
//! plugin (with the probe test plugin), and the PostgreSQL bus between two hubs sharing one
//! database (`MEGALIS_TEST_PG`).

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use megalis_plugin_host::access::{DenyAll, LocalDeveloper, LogAudit, PublicOnly};
use megalis_plugin_host::channels::pg::PgBus;
use megalis_plugin_host::channels::session::{ChannelSession, close};
use megalis_plugin_host::channels::{ChannelHub, Event, Membership, Payload, RoomKey, Rooms};
use megalis_plugin_host::kv::MemoryKv;
use megalis_plugin_host::services::{MemoryDirectory, MemoryEvents};
use megalis_plugin_host::{
    Authenticator, Capability, Deliver, EngineSettings, Manifest, PluginEngine, PluginEntry,
    PluginError, PluginHost, PluginMetrics, PluginsConfig, RequestMeta, RouteAuth, Services,
};
use megalis_testkit::test_plugin;
use serde_json::Value;

// --- manifest -------------------------------------------------------------------------------

const BASE: &str = "id = \"visio\"\nversion = \"1\"\n[[routes]]\npath = \"/\"\nauth = \"public\"\n";

#[test]
fn channels_are_read_from_the_manifest_with_defaults() {
    let text = format!(
        "{BASE}[[channels]]\npath = \"/signal\"\nauth = \"session\"\njoin = \"/channels/join\"\n\
         [[channels]]\npath = \"/chat\"\nauth = {{ bearer = [\"visio.chat\"] }}\njoin = \"/join\"\n\
         deliver = \"plugin\"\non-message = \"/chat/message\"\nmax-message-bytes = 4096\nmax-members = 3\n"
    );
    let m = Manifest::parse("visio", &text).unwrap();
    let signal = m.channel_at("/signal").unwrap();
    assert_eq!(signal.auth, RouteAuth::Session);
    assert_eq!(signal.deliver, Deliver::Relay);
    assert_eq!(signal.max_message_bytes, 64 * 1024);
    assert_eq!(signal.max_members, 16);
    let chat = m.channel_at("/chat").unwrap();
    assert_eq!(chat.deliver, Deliver::Plugin);
    assert_eq!(chat.on_message.as_deref(), Some("/chat/message"));
    assert_eq!((chat.max_message_bytes, chat.max_members), (4096, 3));
    // Exact paths: a channel is one endpoint, not a prefix.
    assert!(m.channel_at("/signal/x").is_none());
    // The hooks are the host's to call.
    assert!(m.is_channel_hook("/channels/join"));
    assert!(m.is_channel_hook("/chat/message"));
    assert!(!m.is_channel_hook("/chat"));
}

#[test]
fn bad_channels_are_refused_at_load() {
    let channel = |body: &str| format!("{BASE}[[channels]]\n{body}");
    let cases = [
        (
            channel("path = \"signal\"\nauth = \"public\"\njoin = \"/j\""),
            "must start with '/'",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"j\""),
            "must start with '/'",
        ),
        (
            channel("path = \"/s\"\nauth = { bearer = [] }\njoin = \"/j\""),
            "without a scope",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\ndeliver = \"plugin\""),
            "names no on-message",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\non-message = \"/m\""),
            "only for deliver",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\nmax-message-bytes = 0"),
            "max-message-bytes",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\nmax-members = 100000"),
            "max-members",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\nsurprise = 1"),
            "unknown field",
        ),
        (
            channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\ndeliver = \"echo\""),
            "unknown variant",
        ),
        (
            format!(
                "{}[[channels]]\npath = \"/s\"\nauth = \"public\"\njoin = \"/j\"\n",
                channel("path = \"/s\"\nauth = \"public\"\njoin = \"/j\"\n")
            ),
            "declared twice",
        ),
        (
            "id = \"visio\"\nversion = \"1\"\n[[routes]]\npath = \"/api\"\nauth = \"public\"\n\
             [[channels]]\npath = \"/s\"\nauth = \"public\"\njoin = \"/j\"\n"
                .to_owned(),
            "no route covers",
        ),
    ];
    for (text, expected) in cases {
        let err = Manifest::parse("visio", &text).unwrap_err().to_string();
        assert!(err.contains(expected), "{text}\n→ {err}");
    }
}

// --- rooms on one server --------------------------------------------------------------------

fn key(room: &str) -> RoomKey {
    RoomKey {
        plugin: "visio".into(),
        channel: "/signal".into(),
        room: room.into(),
    }
}

async fn next(m: &mut Membership) -> Event {
    let frame = tokio::time::timeout(Duration::from_secs(5), m.recv())
        .await
        .expect("a frame within 5 s")
        .expect("room open");
    frame.event.clone()
}

/// The next message, past presence frames: on the bus, a member's `joined` may reach another
/// server after a member there entered the room (it is true then too).
async fn next_message(m: &mut Membership) -> Event {
    loop {
        match next(m).await {
            Event::Joined => continue,
            other => return other,
        }
    }
}

async fn nothing_for(m: &mut Membership, wait: Duration) {
    if let Ok(frame) = tokio::time::timeout(wait, m.recv()).await {
        panic!("unexpected frame {frame:?}");
    }
}

#[tokio::test]
async fn a_room_relays_to_the_other_members_only() {
    let hub = ChannelHub::in_process();
    let mut a = hub.enter(key("r1"), "a".into(), 3).await.unwrap();
    let mut b = hub.enter(key("r1"), "b".into(), 3).await.unwrap();
    let mut elsewhere = hub.enter(key("r2"), "z".into(), 3).await.unwrap();
    assert_eq!(next(&mut a).await, Event::Joined, "a sees b arrive");

    a.send(Payload::Text("offer".into())).await.unwrap();
    assert_eq!(
        next(&mut b).await,
        Event::Message(Payload::Text("offer".into()))
    );
    b.send(Payload::Binary(bytes::Bytes::from_static(b"\x00\x01")))
        .await
        .unwrap();
    assert_eq!(
        next(&mut a).await,
        Event::Message(Payload::Binary(bytes::Bytes::from_static(b"\x00\x01")))
    );
    // No echo to the sender, nothing in another room.
    nothing_for(&mut a, Duration::from_millis(100)).await;
    nothing_for(&mut elsewhere, Duration::from_millis(50)).await;

    // A full room refuses; a departure is told and frees the place.
    let c = hub.enter(key("r1"), "c".into(), 3).await.unwrap();
    assert!(hub.enter(key("r1"), "d".into(), 3).await.is_none());
    assert_eq!(next(&mut a).await, Event::Joined);
    drop(c);
    let left = tokio::time::timeout(Duration::from_secs(5), a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&*left.from, &left.event), ("c", &Event::Left));
    assert_eq!(hub.rooms().members(&key("r1")), 2);
    drop((a, b));
    assert_eq!(hub.rooms().members(&key("r1")), 0, "an empty room is gone");
}

// --- channels of the probe plugin -------------------------------------------------------------

const PROBE_GRANTS: &[Capability] = &[Capability::Context, Capability::Store, Capability::Logging];

async fn probe_host(auth: Arc<dyn Authenticator>, hub: Arc<ChannelHub>) -> Arc<PluginHost> {
    let engine = PluginEngine::new(EngineSettings {
        cache_dir: Some(megalis_testkit::test_plugins_dir().join("../../wasmtime-cache")),
        ..EngineSettings::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bytes = test_plugin("probe");
    let digest = megalis_plugin_host::digest(&bytes);
    std::fs::write(dir.path().join(format!("{digest}.wasm")), bytes).unwrap();
    let host = Arc::new(
        PluginHost::new(
            engine,
            Services {
                kv: Arc::new(MemoryKv::default()),
                access: Arc::new(DenyAll),
                audit: Arc::new(LogAudit),
                auth,
                identity: Arc::new(MemoryDirectory::default()),
                directory: Arc::new(MemoryDirectory::default()),
                events: Arc::new(MemoryEvents::default()),
                blobs: None,
            },
            PluginMetrics::new(),
            dir.path().to_path_buf(),
        )
        .with_channels(hub),
    );
    let failures = host
        .apply(&PluginsConfig {
            plugins: vec![PluginEntry {
                id: "probe".into(),
                sha256: digest,
                grants: PROBE_GRANTS.iter().copied().collect(),
                limits: Default::default(),
                config: Default::default(),
            }],
        })
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    // The module stays readable for the test's lifetime (reloads read it again).
    std::mem::forget(dir);
    host
}

fn origin_headers(origin: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", "megalis.test".parse().unwrap());
    h.insert("origin", origin.parse().unwrap());
    h
}

async fn join(host: &Arc<PluginHost>, uri: &str) -> Result<ChannelSession, PluginError> {
    join_with(host, uri, &origin_headers("https://megalis.test")).await
}

async fn join_with(
    host: &Arc<PluginHost>,
    uri: &str,
    headers: &HeaderMap,
) -> Result<ChannelSession, PluginError> {
    host.join_channel(
        "probe",
        &uri.parse().unwrap(),
        headers,
        RequestMeta {
            request_id: "ws-1".into(),
            ..RequestMeta::default()
        },
    )
    .await
}

async fn out(s: &mut ChannelSession) -> Payload {
    tokio::time::timeout(Duration::from_secs(5), s.outgoing())
        .await
        .expect("a frame within 5 s")
        .expect("session open")
}

fn text(p: Payload) -> String {
    match p {
        Payload::Text(t) => t,
        Payload::Binary(b) => panic!("binary frame {b:?}"),
    }
}

fn json(p: Payload) -> Value {
    serde_json::from_str(&text(p)).unwrap()
}

#[tokio::test]
async fn the_plugin_authorises_joins_and_the_room_relays() {
    let host = probe_host(Arc::new(PublicOnly), ChannelHub::in_process()).await;

    let mut a = join(&host, "/signal?room=ok-1").await.unwrap();
    let welcome = json(out(&mut a).await);
    assert_eq!(welcome["megalis"], "welcome");
    assert_eq!(welcome["room"], "ok-1");
    assert_eq!(welcome["member"], a.member());
    let mut b = join(&host, "/signal?room=ok-1").await.unwrap();
    assert_eq!(json(out(&mut b).await)["megalis"], "welcome");
    let joined = json(out(&mut a).await);
    assert_eq!(
        (joined["megalis"].as_str(), joined["member"].as_str()),
        (Some("joined"), Some(b.member()))
    );

    assert_eq!(
        a.incoming(Payload::Text("{\"type\":\"offer\"}".into()))
            .await
            .unwrap(),
        None
    );
    assert_eq!(text(out(&mut b).await), "{\"type\":\"offer\"}");
    // A member cannot pass for the host.
    let refusal = a
        .incoming(Payload::Text(
            "{\"megalis\":\"left\",\"member\":\"x\"}".into(),
        ))
        .await
        .unwrap()
        .expect("refused to the sender");
    assert_eq!(json(refusal)["megalis"], "refused");
    assert_eq!(
        a.incoming(Payload::Text("x".repeat(64 * 1024 + 1)))
            .await
            .unwrap_err()
            .code,
        close::TOO_BIG
    );

    // The plugin refuses rooms not named ok-…; bad names never reach it; the session channel
    // needs a session (this host authenticates public routes only).
    let refused = join(&host, "/signal?room=closed").await.err().unwrap();
    assert_eq!(refused.status(), 403, "{refused}");
    assert!(refused.to_string().contains("closed"), "{refused}");
    for bad in ["/signal", "/signal?room=", "/signal?room=a%20b"] {
        assert_eq!(join(&host, bad).await.err().unwrap().status(), 400, "{bad}");
    }
    assert_eq!(
        join(&host, "/private/signal?room=ok-1")
            .await
            .err()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        join(&host, "/nowhere?room=ok-1")
            .await
            .err()
            .unwrap()
            .status(),
        404
    );
    let metrics = host.metrics();
    assert_eq!(
        metrics
            .channel_joins_refused
            .with_label_values(&["probe", "plugin"])
            .get(),
        1
    );
    assert_eq!(
        metrics
            .channel_connections
            .with_label_values(&["probe"])
            .get(),
        2
    );
    assert_eq!(
        metrics.channel_messages.with_label_values(&["probe"]).get(),
        1
    );

    // The join hook is not reachable by clients.
    let request = http::Request::post("/channels/join")
        .header("host", "megalis.test")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"room\":\"ok-1\"}",
        )))
        .unwrap();
    let err = host
        .invoke("probe", request, RequestMeta::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.status(), 404);

    drop(b);
    assert_eq!(json(out(&mut a).await)["megalis"], "left");
    assert_eq!(
        metrics
            .channel_connections
            .with_label_values(&["probe"])
            .get(),
        1
    );

    // A reload that replaces the plugin closes its connections: they must join again.
    let bytes = test_plugin("probe");
    let failures = host
        .apply(&PluginsConfig {
            plugins: vec![PluginEntry {
                id: "probe".into(),
                sha256: megalis_plugin_host::digest(&bytes),
                grants: [Capability::Context, Capability::Store].into(),
                limits: Default::default(),
                config: Default::default(),
            }],
        })
        .await;
    // Without `logging` the probe no longer loads, so it is removed: the session ends.
    assert_eq!(failures.len(), 1);
    let closed = tokio::time::timeout(Duration::from_secs(5), a.outgoing())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(closed.code, close::SERVICE_RESTART);
}

#[tokio::test]
async fn session_channels_need_the_same_origin_and_plugin_delivery_transforms() {
    let host = probe_host(Arc::new(LocalDeveloper), ChannelHub::in_process()).await;
    // Cross-site WebSocket hijacking: a page elsewhere opening the socket with the user's
    // cookie is refused, as is a handshake that does not say where it comes from.
    let evil = join_with(
        &host,
        "/private/signal?room=ok-1",
        &origin_headers("https://evil.example"),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(evil.status(), 403);
    let mut no_origin = HeaderMap::new();
    no_origin.insert("host", "megalis.test".parse().unwrap());
    assert_eq!(
        join_with(&host, "/private/signal?room=ok-1", &no_origin)
            .await
            .err()
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        host.metrics()
            .channel_joins_refused
            .with_label_values(&["probe", "cross_origin"])
            .get(),
        2
    );
    let mut own = join(&host, "/private/signal?room=ok-1").await.unwrap();
    assert_eq!(json(out(&mut own).await)["megalis"], "welcome");

    // deliver = "plugin": the plugin's answer is what the room gets.
    let mut a = join(&host, "/shout?room=ok-s").await.unwrap();
    let mut b = join(&host, "/shout?room=ok-s").await.unwrap();
    assert_eq!(json(out(&mut a).await)["megalis"], "welcome");
    assert_eq!(json(out(&mut b).await)["megalis"], "welcome");
    assert_eq!(json(out(&mut a).await)["megalis"], "joined");
    // max-members = 2 on this channel.
    let full = join(&host, "/shout?room=ok-s").await.err().unwrap();
    assert_eq!(full.status(), 409, "{full}");

    assert_eq!(
        a.incoming(Payload::Text("bonjour".into())).await.unwrap(),
        None
    );
    assert_eq!(
        text(out(&mut b).await),
        format!("{}@ok-s: BONJOUR", a.member())
    );
    // An empty answer sends nothing; a refusal is told to the sender alone.
    assert_eq!(
        a.incoming(Payload::Text("quiet".into())).await.unwrap(),
        None
    );
    let refused = a
        .incoming(Payload::Text("refuse".into()))
        .await
        .unwrap()
        .expect("told");
    assert_eq!(json(refused)["status"], 400);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), b.outgoing())
            .await
            .is_err(),
        "nothing reached b"
    );
}

// --- two hubs on one PostgreSQL database ------------------------------------------------------

async fn pg_hub(pool: &sqlx::PgPool) -> Arc<ChannelHub> {
    let rooms = Rooms::new();
    let bus = PgBus::start(
        pool.clone(),
        &rooms,
        PluginMetrics::new().channel_bus_reconnects,
    );
    let hub = ChannelHub::new(rooms, Arc::new(bus));
    hub.ready().await.expect("the listener starts");
    hub
}

#[tokio::test]
async fn two_hubs_on_one_postgres_database_share_their_rooms() {
    let url = megalis_testkit::fresh_postgres_url().await;
    let db = megalis_store::Database::open(&url, &Default::default()).unwrap();
    db.migrate().await.unwrap();
    let megalis_store::Database::Postgres(pool) = &db else {
        unreachable!("a PostgreSQL URL")
    };
    let (one, two) = (pg_hub(pool).await, pg_hub(pool).await);
    let mut a = one.enter(key("ok-pg"), "a".into(), 4).await.unwrap();
    let mut b = two.enter(key("ok-pg"), "b".into(), 4).await.unwrap();
    // b's arrival crosses to a; a's own frames never come back to it.
    assert_eq!(next(&mut a).await, Event::Joined);

    a.send(Payload::Text("from one".into())).await.unwrap();
    assert_eq!(
        next_message(&mut b).await,
        Event::Message(Payload::Text("from one".into()))
    );
    b.send(Payload::Binary(vec![7u8; 3].into())).await.unwrap();
    assert_eq!(
        next(&mut a).await,
        Event::Message(Payload::Binary(vec![7u8; 3].into()))
    );
    // Larger than a NOTIFY payload: through the table, in order with small ones.
    let large = "é".repeat(10_000);
    a.send(Payload::Text(large.clone())).await.unwrap();
    a.send(Payload::Text("after".into())).await.unwrap();
    assert_eq!(next(&mut b).await, Event::Message(Payload::Text(large)));
    assert_eq!(
        next(&mut b).await,
        Event::Message(Payload::Text("after".into()))
    );
    nothing_for(&mut a, Duration::from_millis(200)).await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM plugin_channel_message")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the large frame went through the table");
}
