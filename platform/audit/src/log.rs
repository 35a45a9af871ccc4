//! The running audit log: a writer task doing group commit, and a checkpointer task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use megalis_store::Database;
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::checkpoint::{Checkpoint, SigningKey, append_to_file};
use crate::record::AuditRecord;
use crate::{AuditError, AuditSettings, Result, db};

enum Msg {
    /// Records of one caller, written contiguously in one transaction.
    Append {
        records: Vec<AuditRecord>,
        reply: oneshot::Sender<Result<u64>>,
    },
    /// Write everything queued before this message, answer, and stop.
    Flush { reply: oneshot::Sender<()> },
}

/// Figures for the `/metrics` endpoint. Reading them costs a few atomic loads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditMetrics {
    /// Sequence number of the last record (= chain length) as last seen by this process: after
    /// its own commits, and refreshed from the database at each checkpoint tick so that other
    /// replicas' appends show up.
    pub head_seq: u64,
    /// Transactions committed by this process's writer, and the records in them
    /// (records / batches = mean batch size).
    pub batches_committed: u64,
    pub records_committed: u64,
    /// Transactions that failed (every caller in them got the error).
    pub batches_failed: u64,
    /// Largest batch committed so far.
    pub max_batch: u64,
}

#[derive(Default)]
struct Counters {
    head_seq: AtomicU64,
    batches_committed: AtomicU64,
    records_committed: AtomicU64,
    batches_failed: AtomicU64,
    max_batch: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> AuditMetrics {
        AuditMetrics {
            head_seq: self.head_seq.load(Ordering::Relaxed),
            batches_committed: self.batches_committed.load(Ordering::Relaxed),
            records_committed: self.records_committed.load(Ordering::Relaxed),
            batches_failed: self.batches_failed.load(Ordering::Relaxed),
            max_batch: self.max_batch.load(Ordering::Relaxed),
        }
    }
}

/// Signs checkpoints and writes them to the database and the file.
struct Checkpointer {
    db: Database,
    key: SigningKey,
    file: std::path::PathBuf,
    /// Keeps the file in the order the checkpoints were committed, within this process.
    file_lock: Mutex<()>,
    counters: Arc<Counters>,
}

impl Checkpointer {
    async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        let _order = self.file_lock.lock().await;
        // The database copy is committed first: a crash between the two leaves the file one
        // checkpoint short, which verification accepts (the file may hold a subset), whereas a
        // file line without its row would be reported as a deleted checkpoint.
        let Some(cp) = db::checkpoint(&self.db, &self.key).await? else {
            return Ok(None);
        };
        self.counters.head_seq.fetch_max(cp.seq, Ordering::Relaxed);
        let file = self.file.clone();
        let line = cp.clone();
        tokio::task::spawn_blocking(move || append_to_file(&file, &line))
            .await
            .map_err(|e| AuditError::checkpoint_file(&self.file, e))?
            .map_err(|e| AuditError::checkpoint_file(&self.file, e))?;
        tracing::debug!(seq = cp.seq, key_id = %cp.key_id, "audit checkpoint signed");
        Ok(Some(cp))
    }
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    checkpointer: Arc<Checkpointer>,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

