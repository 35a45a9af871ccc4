//! Lease-based leader election against `MockApiServer`.

mod mock_api;

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use megalis_operator::leader::LeaseLock;
use mock_api::{MockApiServer, collection};

const NS: &str = "megalis-system";

fn lock(client: &kube::Client, identity: &str) -> LeaseLock {
    LeaseLock::new(
        Api::namespaced(client.clone(), NS),
        "megalis-operator",
        identity,
        Duration::from_secs(15),
    )
}

fn holder(server: &MockApiServer) -> String {
    let lease = server
        .get(
            &collection("coordination.k8s.io/v1", NS, "leases"),
            "megalis-operator",
        )
        .unwrap();
    lease["spec"]["holderIdentity"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn one_leader_at_a_time_and_takeover_after_expiry() {
    let (client, server) = MockApiServer::start();
    let (a, b) = (lock(&client, "operator-a"), lock(&client, "operator-b"));
    let t0 = Timestamp::now();

    assert!(
        a.try_acquire_or_renew(t0).await.unwrap(),
        "free lease: created and held"
    );
    assert!(
        !b.try_acquire_or_renew(t0 + SignedDuration::from_secs(5))
            .await
            .unwrap(),
        "held and fresh"
    );
    assert!(
        a.try_acquire_or_renew(t0 + SignedDuration::from_secs(5))
            .await
            .unwrap(),
        "the holder renews"
    );
    assert_eq!(holder(&server), "operator-a");

    // operator-a stops renewing: 15 s after its last renewal the lease is free.
    assert!(
        !b.try_acquire_or_renew(t0 + SignedDuration::from_secs(19))
            .await
            .unwrap()
    );
    assert!(
        b.try_acquire_or_renew(t0 + SignedDuration::from_secs(21))
            .await
            .unwrap()
    );
    assert_eq!(holder(&server), "operator-b");
    let lease = server
        .get(
            &collection("coordination.k8s.io/v1", NS, "leases"),
            "megalis-operator",
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(
        !a.try_acquire_or_renew(t0 + SignedDuration::from_secs(22))
            .await
            .unwrap(),
        "the old leader steps back"
    );
}

#[tokio::test]
async fn a_lost_race_is_a_refusal_not_an_error() {
    let (client, server) = MockApiServer::start();
    let a = lock(&client, "operator-a");
    let t0 = Timestamp::now();
    a.try_acquire_or_renew(t0).await.unwrap();
    // Another replica's replace lands between our read and our write.
    server.fail(http::Method::PUT, "/leases/megalis-operator", 409);
    assert!(
        !a.try_acquire_or_renew(t0 + SignedDuration::from_secs(5))
            .await
            .unwrap()
    );
    server.fail(http::Method::GET, "/leases/megalis-operator", 500);
    assert!(
        a.try_acquire_or_renew(t0).await.is_err(),
        "other API errors surface"
    );
}
