//! The SQL of the documents context, written once for both backends: writes go through
//! [`DocTx`], implemented by a macro for the SQLite and the PostgreSQL transaction; reads and the
//! ITI-67 search run on the pool through `with_pool!`.

use megalis_store::{Database, with_pool};

use crate::DocumentError;
use crate::datetime::{DateCondition, DatePrefix};
use crate::fhir::{DocumentQuery, Filters};
use crate::model::{Binary, DocumentEntry, LOINC, Metadata, Status};

type Result<T> = std::result::Result<T, DocumentError>;

/// Columns of `document_binary` as read.
type BinaryRow = (String, String, String, i64, String, String, i64);

fn binary_from_row(
    (id, sha256, sha1, size, content_type, uploaded_by, created): BinaryRow,
) -> Result<Binary> {
    Ok(Binary {
        id,
        sha256: sha256
            .parse()
            .map_err(|_| DocumentError::Corrupt(format!("binary sha256 {sha256:?}")))?,
        sha1,
        size: size as u64,
        content_type,
        uploaded_by,
        created_at_us: created,
    })
}

const BINARY_COLUMNS: &str = "id, sha256, sha1, size, content_type, uploaded_by, created_at_us";

/// Columns of `document_entry` needed to rebuild an entry.
type EntryRow = (String, String, String, String, String, i64, i64);

const ENTRY_COLUMNS: &str =
    "id, patient_id, status, entry, created_by, created_at_us, updated_at_us";

fn entry_from_row(
    (id, patient_id, status, entry, created_by, created, updated): EntryRow,
) -> Result<DocumentEntry> {
    let status = Status::parse(&status)
        .ok_or_else(|| DocumentError::Corrupt(format!("document {id}: status {status:?}")))?;
    let metadata: Metadata = serde_json::from_str(&entry)
        .map_err(|e| DocumentError::Corrupt(format!("document {id}: {e}")))?;
    Ok(DocumentEntry {
        id,
        patient_id,
        status,
        metadata,
        created_by,
        created_at_us: created,
        updated_at_us: updated,
    })
}

/// Patient and status of a document, as a writer checks them.
pub(crate) struct Head {
    pub patient_id: String,
    pub status: Status,
}

