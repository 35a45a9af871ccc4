//! Verification of the whole audit trail: the chain of records, the chain head, the signed
//! checkpoints in the database and those in the checkpoint file.
//!
//! It runs in one read snapshot (a `REPEATABLE READ READ ONLY` transaction on PostgreSQL, a read
//! transaction on SQLite in WAL mode), so it can run while servers keep appending, and reads the
//! records and checkpoints in pages of [`PAGE`] rows, so memory stays bounded however long the
//! chain is. The order of the checks, and so which problem is reported first when there are
//! several:
//!
//! 1. the checkpoints in the database, in the order they were stored: each signature, the link to
//!    the previous checkpoint's signature, increasing sequence numbers;
//! 2. the records in sequence order: no gap, each `prev_hash` equal to the previous `hash`, each
//!    `hash` recomputed from the fields, and at each checkpoint's `seq` the hash it signed;
//! 3. the checkpoints beyond the last record (truncation) and the head row;
//! 4. the checkpoint file, if given: each line's signature, and its presence in the database.

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use megalis_store::Database;
use sqlx::Row;

use crate::checkpoint::{Checkpoint, SignatureCheck, VerifyingKey};
use crate::record::{Actor, AuditRecord, GENESIS_HASH, Hash, Outcome, record_hash};
use crate::{AuditError, Result};

/// Rows read per query.
pub const PAGE: u32 = 1000;

/// The first problem found, with the sequence number it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The stored hash of record `seq` is not the hash of its fields: a field was edited.
    AlteredRecord { seq: u64, reason: String },
    /// Records `from..=to` are missing: deleted.
    MissingRecords { from: u64, to: u64 },
    /// Record `seq` does not link to the record before it: a record was inserted before it, or
    /// the record before it was replaced (and its hash recomputed).
    BrokenLink { seq: u64 },
    /// The chain ends at `last_seq` but a signed checkpoint covers `checkpoint_seq`: the tail
    /// was cut.
    TruncatedByCheckpoint { last_seq: u64, checkpoint_seq: u64 },
    /// The chain ends at `last_seq` but the head says `head_seq`: the tail was cut.
    TruncatedHead { last_seq: u64, head_seq: u64 },
    /// Records exist beyond the head `head_seq`: inserted after it.
    BeyondHead { head_seq: u64, seq: u64 },
    /// The head row's hash is not the last record's.
    HeadMismatch { seq: u64 },
    /// The head row is gone (or its seq is negative).
    HeadMissing,
    /// A record with a sequence number of 0 or less exists: inserted outside the chain, where
    /// a walk from seq 1 would not see it but a search by patient would.
    OutsideChain { seq: i64 },
    /// The chain is self-consistent but its hash at `seq` is not the one a checkpoint signed:
    /// the chain was re-hashed after an edit at or before `seq`.
    Rehashed { seq: u64 },
    /// A checkpoint's signature does not verify (forged or edited checkpoint).
    InvalidSignature { seq: u64, source: CheckpointSource },
    /// A checkpoint names a key that is not among the keys given.
    UnknownKey {
        seq: u64,
        key_id: String,
        source: CheckpointSource,
    },
    /// Checkpoint `seq` does not follow the one stored before it (a checkpoint was deleted or
    /// inserted before it, or they are out of order).
    CheckpointChainBroken { seq: u64 },
    /// A checkpoint of the file is not in the database (the table was wiped or trimmed).
    CheckpointMissingFromDatabase { seq: u64, line: u64 },
    /// A line of the checkpoint file cannot be read.
    CheckpointFileCorrupt { line: u64, reason: String },
}

/// Where a checkpoint was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointSource {
    Database,
    /// Line number (from 1) of the checkpoint file.
    File {
        line: u64,
    },
}

impl fmt::Display for CheckpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointSource::Database => write!(f, "in the database"),
            CheckpointSource::File { line } => write!(f, "in the checkpoint file, line {line}"),
        }
    }
}

