//! SQL of the audit log. Each function is written once and run on either backend: the body is a
//! macro expanded with the SQLite and with the PostgreSQL transaction, as `with_pool!` does.

use megalis_store::Database;

use crate::checkpoint::{Checkpoint, SigningKey};
use crate::record::{AuditRecord, ChainedRecord, Hash, chain, now_us};
use crate::{AuditError, Result};

/// Rows per INSERT statement: 17 parameters each stays under SQLite's 32,766 and PostgreSQL's
/// 65,535 bind parameters.
const INSERT_CHUNK: usize = 256;

/// On SQLite, take the write lock when the transaction starts: a deferred transaction that reads
/// the head and then writes could fail with SQLITE_BUSY at the upgrade instead of waiting.
const SQLITE_BEGIN_WRITE: &str = "BEGIN IMMEDIATE";
const SQLITE_LOCK_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
/// On PostgreSQL the row lock serialises the writers of every replica on the head.
const PG_LOCK_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";

fn parse_head(seq: i64, hash: Vec<u8>) -> Result<(u64, Hash)> {
    let seq = u64::try_from(seq).map_err(|_| AuditError::CorruptHead(format!("seq {seq}")))?;
    let hash: Hash = hash
        .try_into()
        .map_err(|h: Vec<u8>| AuditError::CorruptHead(format!("hash of {} bytes", h.len())))?;
    Ok((seq, hash))
}

macro_rules! append_in_tx {
    ($tx:ident, $lock:expr, $records:expr) => {{
        let (seq, hash): (i64, Vec<u8>) = sqlx::query_as($lock).fetch_one(&mut *$tx).await?;
        let (head_seq, head_hash) = parse_head(seq, hash)?;
        let chained = chain(head_seq, head_hash, $records);
        for rows in chained.chunks(INSERT_CHUNK) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO audit_record (seq, recorded_at_us, actor_subject, actor_national_id, \
                 actor_organisation, actor_roles, action, object_type, object_id, patient_id, \
                 purpose, outcome, source_address, request_id, detail, prev_hash, hash) ",
            );
            qb.push_values(rows, |mut b, c: &ChainedRecord| {
                let r = &c.record;
                b.push_bind(c.seq as i64)
                    .push_bind(r.time_us)
                    .push_bind(r.actor.subject.clone())
                    .push_bind(r.actor.national_id.clone())
                    .push_bind(r.actor.organisation.clone())
                    .push_bind(roles_json(&r.actor.roles))
                    .push_bind(r.action.clone())
                    .push_bind(r.object_type.clone())
                    .push_bind(r.object_id.clone())
                    .push_bind(r.patient_id.clone())
                    .push_bind(r.purpose.clone())
                    .push_bind(r.outcome.as_str())
                    .push_bind(r.source_address.clone())
                    .push_bind(r.request_id.clone())
                    .push_bind(r.detail.clone())
                    .push_bind(c.prev_hash.to_vec())
                    .push_bind(c.hash.to_vec());
            });
            qb.build().execute(&mut *$tx).await?;
        }
        let last = chained.last().expect("a batch is never empty");
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
            .bind(last.seq as i64)
            .bind(last.hash.to_vec())
            .execute(&mut *$tx)
            .await?;
        $tx.commit().await?;
        Ok(head_seq + 1)
    }};
}

/// The stored form of the roles: a JSON array of strings (order kept, as it is hashed).
pub(crate) fn roles_json(roles: &[String]) -> String {
    serde_json::to_string(roles).expect("strings serialise")
}

/// Chains `records` after the current head and commits them in one transaction; returns the
/// sequence number of the first.
pub(crate) async fn append_batch(db: &Database, records: &[AuditRecord]) -> Result<u64> {
    debug_assert!(!records.is_empty());
    match db {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_with(SQLITE_BEGIN_WRITE).await?;
            append_in_tx!(tx, SQLITE_LOCK_HEAD, records)
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            append_in_tx!(tx, PG_LOCK_HEAD, records)
        }
    }
}

/// The committed head `(seq, hash)`, without locking.
pub(crate) async fn read_head(db: &Database) -> Result<(u64, Hash)> {
    let (seq, hash): (i64, Vec<u8>) = megalis_store::with_pool!(db, pool =>
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1").fetch_one(pool).await)?;
    parse_head(seq, hash)
}

macro_rules! checkpoint_in_tx {
    ($tx:ident, $lock:expr, $key:expr) => {{
        let (seq, hash): (i64, Vec<u8>) = sqlx::query_as($lock).fetch_one(&mut *$tx).await?;
        let (head_seq, head_hash) = parse_head(seq, hash)?;
        let last: Option<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, signature FROM audit_checkpoint ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&mut *$tx)
        .await?;
        let last_seq = last.as_ref().map_or(0, |(s, _)| *s);
        if (head_seq as i64) <= last_seq {
            if (head_seq as i64) < last_seq {
                // Never sign a head behind a signed one: that would bless a truncation.
                tracing::error!(head_seq, last_checkpoint_seq = last_seq,
                    "audit chain head is behind the last checkpoint; not signing (run `megalis audit verify`)");
            }
            $tx.rollback().await?;
            return Ok(None);
        }
        let cp = $key.sign(head_seq, &head_hash, now_us(), last.map(|(_, s)| s));
        sqlx::query(
            "INSERT INTO audit_checkpoint (seq, head_hash, signed_at_us, key_id, prev_signature, signature) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(cp.seq as i64)
        .bind(cp.head_hash.clone())
        .bind(cp.signed_at_us)
        .bind(cp.key_id.clone())
        .bind(cp.prev_signature.clone())
        .bind(cp.signature.clone())
        .execute(&mut *$tx)
        .await?;
        $tx.commit().await?;
        Ok(Some(cp))
    }};
}

/// Signs the current head if it moved since the last checkpoint (of any replica) and stores the
/// checkpoint, all under the head lock so that checkpoints form one chain.
pub(crate) async fn checkpoint(db: &Database, key: &SigningKey) -> Result<Option<Checkpoint>> {
    match db {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_with(SQLITE_BEGIN_WRITE).await?;
            checkpoint_in_tx!(tx, SQLITE_LOCK_HEAD, key)
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            checkpoint_in_tx!(tx, PG_LOCK_HEAD, key)
        }
    }
}
