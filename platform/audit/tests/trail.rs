//! The audit trail against real databases: every test runs on SQLite and on PostgreSQL (a fresh
//! database each), appends through [`AuditLog`], tampers with the tables in SQL the way someone
//! with database access could, and checks that [`verify`] names the problem and its seq.

use std::path::PathBuf;
use std::time::Duration;

use megalis_audit::record::{GENESIS_HASH, chain};
use megalis_audit::verify::verify_with_page_size;
use megalis_audit::{
    Actor, AuditError, AuditLog, AuditRecord, AuditSettings, Outcome, Problem, SigningKey,
    VerifyingKey, verify,
};
use megalis_store::{Backend, Database, PoolSettings, with_pool};
use megalis_testkit::{PrivateCluster, fresh_database};

struct Env {
    _db_dir: Option<tempfile::TempDir>,
    files: tempfile::TempDir,
    db: Database,
}

impl Env {
    async fn new(backend: Backend) -> Env {
        let (dir, db) = fresh_database(backend).await;
        Env {
            _db_dir: dir,
            files: tempfile::tempdir().unwrap(),
            db,
        }
    }

    fn settings(&self) -> AuditSettings {
        AuditSettings {
            // Checkpoints are taken explicitly in these tests, so that where they fall is known.
            checkpoint_interval: Duration::from_secs(3600),
            ..AuditSettings::for_data_dir(self.files.path())
        }
    }

    fn key(&self) -> SigningKey {
        SigningKey::load_or_create(&self.settings().signing_key_path).unwrap()
    }

    fn public_keys(&self) -> Vec<VerifyingKey> {
        vec![self.key().verifying_key()]
    }

    fn checkpoint_file(&self) -> PathBuf {
        self.settings().checkpoint_file
    }

    fn start(&self) -> AuditLog {
        AuditLog::start(self.db.clone(), self.key(), self.settings())
    }

    /// Verifies with the default page size, and again with pages of 3 rows so that the paging
    /// of records and checkpoints (and their merge) is exercised too: both must agree.
    async fn verify(&self) -> megalis_audit::Report {
        let file = self.checkpoint_file();
        let report = verify(&self.db, &self.public_keys(), Some(&file))
            .await
            .unwrap();
        let paged = verify_with_page_size(&self.db, &self.public_keys(), Some(&file), 3)
            .await
            .unwrap();
        assert_eq!(report, paged);
        report
    }

    async fn sql(&self, sql: &'static str) {
        with_pool!(&self.db, pool => sqlx::query(sql).execute(pool).await.map(|_| ())).unwrap();
    }
}

fn record(i: usize) -> AuditRecord {
    AuditRecord::new(
        Actor {
            subject: format!("user-{}", i % 3),
            national_id: Some("810002345678".into()),
            organisation: Some("350005179".into()),
            roles: vec!["doctor".into()],
        },
        "patient.read",
        "Patient",
        if i.is_multiple_of(5) {
            Outcome::Denied
        } else {
            Outcome::Success
        },
    )
    .with_object_id(format!("pat-{i}"))
    .with_patient(format!("pat-{i}"))
    .with_purpose("care")
    .with_source_address("192.0.2.10")
    .with_request_id(format!("req-{i}"))
}

/// Appends records 1..=20 with checkpoints at 10 and 20; returns the records in chain order.
async fn chain_of_20(log: &AuditLog) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    for i in 1..=20 {
        let r = record(i);
        assert_eq!(log.append(r.clone()).await.unwrap(), i as u64);
        records.push(r);
        if i == 10 || i == 20 {
            let cp = log.checkpoint_now().await.unwrap().expect("head moved");
            assert_eq!(cp.seq, i as u64);
        }
    }
    records
}

/// Runs one test body on both backends.
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(megalis_store::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$body(megalis_store::Backend::Postgres).await
            }
        }
    };
}