pub(crate) trait DocTx: Send {
    fn binary(
        &mut self,
        id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Binary>>> + Send;
    fn insert_binary(&mut self, b: &Binary)
    -> impl std::future::Future<Output = Result<()>> + Send;
    fn head(&mut self, id: &str) -> impl std::future::Future<Output = Result<Option<Head>>> + Send;
    /// The id of the document holding this master identifier, if any.
    fn master_identifier(
        &mut self,
        value: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>>> + Send;
    fn insert_entry(
        &mut self,
        e: &DocumentEntry,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Appends an event to the platform's event log in this transaction; call it last (it
    /// serialises event writers until commit on PostgreSQL).
    fn publish_event(
        &mut self,
        topic: &str,
        patient: Option<&str>,
        payload: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Moves a document from status `from` to `to`; `false` if it was not in `from` (a
    /// concurrent writer got there first).
    fn set_status(
        &mut self,
        id: &str,
        from: Status,
        to: Status,
        now: i64,
    ) -> impl std::future::Future<Output = Result<bool>> + Send;
}

macro_rules! impl_doc_tx {
    ($db:ty) => {
        impl<'t> DocTx for sqlx::Transaction<'t, $db> {
            async fn binary(&mut self, id: &str) -> Result<Option<Binary>> {
                let row: Option<BinaryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {BINARY_COLUMNS} FROM document_binary WHERE id = $1"
                )))
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                row.map(binary_from_row).transpose()
            }

            async fn insert_binary(&mut self, b: &Binary) -> Result<()> {
                sqlx::query(
                    "INSERT INTO document_binary (id, sha256, sha1, size, content_type, uploaded_by, created_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&b.id)
                .bind(b.sha256.to_hex())
                .bind(&b.sha1)
                .bind(b.size as i64)
                .bind(&b.content_type)
                .bind(&b.uploaded_by)
                .bind(b.created_at_us)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn head(&mut self, id: &str) -> Result<Option<Head>> {
                let row: Option<(String, String)> = sqlx::query_as(
                    "SELECT patient_id, status FROM document_entry WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                row.map(|(patient_id, status)| {
                    let status = Status::parse(&status).ok_or_else(|| {
                        DocumentError::Corrupt(format!("document {id}: status {status:?}"))
                    })?;
                    Ok(Head { patient_id, status })
                })
                .transpose()
            }

            async fn master_identifier(&mut self, value: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM document_entry WHERE master_identifier = $1",
                )
                .bind(value)
                .fetch_optional(&mut **self)
                .await?)
            }

            async fn insert_entry(&mut self, e: &DocumentEntry) -> Result<()> {
                let m = &e.metadata;
                let entry = serde_json::to_string(m).expect("document metadata serialises");
                sqlx::query(
                    "INSERT INTO document_entry (id, patient_id, master_identifier, status, type_code, \
                     category_system, category_code, author_national_id, date_us, period_start_us, \
                     period_end_us, binary_id, replaces, entry, created_by, created_at_us, updated_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                )
                .bind(&e.id)
                .bind(&e.patient_id)
                .bind(&m.master_identifier)
                .bind(e.status.as_str())
                .bind(&m.doc_type.code)
                .bind(m.category.as_ref().map(|c| c.system.as_str()))
                .bind(m.category.as_ref().map(|c| c.code.as_str()))
                .bind(m.author.as_ref().map(|a| a.national_id.as_str()))
                .bind(m.date.start_us())
                .bind(m.period_start.as_ref().map(|p| p.start_us()))
                .bind(m.period_end.as_ref().map(|p| p.end_us()))
                .bind(&m.content.binary_id)
                .bind(m.replaces.as_deref())
                .bind(entry)
                .bind(&e.created_by)
                .bind(e.created_at_us)
                .bind(e.updated_at_us)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn publish_event(&mut self, topic: &str, patient: Option<&str>, payload: &str, now: i64) -> Result<()> {
                use megalis_store::events::AppendEvent as _;
                self.append_event(topic, patient, payload, now).await?;
                Ok(())
            }

            async fn set_status(&mut self, id: &str, from: Status, to: Status, now: i64) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE document_entry SET status = $1, updated_at_us = $2 \
                     WHERE id = $3 AND status = $4",
                )
                .bind(to.as_str())
                .bind(now)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut **self)
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_doc_tx!(sqlx::Sqlite);
impl_doc_tx!(sqlx::Postgres);

/// Runs `$body` in one transaction on either backend and commits it; evaluates to
/// `Result<T, DocumentError>` where `$body` evaluates to `T`. The body runs inside an async
/// block, so its `?` and `return Err(…)` leave the block, not the caller: the transaction is
/// dropped uncommitted (rolled back) and the error is the macro's value.
macro_rules! in_tx {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            megalis_store::Database::Sqlite(pool) => {
                async {
                    // Take the write lock at BEGIN: a deferred transaction that reads, then
                    // writes, could fail with SQLITE_BUSY at the upgrade instead of waiting.
                    let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    let out = $body;
                    $tx.commit().await?;
                    Ok::<_, $crate::DocumentError>(out)
                }
                .await
            }
            megalis_store::Database::Postgres(pool) => {
                async {
                    let mut $tx = pool.begin().await?;
                    let out = $body;
                    $tx.commit().await?;
                    Ok::<_, $crate::DocumentError>(out)
                }
                .await
            }
        }
    };
}
pub(crate) use in_tx;

pub(crate) async fn binary(db: &Database, id: &str) -> Result<Option<Binary>> {
    let sql = format!("SELECT {BINARY_COLUMNS} FROM document_binary WHERE id = $1");
    let row: Option<BinaryRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id).fetch_optional(pool).await)?;
    row.map(binary_from_row).transpose()
}

pub(crate) async fn document(db: &Database, id: &str) -> Result<Option<DocumentEntry>> {
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM document_entry WHERE id = $1");
    let row: Option<EntryRow> = with_pool!(db, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id).fetch_optional(pool).await)?;
    row.map(entry_from_row).transpose()
}

/// The patients whose documents use a Binary, and the ids of those documents.
pub(crate) async fn binary_users(db: &Database, binary_id: &str) -> Result<Vec<(String, String)>> {
    Ok(with_pool!(db, pool => sqlx::query_as(
        "SELECT id, patient_id FROM document_entry WHERE binary_id = $1 ORDER BY id")
        .bind(binary_id).fetch_all(pool).await)?)
}

/// The id of the document that replaced `id`, if any.
pub(crate) async fn replaced_by(db: &Database, id: &str) -> Result<Option<String>> {
    Ok(with_pool!(db, pool => sqlx::query_scalar(
        "SELECT id FROM document_entry WHERE replaces = $1 ORDER BY created_at_us DESC, id LIMIT 1")
        .bind(id).fetch_optional(pool).await)?)
}