impl Problem {
    /// The sequence number the problem is at (for a file line that cannot be read: none).
    pub fn seq(&self) -> Option<u64> {
        use Problem::*;
        match self {
            AlteredRecord { seq, .. }
            | BrokenLink { seq }
            | HeadMismatch { seq }
            | Rehashed { seq }
            | InvalidSignature { seq, .. }
            | UnknownKey { seq, .. }
            | CheckpointChainBroken { seq }
            | CheckpointMissingFromDatabase { seq, .. }
            | BeyondHead { seq, .. } => Some(*seq),
            MissingRecords { from, .. } => Some(*from),
            TruncatedByCheckpoint { last_seq, .. } | TruncatedHead { last_seq, .. } => {
                Some(last_seq + 1)
            }
            CheckpointFileCorrupt { .. } | HeadMissing | OutsideChain { .. } => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            AlteredRecord { seq, reason } => {
                write!(f, "record {seq} was altered: {reason}")
            }
            MissingRecords { from, to } if from == to => {
                write!(f, "record {from} is missing (deleted)")
            }
            MissingRecords { from, to } => {
                write!(f, "records {from} to {to} are missing (deleted)")
            }
            BrokenLink { seq } => write!(
                f,
                "record {seq} does not link to record {}: a record was inserted, or record {} replaced",
                seq - 1,
                seq - 1
            ),
            TruncatedByCheckpoint {
                last_seq,
                checkpoint_seq,
            } => write!(
                f,
                "chain truncated: it ends at record {last_seq} but a signed checkpoint covers record {checkpoint_seq}"
            ),
            TruncatedHead { last_seq, head_seq } => write!(
                f,
                "chain truncated: it ends at record {last_seq} but the head is at {head_seq}"
            ),
            BeyondHead { head_seq, seq } => write!(
                f,
                "record {seq} lies beyond the chain head ({head_seq}): inserted"
            ),
            HeadMismatch { seq } => {
                write!(f, "the chain head's hash is not the hash of record {seq}")
            }
            HeadMissing => write!(f, "the chain head row is missing or invalid"),
            OutsideChain { seq } => write!(
                f,
                "a record with seq {seq} was inserted outside the chain (seqs start at 1)"
            ),
            Rehashed { seq } => write!(
                f,
                "chain re-hashed: the hash of record {seq} differs from the one signed in its checkpoint (records up to {seq} were edited and the chain recomputed)"
            ),
            InvalidSignature { seq, source } => {
                write!(
                    f,
                    "checkpoint at record {seq} {source} has an invalid signature (forged or edited)"
                )
            }
            UnknownKey {
                seq,
                key_id,
                source,
            } => write!(
                f,
                "checkpoint at record {seq} {source} is signed by unknown key {key_id}"
            ),
            CheckpointChainBroken { seq } => write!(
                f,
                "checkpoint at record {seq} does not follow the previous checkpoint: a checkpoint was deleted or inserted"
            ),
            CheckpointMissingFromDatabase { seq, line } => write!(
                f,
                "checkpoint at record {seq} (checkpoint file line {line}) is missing from the database"
            ),
            CheckpointFileCorrupt { line, reason } => {
                write!(f, "checkpoint file line {line} is unreadable: {reason}")
            }
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// Records checked.
    pub records: u64,
    /// Sequence number in the head row.
    pub head_seq: u64,
    /// Checkpoints checked in the database and in the file.
    pub checkpoints: u64,
    pub file_checkpoints: u64,
    /// Sequence number of the last checkpoint in the database: records after it are protected by
    /// the hash chain only (see the crate documentation on the residual window).
    pub last_checkpoint_seq: Option<u64>,
    /// The first problem, or `None` when the trail is intact.
    pub problem: Option<Problem>,
}

impl Report {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Some(p) => write!(f, "audit trail NOT intact: {p}")?,
            None => write!(f, "audit trail intact")?,
        }
        write!(
            f,
            " ({} records checked, head at {}, {} checkpoints in the database, {} in the file",
            self.records, self.head_seq, self.checkpoints, self.file_checkpoints
        )?;
        match self.last_checkpoint_seq {
            Some(s) => write!(
                f,
                ", last signed at record {s}, {} after it unsigned)",
                self.head_seq.saturating_sub(s)
            ),
            None => write!(f, ", no checkpoint yet)"),
        }
    }
}

/// A record row as stored.
struct StoredRecord {
    seq: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    /// The record, or why the stored fields cannot form one (that is an alteration too).
    record: std::result::Result<AuditRecord, String>,
}

