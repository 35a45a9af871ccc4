//! Read-only views for the people who look after identities (the portal's patient and review
//! pages): the merges a patient took part in, one review task whatever its state, the versions
//! of a source record with their dates. Nothing here changes the index; decisions go through
//! [`PatientIndex::resolve_review`], [`PatientIndex::merge`] and [`PatientIndex::unmerge`],
//! which audit them.

use megalis_identity::{SourceId, SourceRecord};
use serde::Serialize;

use crate::{IndexError, PatientIndex, Result, ReviewColumns, ReviewTask, parse_record};

/// A merge of two regional patients, as stored with what is needed to undo it.
#[derive(Debug, Clone, Serialize)]
pub struct MergeEntry {
    pub id: i64,
    pub survivor: String,
    pub merged: String,
    /// The source records that moved from `merged` to `survivor`.
    pub moved: Vec<SourceId>,
    pub merged_at_us: i64,
    pub merged_by: String,
    pub unmerged_at_us: Option<i64>,
    pub unmerged_by: Option<String>,
}

impl MergeEntry {
    pub fn is_undone(&self) -> bool {
        self.unmerged_at_us.is_some()
    }
}

/// One version of a source record.
#[derive(Debug, Clone, Serialize)]
pub struct SourceVersion {
    pub version: i64,
    /// The patient the record was linked to at that version.
    pub regional_id: String,
    /// `create`, `link`, `update`, `merge 3`, `unmerge 3`…
    pub change: String,
    pub changed_at_us: i64,
    pub record: SourceRecord,
}

/// Columns of `identity_merge` as read.
type MergeColumns = (
    i64,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<String>,
);

fn merge_entry(row: MergeColumns) -> Result<MergeEntry> {
    let (id, survivor, merged, moved, merged_at_us, merged_by, unmerged_at_us, unmerged_by) = row;
    Ok(MergeEntry {
        id,
        survivor,
        merged,
        moved: serde_json::from_str(&moved).map_err(|e| IndexError::Corrupt(e.to_string()))?,
        merged_at_us,
        merged_by,
        unmerged_at_us,
        unmerged_by,
    })
}

const MERGE_COLUMNS: &str = "id, survivor, merged, moved_sources, merged_at_us, merged_by, \
                             unmerged_at_us, unmerged_by";

impl PatientIndex {
    /// Merges in which the patient survived or was merged, newest first.
    pub async fn merges_of(&self, regional_id: &str) -> Result<Vec<MergeEntry>> {
        let sql = format!(
            "SELECT {MERGE_COLUMNS} FROM identity_merge WHERE survivor = $1 OR merged = $1 \
             ORDER BY id DESC"
        );
        let rows: Vec<MergeColumns> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(regional_id)
                .fetch_all(pool)
                .await?);
        rows.into_iter().map(merge_entry).collect()
    }

    /// One merge, undone or not.
    pub async fn merge_entry(&self, id: i64) -> Result<Option<MergeEntry>> {
        let sql = format!("SELECT {MERGE_COLUMNS} FROM identity_merge WHERE id = $1");
        let row: Option<MergeColumns> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(id)
                .fetch_optional(pool)
                .await?);
        row.map(merge_entry).transpose()
    }

    /// One review task, open or closed.
    pub async fn review_task(&self, id: i64) -> Result<Option<ReviewTask>> {
        let row: Option<ReviewColumns> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(
                "SELECT id, authority, local_id, candidate_regional_id, score, levels, reason, state \
                 FROM identity_review WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?);
        Ok(row.map(ReviewTask::from_row))
    }

    /// How many review tasks are open.
    pub async fn open_review_count(&self) -> Result<i64> {
        Ok(megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_scalar("SELECT COUNT(*) FROM identity_review WHERE state = 'open'")
                .fetch_one(pool)
                .await?))
    }

    /// Versions of a source record with their dates, newest first.
    pub async fn source_versions(&self, source: &SourceId) -> Result<Vec<SourceVersion>> {
        let rows: Vec<(i64, String, String, i64, String)> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(
                "SELECT version, regional_id, change, changed_at_us, record \
                 FROM identity_source_history WHERE authority = $1 AND local_id = $2 \
                 ORDER BY version DESC")
                .bind(&source.authority)
                .bind(&source.local_id)
                .fetch_all(pool)
                .await?);
        rows.into_iter()
            .map(|(version, regional_id, change, changed_at_us, record)| {
                Ok(SourceVersion {
                    version,
                    regional_id,
                    change,
                    changed_at_us,
                    record: parse_record(&record)?,
                })
            })
            .collect()
    }
}
