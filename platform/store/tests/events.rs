//! The platform event log read by cursor while several writers publish: the reader ends with
//! every event, each once, in id order, on both backends. On PostgreSQL this holds only because
//! `AppendEvent` serialises writers on the ordering lock (a sequence hands out ids before commit,
//! and commits can come in the other order).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use megalis_store::events::{self, AppendEvent, EventRow};
use megalis_store::{Backend, Database};
use megalis_testkit::fresh_database;

const WRITERS: usize = 6;
const PER_WRITER: usize = 60;

/// Publishes like a writer of the core does: the event last in a transaction that did other
/// work first, so transactions overlap and hold their ids for a while before committing.
async fn publish_in_a_busy_transaction(db: &Database, n: usize, writer: usize) {
    let payload = format!(r#"{{"writer":{writer},"n":{n}}}"#);
    match db {
        Database::Sqlite(_) => {
            events::publish(db, "test.topic", None, &payload, 1)
                .await
                .unwrap();
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SELECT pg_sleep(0.002)")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.append_event("test.topic", None, &payload, 1)
                .await
                .unwrap();
            // Work after the insert widens the window in which a later id could commit first.
            sqlx::query("SELECT pg_sleep(0.001)")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }
}

async fn follow(db: Database, done: Arc<AtomicBool>) -> Vec<EventRow> {
    let mut seen: Vec<EventRow> = Vec::new();
    loop {
        let finished = done.load(Ordering::SeqCst);
        let after = seen.last().map_or(0, |e| e.id);
        let page = events::poll(&db, "test.topic", after, 50).await.unwrap();
        let empty = page.is_empty();
        seen.extend(page);
        if finished && empty {
            return seen;
        }
        if empty {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_the_log_misses_nothing_while_writers_race() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (_dir, db) = fresh_database(backend).await;
        let done = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(follow(db.clone(), done.clone()));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for n in 0..PER_WRITER {
                        publish_in_a_busy_transaction(&db, n, w).await;
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
        let seen = reader.await.unwrap();
        let all = events::poll(&db, "test.topic", 0, 100_000).await.unwrap();
        assert_eq!(all.len(), WRITERS * PER_WRITER, "{backend:?}");
        let seen_ids: Vec<i64> = seen.iter().map(|e| e.id).collect();
        let all_ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert_eq!(
            seen_ids, all_ids,
            "{backend:?}: the follower skipped or repeated events"
        );
        // Each writer's events are in its own order too.
        for w in 0..WRITERS {
            let ns: Vec<usize> = seen
                .iter()
                .filter_map(|e| {
                    let v: serde_json::Value = serde_json::from_str(&e.payload).ok()?;
                    (v["writer"] == w).then(|| v["n"].as_u64().unwrap() as usize)
                })
                .collect();
            assert_eq!(
                ns,
                (0..PER_WRITER).collect::<Vec<_>>(),
                "{backend:?} writer {w}"
            );
        }
    }
}
