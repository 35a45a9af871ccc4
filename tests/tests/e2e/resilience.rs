//! A database that disappears and comes back: the server reports not-ready, refuses writes
//! cleanly, and recovers without a restart. Uses a private PostgreSQL cluster (never the shared
//! server other tests use).

use std::time::Duration;

use megalis_e2e::{PrivateCluster, server};

#[tokio::test]
async fn server_recovers_when_its_database_comes_back() {
    let cluster = PrivateCluster::start();
    let mut s = server()
        .database(&cluster.url())
        .env("MEGALIS_DATABASE_MAX_CONNECTIONS", "4")
        .start()
        .await;
    let c = s.client();
    assert_eq!(
        c.post(s.url("/_test/audit")).send().await.unwrap().status(),
        200
    );

    cluster.stop_server();
    s.wait_for("/readyz", 503, Duration::from_secs(30)).await;
    let r = c.post(s.url("/_test/audit")).send().await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "an audit write without a database is refused, not lost"
    );
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(
        c.get(s.url("/healthz")).send().await.unwrap().status(),
        200,
        "still alive"
    );

    cluster.start_server();
    s.wait_for("/readyz", 200, Duration::from_secs(60)).await;
    let v: serde_json::Value = c
        .post(s.url("/_test/audit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["seqs"][0], 2, "the chain continues where it was");
    assert!(s.log().contains("database"), "outage is logged");
}

#[tokio::test]
async fn server_starts_before_its_database_and_migrates_when_it_appears() {
    let cluster = PrivateCluster::start();
    cluster.stop_server();
    let mut s = server()
        .database(&cluster.url())
        .no_wait_ready()
        .start()
        .await;
    s.wait_for("/readyz", 503, Duration::from_secs(10)).await;
    cluster.start_server();
    s.wait_for("/readyz", 200, Duration::from_secs(60)).await;
    let c = s.client();
    assert_eq!(
        c.post(s.url("/_test/audit")).send().await.unwrap().status(),
        200
    );
    assert!(
        s.log().contains("database not reachable; retrying"),
        "{}",
        s.log()
    );
}
