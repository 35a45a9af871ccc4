//! ITI-67 find latency with a large `document_entry` table.
//!
//! ```text
//! cargo run --release -p megalis-documents --example documents_bench -- \
//!     BACKEND [DOCUMENTS [PATIENTS [QUERIES [SEED]]]]
//! ```
//! `BACKEND` is `sqlite` or `postgres`; defaults: 1,000,000 documents over 100,000 patients,
//! 2,000 queries. The database is `MEGALIS_BENCH_DB` when set (an existing URL, loaded only if
//! its table is empty), otherwise a fresh one: an SQLite file in a temporary directory, or a new
//! database on the `MEGALIS_TEST_PG` server.
//!
//! Loading writes synthetic rows directly with multi-row inserts (no blob, no checks: the
//! service's own write path is measured by the tests, not here), 1,000 rows per statement, then
//! analyzes the table. Queries go through [`Documents::find`], the code the server runs:
//! the first page (50) of a random patient's documents, then the same with a type and a date
//! filter, and prints p50/p99/max in milliseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use megalis_blobs::{LocalBlobStore, Sha256Digest};
use megalis_documents::datetime::{DateCondition, FhirDateTime};
use megalis_documents::fhir::{DocumentQuery, Token};
use megalis_documents::model::{
    Author, Coding, Confidentiality, Content, DocStatus, Identifier, LOINC, Metadata,
};
use megalis_documents::{Documents, Limits};
use megalis_store::{Database, PoolSettings, with_pool};
use rand::{Rng, SeedableRng, rngs::StdRng};

const TYPES: [(&str, &str); 8] = [
    ("11488-4", "Consult note"),
    ("34133-9", "Summary of episode note"),
    ("18748-4", "Diagnostic imaging study"),
    ("11524-6", "EKG study"),
    ("11523-8", "EEG study"),
    ("18842-5", "Discharge summary"),
    ("60591-5", "Patient summary"),
    ("11506-3", "Progress note"),
];
const BINARIES: usize = 1000;
const ROWS_PER_STATEMENT: usize = 1000;
const COLUMNS: &str = "id, patient_id, master_identifier, status, type_code, category_system, \
    category_code, author_national_id, date_us, period_start_us, period_end_us, binary_id, \
    replaces, entry, created_by, created_at_us, updated_at_us";

fn patient_id(n: u64) -> String {
    format!("RB{n:011}")
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// One synthetic row: its columns and its metadata JSON.
struct Row {
    id: String,
    patient: String,
    master: String,
    type_code: &'static str,
    category: &'static str,
    author: String,
    date_us: i64,
    period: (i64, i64),
    binary: String,
    entry: String,
}

fn row(rng: &mut StdRng, n: u64, patients: u64, binaries: &[(String, Sha256Digest)]) -> Row {
    let patient = patient_id(rng.random_range(0..patients));
    let (code, display) = TYPES[rng.random_range(0..TYPES.len())];
    // Ten years of documents.
    let date_us = 1_420_070_400_000_000 + rng.random_range(0..315_360_000_000_000i64);
    let date = FhirDateTime::from_unix_us(date_us);
    let (binary, sha256) = &binaries[rng.random_range(0..binaries.len())];
    let author = format!(
        "8{:011}",
        10_000_000_000u64 + rng.random_range(0..20_000u64)
    );
    let category = if code == "18748-4" { "20" } else { "10" };
    let metadata = Metadata {
        master_identifier: format!("urn:oid:1.2.250.1.999.9.{n}"),
        doc_status: Some(DocStatus::Final),
        doc_type: Coding {
            system: LOINC.into(),
            code: code.into(),
            display: Some(display.into()),
        },
        category: Some(Coding {
            system: "urn:oid:1.2.250.1.213.1.1.4.1".into(),
            code: category.into(),
            display: None,
        }),
        author: Some(Author {
            national_id: author.clone(),
            reference: None,
            organisation: Some(Identifier {
                system: "urn:oid:1.2.250.1.71.4.2.2".into(),
                value: "1290000017".into(),
            }),
        }),
        custodian: None,
        confidentiality: Confidentiality::N,
        period_start: Some(FhirDateTime::from_unix_us(date_us - 3_600_000_000)),
        period_end: Some(FhirDateTime::from_unix_us(date_us)),
        facility_type: None,
        practice_setting: None,
        date,
        description: Some("Document synthétique".into()),
        replaces: None,
        content: Content {
            binary_id: binary.clone(),
            content_type: "application/pdf".into(),
            size: 48_213,
            sha256: *sha256,
            sha1: "da39a3ee5e6b4b0d3255bfef95601890afd80709".into(),
            title: Some(display.into()),
            language: Some("fr-FR".into()),
            creation: None,
            format: None,
        },
    };
    Row {
        id: megalis_documents::model::new_id(),
        patient,
        master: metadata.master_identifier.clone(),
        type_code: code,
        category,
        author,
        date_us,
        period: (date_us - 3_600_000_000, date_us + 1),
        binary: binary.clone(),
        entry: serde_json::to_string(&metadata).expect("metadata serialises"),
    }
}

macro_rules! insert_rows {
    ($qb:ident, $rows:expr) => {{
        $qb.push_values($rows, |mut b, r: &Row| {
            b.push_bind(r.id.clone())
                .push_bind(r.patient.clone())
                .push_bind(r.master.clone())
                .push_bind("current")
                .push_bind(r.type_code)
                .push_bind("urn:oid:1.2.250.1.213.1.1.4.1")
                .push_bind(r.category)
                .push_bind(r.author.clone())
                .push_bind(r.date_us)
                .push_bind(r.period.0)
                .push_bind(r.period.1)
                .push_bind(r.binary.clone())
                .push_bind(None::<String>)
                .push_bind(r.entry.clone())
                .push_bind("bench")
                .push_bind(r.date_us)
                .push_bind(r.date_us);
        });
    }};
}

async fn load(db: &Database, documents: u64, patients: u64, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let binaries: Vec<(String, Sha256Digest)> = (0..BINARIES)
        .map(|i| {
            (
                format!("bench-binary-{i}"),
                Sha256Digest::of(format!("bench {i}").as_bytes()),
            )
        })
        .collect();
    for (id, sha) in &binaries {
        with_pool!(db, pool => sqlx::query(
            "INSERT INTO document_binary (id, sha256, sha1, size, content_type, uploaded_by, created_at_us) \
             VALUES ($1, $2, $3, 48213, 'application/pdf', 'bench', 0)")
            .bind(id).bind(sha.to_hex()).bind("da39a3ee5e6b4b0d3255bfef95601890afd80709")
            .execute(pool).await.map(|_| ()))
        .expect("insert binary");
    }
    let started = Instant::now();
    let mut done = 0u64;
    while done < documents {
        // Ten statements per transaction: fewer commits (fsyncs) without one huge transaction.
        let batch = (documents - done).min(10 * ROWS_PER_STATEMENT as u64);
        let rows: Vec<Row> = (0..batch)
            .map(|i| row(&mut rng, done + i, patients, &binaries))
            .collect();
        match db {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(format!(
                        "INSERT INTO document_entry ({COLUMNS}) "
                    ));
                    insert_rows!(qb, chunk);
                    qb.build().execute(&mut *tx).await.expect("insert");
                }
                tx.commit().await.expect("commit");
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.expect("begin");
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
                        "INSERT INTO document_entry ({COLUMNS}) "
                    ));
                    insert_rows!(qb, chunk);
                    qb.build().execute(&mut *tx).await.expect("insert");
                }
                tx.commit().await.expect("commit");
            }
        }
        done += batch;
        if done.is_multiple_of(100_000) || done == documents {
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "loaded {done} documents in {secs:.1} s ({:.0}/s)",
                done as f64 / secs
            );
        }
    }
    with_pool!(db, pool => sqlx::query("ANALYZE").execute(pool).await.map(|_| ()))
        .expect("analyze");
}