fn decode_record<R>(row: &R) -> std::result::Result<StoredRecord, sqlx::Error>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let s = |i: usize| row.try_get::<String, _>(i);
    let o = |i: usize| row.try_get::<Option<String>, _>(i);
    let roles: String = s(5)?;
    let outcome: String = s(11)?;
    let record = match (
        serde_json::from_str::<Vec<String>>(&roles),
        Outcome::parse(&outcome),
    ) {
        (Err(e), _) => Err(format!("actor_roles is not a JSON array of strings: {e}")),
        (_, None) => Err(format!("unknown outcome {outcome:?}")),
        (Ok(roles), Some(outcome)) => Ok(AuditRecord {
            time_us: row.try_get(1)?,
            actor: Actor {
                subject: s(2)?,
                national_id: o(3)?,
                organisation: o(4)?,
                roles,
            },
            action: s(6)?,
            object_type: s(7)?,
            object_id: o(8)?,
            patient_id: o(9)?,
            purpose: o(10)?,
            outcome,
            source_address: o(12)?,
            request_id: o(13)?,
            detail: o(14)?,
        }),
    };
    Ok(StoredRecord {
        seq: row.try_get(0)?,
        prev_hash: row.try_get(15)?,
        hash: row.try_get(16)?,
        record,
    })
}

const RECORD_PAGE_SQL: &str = "SELECT seq, recorded_at_us, actor_subject, actor_national_id, \
     actor_organisation, actor_roles, action, object_type, object_id, patient_id, purpose, \
     outcome, source_address, request_id, detail, prev_hash, hash \
     FROM audit_record WHERE seq > $1 ORDER BY seq LIMIT $2";
const CHECKPOINT_PAGE_SQL: &str = "SELECT id, seq, head_hash, signed_at_us, key_id, \
     prev_signature, signature FROM audit_checkpoint WHERE id > $1 ORDER BY id LIMIT $2";

type CheckpointRow = (i64, i64, Vec<u8>, i64, String, Option<Vec<u8>>, Vec<u8>);

fn checkpoint_from_row(r: CheckpointRow) -> (i64, Checkpoint) {
    let (id, seq, head_hash, signed_at_us, key_id, prev_signature, signature) = r;
    (
        id,
        Checkpoint {
            // A negative seq cannot be signed by us; mapping it to a huge value makes it fail
            // the signature check or the truncation check instead of being skipped.
            seq: seq as u64,
            head_hash,
            signed_at_us,
            key_id,
            prev_signature,
            signature,
        },
    )
}