/// ` AND <condition>` for one date condition on the target range `[$t0, $t1)`, the SQL twin of
/// [`DateCondition::matches`].
macro_rules! push_range {
    ($qb:expr, $t0:literal, $t1:literal, $c:expr) => {{
        let c: &DateCondition = $c;
        let (s0, s1) = (c.value.start_us(), c.value.end_us());
        let qb = &mut *$qb;
        match c.prefix {
            DatePrefix::Eq | DatePrefix::Ne => {
                qb.push(if c.prefix == DatePrefix::Eq {
                    " AND ("
                } else {
                    " AND NOT ("
                });
                qb.push(concat!($t0, " >= "));
                qb.push_bind(s0);
                qb.push(concat!(" AND ", $t1, " <= "));
                qb.push_bind(s1);
                qb.push(")");
            }
            DatePrefix::Gt => {
                qb.push(concat!(" AND ", $t1, " > "));
                qb.push_bind(s1);
            }
            DatePrefix::Lt => {
                qb.push(concat!(" AND ", $t0, " < "));
                qb.push_bind(s0);
            }
            DatePrefix::Ge => {
                qb.push(concat!(" AND ", $t1, " > "));
                qb.push_bind(s0);
            }
            DatePrefix::Le => {
                qb.push(concat!(" AND ", $t0, " < "));
                qb.push_bind(s1);
            }
            DatePrefix::Sa => {
                qb.push(concat!(" AND ", $t0, " >= "));
                qb.push_bind(s1);
            }
            DatePrefix::Eb => {
                qb.push(concat!(" AND ", $t1, " <= "));
                qb.push_bind(s0);
            }
        }
    }};
}

/// Appends ` AND …` conditions for the filters. A macro so that one text serves both
/// `QueryBuilder<Sqlite>` and `QueryBuilder<Postgres>`.
macro_rules! push_filters {
    ($qb:expr, $q:expr) => {{
        let qb = $qb;
        let q: &DocumentQuery = $q;
        qb.push(" WHERE patient_id = ");
        qb.push_bind(q.patient_id.clone());
        let f: &Filters = &q.filters;
        for group in &f.status {
            qb.push(" AND status IN (");
            let mut sep = qb.separated(", ");
            for s in group {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
        }
        for group in &f.doc_type {
            // Types are LOINC codes: a token of another system matches nothing, a LOINC token
            // without code matches everything.
            let any_system = group
                .iter()
                .any(|t| t.code.is_none() && t.system.as_deref() == Some(LOINC));
            if !any_system {
                let codes: Vec<&String> = group
                    .iter()
                    .filter(|t| t.system.as_deref().is_none_or(|s| s == LOINC))
                    .filter_map(|t| t.code.as_ref())
                    .collect();
                if codes.is_empty() {
                    qb.push(" AND 1 = 0");
                } else {
                    qb.push(" AND type_code IN (");
                    let mut sep = qb.separated(", ");
                    for c in codes {
                        sep.push_bind(c.clone());
                    }
                    qb.push(")");
                }
            }
        }
        for group in &f.category {
            qb.push(" AND (");
            for (i, t) in group.iter().enumerate() {
                if i > 0 {
                    qb.push(" OR ");
                }
                qb.push("(1 = 1");
                if let Some(system) = &t.system {
                    qb.push(" AND category_system = ");
                    qb.push_bind(system.clone());
                }
                if let Some(code) = &t.code {
                    qb.push(" AND category_code = ");
                    qb.push_bind(code.clone());
                } else {
                    qb.push(" AND category_code IS NOT NULL");
                }
                qb.push(")");
            }
            qb.push(")");
        }
        for group in &f.author {
            qb.push(" AND author_national_id IN (");
            let mut sep = qb.separated(", ");
            for a in group {
                sep.push_bind(a.clone());
            }
            qb.push(")");
        }
        for c in &f.date {
            // The date is an instant: the range [date_us, date_us + 1).
            push_range!(qb, "date_us", "(date_us + 1)", c);
        }
        for c in &f.period {
            // A document without a period does not match a period condition; an open end is
            // unbounded on that side.
            qb.push(" AND (period_start_us IS NOT NULL OR period_end_us IS NOT NULL)");
            push_range!(
                qb,
                "COALESCE(period_start_us, -9223372036854775807)",
                "COALESCE(period_end_us, 9223372036854775807)",
                c
            );
        }
    }};
}

/// ITI-67: one page of a patient's documents in (date desc, id) order, and the total count.
pub(crate) async fn find(db: &Database, q: &DocumentQuery) -> Result<(u64, Vec<DocumentEntry>)> {
    let (total, rows): (i64, Vec<EntryRow>) = with_pool!(db, pool => {
        let mut count = sqlx::QueryBuilder::new("SELECT count(*) FROM document_entry");
        push_filters!(&mut count, q);
        let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
        let rows = if q.count == 0 || q.offset >= total as u64 {
            Vec::new()
        } else {
            let mut page = sqlx::QueryBuilder::new(format!("SELECT {ENTRY_COLUMNS} FROM document_entry"));
            push_filters!(&mut page, q);
            page.push(" ORDER BY date_us DESC, id LIMIT ");
            page.push_bind(i64::from(q.count));
            page.push(" OFFSET ");
            page.push_bind(q.offset as i64);
            page.build_query_as().fetch_all(pool).await?
        };
        Ok::<_, sqlx::Error>((total, rows))
    })?;
    let entries = rows
        .into_iter()
        .map(entry_from_row)
        .collect::<Result<Vec<_>>>()?;
    Ok((total as u64, entries))
}
