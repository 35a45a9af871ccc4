//! The platform's event log (table `platform_event`): the core's events and plugins' own, read
//! by cursor. The SQL lives here once because three contexts write it (the identity index, the
//! documents and the plugin host) and one ordering rule must hold for all of them.
//!
//! Ordering: a reader keeps the id of the last event it handled and asks for the ones after it.
//! On PostgreSQL ids come from a sequence, and two transactions may commit in the opposite order
//! of their ids; a reader would then step past the smaller id before it is visible, and never see
//! it. Every writer therefore takes [`PG_ORDER_LOCK`] (transaction-scoped) just before inserting,
//! so the next id is taken only once the previous writer has committed. Writers insert their
//! event last in their transaction, which keeps the lock short.

use crate::{Database, StoreError, with_pool};

/// A document was deposited (or replaced one) in the shared record.
pub const DOCUMENT_SHARED: &str = "core.document.shared";
/// Two regional patient ids were merged; the payload names the survivor and the merged id.
pub const PATIENT_MERGED: &str = "core.patient.merged";

/// A merge was undone; the payload names the survivor and the restored id.
pub const PATIENT_UNMERGED: &str = "core.patient.unmerged";

/// Serialises event writers on PostgreSQL (see the module documentation); SQLite has one
/// writer at a time already.
pub const PG_ORDER_LOCK: &str = "SELECT pg_advisory_xact_lock(7235001)";

/// The insert, in the SQL both dialects accept; binds topic, patient, payload, time (µs).
pub const INSERT: &str = "INSERT INTO platform_event (topic, patient_id, payload, published_at_us) \
                          VALUES ($1, $2, $3, $4) RETURNING id";

/// One event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub topic: String,
    pub patient_id: Option<String>,
    pub payload: String,
    pub published_at_us: i64,
}

/// Appending an event inside a transaction the caller commits (the identity index's merge, the
/// documents' provide), with the ordering rule of the backend applied here, once.
pub trait AppendEvent: Send {
    /// Appends the event; call it last in the transaction (on PostgreSQL it takes the ordering
    /// lock, held until commit). Returns the event id.
    fn append_event(
        &mut self,
        topic: &str,
        patient: Option<&str>,
        payload: &str,
        now_us: i64,
    ) -> impl std::future::Future<Output = Result<i64, sqlx::Error>> + Send;
}

impl AppendEvent for sqlx::Transaction<'_, sqlx::Sqlite> {
    async fn append_event(
        &mut self,
        topic: &str,
        patient: Option<&str>,
        payload: &str,
        now_us: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(INSERT)
            .bind(topic)
            .bind(patient)
            .bind(payload)
            .bind(now_us)
            .fetch_one(&mut **self)
            .await
    }
}

impl AppendEvent for sqlx::Transaction<'_, sqlx::Postgres> {
    async fn append_event(
        &mut self,
        topic: &str,
        patient: Option<&str>,
        payload: &str,
        now_us: i64,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query(PG_ORDER_LOCK).execute(&mut **self).await?;
        sqlx::query_scalar(INSERT)
            .bind(topic)
            .bind(patient)
            .bind(payload)
            .bind(now_us)
            .fetch_one(&mut **self)
            .await
    }
}

/// Appends one event in its own transaction; returns its id.
pub async fn publish(
    db: &Database,
    topic: &str,
    patient: Option<&str>,
    payload: &str,
    now_us: i64,
) -> Result<i64, StoreError> {
    let id = match db {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin().await?;
            let id = tx.append_event(topic, patient, payload, now_us).await?;
            tx.commit().await?;
            id
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let id = tx.append_event(topic, patient, payload, now_us).await?;
            tx.commit().await?;
            id
        }
    };
    Ok(id)
}

/// Events of `topic` after `after`, oldest first, at most `limit`.
pub async fn poll(
    db: &Database,
    topic: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    let rows: Vec<(i64, String, Option<String>, String, i64)> = with_pool!(db, pool =>
        sqlx::query_as(
            "SELECT id, topic, patient_id, payload, published_at_us FROM platform_event \
             WHERE topic = $1 AND id > $2 ORDER BY id LIMIT $3")
        .bind(topic).bind(after).bind(limit).fetch_all(pool).await)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, topic, patient_id, payload, published_at_us)| EventRow {
                id,
                topic,
                patient_id,
                payload,
                published_at_us,
            },
        )
        .collect())
}
