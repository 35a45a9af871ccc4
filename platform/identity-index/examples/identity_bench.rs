//! Benchmarks of the patient index (see `bench/identity.sh`, which runs them against a release
//! server and writes nothing itself):
//!
//! - `load DB_URL PERSONS [SEED]`: feeds a synthetic population (`megalis_identity::synth`)
//!   into the index in one process, 500 records per transaction (matching included), to reach a
//!   large golden-record count quickly; prints records/s.
//! - `bulk DB_URL PERSONS [SEED]`: writes every synthetic record as its own regional patient with
//!   multi-row inserts (no matching, no audit): the fastest way to a million golden records for
//!   `match`; duplicates stay separate patients, which gives `$match` more candidates than a
//!   matched index would (a pessimistic setting).
//! - `match DB_URL PERSONS SEED PROBES`: `$match` (PatientIndex::find_matches) for PROBES
//!   identities of another synthetic draw of the same size; prints p50/p99/max in ms.
//! - `mllp ADDR CONNECTIONS MESSAGES SEED`: an MLLP client: CONNECTIONS connections each send
//!   ADT^A28 messages of a synthetic population and wait for each acknowledgement (the server
//!   answers AA only after the durable commit); prints messages/s and latency percentiles.
//!
//! Database URLs: `sqlite:///path/file.db` or `postgres://…`.

use std::time::{Duration, Instant};

