//! The audit trail under a crash: SIGKILL in the middle of a burst of writes. Every write the
//! server acknowledged must be there afterwards, and the chain must verify.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use megalis_e2e::{fresh_postgres_url, megalis, server, stderr, stdout};
use megalis_store::{Database, PoolSettings, with_pool};

async fn crash_during_burst(database_url: Option<String>) {
    let mut builder = server().arg("--audit-checkpoint-interval").arg("100ms");
    if let Some(url) = &database_url {
        builder = builder.database(url);
    }
    let mut s = builder.start().await;
    let c = s.client();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let mut writers = Vec::new();
    for _ in 0..8 {
        let (c, url, acked) = (c.clone(), s.url("/_test/audit"), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            loop {
                match c.post(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => return, // connection cut mid-body: not acknowledged
                        };
                        acked.lock().unwrap().insert(v["seqs"][0].as_u64().unwrap());
                    }
                    _ => return,
                }
            }
        }));
    }
    // Let the burst run until a few hundred writes are acknowledged, then kill -9.
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acknowledged.lock().unwrap().len() >= 300 {
            break;
        }
    }
    s.sigkill();
    for w in writers {
        w.await.unwrap();
    }
    s.wait_exit(Duration::from_secs(10)).await;
    let acknowledged = acknowledged.lock().unwrap().clone();

    let url = database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", s.data_dir.join("megalis.db").display()));
    let data_dir = s.data_dir.to_str().unwrap().to_string();
    let o = megalis(
        &[
            "--data-dir",
            &data_dir,
            "--database-url",
            &url,
            "audit",
            "verify",
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    let db = Database::open(&url, &PoolSettings::default()).unwrap();
    let stored: Vec<i64> = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
        "SELECT seq FROM audit_record ORDER BY seq").fetch_all(pool).await)
    .expect("read audit sequence numbers");
    let stored: BTreeSet<u64> = stored.into_iter().map(|s| s as u64).collect();
    let lost: Vec<&u64> = acknowledged.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but missing after SIGKILL: {lost:?}"
    );
    assert!(acknowledged.len() >= 300);

    // The server restarts on the same data and the chain goes on and verifies.
    let mut builder = server().data_dir(&s.data_dir);
    if let Some(url) = &database_url {
        builder = builder.database(url);
    }
    let mut again = builder.start().await;
    let c = again.client();
    assert_eq!(
        c.post(again.url("/_test/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    again.sigterm();
    assert!(again.wait_exit(Duration::from_secs(20)).await.success());
    let o = megalis(
        &[
            "--data-dir",
            &data_dir,
            "--database-url",
            &url,
            "audit",
            "verify",
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

#[tokio::test]
async fn sigkill_during_audit_burst_loses_no_acknowledged_write_on_sqlite() {
    crash_during_burst(None).await;
}

#[tokio::test]
async fn sigkill_during_audit_burst_loses_no_acknowledged_write_on_postgres() {
    crash_during_burst(Some(fresh_postgres_url().await)).await;
}