async fn clean_chain_verifies(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    let seqs = log
        .append_for_patients(
            record(21).with_detail("{\"bundle\":1}"),
            ["p-a", "p-b", "p-c"],
        )
        .await
        .unwrap();
    assert_eq!(seqs, [21, 22, 23]);
    let last = log.shutdown().await.unwrap().expect("final checkpoint");
    assert_eq!(last.seq, 23);
    assert_eq!(log.head_seq(), 23);

    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        (
            report.records,
            report.head_seq,
            report.checkpoints,
            report.file_checkpoints
        ),
        (23, 23, 3, 3)
    );
    assert_eq!(report.last_checkpoint_seq, Some(23));
    assert!(
        report.to_string().starts_with("audit trail intact"),
        "{report}"
    );

    // One record per patient, with the patient's id.
    let patients: Vec<String> = with_pool!(&env.db, pool => sqlx::query_scalar(
        "SELECT patient_id FROM audit_record WHERE seq > 20 ORDER BY seq").fetch_all(pool).await)
    .unwrap();
    assert_eq!(patients, ["p-a", "p-b", "p-c"]);
}
both_backends!(clean_chain, clean_chain_verifies);

async fn appends_after_shutdown_are_refused(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    log.append(record(1)).await.unwrap();
    log.shutdown().await.unwrap();
    let err = log.append(record(2)).await.unwrap_err();
    assert!(matches!(err, AuditError::Closed), "{err}");
    // Nothing new to sign: no second checkpoint.
    let log = env.start();
    assert!(log.checkpoint_now().await.unwrap().is_none());
    log.shutdown().await.unwrap();
    assert!(env.verify().await.is_ok());
}
both_backends!(shutdown, appends_after_shutdown_are_refused);

async fn invalid_records_are_refused_alone(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let err = log.append(record(1).with_detail("a\0b")).await.unwrap_err();
    assert!(matches!(err, AuditError::InvalidRecord(_)), "{err}");
    let err = log
        .append(record(1).with_detail("x".repeat(megalis_audit::MAX_FIELD_BYTES + 1)))
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::InvalidRecord(_)), "{err}");
    let err = log
        .append_for_patients(record(1), Vec::<String>::new())
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::InvalidRecord(_)), "{err}");
    assert_eq!(log.append(record(2)).await.unwrap(), 1);
    log.shutdown().await.unwrap();
}
both_backends!(invalid_records, invalid_records_are_refused_alone);

async fn altered_field_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    env.sql("UPDATE audit_record SET outcome = 'success' WHERE seq = 5")
        .await;
    let report = env.verify().await;
    assert!(
        matches!(report.problem, Some(Problem::AlteredRecord { seq: 5, .. })),
        "{report}"
    );
    assert!(
        report.to_string().contains("record 5 was altered"),
        "{report}"
    );
}
both_backends!(altered_field, altered_field_is_caught);

async fn altered_roles_are_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    env.sql("UPDATE audit_record SET actor_roles = '[\"doctor\",\"admin\"]' WHERE seq = 12")
        .await;
    let report = env.verify().await;
    assert!(
        matches!(report.problem, Some(Problem::AlteredRecord { seq: 12, .. })),
        "{report}"
    );
}
both_backends!(altered_roles, altered_roles_are_caught);

async fn deleted_record_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    env.sql("DELETE FROM audit_record WHERE seq IN (7, 8)")
        .await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::MissingRecords { from: 7, to: 8 }),
        "{report}"
    );
}
both_backends!(deleted_record, deleted_record_is_caught);

async fn inserted_consistent_record_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let records = chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    env.sql("UPDATE audit_record SET seq = -seq WHERE seq >= 6")
        .await;
    env.sql("UPDATE audit_record SET seq = 1 - seq WHERE seq < 0")
        .await;
    // The intruder is hashed exactly as the log would have: only the link from record 7 (the
    // old record 6, whose prev_hash is record 5's hash) gives it away.
    let intruder = AuditRecord::new(
        Actor::new("intruder"),
        "patient.read",
        "Patient",
        Outcome::Success,
    );
    let forged = chain(
        0,
        GENESIS_HASH,
        &[records[..5].to_vec(), vec![intruder.clone()]].concat(),
    );
    let f = forged.last().unwrap();
    with_pool!(&env.db, pool => sqlx::query(
        "INSERT INTO audit_record (seq, recorded_at_us, actor_subject, actor_roles, action, \
         object_type, outcome, prev_hash, hash) VALUES ($1, $2, $3, '[]', $4, $5, $6, $7, $8)")
        .bind(6i64).bind(intruder.time_us).bind("intruder").bind("patient.read")
        .bind("Patient").bind("success").bind(f.prev_hash.to_vec()).bind(f.hash.to_vec())
        .execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::BrokenLink { seq: 7 }),
        "{report}"
    );
}
both_backends!(inserted_record, inserted_consistent_record_is_caught);