use megalis_audit::{Actor, AuditLog, AuditSettings, SigningKey};
use megalis_identity::SourceRecord;
use megalis_identity::synth::{Rates, generate};
use megalis_identity_index::{Change, IndexSettings, PatientIndex};
use megalis_store::{Database, PoolSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

async fn index(url: &str, dir: &std::path::Path) -> PatientIndex {
    let db = Database::open(url, &PoolSettings::default()).expect("database");
    db.migrate_when_available(None).await.expect("migrations");
    let settings = AuditSettings::for_data_dir(dir);
    let key = SigningKey::load_or_create(&settings.signing_key_path).expect("audit key");
    let audit = AuditLog::start(db.clone(), key, settings);
    PatientIndex::new(db, audit, IndexSettings::default()).expect("index")
}

/// The PAM-FR ADT^A28 of a source record.
fn a28(r: &SourceRecord, control: &str) -> String {
    let t = &r.demographics.traits;
    let esc = |s: &str| {
        s.replace('\\', "\\E\\")
            .replace('|', "\\F\\")
            .replace('^', "\\S\\")
            .replace('&', "\\T\\")
            .replace('~', "\\R\\")
    };
    let mut pid3 = format!("{}^^^H&{}&ISO^PI", esc(&r.id.local_id), r.id.authority);
    if let Some(ins) = &r.ins {
        pid3.push_str(&format!("~{}^^^INS&{}&ISO^INS", ins.as_str(), ins.oid()));
    }
    let first = t
        .birth_first_names
        .first()
        .map(String::as_str)
        .unwrap_or("");
    let others = t.birth_first_names.get(1..).unwrap_or_default().join(",");
    let mut pid5 = format!(
        "{}^{}^{}^^^^L",
        esc(&t.birth_name),
        esc(first),
        esc(&others)
    );
    if let Some(used) = &r.demographics.used_name {
        pid5.push_str(&format!("~{}^^^^^^D", esc(used)));
    }
    let pid11 = t
        .birthplace
        .as_deref()
        .map(|b| format!("^^^^^^BDL^^{b}"))
        .unwrap_or_default();
    let mut pid = vec![String::new(); 33];
    pid[0] = "PID".into();
    pid[3] = pid3;
    pid[5] = pid5;
    pid[7] = format!(
        "{:04}{:02}{:02}",
        t.birth_date.year(),
        u8::from(t.birth_date.month()),
        t.birth_date.day()
    );
    pid[8] = t.sex.hl7().to_string();
    pid[11] = pid11;
    pid[32] = r.status.code().to_string();
    format!(
        "MSH|^~\\&|BENCH|BENCH|MEGALIS|ARS_BZH|20261126120000||ADT^A28^ADT_A05|{control}|P|2.5\r\
         EVN||20261126120000\r{}\r",
        pid.join("|")
    )
}

async fn load(url: &str, persons: usize, seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let index = index(url, dir.path()).await;
    let records = generate(persons, seed, &Rates::default());
    let actor = Actor::new("bench");
    let t = Instant::now();
    let (mut done, mut refused) = (0usize, 0usize);
    for chunk in records.chunks(500) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|r| Change::Upsert(r.record.clone()))
            .collect();
        if index.apply(&actor, &changes, None).await.is_err() {
            // One invalid record refuses its whole transaction: apply them one by one.
            for c in &changes {
                if index
                    .apply(&actor, std::slice::from_ref(c), None)
                    .await
                    .is_err()
                {
                    refused += 1;
                }
            }
        }
        done += chunk.len();
        if done % 50_000 < 500 {
            eprintln!(
                "{done} records, {:.0} records/s",
                done as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "loaded {done} source records ({refused} refused as invalid) in {:.1} s: {:.0} records/s",
        t.elapsed().as_secs_f64(),
        done as f64 / t.elapsed().as_secs_f64()
    );
}

async fn bulk(url: &str, persons: usize, seed: u64) {
    use megalis_identity::matching::{MatchRecord, blocking_keys};
    use megalis_identity::{RegionalId, SourceTrust, survive};
    use megalis_identity_index::search::SearchKeys;
    let db = Database::open(url, &PoolSettings::default()).expect("database");
    db.migrate_when_available(None).await.expect("migrations");
    let records = generate(persons, seed, &Rates::default());
    let t = Instant::now();
    let trust = SourceTrust::new();
    let now = 1_i64;
    for (c, chunk) in records.chunks(2000).enumerate() {
        let mut patients = Vec::new();
        let mut sources = Vec::new();
        let mut keys = Vec::new();
        for (i, r) in chunk.iter().enumerate() {
            let seq = (c * 2000 + i + 1) as i64;
            let id = RegionalId::from_sequence(seq as u64).to_string();
            let record = serde_json::to_string(&r.record).unwrap();
            let golden = survive(std::slice::from_ref(&r.record), &trust).unwrap();
            let k = SearchKeys::of(&golden);
            let stored = serde_json::json!({"golden": golden, "sources_snapshot": [&r.record]});
            for key in blocking_keys(&MatchRecord::from_source(&r.record)) {
                keys.push((key, r.record.id.clone()));
            }
            patients.push((id.clone(), seq, golden.status.code(), stored.to_string(), k));
            sources.push((
                r.record.id.clone(),
                id,
                r.record.ins.as_ref().map(|i| i.as_str().to_string()),
                r.record.status.code(),
                record,
            ));
        }
        macro_rules! insert_all {
            ($tx:expr) => {{
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO identity_patient (regional_id, seq, status, golden, created_at_us, \
                     updated_at_us, birth_name_key, used_name_key, given_key, birth_date, gender) ",
                );
                qb.push_values(&patients, |mut b, (id, seq, status, golden, k)| {
                    b.push_bind(id).push_bind(seq).push_bind(*status).push_bind(golden)
                        .push_bind(now).push_bind(now).push_bind(&k.birth_name)
                        .push_bind(&k.used_name).push_bind(&k.given).push_bind(&k.birth_date)
                        .push_bind(k.gender);
                });
                qb.build().execute(&mut *$tx).await.unwrap();
                let mut qb = sqlx::QueryBuilder::new(
                    "INSERT INTO identity_source (authority, local_id, regional_id, ins, status, \
                     record, version, updated_at_us) ",
                );
                qb.push_values(&sources, |mut b, (sid, id, ins, status, record)| {
                    b.push_bind(&sid.authority).push_bind(&sid.local_id).push_bind(id)
                        .push_bind(ins).push_bind(*status).push_bind(record).push_bind(1_i64)
                        .push_bind(now);
                });
                qb.build().execute(&mut *$tx).await.unwrap();
                for part in keys.chunks(5000) {
                    let mut qb = sqlx::QueryBuilder::new(
                        "INSERT INTO identity_match_key (match_key, authority, local_id) ",
                    );
                    qb.push_values(part, |mut b, (key, sid)| {
                        b.push_bind(key).push_bind(&sid.authority).push_bind(&sid.local_id);
                    });
                    qb.push(" ON CONFLICT DO NOTHING");
                    qb.build().execute(&mut *$tx).await.unwrap();
                }
                let last = patients.last().map(|p| p.1).unwrap_or(0);
                sqlx::query("UPDATE identity_counter SET seq = $1 WHERE id = 1")
                    .bind(last)
                    .execute(&mut *$tx)
                    .await
                    .unwrap();
            }};
        }
        match &db {
            Database::Sqlite(pool) => {
                let mut tx = pool.begin().await.unwrap();
                insert_all!(tx);
                tx.commit().await.unwrap();
            }
            Database::Postgres(pool) => {
                let mut tx = pool.begin().await.unwrap();
                insert_all!(tx);
                tx.commit().await.unwrap();
            }
        }
        if (c + 1) % 50 == 0 {
            eprintln!("{} records", (c + 1) * 2000);
        }
    }
    println!(
        "bulk-loaded {} records as patients in {:.1} s",
        records.len(),
        t.elapsed().as_secs_f64()
    );
    if let Database::Postgres(pool) = &db {
        sqlx::query("ANALYZE").execute(pool).await.unwrap();
    }
}

