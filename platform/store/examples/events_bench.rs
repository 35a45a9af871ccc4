//! Cost of the platform event log: publishing (one writer, then eight at once, which on
//! PostgreSQL wait for each other on the ordering lock) and following it by cursor.
//!
//! `cargo run --release -p megalis-store --example events_bench -- [sqlite|postgres] [events]`
//! (PostgreSQL from MEGALIS_TEST_PG, a fresh database).

use std::time::Instant;

use megalis_store::Backend;
use megalis_store::events::{poll, publish};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = match args.get(1).map(String::as_str) {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let (_dir, db) = megalis_testkit::fresh_database(backend).await;
    let payload =
        r#"{"document":"0f3c2b8e-4a43-4b1e-9a55-1d2f0c9e7a11","type":"11502-2","replaces":null}"#;

    // One writer: latency per publish.
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        publish(
            &db,
            "core.document.shared",
            Some("BZH00000000420"),
            payload,
            1,
        )
        .await
        .unwrap();
        latencies.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let one = n as f64 / started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);

    // Eight writers at once.
    let started = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move {
                for _ in 0..n / 8 {
                    publish(&db, "core.document.shared", None, payload, 1)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let eight = (n / 8 * 8) as f64 / started.elapsed().as_secs_f64();

    // A follower reading everything by pages of 500 (the capability's cap).
    let started = Instant::now();
    let (mut after, mut read) = (0i64, 0usize);
    loop {
        let page = poll(&db, "core.document.shared", after, 500).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        read += page.len();
    }
    let follow = read as f64 / started.elapsed().as_secs_f64();

    println!(
        "{backend:?}: publish, one writer: {one:.0} events/s (p50 {:.0} µs, p99 {:.0} µs); \
         eight writers: {eight:.0} events/s; follow by pages of 500: {follow:.0} events/s \
         ({read} events)",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
}