async fn record_beyond_head_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let records = chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    let extra = chain(
        0,
        GENESIS_HASH,
        &[records.clone(), vec![record(21)]].concat(),
    );
    let f = extra.last().unwrap();
    with_pool!(&env.db, pool => sqlx::query(
        "INSERT INTO audit_record (seq, recorded_at_us, actor_subject, actor_national_id, \
         actor_organisation, actor_roles, action, object_type, object_id, patient_id, purpose, \
         outcome, source_address, request_id, prev_hash, hash) \
         VALUES (21, $1, $2, $3, $4, '[\"doctor\"]', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)")
        .bind(f.record.time_us).bind(f.record.actor.subject.clone())
        .bind(f.record.actor.national_id.clone()).bind(f.record.actor.organisation.clone())
        .bind(f.record.action.clone()).bind(f.record.object_type.clone())
        .bind(f.record.object_id.clone()).bind(f.record.patient_id.clone())
        .bind(f.record.purpose.clone()).bind(f.record.outcome.as_str())
        .bind(f.record.source_address.clone()).bind(f.record.request_id.clone())
        .bind(f.prev_hash.to_vec()).bind(f.hash.to_vec())
        .execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::BeyondHead {
            head_seq: 20,
            seq: 21
        }),
        "{report}"
    );
}
both_backends!(record_beyond_head, record_beyond_head_is_caught);

async fn truncated_tail_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let records = chain_of_20(&log).await;
    log.shutdown().await.unwrap();

    // Naive: the tail is cut, the head still says 20.
    env.sql("DELETE FROM audit_record WHERE seq > 15").await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::TruncatedByCheckpoint {
            last_seq: 15,
            checkpoint_seq: 20
        }),
        "{report}"
    );

    // Careful: the head is moved back to record 15 too; the signed checkpoint at 20 remains.
    let h = chain(0, GENESIS_HASH, &records[..15]).last().unwrap().hash;
    with_pool!(&env.db, pool => sqlx::query("UPDATE audit_head SET seq = 15, hash = $1")
        .bind(h.to_vec()).execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::TruncatedByCheckpoint {
            last_seq: 15,
            checkpoint_seq: 20
        }),
        "{report}"
    );

    // Thorough: the checkpoint at 20 is deleted as well; the file still has it.
    env.sql("DELETE FROM audit_checkpoint WHERE seq = 20").await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::CheckpointMissingFromDatabase { seq: 20, line: 2 }),
        "{report}"
    );
}
both_backends!(truncated_tail, truncated_tail_is_caught);

async fn truncation_without_checkpoint_is_caught_by_the_head(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    for i in 1..=5 {
        log.append(record(i)).await.unwrap();
    }
    // No checkpoint yet (the residual window): the head row still tells.
    env.sql("DELETE FROM audit_record WHERE seq > 3").await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::TruncatedHead {
            last_seq: 3,
            head_seq: 5
        }),
        "{report}"
    );
    log.shutdown().await.ok();
}
both_backends!(
    truncated_head,
    truncation_without_checkpoint_is_caught_by_the_head
);

async fn rehashed_chain_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let mut records = chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    // Edit record 4 and recompute every hash after it, as the log would, then move the head:
    // the chain is self-consistent, only the signed checkpoint at 10 disagrees.
    records[3].outcome = Outcome::Failure;
    env.sql("UPDATE audit_record SET outcome = 'failure' WHERE seq = 4")
        .await;
    let rehashed = chain(0, GENESIS_HASH, &records);
    for c in &rehashed {
        with_pool!(&env.db, pool => sqlx::query(
            "UPDATE audit_record SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(c.prev_hash.to_vec()).bind(c.hash.to_vec()).bind(c.seq as i64)
            .execute(pool).await.map(|_| ()))
        .unwrap();
    }
    let last = rehashed.last().unwrap();
    with_pool!(&env.db, pool => sqlx::query("UPDATE audit_head SET hash = $1")
        .bind(last.hash.to_vec()).execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::Rehashed { seq: 10 }),
        "{report}"
    );
}
both_backends!(rehashed_chain, rehashed_chain_is_caught);