/// One read snapshot of the database.
enum Snapshot {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

macro_rules! on_snapshot {
    ($s:expr, $c:ident => $body:expr) => {
        match $s {
            Snapshot::Sqlite($c) => $body,
            Snapshot::Postgres($c) => $body,
        }
    };
}

impl Snapshot {
    async fn open(db: &Database) -> Result<Self> {
        Ok(match db {
            Database::Sqlite(pool) => Snapshot::Sqlite(pool.begin().await?),
            Database::Postgres(pool) => Snapshot::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    async fn records_after(&mut self, seq: i64, page: i64) -> Result<Vec<StoredRecord>> {
        on_snapshot!(self, tx => {
            let rows = sqlx::query(RECORD_PAGE_SQL).bind(seq).bind(page)
                .fetch_all(&mut **tx).await?;
            rows.iter().map(decode_record).collect::<std::result::Result<Vec<_>, _>>()
                .map_err(AuditError::from)
        })
    }

    async fn checkpoints_after(&mut self, id: i64, page: i64) -> Result<Vec<(i64, Checkpoint)>> {
        let rows: Vec<CheckpointRow> = on_snapshot!(self, tx =>
            sqlx::query_as(CHECKPOINT_PAGE_SQL).bind(id).bind(page).fetch_all(&mut **tx).await)?;
        Ok(rows.into_iter().map(checkpoint_from_row).collect())
    }

    async fn head(&mut self) -> Result<Option<(i64, Vec<u8>)>> {
        Ok(on_snapshot!(self, tx =>
            sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                .fetch_optional(&mut **tx).await)?)
    }

    /// Whether the snapshot holds exactly this checkpoint.
    async fn has_checkpoint(&mut self, cp: &Checkpoint) -> Result<bool> {
        let found: Option<i64> = on_snapshot!(self, tx => sqlx::query_scalar(FIND_CHECKPOINT_SQL)
            .bind(cp.signature.clone()).bind(cp.seq as i64).bind(cp.head_hash.clone())
            .fetch_optional(&mut **tx).await)?;
        Ok(found.is_some())
    }

    async fn close(self) {
        // Read-only: nothing to keep.
        let _ = on_snapshot!(self, tx => tx.rollback().await);
    }
}

const FIND_CHECKPOINT_SQL: &str =
    "SELECT id FROM audit_checkpoint WHERE signature = $1 AND seq = $2 AND head_hash = $3";

/// Whether the database holds exactly this checkpoint now (outside any snapshot).
async fn checkpoint_exists(db: &Database, cp: &Checkpoint) -> Result<bool> {
    let found: Option<i64> = megalis_store::with_pool!(db, pool => sqlx::query_scalar(
        FIND_CHECKPOINT_SQL)
        .bind(cp.signature.clone()).bind(cp.seq as i64).bind(cp.head_hash.clone())
        .fetch_optional(pool).await)?;
    Ok(found.is_some())
}

/// Pages through the database checkpoints in storage order.
struct CheckpointCursor {
    page_size: i64,
    page: std::collections::VecDeque<(i64, Checkpoint)>,
    last_id: i64,
    done: bool,
}

impl CheckpointCursor {
    fn new(page_size: i64) -> Self {
        CheckpointCursor {
            page_size,
            page: Default::default(),
            last_id: i64::MIN,
            done: false,
        }
    }

    async fn peek(&mut self, snap: &mut Snapshot) -> Result<Option<&Checkpoint>> {
        if self.page.is_empty() && !self.done {
            let rows = snap.checkpoints_after(self.last_id, self.page_size).await?;
            self.done = (rows.len() as i64) < self.page_size;
            if let Some((id, _)) = rows.last() {
                self.last_id = *id;
            }
            self.page.extend(rows);
        }
        Ok(self.page.front().map(|(_, c)| c))
    }

    fn advance(&mut self) {
        self.page.pop_front();
    }
}

fn signature_problem(
    cp: &Checkpoint,
    keys: &[VerifyingKey],
    source: CheckpointSource,
) -> Option<Problem> {
    match cp.check_signature(keys) {
        SignatureCheck::Valid => None,
        SignatureCheck::Invalid => Some(Problem::InvalidSignature {
            seq: cp.seq,
            source,
        }),
        SignatureCheck::UnknownKey => Some(Problem::UnknownKey {
            seq: cp.seq,
            key_id: cp.key_id.clone(),
            source,
        }),
    }
}

/// Checks a record against the one before it; pure.
fn check_record(prev_seq: u64, prev_hash: &Hash, r: &StoredRecord) -> Option<Problem> {
    if r.seq <= 0 {
        return Some(Problem::OutsideChain { seq: r.seq });
    }
    let seq = r.seq as u64;
    if seq != prev_seq + 1 {
        return Some(Problem::MissingRecords {
            from: prev_seq + 1,
            to: seq - 1,
        });
    }
    if r.prev_hash.as_slice() != prev_hash.as_slice() {
        return Some(Problem::BrokenLink { seq });
    }
    match &r.record {
        Err(reason) => Some(Problem::AlteredRecord {
            seq,
            reason: reason.clone(),
        }),
        Ok(rec) => (record_hash(prev_hash, seq, rec).as_slice() != r.hash.as_slice()).then(|| {
            Problem::AlteredRecord {
                seq,
                reason: "stored hash does not match the recomputed hash".into(),
            }
        }),
    }
}

/// Verifies the audit trail in `db` against the checkpoint public keys `keys` (several during a
/// key rotation) and, if given, the checkpoint file. `Err` means verification could not run
/// (database unreachable, checkpoint file unreadable, or absent although the database holds
/// checkpoints); a tampered trail is `Ok` with [`Report::problem`] set.
pub async fn verify(
    db: &Database,
    keys: &[VerifyingKey],
    checkpoint_file: Option<&Path>,
) -> Result<Report> {
    verify_with_page_size(db, keys, checkpoint_file, PAGE).await
}

/// [`verify`] reading `page_size` rows per query (the tests use tiny pages so that every
/// tampering case also crosses page boundaries).
pub async fn verify_with_page_size(
    db: &Database,
    keys: &[VerifyingKey],
    checkpoint_file: Option<&Path>,
    page_size: u32,
) -> Result<Report> {
    let mut snap = Snapshot::open(db).await?;
    let result = verify_in(
        db,
        &mut snap,
        keys,
        checkpoint_file,
        i64::from(page_size.max(1)),
    )
    .await;
    snap.close().await;
    result
}

async fn verify_in(
    db: &Database,
    snap: &mut Snapshot,
    keys: &[VerifyingKey],
    checkpoint_file: Option<&Path>,
    page: i64,
) -> Result<Report> {
    let mut report = Report::default();
    let Some((head_seq, head_hash)) = snap.head().await?.filter(|(s, _)| *s >= 0) else {
        report.problem = Some(Problem::HeadMissing);
        return Ok(report);
    };
    report.head_seq = head_seq as u64;

    // 1. Checkpoints in the database, in storage order.
    let mut cursor = CheckpointCursor::new(page);
    let mut prev: Option<Checkpoint> = None;
    while let Some(cp) = cursor.peek(snap).await? {
        report.checkpoints += 1;
        if let Some(p) = signature_problem(cp, keys, CheckpointSource::Database) {
            report.problem = Some(p);
            return Ok(report);
        }
        let follows = match &prev {
            None => cp.prev_signature.is_none(),
            Some(p) => cp.prev_signature.as_ref() == Some(&p.signature) && cp.seq > p.seq,
        };
        if !follows {
            report.problem = Some(Problem::CheckpointChainBroken { seq: cp.seq });
            return Ok(report);
        }
        prev = Some(cp.clone());
        cursor.advance();
    }
    report.last_checkpoint_seq = prev.map(|c| c.seq);

    // 2. Records, with the checkpoints merged in by seq (step 1 proved their seqs increase).
    let mut cursor = CheckpointCursor::new(page);
    let mut last_seq = 0u64;
    let mut last_hash = GENESIS_HASH;
    // The first page starts below zero so that rows with a seq of 0 or less are seen too.
    let mut after = i64::MIN;
    loop {
        let rows = snap.records_after(after, page).await?;
        let full = rows.len() as i64 == page;
        for r in &rows {
            if let Some(p) = check_record(last_seq, &last_hash, r) {
                report.problem = Some(p);
                return Ok(report);
            }
            report.records += 1;
            last_seq = r.seq as u64;
            after = r.seq;
            last_hash = r
                .hash
                .as_slice()
                .try_into()
                .expect("checked equal to a 32-byte hash");
            while let Some(cp) = cursor.peek(snap).await? {
                if cp.seq > last_seq {
                    break;
                }
                // cp.seq < last_seq cannot happen without a gap, reported above; a checkpoint
                // is only ever taken of a non-empty chain.
                if cp.seq != last_seq || cp.head_hash.as_slice() != last_hash.as_slice() {
                    report.problem = Some(Problem::Rehashed { seq: cp.seq });
                    return Ok(report);
                }
                cursor.advance();
            }
        }
        if !full {
            break;
        }
    }

    // 3. Truncation: signed checkpoints or the head beyond the last record.
    if let Some(cp) = cursor.peek(snap).await? {
        report.problem = Some(Problem::TruncatedByCheckpoint {
            last_seq,
            checkpoint_seq: cp.seq,
        });
        return Ok(report);
    }
    if (head_seq as u64) < last_seq {
        report.problem = Some(Problem::BeyondHead {
            head_seq: head_seq as u64,
            seq: head_seq as u64 + 1,
        });
        return Ok(report);
    }
    if head_seq as u64 > last_seq {
        report.problem = Some(Problem::TruncatedHead {
            last_seq,
            head_seq: head_seq as u64,
        });
        return Ok(report);
    }
    if head_hash.as_slice() != last_hash.as_slice() {
        report.problem = Some(Problem::HeadMismatch { seq: last_seq });
        return Ok(report);
    }

    // 4. The checkpoint file: every line signed by a known key and present in the database.
    if let Some(path) = checkpoint_file {
        let file = match std::fs::File::open(path) {
            Ok(f) => Some(f),
            // Nothing signed yet anywhere (a new installation): there is no file to check.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && report.checkpoints == 0 => None,
            Err(e) => return Err(AuditError::checkpoint_file(path, e)),
        };
        let Some(file) = file else {
            return Ok(report);
        };
        let mut reader = std::io::BufReader::new(file);
        let mut line = String::new();
        let mut line_no = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_line(&mut line)
                .map_err(|e| AuditError::checkpoint_file(path, e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if !line.ends_with('\n') {
                // The last line, without its newline: a server is writing it right now (each
                // line is one append write). The next verification will check it.
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let cp: Checkpoint = match serde_json::from_str(&line) {
                Ok(cp) => cp,
                Err(e) => {
                    report.problem = Some(Problem::CheckpointFileCorrupt {
                        line: line_no,
                        reason: e.to_string(),
                    });
                    return Ok(report);
                }
            };
            report.file_checkpoints += 1;
            if let Some(p) = signature_problem(&cp, keys, CheckpointSource::File { line: line_no })
            {
                report.problem = Some(p);
                return Ok(report);
            }
            // Not in the snapshot: it may have been committed since the snapshot was taken
            // (servers keep signing while we verify), so look again outside the snapshot.
            if !snap.has_checkpoint(&cp).await? && !checkpoint_exists(db, &cp).await? {
                report.problem = Some(Problem::CheckpointMissingFromDatabase {
                    seq: cp.seq,
                    line: line_no,
                });
                return Ok(report);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::chain;

    fn stored(records: &[crate::record::ChainedRecord]) -> Vec<StoredRecord> {
        records
            .iter()
            .map(|c| StoredRecord {
                seq: c.seq as i64,
                prev_hash: c.prev_hash.to_vec(),
                hash: c.hash.to_vec(),
                record: Ok(c.record.clone()),
            })
            .collect()
    }

    fn walk(rows: &[StoredRecord]) -> Option<Problem> {
        let (mut seq, mut hash) = (0, GENESIS_HASH);
        for r in rows {
            if let Some(p) = check_record(seq, &hash, r) {
                return Some(p);
            }
            seq = r.seq as u64;
            hash = r.hash.as_slice().try_into().unwrap();
        }
        None
    }

    fn sample_chain() -> Vec<StoredRecord> {
        let t = AuditRecord::new(Actor::new("u"), "patient.read", "Patient", Outcome::Success);
        stored(&chain(
            0,
            GENESIS_HASH,
            &t.per_patient(["a", "b", "c", "d"]),
        ))
    }

    /// Table of tamperings on an in-memory chain and the problem each must produce.
    #[test]
    fn record_checks_name_the_first_problem() {
        type Tamper = Box<dyn Fn(&mut Vec<StoredRecord>)>;
        let cases: Vec<(&str, Tamper, Option<Problem>)> = vec![
            ("intact", Box::new(|_| {}), None),
            (
                "field edited",
                Box::new(|c| {
                    c[1].record.as_mut().unwrap().patient_id = Some("z".into());
                }),
                Some(Problem::AlteredRecord {
                    seq: 2,
                    reason: "stored hash does not match the recomputed hash".into(),
                }),
            ),
            (
                "undecodable field",
                Box::new(|c| c[2].record = Err("bad".into())),
                Some(Problem::AlteredRecord {
                    seq: 3,
                    reason: "bad".into(),
                }),
            ),
            (
                "deleted",
                Box::new(|c| {
                    c.remove(1);
                }),
                Some(Problem::MissingRecords { from: 2, to: 2 }),
            ),
            (
                "first deleted",
                Box::new(|c| {
                    c.remove(0);
                }),
                Some(Problem::MissingRecords { from: 1, to: 1 }),
            ),
            (
                "record replaced with a consistent hash",
                Box::new(|c| {
                    let r = c[1].record.as_mut().unwrap();
                    r.outcome = Outcome::Denied;
                    let prev: Hash = c[1].prev_hash.as_slice().try_into().unwrap();
                    c[1].hash = record_hash(&prev, 2, c[1].record.as_ref().unwrap()).to_vec();
                }),
                Some(Problem::BrokenLink { seq: 3 }),
            ),
        ];
        for (name, tamper, expected) in cases {
            let mut c = sample_chain();
            tamper(&mut c);
            assert_eq!(walk(&c), expected, "{name}");
        }
    }

    #[test]
    fn report_display_names_the_seq() {
        let r = Report {
            records: 10,
            head_seq: 10,
            problem: Some(Problem::MissingRecords { from: 4, to: 6 }),
            ..Default::default()
        };
        assert_eq!(r.problem.as_ref().unwrap().seq(), Some(4));
        let s = r.to_string();
        assert!(
            s.starts_with("audit trail NOT intact: records 4 to 6 are missing"),
            "{s}"
        );
        let ok = Report {
            records: 3,
            head_seq: 3,
            checkpoints: 1,
            last_checkpoint_seq: Some(2),
            ..Default::default()
        };
        assert!(ok.is_ok());
        assert_eq!(
            ok.to_string(),
            "audit trail intact (3 records checked, head at 3, 1 checkpoints in the database, \
             0 in the file, last signed at record 2, 1 after it unsigned)"
        );
    }
}
