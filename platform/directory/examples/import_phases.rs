//! Where the directory import spends its time: parse-only speed, then a first import and a
//! re-import of the same synthetic file into a fresh SQLite database and, when
//! `MEGALIS_BENCH_PG` names a server, a fresh PostgreSQL database. For profiling
//! (`perf record`) and for comparing designs; the figures of record come from
//! `bench/directory.sh`, which runs the real CLI.
//!
//! `cargo run --release -p megalis-directory --example import_phases -- ROWS`

use std::time::Instant;

use megalis_audit::{AuditLog, AuditSettings, SigningKey};
use megalis_directory::{ImportOptions, generate, import_reader};
use megalis_store::{Database, PoolSettings};

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or(200_000);
    let mut text = Vec::new();
    generate::write(&mut text, rows, 1).expect("generate");
    println!("{rows} rows, {:.0} MB", text.len() as f64 / 1e6);

    let started = Instant::now();
    let reader =
        megalis_directory::parse::Reader::new(std::io::Cursor::new(text.clone())).expect("header");
    let parsed = reader.count();
    let s = started.elapsed().as_secs_f64();
    println!(
        "parse only: {parsed} rows in {s:.2} s = {:.0} rows/s",
        parsed as f64 / s
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let mut targets = vec![(
        "sqlite",
        format!("sqlite://{}", tmp.path().join("db.sqlite").display()),
    )];
    if let Ok(admin) = std::env::var("MEGALIS_BENCH_PG") {
        let name = format!("megalis_bench_phases_{}", std::process::id());
        let admin_db = Database::open(&admin, &PoolSettings::default()).expect("admin pool");
        if let Database::Postgres(pool) = &admin_db {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(pool)
                .await
                .expect("create database");
        }
        targets.push((
            "postgres",
            format!("{}/{name}", admin.rsplit_once('/').unwrap().0),
        ));
    }
    let only = std::env::var("BACKENDS").unwrap_or_else(|_| "sqlite postgres".into());
    for (label, url) in targets {
        if !only.split_whitespace().any(|b| b == label) {
            continue;
        }
        let db = Database::open(&url, &PoolSettings::default()).expect("open");
        db.migrate().await.expect("migrate");
        let (key, _) = SigningKey::generate().expect("key");
        let audit = AuditLog::start(db.clone(), key, AuditSettings::for_data_dir(tmp.path()));
        for pass in ["first", "again"] {
            let report = import_reader(
                &db,
                &audit,
                std::io::Cursor::new(text.clone()),
                ImportOptions {
                    batch_rows: std::env::var("BATCH_ROWS")
                        .ok()
                        .and_then(|b| b.parse().ok())
                        .unwrap_or(ImportOptions::default().batch_rows),
                    ..ImportOptions::default()
                },
            )
            .await
            .expect("import");
            println!(
                "{label} {pass}: {:.0} rows/s ({:.1} s)",
                report.rows_per_second(),
                report.elapsed.as_secs_f64()
            );
        }
    }
}