async fn wiped_checkpoints_are_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    env.sql("DELETE FROM audit_checkpoint").await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::CheckpointMissingFromDatabase { seq: 10, line: 1 }),
        "{report}"
    );
}
both_backends!(wiped_checkpoints, wiped_checkpoints_are_caught);

async fn deleted_middle_checkpoint_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.append(record(21)).await.unwrap();
    log.shutdown().await.unwrap();
    env.sql("DELETE FROM audit_checkpoint WHERE seq = 20").await;
    // Without the file, the checkpoints' own chain still shows the gap.
    let report = verify(&env.db, &env.public_keys(), None).await.unwrap();
    assert_eq!(
        report.problem,
        Some(Problem::CheckpointChainBroken { seq: 21 }),
        "{report}"
    );
}
both_backends!(
    deleted_middle_checkpoint,
    deleted_middle_checkpoint_is_caught
);

async fn forged_checkpoint_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();

    // An edited signature.
    let sig: Vec<u8> = with_pool!(&env.db, pool => sqlx::query_scalar(
        "SELECT signature FROM audit_checkpoint WHERE seq = 10").fetch_one(pool).await)
    .unwrap();
    let mut bad = sig.clone();
    bad[0] ^= 0x01;
    with_pool!(&env.db, pool => sqlx::query("UPDATE audit_checkpoint SET signature = $1 WHERE seq = 10")
        .bind(bad).execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::InvalidSignature { seq: 10, .. })
        ),
        "{report}"
    );
    with_pool!(&env.db, pool => sqlx::query("UPDATE audit_checkpoint SET signature = $1 WHERE seq = 10")
        .bind(sig).execute(pool).await.map(|_| ()))
    .unwrap();
    assert!(env.verify().await.is_ok());

    // A checkpoint re-signed with a key of the attacker's own, carrying the real key id.
    let (attacker, _) = SigningKey::generate().unwrap();
    let head: Vec<u8> = with_pool!(&env.db, pool => sqlx::query_scalar(
        "SELECT head_hash FROM audit_checkpoint WHERE seq = 20").fetch_one(pool).await)
    .unwrap();
    let forged = attacker.sign(20, &head.try_into().unwrap(), 0, None);
    with_pool!(&env.db, pool => sqlx::query(
        "UPDATE audit_checkpoint SET signature = $1, signed_at_us = 0 WHERE seq = 20")
        .bind(forged.signature).execute(pool).await.map(|_| ()))
    .unwrap();
    let report = env.verify().await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::InvalidSignature { seq: 20, .. })
        ),
        "{report}"
    );

    // Verified with the wrong public key: every checkpoint is signed by an unknown key.
    let report = verify(&env.db, &[attacker.verifying_key()], None)
        .await
        .unwrap();
    assert!(
        matches!(report.problem, Some(Problem::UnknownKey { seq: 10, .. })),
        "{report}"
    );
}
both_backends!(forged_checkpoint, forged_checkpoint_is_caught);

async fn forged_checkpoint_file_line_is_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    let text = std::fs::read_to_string(env.checkpoint_file()).unwrap();
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines[1]["seq"] = serde_json::json!(21);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(env.checkpoint_file(), text).unwrap();
    let report = env.verify().await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::InvalidSignature {
                seq: 21,
                source: megalis_audit::verify::CheckpointSource::File { line: 2 }
            })
        ),
        "{report}"
    );
}
both_backends!(
    forged_checkpoint_file_line,
    forged_checkpoint_file_line_is_caught
);

async fn concurrent_appends_make_a_gap_free_chain(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    let (tasks, per_task) = (32, 25);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..per_task {
                if i % 10 == 3 {
                    let s = log
                        .append_for_patients(record(t * 1000 + i), ["x", "y"])
                        .await
                        .unwrap();
                    // A multi-patient append is contiguous in the chain.
                    assert_eq!(s[1], s[0] + 1);
                    seqs.extend(s);
                } else {
                    seqs.push(log.append(record(t * 1000 + i)).await.unwrap());
                }
            }
            seqs
        }));
    }
    let mut all: Vec<u64> = futures::future::try_join_all(handles)
        .await
        .unwrap()
        .concat();
    all.sort_unstable();
    let n = all.len() as u64;
    assert_eq!(all, (1..=n).collect::<Vec<_>>());
    log.shutdown().await.unwrap();
    let m = log.metrics();
    assert_eq!(
        (m.records_committed, m.head_seq, m.batches_failed),
        (n, n, 0)
    );
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.records, n);
}
both_backends!(concurrent_appends, concurrent_appends_make_a_gap_free_chain);