async fn measure(
    docs: &Documents,
    patients: u64,
    queries: usize,
    seed: u64,
    filtered: bool,
) -> (Vec<Duration>, u64) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    let mut times = Vec::with_capacity(queries);
    let mut found = 0;
    for _ in 0..queries {
        let mut q = DocumentQuery::patient(patient_id(rng.random_range(0..patients)));
        if filtered {
            q.filters.doc_type = vec![vec![Token {
                system: Some(LOINC.into()),
                code: Some(TYPES[rng.random_range(0..TYPES.len())].0.into()),
            }]];
            q.filters.date = vec![DateCondition::parse("ge2018-01-01").expect("date")];
        }
        let t = Instant::now();
        let page = docs.find(&q).await.expect("find");
        times.push(t.elapsed());
        found += page.entries.len() as u64;
    }
    times.sort();
    (times, found)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backend = args.first().map(String::as_str).unwrap_or("sqlite");
    let number = |i: usize, default: u64| -> u64 {
        args.get(i)
            .map(|s| s.replace('_', "").parse().expect("a number"))
            .unwrap_or(default)
    };
    let documents = number(1, 1_000_000);
    let patients = number(2, 100_000);
    let queries = number(3, 2_000) as usize;
    let seed = number(4, 42);

    let tmp = tempfile::tempdir().expect("temporary directory");
    let given = std::env::var("MEGALIS_BENCH_DB").ok();
    let url = match &given {
        Some(url) => url.clone(),
        None => match backend {
            "sqlite" => Database::default_url(tmp.path()),
            "postgres" => megalis_testkit::fresh_postgres_url().await,
            other => panic!("backend is sqlite or postgres, not {other}"),
        },
    };
    let db = Database::open(&url, &PoolSettings::default()).expect("database");
    db.migrate().await.expect("migrations");
    let existing: i64 =
        with_pool!(&db, pool => sqlx::query_scalar("SELECT count(*) FROM document_entry")
        .fetch_one(pool).await)
        .expect("count");
    if existing == 0 {
        load(&db, documents, patients, seed).await;
    } else {
        eprintln!("{existing} documents already there: not loading");
    }
    let blobs = Arc::new(LocalBlobStore::open(tmp.path().join("blobs")).expect("blob store"));
    let docs = Documents::new(db.clone(), blobs, Limits::default());

    // Warm the caches a little, as a running server would be.
    let _ = measure(&docs, patients, 200, seed + 1, false).await;
    println!(
        "backend {backend}: {} documents, {patients} patients, {queries} queries per kind",
        existing.max(documents as i64)
    );
    for (name, filtered) in [("patient", false), ("patient+type+date", true)] {
        let started = Instant::now();
        let (times, found) = measure(&docs, patients, queries, seed, filtered).await;
        println!(
            "ITI-67 {name:<18} p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.0} queries/s, {:.1} documents per page)",
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            queries as f64 / started.elapsed().as_secs_f64(),
            found as f64 / queries as f64,
        );
    }
    db.close().await;
    // A PostgreSQL database made for this run is dropped (a million rows weigh about 1.5 GB on
    // the shared server); the SQLite file goes with its temporary directory.
    if given.is_none() && backend == "postgres" {
        use sqlx::Connection;
        let name = url.rsplit('/').next().expect("database name").to_string();
        let mut admin = sqlx::PgConnection::connect(&megalis_testkit::admin_url())
            .await
            .expect("admin connection");
        // The name is the test kit's (fixed prefix and hex digits), never user input.
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("drop the benchmark database");
    }
}
