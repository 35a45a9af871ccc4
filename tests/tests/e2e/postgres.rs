//! The server on PostgreSQL: alone, and as two replicas sharing one database.

use megalis_e2e::{fresh_postgres_url, megalis, server, stderr, stdout};
use serde_json::Value;

#[tokio::test]
async fn serves_on_a_fresh_postgres_database() {
    let url = fresh_postgres_url().await;
    let mut s = server().database(&url).start().await;
    let c = s.client();
    let r = c.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = c
        .post(s.url("/_test/audit?patients=RP-1,RP-2,RP-3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        v["seqs"],
        serde_json::json!([1, 2, 3]),
        "one record per patient"
    );
}

#[tokio::test]
async fn two_replicas_share_one_audit_chain() {
    let url = fresh_postgres_url().await;
    let shared = tempfile::tempdir().unwrap();
    // Replicas share the signing key (a Kubernetes Secret); each keeps its own checkpoint file.
    let key = shared.path().join("audit-signing-key.pk8");
    let key = key.to_str().unwrap();
    let mut a = server()
        .database(&url)
        .env("MEGALIS_AUDIT_SIGNING_KEY", key)
        .arg("--audit-checkpoint-interval")
        .arg("200ms")
        .start()
        .await;
    let mut b = server()
        .database(&url)
        .env("MEGALIS_AUDIT_SIGNING_KEY", key)
        .arg("--audit-checkpoint-interval")
        .arg("200ms")
        .start()
        .await;
    let (ca, cb) = (a.client(), b.client());
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, url) = if i % 2 == 0 {
            (ca.clone(), a.url("/_test/audit"))
        } else {
            (cb.clone(), b.url("/_test/audit"))
        };
        tasks.push(tokio::spawn(async move {
            let v: Value = client.post(url).send().await.unwrap().json().await.unwrap();
            v["seqs"][0].as_u64().unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=40).collect::<Vec<u64>>(),
        "one gap-free chain across replicas"
    );

    a.sigterm();
    b.sigterm();
    assert!(
        a.wait_exit(std::time::Duration::from_secs(20))
            .await
            .success()
    );
    assert!(
        b.wait_exit(std::time::Duration::from_secs(20))
            .await
            .success()
    );

    // Checkpoints are shared: a replica signs only when the head moved since anyone's last
    // checkpoint, so one of them may have signed nothing and have no file. Each file that exists
    // must verify, and at least one must.
    let files: Vec<_> = [&a, &b]
        .iter()
        .map(|r| r.data_dir.join("audit-checkpoints.jsonl"))
        .filter(|f| f.exists())
        .collect();
    assert!(!files.is_empty(), "no replica signed a checkpoint");
    for checkpoints in files {
        let o = megalis(
            &["--database-url", &url, "audit", "verify"],
            &[
                ("MEGALIS_AUDIT_SIGNING_KEY", key),
                (
                    "MEGALIS_AUDIT_CHECKPOINT_FILE",
                    checkpoints.to_str().unwrap(),
                ),
            ],
        );
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("audit trail intact (40 records checked"),
            "{}",
            stdout(&o)
        );
    }
}