/// Two replicas: two pools and two writers on one PostgreSQL database, each with its own
/// checkpoint file, sharing the signing key (a mounted Secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_share_one_postgres_chain() {
    let url = megalis_testkit::fresh_postgres_url().await;
    let open = || Database::open(&url, &PoolSettings::default()).unwrap();
    let db_a = open();
    db_a.migrate().await.unwrap();
    let db_b = open();
    let files = tempfile::tempdir().unwrap();
    let key_path = files.path().join("key.pk8");
    let settings = |name: &str| AuditSettings {
        checkpoint_interval: Duration::from_secs(3600),
        checkpoint_file: files.path().join(format!("{name}.jsonl")),
        signing_key_path: key_path.clone(),
        batch_max: 64,
    };
    let key = || SigningKey::load_or_create(&key_path).unwrap();
    let a = AuditLog::start(db_a.clone(), key(), settings("a"));
    let b = AuditLog::start(db_b, key(), settings("b"));

    let mut handles = Vec::new();
    for t in 0..16 {
        let log = if t % 2 == 0 { a.clone() } else { b.clone() };
        handles.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..20 {
                seqs.push(log.append(record(t * 100 + i)).await.unwrap());
                if i % 7 == 6 {
                    // Both replicas checkpoint while the other appends.
                    log.checkpoint_now().await.unwrap();
                }
            }
            seqs
        }));
    }
    let mut all: Vec<u64> = futures::future::try_join_all(handles)
        .await
        .unwrap()
        .concat();
    all.sort_unstable();
    assert_eq!(all, (1..=320).collect::<Vec<_>>());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert!(a.metrics().records_committed > 0 && b.metrics().records_committed > 0);

    let keys = [key().verifying_key()];
    for file in ["a", "b"] {
        let report = verify(
            &db_a,
            &keys,
            Some(&files.path().join(format!("{file}.jsonl"))),
        )
        .await
        .unwrap();
        assert!(report.is_ok(), "{file}: {report}");
        assert_eq!(report.records, 320);
        assert!(report.file_checkpoints > 0, "{file}: {report}");
    }
}

/// The database goes away and comes back (a private cluster: the shared server is never
/// stopped): appends fail with an "unavailable" error meanwhile, nothing half-written is left,
/// and the same log works again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_cleanly_while_the_database_is_down() {
    let cluster = tokio::task::spawn_blocking(PrivateCluster::start)
        .await
        .unwrap();
    let db = Database::open(
        &cluster.url(),
        &PoolSettings {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(2),
        },
    )
    .unwrap();
    db.migrate().await.unwrap();
    let files = tempfile::tempdir().unwrap();
    let settings = AuditSettings {
        checkpoint_interval: Duration::from_secs(3600),
        ..AuditSettings::for_data_dir(files.path())
    };
    let key = SigningKey::load_or_create(&settings.signing_key_path).unwrap();
    let public = key.verifying_key();
    let log = AuditLog::start(db.clone(), key, settings.clone());
    for i in 1..=5 {
        assert_eq!(log.append(record(i)).await.unwrap(), i as u64);
    }
    log.checkpoint_now().await.unwrap();

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop_server();
        cluster
    })
    .await
    .unwrap();
    let results = futures::future::join_all((0..8).map(|i| log.append(record(100 + i)))).await;
    for r in &results {
        let err = r.as_ref().unwrap_err();
        assert!(err.is_unavailable(), "{err}");
    }
    let err = log.checkpoint_now().await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");

    let _cluster = tokio::task::spawn_blocking(move || {
        cluster.start_server();
        cluster
    })
    .await
    .unwrap();
    // The failed appends left nothing: numbering resumes at 6.
    assert_eq!(log.append(record(6)).await.unwrap(), 6);
    log.shutdown().await.unwrap();
    let report = verify(&db, &[public], Some(&settings.checkpoint_file))
        .await
        .unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.records, report.checkpoints), (6, 2));
}