async fn matches(url: &str, persons: usize, seed: u64, probes: usize) {
    let dir = tempfile::tempdir().unwrap();
    let index = index(url, dir.path()).await;
    let records = generate(persons, seed, &Rates::default());
    let step = (records.len() / probes).max(1);
    let mut times = Vec::with_capacity(probes);
    let mut found = 0usize;
    // Warm-up: the first queries fill the page cache; not counted.
    for r in records.iter().take(50) {
        let _ = index.find_matches(&r.record, 10, false).await;
    }
    for r in records.iter().step_by(step).take(probes) {
        let t = Instant::now();
        let m = index
            .find_matches(&r.record, 10, false)
            .await
            .expect("match");
        times.push(t.elapsed());
        found += usize::from(!m.is_empty());
    }
    times.sort();
    println!(
        "$match over {} probes: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {found} with candidates",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&times, 1.0)
    );
}

async fn mllp(addr: &str, connections: usize, messages: usize, seed: u64) {
    let records = generate(messages, seed, &Rates::default());
    let records: Vec<SourceRecord> = records
        .into_iter()
        .take(messages)
        .map(|r| {
            // Runs with other seeds must create records, not update the same IPPs.
            let mut record = r.record;
            record.id.local_id = format!("S{seed}-{}", record.id.local_id);
            record
        })
        .collect();
    let per = records.len() / connections;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let chunk: Vec<SourceRecord> = records[c * per..(c + 1) * per].to_vec();
        let addr = addr.to_string();
        tasks.push(tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr)
                .await
                .expect("connect");
            s.set_nodelay(true).unwrap();
            let mut times = Vec::with_capacity(chunk.len());
            let (mut aa, mut other) = (0usize, 0usize);
            let mut buf = vec![0u8; 4096];
            for (i, r) in chunk.iter().enumerate() {
                let msg = a28(r, &format!("B{seed}-{c}-{i}"));
                let mut frame = vec![0x0b];
                frame.extend_from_slice(msg.as_bytes());
                frame.extend_from_slice(&[0x1c, 0x0d]);
                let t = Instant::now();
                s.write_all(&frame).await.unwrap();
                let mut ack = Vec::new();
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "connection closed");
                    ack.extend_from_slice(&buf[..n]);
                    if ack.ends_with(&[0x1c, 0x0d]) {
                        break;
                    }
                }
                times.push(t.elapsed());
                if ack.windows(7).any(|w| w == b"MSA|AA|") {
                    aa += 1;
                } else {
                    other += 1;
                    if other <= 3 {
                        eprintln!("not AA: {}", String::from_utf8_lossy(&ack));
                    }
                }
            }
            (times, aa, other)
        }));
    }
    let mut times = Vec::new();
    let (mut aa, mut other) = (0, 0);
    for t in tasks {
        let (ts, a, o) = t.await.unwrap();
        times.extend(ts);
        aa += a;
        other += o;
    }
    let elapsed = start.elapsed().as_secs_f64();
    times.sort();
    println!(
        "MLLP {connections} connection(s): {} messages in {elapsed:.1} s = {:.0} messages/s; \
         ack p50 {:.2} ms, p99 {:.2} ms; AA {aa}, other {other}",
        times.len(),
        times.len() as f64 / elapsed,
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    let num = |i: usize, default: u64| arg(i).parse().unwrap_or(default);
    match arg(0).as_str() {
        "load" => load(&arg(1), num(2, 100_000) as usize, num(3, 1)).await,
        "bulk" => bulk(&arg(1), num(2, 1_000_000) as usize, num(3, 1)).await,
        "match" => {
            matches(
                &arg(1),
                num(2, 100_000) as usize,
                num(3, 2),
                num(4, 2000) as usize,
            )
            .await
        }
        "mllp" => {
            mllp(
                &arg(1),
                num(2, 1) as usize,
                num(3, 10_000) as usize,
                num(4, 3),
            )
            .await
        }
        _ => {
            eprintln!("usage: identity_bench load|match|mllp … (see the file's header)");
            std::process::exit(2);
        }
    }
}
