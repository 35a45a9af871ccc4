//! Durable, chained audit appends per second with many concurrent writers (group commit), on
//! SQLite (a temporary file, WAL, synchronous=FULL) and on PostgreSQL (a fresh database in the
//! server at `MEGALIS_TEST_PG`), then the speed of a full verification of what was written.
//!
//! `cargo bench -p megalis-audit --bench append` (release build). Optional environment:
//! `AUDIT_BENCH_TASKS` (concurrent writers, default 64), `AUDIT_BENCH_RECORDS` (records per
//! backend, default 40000), `AUDIT_BENCH_BACKENDS` (`sqlite,postgres`).

use std::time::{Duration, Instant};

use megalis_audit::{Actor, AuditLog, AuditRecord, AuditSettings, Outcome, SigningKey, verify};
use megalis_store::sqlx::{self, Connection};
use megalis_store::{Backend, Database, PoolSettings};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn record(task: usize, i: usize) -> AuditRecord {
    AuditRecord::new(
        Actor {
            subject: format!("user-{task}"),
            national_id: Some("810002345678".into()),
            organisation: Some("350005179".into()),
            roles: vec!["doctor".into()],
        },
        "patient.read",
        "Patient",
        Outcome::Success,
    )
    .with_object_id(format!("pat-{task}-{i}"))
    .with_patient(format!("pat-{task}-{i}"))
    .with_purpose("care")
    .with_source_address("192.0.2.10")
    .with_request_id(format!("req-{task}-{i}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(backend: Backend, tasks: usize, records: usize) {
    let (_dir, url) = match backend {
        Backend::Sqlite => {
            let (dir, url) = megalis_testkit::fresh_sqlite_url();
            (Some(dir), url)
        }
        Backend::Postgres => (None, megalis_testkit::fresh_postgres_url().await),
    };
    let db = Database::open(&url, &PoolSettings::default()).expect("open database");
    db.migrate().await.expect("migrate");
    let files = tempfile::tempdir().expect("temporary directory");
    let settings = AuditSettings::for_data_dir(files.path());
    let key = SigningKey::load_or_create(&settings.signing_key_path).expect("signing key");
    let public = key.verifying_key();
    let log = AuditLog::start(db.clone(), key, settings.clone());

    // Warm-up: connections opened, statements prepared.
    for i in 0..200 {
        log.append(record(0, i)).await.expect("append");
    }
    let before = log.metrics();

    let per_task = records / tasks;
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let t0 = Instant::now();
                    log.append(record(t, i)).await.expect("append");
                    latencies.push(t0.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(per_task * tasks);
    for h in handles {
        latencies.extend(h.await.expect("writer task"));
    }
    let elapsed = started.elapsed();
    let after = log.metrics();
    log.shutdown().await.expect("shutdown");
    latencies.sort_unstable();

    let n = (after.records_committed - before.records_committed) as f64;
    let batches = (after.batches_committed - before.batches_committed) as f64;
    println!(
        "{:<8} {:>3} writers  {:>7} records in {:>6.2} s  {:>8.0} appends/s  mean batch {:>5.1}  max batch {:>4}  latency p50 {:>6.1} ms  p99 {:>6.1} ms",
        backend.name(),
        tasks,
        n,
        elapsed.as_secs_f64(),
        n / elapsed.as_secs_f64(),
        n / batches,
        after.max_batch,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );

    let started = Instant::now();
    let report = verify(&db, &[public], Some(&settings.checkpoint_file))
        .await
        .expect("verify");
    let elapsed = started.elapsed();
    assert!(report.is_ok(), "{report}");
    println!(
        "{:<8} verify {:>7} records in {:>6.2} s  {:>8.0} records/s",
        backend.name(),
        report.records,
        elapsed.as_secs_f64(),
        report.records as f64 / elapsed.as_secs_f64()
    );
    db.close().await;
    if backend == Backend::Postgres {
        // A million-record run leaves hundreds of MB in the shared server: drop it.
        let name = url.rsplit('/').next().expect("database name");
        let mut admin = sqlx::PgConnection::connect(&megalis_testkit::admin_url())
            .await
            .expect("connect to the shared server");
        // The name was made by the test kit (fixed prefix and hex digits), not taken from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("drop the benchmark database");
    }
}

fn main() {
    let tasks = env_or("AUDIT_BENCH_TASKS", 64);
    let records = env_or("AUDIT_BENCH_RECORDS", 40_000);
    let backends = std::env::var("AUDIT_BENCH_BACKENDS").unwrap_or("sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        for name in backends.split(',') {
            let backend = match name.trim() {
                "sqlite" => Backend::Sqlite,
                "postgres" => Backend::Postgres,
                other => panic!("unknown backend {other:?}"),
            };
            run(backend, tasks, records).await;
        }
    });
}