/// Handle to the audit log; cheap to clone, one per process.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("metrics", &self.metrics())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer and checkpointer tasks on the current Tokio runtime. The database must
    /// be migrated. Nothing is read from it here, so a server can start while it is down.
    pub fn start(db: Database, key: SigningKey, settings: AuditSettings) -> AuditLog {
        let batch_max = settings.batch_max.max(1);
        let (tx, rx) = mpsc::channel(batch_max * 4);
        let counters = Arc::new(Counters::default());
        let checkpointer = Arc::new(Checkpointer {
            db: db.clone(),
            key,
            file: settings.checkpoint_file.clone(),
            file_lock: Mutex::new(()),
            counters: counters.clone(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let writer = tokio::spawn(writer(db, rx, batch_max, counters.clone()));
        let ticker = tokio::spawn(checkpoint_loop(
            checkpointer.clone(),
            settings.checkpoint_interval,
            stop_rx,
        ));
        AuditLog {
            inner: Arc::new(Inner {
                tx,
                checkpointer,
                counters,
                stop,
                tasks: std::sync::Mutex::new(vec![writer, ticker]),
            }),
        }
    }

    /// Appends one record; returns its sequence number once it is committed.
    ///
    /// Fails, leaving the chain untouched, with [`AuditError::InvalidRecord`] (a NUL character,
    /// an empty subject, action or object type, a field over [`MAX_FIELD_BYTES`]),
    /// [`AuditError::Unavailable`] when the database cannot be reached (answer 503),
    /// [`AuditError::Closed`] after [`AuditLog::shutdown`].
    pub async fn append(&self, record: AuditRecord) -> Result<u64> {
        self.append_all(vec![record]).await
    }

    /// Records one action that touched several patients: one record per patient (the template's
    /// `patient_id` is replaced), all in one transaction and consecutive in the chain. Returns
    /// their sequence numbers, in the order of `patients`.
    pub async fn append_for_patients<I, S>(
        &self,
        template: AuditRecord,
        patients: I,
    ) -> Result<Vec<u64>>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let records = template.per_patient(patients);
        if records.is_empty() {
            return Err(AuditError::InvalidRecord("no patient given".into()));
        }
        let n = records.len() as u64;
        let first = self.append_all(records).await?;
        Ok((first..first + n).collect())
    }

    async fn append_all(&self, records: Vec<AuditRecord>) -> Result<u64> {
        for r in &records {
            validate(r)?;
        }
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(Msg::Append { records, reply })
            .await
            .map_err(|_| AuditError::Closed)?;
        answer.await.map_err(|_| AuditError::Closed)?
    }

    /// Signs the current head now if it moved since the last checkpoint; returns the checkpoint,
    /// or `None` when there was nothing new to sign.
    pub async fn checkpoint_now(&self) -> Result<Option<Checkpoint>> {
        self.inner.checkpointer.checkpoint().await
    }

    /// Writes everything queued, signs a final checkpoint and stops the tasks. Appends made after
    /// this fail with [`AuditError::Closed`]. Returns the final checkpoint, if the head moved.
    pub async fn shutdown(&self) -> Result<Option<Checkpoint>> {
        let (reply, flushed) = oneshot::channel();
        if self.inner.tx.send(Msg::Flush { reply }).await.is_ok() {
            let _ = flushed.await;
        }
        let result = self.checkpoint_now().await;
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        for t in tasks {
            let _ = t.await;
        }
        result
    }

    /// Chain length as last seen by this process (for the `/metrics` gauge; no I/O).
    pub fn head_seq(&self) -> u64 {
        self.inner.counters.head_seq.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> AuditMetrics {
        self.inner.counters.snapshot()
    }
}

/// Largest field (and largest roles list) accepted in a record. Audit records describe actions;
/// bulk content belongs in the documents or blobs they point to.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
const MAX_ROLES: usize = 1024;

/// Refuses what the database would refuse, before it can fail a whole batch of other callers'
/// records (PostgreSQL text cannot hold NUL characters), and sizes that would make one record
/// weigh on every batch.
fn validate(r: &AuditRecord) -> Result<()> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("actor.subject", &r.actor.subject),
        ("action", &r.action),
        ("object_type", &r.object_type),
    ];
    for (name, v) in [
        ("actor.national_id", &r.actor.national_id),
        ("actor.organisation", &r.actor.organisation),
        ("object_id", &r.object_id),
        ("patient_id", &r.patient_id),
        ("purpose", &r.purpose),
        ("source_address", &r.source_address),
        ("request_id", &r.request_id),
        ("detail", &r.detail),
    ] {
        if let Some(v) = v {
            fields.push((name, v));
        }
    }
    fields.extend(
        r.actor
            .roles
            .iter()
            .map(|role| ("actor.roles", role.as_str())),
    );
    if r.actor.roles.len() > MAX_ROLES {
        return Err(AuditError::InvalidRecord(format!(
            "more than {MAX_ROLES} roles"
        )));
    }
    for (name, v) in fields {
        if v.len() > MAX_FIELD_BYTES {
            return Err(AuditError::InvalidRecord(format!(
                "{name} is longer than {MAX_FIELD_BYTES} bytes"
            )));
        }
        if v.contains('\0') {
            return Err(AuditError::InvalidRecord(format!(
                "{name} contains a NUL character"
            )));
        }
    }
    if r.actor.subject.is_empty() || r.action.is_empty() || r.object_type.is_empty() {
        return Err(AuditError::InvalidRecord(
            "actor.subject, action and object_type must not be empty".into(),
        ));
    }
    Ok(())
}

/// The single writer of this process: takes whatever is queued (up to `batch_max` records),
/// commits it in one transaction, answers every caller, and starts over.
async fn writer(db: Database, mut rx: mpsc::Receiver<Msg>, batch_max: usize, c: Arc<Counters>) {
    let mut records: Vec<AuditRecord> = Vec::with_capacity(batch_max);
    let mut callers: Vec<(oneshot::Sender<Result<u64>>, u64)> = Vec::with_capacity(batch_max);
    loop {
        let Some(first) = rx.recv().await else { return };
        let mut flush = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append { records: rs, reply } => {
                    callers.push((reply, rs.len() as u64));
                    records.extend(rs);
                }
                Msg::Flush { reply } => {
                    flush = Some(reply);
                    break;
                }
            }
            if records.len() < batch_max {
                next = rx.try_recv().ok();
            }
        }
        if !records.is_empty() {
            let n = records.len() as u64;
            match db::append_batch(&db, &records).await {
                Ok(first_seq) => {
                    c.head_seq.fetch_max(first_seq + n - 1, Ordering::Relaxed);
                    c.batches_committed.fetch_add(1, Ordering::Relaxed);
                    c.records_committed.fetch_add(n, Ordering::Relaxed);
                    c.max_batch.fetch_max(n, Ordering::Relaxed);
                    let mut seq = first_seq;
                    for (reply, count) in callers.drain(..) {
                        // A caller that gave up waiting still has its record written.
                        let _ = reply.send(Ok(seq));
                        seq += count;
                    }
                }
                Err(e) => {
                    c.batches_failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, records = n, "audit batch failed; nothing of it was written");
                    for (reply, _) in callers.drain(..) {
                        let _ = reply.send(Err(e.clone()));
                    }
                }
            }
            records.clear();
        }
        if let Some(reply) = flush {
            let _ = reply.send(());
            return;
        }
    }
}

/// Signs the head every `interval` when it moved, until told to stop.
async fn checkpoint_loop(
    cp: Arc<Checkpointer>,
    interval: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    // The first tick comes one interval after start, not at once: records a crashed process
    // left unsigned are signed then, and a start does not race the first appends.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The gauge starts from the stored head, not from zero, after a restart.
    if let Ok((seq, _)) = db::read_head(&cp.db).await {
        cp.counters.head_seq.fetch_max(seq, Ordering::Relaxed);
    }
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // Stop asked, or every handle dropped.
            _ = stop.changed() => return,
        }
        // Other replicas append too: refresh the gauge from the database.
        if let Ok((seq, _)) = db::read_head(&cp.db).await {
            cp.counters.head_seq.fetch_max(seq, Ordering::Relaxed);
        }
        if let Err(e) = cp.checkpoint().await {
            tracing::warn!(error = %e, "audit checkpoint failed; will retry at the next tick");
        }
    }
}