/// The periodic checkpointer signs the head only when it moved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_checkpoints_follow_the_head() {
    let env = Env::new(Backend::Sqlite).await;
    let settings = AuditSettings {
        checkpoint_interval: Duration::from_millis(20),
        ..env.settings()
    };
    let log = AuditLog::start(env.db.clone(), env.key(), settings);
    log.append(record(1)).await.unwrap();
    // Wait (bounded, generously for a loaded CI machine) for the ticker to sign seq 1; no
    // timing is asserted, only the outcome.
    let mut signed = 0i64;
    for _ in 0..6000 {
        signed = with_pool!(&env.db, pool => sqlx::query_scalar(
            "SELECT count(*) FROM audit_checkpoint").fetch_one(pool).await)
        .unwrap();
        if signed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(signed, 1);
    log.shutdown().await.unwrap();
    // The head did not move after that checkpoint: shutdown added none.
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!((report.checkpoints, report.file_checkpoints), (1, 1));
}

async fn missing_checkpoint_file(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    log.append(record(1)).await.unwrap();
    // Nothing signed yet: no file is expected.
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_checkpoint_seq, None);
    log.shutdown().await.unwrap();
    // Signed checkpoints exist but their file is gone: verification cannot vouch for them.
    std::fs::remove_file(env.checkpoint_file()).unwrap();
    let err = verify(&env.db, &env.public_keys(), Some(&env.checkpoint_file()))
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::CheckpointFile { .. }), "{err}");
}
both_backends!(checkpoint_file_absent, missing_checkpoint_file);

async fn rows_outside_the_chain_and_a_missing_head_are_caught(b: Backend) {
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    // A record numbered 0 is outside the walk from 1, but a search by patient would show it.
    env.sql(
        "INSERT INTO audit_record (seq, recorded_at_us, actor_subject, actor_roles, action, \
         object_type, patient_id, outcome, prev_hash, hash) SELECT 0, recorded_at_us, \
         actor_subject, actor_roles, action, object_type, 'pat-x', outcome, prev_hash, hash \
         FROM audit_record WHERE seq = 1",
    )
    .await;
    let report = env.verify().await;
    assert_eq!(
        report.problem,
        Some(Problem::OutsideChain { seq: 0 }),
        "{report}"
    );
    env.sql("DELETE FROM audit_record WHERE seq = 0").await;
    assert!(env.verify().await.is_ok());

    env.sql("DELETE FROM audit_head").await;
    let report = env.verify().await;
    assert_eq!(report.problem, Some(Problem::HeadMissing), "{report}");
}
both_backends!(
    outside_chain_and_head,
    rows_outside_the_chain_and_a_missing_head_are_caught
);

/// Set in the child process of the SIGKILL test: the database URL it appends to.
const CRASH_CHILD_URL: &str = "MEGALIS_AUDIT_CRASH_CHILD_URL";
const CRASH_CHILD_FILES: &str = "MEGALIS_AUDIT_CRASH_CHILD_FILES";

/// Child side: appends from 16 tasks until killed, printing each sequence number once its
/// append has returned (so every printed number was acknowledged).
async fn crash_child(url: String, files: PathBuf) -> ! {
    use std::io::Write;
    let db = Database::open(&url, &PoolSettings::default()).unwrap();
    let settings = AuditSettings {
        checkpoint_interval: Duration::from_millis(50),
        ..AuditSettings::for_data_dir(&files)
    };
    let key = SigningKey::load_or_create(&settings.signing_key_path).unwrap();
    let log = AuditLog::start(db, key, settings);
    for t in 0..16 {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let seq = log.append(record(t * 1_000_000 + i)).await.unwrap();
                let mut out = std::io::stdout().lock();
                writeln!(out, "ack {seq}").unwrap();
                out.flush().unwrap();
            }
        });
    }
    std::future::pending().await
}

