//! The tamper-evident audit trail of Megalis.
//!
//! Every access to patient data, every authentication and every administrative change is written
//! here through one call, [`AuditLog::append`] (or [`AuditLog::append_for_patients`] when one
//! action touches several patients: one record per patient).
//!
//! # How tampering is made evident
//!
//! * **Hash chain.** Record `N` stores `hash(N) = SHA-256(hash(N-1) ‖ E(N))`, where `E` is the
//!   canonical, length-prefixed encoding of `N` and every field, documented in [`record`]. Editing
//!   a field, deleting or inserting a record breaks the chain at that point.
//! * **Signed checkpoints.** Someone able to rewrite the database could recompute every hash
//!   after an edit, or cut the tail of the chain and move the head back. So the head
//!   `(seq, hash)` is signed with an Ed25519 key that lives outside the database (a file, or a
//!   mounted Secret), periodically when the head moved and at shutdown ([`checkpoint`] documents
//!   the signed bytes). Each checkpoint also signs the previous checkpoint's signature, is stored in
//!   `audit_checkpoint`, and is appended to a JSON-lines file outside the database, so wiping or
//!   trimming the checkpoint table is caught too.
//! * **Verification.** [`verify()`] re-walks the chain and the checkpoints and names the first
//!   problem and its sequence number.
//!
//! **Residual window.** Records appended after the last checkpoint are protected by the hash
//! chain only: someone with write access to the database (but not to the signing key or the
//! checkpoint file) can delete or rewrite *those* records, and move the head back, without
//! [`verify()`] noticing. The window is at most one checkpoint interval plus the time to write the
//! checkpoint (10 s by default), and a clean shutdown closes it with a final checkpoint. A crash
//! leaves the records since the last checkpoint in that window until the next start checkpoints
//! them. Records are also not individually signed: an attacker with database access may *append*
//! well-formed records at the end; they become covered by the next checkpoint like any other.
//!
//! # Durability and concurrency
//!
//! [`AuditLog::append`] answers only after the transaction holding the record has committed
//! (SQLite in WAL mode with `synchronous=FULL`; PostgreSQL with its default synchronous commit).
//! One writer task per process drains a channel and commits up to
//! [`AuditSettings::batch_max`] records per transaction (group commit). The chain head lives in
//! the database (`audit_head`, one row) and is locked there for every batch (`SELECT … FOR
//! UPDATE` on PostgreSQL, a `BEGIN IMMEDIATE` write transaction on SQLite), so several server
//! replicas sharing one PostgreSQL database interleave into one chain. A batch that fails is
//! rolled back as a whole: every caller in it gets the error and nothing of it is in the chain.
//! One case is ambiguous, as with any database: if the connection dies while `COMMIT` is in
//! flight, the caller gets an error although the records may have been committed (never the
//! reverse: an acknowledged record is always committed).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub mod checkpoint;
mod db;
mod log;
pub mod record;
pub mod verify;

pub use checkpoint::{Checkpoint, SigningKey, VerifyingKey};
pub use log::{AuditLog, AuditMetrics, MAX_FIELD_BYTES};
pub use record::{Actor, AuditRecord, Outcome};
pub use verify::{Problem, Report, verify};

/// The one error type of the audit crate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The database cannot be reached: the caller should fail the request (503) and retry later.
    #[error("audit database unavailable: {0}")]
    Unavailable(#[source] Arc<sqlx::Error>),
    #[error("audit database error: {0}")]
    Database(#[source] Arc<sqlx::Error>),
    /// The stored chain head is unusable (not 32 bytes, negative seq): the database was damaged.
    #[error("audit chain head is corrupt: {0}")]
    CorruptHead(String),
    #[error("the audit log is shut down")]
    Closed,
    #[error("invalid audit record: {0}")]
    InvalidRecord(String),
    #[error("invalid key: {0}")]
    InvalidKey(String),
    #[error("audit signing key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("audit checkpoint file {path}: {reason}")]
    CheckpointFile { path: PathBuf, reason: String },
}

impl AuditError {
    /// True when the database could not be reached (answer 503, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, AuditError::Unavailable(_))
    }

    fn key_file(path: &Path, e: std::io::Error) -> Self {
        AuditError::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    }

    fn checkpoint_file(path: &Path, reason: impl ToString) -> Self {
        AuditError::CheckpointFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

impl From<sqlx::Error> for AuditError {
    fn from(e: sqlx::Error) -> Self {
        if megalis_store::is_connection_error(&e) {
            AuditError::Unavailable(Arc::new(e))
        } else {
            AuditError::Database(Arc::new(e))
        }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// Settings of the audit log (config section `audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// How often the head is signed when it moved.
    pub checkpoint_interval: Duration,
    /// Most records written in one transaction (a single multi-patient append may exceed it:
    /// its records always go in one transaction together).
    pub batch_max: usize,
    /// PKCS#8 Ed25519 key signing the checkpoints; created (mode 0600) if absent.
    pub signing_key_path: PathBuf,
    /// JSON-lines copy of every checkpoint this process signs, outside the database.
    pub checkpoint_file: PathBuf,
}

impl AuditSettings {
    /// Defaults for a data directory: `<data_dir>/audit-signing-key.pk8`,
    /// `<data_dir>/audit-checkpoints.jsonl`, a checkpoint every 10 s, batches of up to 512.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        AuditSettings {
            checkpoint_interval: Duration::from_secs(10),
            batch_max: 512,
            signing_key_path: data_dir.join("audit-signing-key.pk8"),
            checkpoint_file: data_dir.join("audit-checkpoints.jsonl"),
        }
    }
}