/// A writer process is killed with SIGKILL in the middle of a burst of appends: afterwards the
/// trail verifies, every acknowledged record is in it, and appending resumes after it.
async fn acknowledged_appends_survive_sigkill(b: Backend, test_name: &str) {
    use std::io::BufRead;
    if let Ok(url) = std::env::var(CRASH_CHILD_URL) {
        crash_child(url, std::env::var(CRASH_CHILD_FILES).unwrap().into()).await;
    }
    let env = Env::new(b).await;
    let url = match &env.db {
        Database::Sqlite(_) => Database::default_url(env._db_dir.as_ref().unwrap().path()),
        Database::Postgres(pool) => {
            let o = pool.connect_options();
            format!(
                "postgres://{}@{}:{}/{}",
                o.get_username(),
                o.get_host(),
                o.get_port(),
                o.get_database().unwrap()
            )
        }
    };
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture"])
        .env(CRASH_CHILD_URL, &url)
        .env(CRASH_CHILD_FILES, env.files.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acked = tokio::task::spawn_blocking(move || {
        let mut acked = Vec::new();
        let mut lines = std::io::BufReader::new(stdout).lines();
        // Kill after enough acknowledgements (bounded: the child appends without end).
        for line in lines.by_ref() {
            if let Some(seq) = line.unwrap().strip_prefix("ack ") {
                acked.push(seq.parse::<u64>().unwrap());
                if acked.len() == 2_000 {
                    child.kill().unwrap();
                    break;
                }
            }
        }
        // What the child printed before it died was acknowledged too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(seq) = line.strip_prefix("ack ") {
                acked.push(seq.parse::<u64>().unwrap());
            }
        }
        child.wait().unwrap();
        acked
    })
    .await
    .unwrap();

    assert!(
        acked.len() >= 2_000,
        "the writer process stopped by itself after {} appends",
        acked.len()
    );
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    let max_acked = *acked.iter().max().unwrap();
    assert!(
        max_acked <= report.records,
        "acknowledged {max_acked} but the chain holds {} records",
        report.records
    );
    // The chain is gap-free from 1 (verified), so every acknowledged seq is in it.
    let log = env.start();
    assert_eq!(log.append(record(0)).await.unwrap(), report.records + 1);
    log.shutdown().await.unwrap();
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_checkpoint_seq, Some(report.head_seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_sqlite() {
    acknowledged_appends_survive_sigkill(Backend::Sqlite, "sigkill_sqlite").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_postgres() {
    acknowledged_appends_survive_sigkill(Backend::Postgres, "sigkill_postgres").await
}

async fn checkpoint_file_lines_being_written_or_unreadable(b: Backend) {
    use std::io::Write;
    let env = Env::new(b).await;
    let log = env.start();
    chain_of_20(&log).await;
    log.shutdown().await.unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.checkpoint_file())
        .unwrap();
    // A line still being written by a server (no newline yet) is left for the next run.
    f.write_all(b"{\"seq\":2").unwrap();
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.file_checkpoints, 2);
    // Once terminated, a line that is not a checkpoint is reported.
    f.write_all(b"\n").unwrap();
    let report = env.verify().await;
    assert!(
        matches!(
            report.problem,
            Some(Problem::CheckpointFileCorrupt { line: 3, .. })
        ),
        "{report}"
    );
}
both_backends!(
    checkpoint_file_partial_line,
    checkpoint_file_lines_being_written_or_unreadable
);

/// Verification runs while servers keep appending and signing: it must not mistake what was
/// committed after its snapshot (records, checkpoints, checkpoint file lines) for tampering.
async fn verify_while_appending(b: Backend) {
    let env = Env::new(b).await;
    let settings = AuditSettings {
        checkpoint_interval: Duration::from_millis(5),
        ..env.settings()
    };
    let log = AuditLog::start(env.db.clone(), env.key(), settings);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (log, stop) = (log.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0;
                // Bounded: stops when told, or after 100,000 appends at most.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 100_000 {
                    log.append(record(t * 1_000_000 + i)).await.unwrap();
                    i += 1;
                }
            })
        })
        .collect();
    let (keys, file) = (env.public_keys(), env.checkpoint_file());
    for page in [1000, 3, 1000, 3, 1000, 3] {
        // Each run sees its own snapshot, so two runs are not compared with each other.
        let report = verify_with_page_size(&env.db, &keys, Some(&file), page)
            .await
            .unwrap();
        assert!(report.is_ok(), "{report}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    log.shutdown().await.unwrap();
    let report = env.verify().await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.last_checkpoint_seq, Some(report.head_seq));
}
both_backends!(verify_during_appends, verify_while_appending);
