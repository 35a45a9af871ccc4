//! The SQL of the patient index, written once for both backends: [`IndexTx`] is implemented by a
//! macro for the SQLite and for the PostgreSQL transaction, so the service logic is generic and
//! each query text exists once.

use megalis_identity::SourceId;

use crate::IndexError;

type Result<T> = std::result::Result<T, IndexError>;

/// A stored source record: its link and its JSON form.
pub(crate) struct StoredSource {
    pub regional_id: String,
    pub record: String,
    pub version: i64,
}

/// A source record found through a blocking key.
pub(crate) struct Candidate {
    pub regional_id: String,
    pub record: String,
}

pub(crate) struct ReviewRow {
    pub authority: String,
    pub local_id: String,
    pub candidate: String,
    pub state: String,
}

pub(crate) struct MergeRow {
    pub survivor: String,
    pub merged: String,
    pub moved: String,
    pub unmerged: bool,
}

pub(crate) trait IndexTx: Send {
    /// Serialises identity writers (PostgreSQL row lock; SQLite already holds the write lock).
    fn lock(&mut self) -> impl std::future::Future<Output = Result<()>> + Send;
    fn next_seq(&mut self) -> impl std::future::Future<Output = Result<i64>> + Send;
    fn source(
        &mut self,
        id: &SourceId,
    ) -> impl std::future::Future<Output = Result<Option<StoredSource>>> + Send;
    fn candidates(
        &mut self,
        keys: &[String],
    ) -> impl std::future::Future<Output = Result<Vec<Candidate>>> + Send;
    fn insert_patient(
        &mut self,
        regional_id: &str,
        seq: i64,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    #[allow(clippy::too_many_arguments)]
    fn write_source(
        &mut self,
        id: &SourceId,
        regional_id: &str,
        ins: Option<&str>,
        status: &str,
        record: &str,
        version: i64,
        change: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn set_keys(
        &mut self,
        id: &SourceId,
        keys: &[String],
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn sources_of(
        &mut self,
        regional_id: &str,
    ) -> impl std::future::Future<Output = Result<Vec<String>>> + Send;
    fn source_ids_of(
        &mut self,
        regional_id: &str,
    ) -> impl std::future::Future<Output = Result<Vec<SourceId>>> + Send;
    fn relink(
        &mut self,
        id: &SourceId,
        regional_id: &str,
        change: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn save_golden(
        &mut self,
        regional_id: &str,
        status: &str,
        golden: &str,
        keys: &crate::search::SearchKeys,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Gives a source record a new local identifier (ADT A47): the row, its blocking keys and a
    /// history entry move to the new identifier; the old identifier's history stays.
    fn rename_source(
        &mut self,
        from: &SourceId,
        to: &SourceId,
        record: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    /// Records the doctors of a hospital stay (ADT PV1) for the care team.
    fn write_encounter(
        &mut self,
        encounter: &crate::encounter::Encounter,
        now: i64,
    ) -> impl std::future::Future<Output = Result<u64>> + Send;
    /// `(merged_into)` of an existing patient, `None` when the patient does not exist.
    fn patient_state(
        &mut self,
        regional_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<Option<String>>>> + Send;
    fn set_merged_into(
        &mut self,
        regional_id: &str,
        into: Option<&str>,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    #[allow(clippy::too_many_arguments)]
    fn insert_review(
        &mut self,
        id: &SourceId,
        candidate: &str,
        score: f64,
        levels: &str,
        reason: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<i64>> + Send;
    fn review(
        &mut self,
        id: i64,
    ) -> impl std::future::Future<Output = Result<Option<ReviewRow>>> + Send;
    fn close_review(
        &mut self,
        id: i64,
        state: &str,
        by: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn is_distinct(
        &mut self,
        a: &str,
        b: &str,
    ) -> impl std::future::Future<Output = Result<bool>> + Send;
    fn insert_distinct(
        &mut self,
        a: &str,
        b: &str,
        by: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn insert_merge(
        &mut self,
        survivor: &str,
        merged: &str,
        moved: &str,
        by: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<i64>> + Send;
    /// Appends an event to the platform's event log, in this transaction (so it exists exactly
    /// when the change does); call it last, it serialises event writers until commit.
    fn publish_event(
        &mut self,
        topic: &str,
        patient: Option<&str>,
        payload: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn merge_row(
        &mut self,
        id: i64,
    ) -> impl std::future::Future<Output = Result<Option<MergeRow>>> + Send;
    fn set_unmerged(
        &mut self,
        id: i64,
        by: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
    fn hl7_ack(
        &mut self,
        sender: &str,
        control_id: &str,
    ) -> impl std::future::Future<Output = Result<Option<String>>> + Send;
    fn put_hl7_ack(
        &mut self,
        sender: &str,
        control_id: &str,
        ack: &str,
        now: i64,
    ) -> impl std::future::Future<Output = Result<()>> + Send;
}

macro_rules! impl_index_tx {
    ($db:ty, $lock:expr) => {
        impl<'t> IndexTx for sqlx::Transaction<'t, $db> {
            async fn lock(&mut self) -> Result<()> {
                if let Some(sql) = $lock {
                    sqlx::query(sql).execute(&mut **self).await?;
                }
                Ok(())
            }

            async fn next_seq(&mut self) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "UPDATE identity_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq",
                )
                .fetch_one(&mut **self)
                .await?)
            }

            async fn source(&mut self, id: &SourceId) -> Result<Option<StoredSource>> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT regional_id, record, version FROM identity_source \
                     WHERE authority = $1 AND local_id = $2",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(regional_id, record, version)| StoredSource { regional_id, record, version }))
            }

            async fn candidates(&mut self, keys: &[String]) -> Result<Vec<Candidate>> {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT DISTINCT s.regional_id, s.record, s.authority, s.local_id \
                     FROM identity_match_key k JOIN identity_source s \
                     ON s.authority = k.authority AND s.local_id = k.local_id \
                     WHERE k.match_key IN (",
                );
                let mut sep = qb.separated(", ");
                for k in keys {
                    sep.push_bind(k.clone());
                }
                qb.push(")");
                let rows: Vec<(String, String, String, String)> =
                    qb.build_query_as().fetch_all(&mut **self).await?;
                Ok(rows
                    .into_iter()
                    .map(|(regional_id, record, _, _)| Candidate { regional_id, record })
                    .collect())
            }

            async fn insert_patient(&mut self, regional_id: &str, seq: i64, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO identity_patient (regional_id, seq, status, golden, created_at_us, updated_at_us) \
                     VALUES ($1, $2, 'PROV', '{}', $3, $3)",
                )
                .bind(regional_id)
                .bind(seq)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn write_source(
                &mut self,
                id: &SourceId,
                regional_id: &str,
                ins: Option<&str>,
                status: &str,
                record: &str,
                version: i64,
                change: &str,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO identity_source (authority, local_id, regional_id, ins, status, record, version, updated_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                     ON CONFLICT (authority, local_id) DO UPDATE SET regional_id = excluded.regional_id, \
                     ins = excluded.ins, status = excluded.status, record = excluded.record, \
                     version = excluded.version, updated_at_us = excluded.updated_at_us",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .bind(regional_id)
                .bind(ins)
                .bind(status)
                .bind(record)
                .bind(version)
                .bind(now)
                .execute(&mut **self)
                .await?;
                sqlx::query(
                    "INSERT INTO identity_source_history (authority, local_id, version, regional_id, record, change, changed_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .bind(version)
                .bind(regional_id)
                .bind(record)
                .bind(change)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn set_keys(&mut self, id: &SourceId, keys: &[String]) -> Result<()> {
                sqlx::query("DELETE FROM identity_match_key WHERE authority = $1 AND local_id = $2")
                    .bind(&id.authority)
                    .bind(&id.local_id)
                    .execute(&mut **self)
                    .await?;
                for k in keys {
                    sqlx::query(
                        "INSERT INTO identity_match_key (match_key, authority, local_id) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(k)
                    .bind(&id.authority)
                    .bind(&id.local_id)
                    .execute(&mut **self)
                    .await?;
                }
                Ok(())
            }

            async fn sources_of(&mut self, regional_id: &str) -> Result<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT record FROM identity_source WHERE regional_id = $1 ORDER BY authority, local_id",
                )
                .bind(regional_id)
                .fetch_all(&mut **self)
                .await?)
            }

            async fn source_ids_of(&mut self, regional_id: &str) -> Result<Vec<SourceId>> {
                let rows: Vec<(String, String)> = sqlx::query_as(
                    "SELECT authority, local_id FROM identity_source WHERE regional_id = $1 ORDER BY authority, local_id",
                )
                .bind(regional_id)
                .fetch_all(&mut **self)
                .await?;
                Ok(rows.into_iter().map(|(authority, local_id)| SourceId { authority, local_id }).collect())
            }

            async fn relink(&mut self, id: &SourceId, regional_id: &str, change: &str, now: i64) -> Result<()> {
                let (record, version): (String, i64) = sqlx::query_as(
                    "UPDATE identity_source SET regional_id = $3, version = version + 1, updated_at_us = $4 \
                     WHERE authority = $1 AND local_id = $2 RETURNING record, version",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .bind(regional_id)
                .bind(now)
                .fetch_one(&mut **self)
                .await?;
                sqlx::query(
                    "INSERT INTO identity_source_history (authority, local_id, version, regional_id, record, change, changed_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .bind(version)
                .bind(regional_id)
                .bind(record)
                .bind(change)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn save_golden(
                &mut self,
                regional_id: &str,
                status: &str,
                golden: &str,
                keys: &crate::search::SearchKeys,
                now: i64,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE identity_patient SET status = $2, golden = $3, updated_at_us = $4, \
                     birth_name_key = $5, used_name_key = $6, given_key = $7, birth_date = $8, gender = $9 \
                     WHERE regional_id = $1",
                )
                .bind(regional_id)
                .bind(status)
                .bind(golden)
                .bind(now)
                .bind(&keys.birth_name)
                .bind(&keys.used_name)
                .bind(&keys.given)
                .bind(&keys.birth_date)
                .bind(keys.gender)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn write_encounter(&mut self, e: &crate::encounter::Encounter, now: i64) -> Result<u64> {
                use crate::encounter::EncounterEvent;
                let authority = &e.patient.authority;
                // A visit number names one stay of one patient in its hospital: a message that
                // reuses it for another patient is refused rather than merging two stays.
                let other: Option<String> = sqlx::query_scalar(
                    "SELECT local_id FROM encounter_participant WHERE authority = $1 \
                     AND visit_number = $2 AND local_id <> $3 LIMIT 1",
                )
                .bind(authority)
                .bind(&e.visit_number)
                .bind(&e.patient.local_id)
                .fetch_optional(&mut **self)
                .await?;
                if other.is_some() {
                    return Err(IndexError::VisitConflict(e.visit_number.clone()));
                }
                let mut touched = 0;
                match e.event {
                    EncounterEvent::Admit => {
                        for (practitioner, role) in &e.participants {
                            touched += sqlx::query(
                                "INSERT INTO encounter_participant (authority, visit_number, \
                                 practitioner, role, local_id, start_us, end_us, updated_at_us) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                                 ON CONFLICT (authority, visit_number, practitioner, role) DO UPDATE \
                                 SET start_us = excluded.start_us, end_us = excluded.end_us, \
                                 updated_at_us = excluded.updated_at_us",
                            )
                            .bind(authority)
                            .bind(&e.visit_number)
                            .bind(practitioner)
                            .bind(*role)
                            .bind(&e.patient.local_id)
                            .bind(e.start)
                            .bind(e.end)
                            .bind(now)
                            .execute(&mut **self)
                            .await?
                            .rows_affected();
                        }
                    }
                    EncounterEvent::Discharge | EncounterEvent::CancelDischarge => {
                        touched = sqlx::query(
                            "UPDATE encounter_participant SET end_us = $3, updated_at_us = $4 \
                             WHERE authority = $1 AND visit_number = $2",
                        )
                        .bind(authority)
                        .bind(&e.visit_number)
                        .bind(e.end)
                        .bind(now)
                        .execute(&mut **self)
                        .await?
                        .rows_affected();
                    }
                    EncounterEvent::CancelAdmit => {
                        // The admission never happened: its doctors were never the care team.
                        touched = sqlx::query(
                            "DELETE FROM encounter_participant WHERE authority = $1 AND visit_number = $2",
                        )
                        .bind(authority)
                        .bind(&e.visit_number)
                        .execute(&mut **self)
                        .await?
                        .rows_affected();
                    }
                }
                Ok(touched)
            }

            async fn rename_source(&mut self, from: &SourceId, to: &SourceId, record: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "UPDATE identity_source SET local_id = $3, authority = $4, record = $5, version = version + 1, \
                     updated_at_us = $6 WHERE authority = $1 AND local_id = $2",
                )
                .bind(&from.authority)
                .bind(&from.local_id)
                .bind(&to.local_id)
                .bind(&to.authority)
                .bind(record)
                .bind(now)
                .execute(&mut **self)
                .await?;
                sqlx::query(
                    "UPDATE identity_match_key SET authority = $3, local_id = $4 WHERE authority = $1 AND local_id = $2",
                )
                .bind(&from.authority)
                .bind(&from.local_id)
                .bind(&to.authority)
                .bind(&to.local_id)
                .execute(&mut **self)
                .await?;
                // The record's hospital stays follow it (care team).
                sqlx::query(
                    "UPDATE encounter_participant SET authority = $3, local_id = $4 WHERE authority = $1 AND local_id = $2",
                )
                .bind(&from.authority)
                .bind(&from.local_id)
                .bind(&to.authority)
                .bind(&to.local_id)
                .execute(&mut **self)
                .await?;
                // Open review tasks follow the record.
                sqlx::query(
                    "UPDATE identity_review SET authority = $3, local_id = $4 WHERE authority = $1 AND local_id = $2",
                )
                .bind(&from.authority)
                .bind(&from.local_id)
                .bind(&to.authority)
                .bind(&to.local_id)
                .execute(&mut **self)
                .await?;
                sqlx::query(
                    "INSERT INTO identity_source_history (authority, local_id, version, regional_id, record, change, changed_at_us) \
                     SELECT authority, local_id, version, regional_id, record, $3, $4 FROM identity_source \
                     WHERE authority = $1 AND local_id = $2",
                )
                .bind(&to.authority)
                .bind(&to.local_id)
                .bind(format!("renamed from {}^{}", from.local_id, from.authority))
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn patient_state(&mut self, regional_id: &str) -> Result<Option<Option<String>>> {
                let row: Option<(Option<String>,)> =
                    sqlx::query_as("SELECT merged_into FROM identity_patient WHERE regional_id = $1")
                        .bind(regional_id)
                        .fetch_optional(&mut **self)
                        .await?;
                Ok(row.map(|(m,)| m))
            }

            async fn set_merged_into(&mut self, regional_id: &str, into: Option<&str>, now: i64) -> Result<()> {
                sqlx::query(
                    "UPDATE identity_patient SET merged_into = $2, updated_at_us = $3 WHERE regional_id = $1",
                )
                .bind(regional_id)
                .bind(into)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn insert_review(
                &mut self,
                id: &SourceId,
                candidate: &str,
                score: f64,
                levels: &str,
                reason: &str,
                now: i64,
            ) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO identity_review (authority, local_id, candidate_regional_id, score, levels, reason, state, created_at_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) RETURNING id",
                )
                .bind(&id.authority)
                .bind(&id.local_id)
                .bind(candidate)
                .bind(score)
                .bind(levels)
                .bind(reason)
                .bind(now)
                .fetch_one(&mut **self)
                .await?)
            }

            async fn review(&mut self, id: i64) -> Result<Option<ReviewRow>> {
                let row: Option<(String, String, String, String)> = sqlx::query_as(
                    "SELECT authority, local_id, candidate_regional_id, state \
                     FROM identity_review WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(authority, local_id, candidate, state)| ReviewRow {
                    authority, local_id, candidate, state,
                }))
            }

            async fn close_review(&mut self, id: i64, state: &str, by: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "UPDATE identity_review SET state = $2, resolved_by = $3, resolved_at_us = $4 WHERE id = $1",
                )
                .bind(id)
                .bind(state)
                .bind(by)
                .bind(now)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn is_distinct(&mut self, a: &str, b: &str) -> Result<bool> {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM identity_distinct WHERE regional_id_a = $1 AND regional_id_b = $2",
                )
                .bind(a)
                .bind(b)
                .fetch_one(&mut **self)
                .await?;
                Ok(n > 0)
            }

            async fn insert_distinct(&mut self, a: &str, b: &str, by: &str, now: i64) -> Result<()> {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                sqlx::query(
                    "INSERT INTO identity_distinct (regional_id_a, regional_id_b, decided_at_us, decided_by) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(a)
                .bind(b)
                .bind(now)
                .bind(by)
                .execute(&mut **self)
                .await?;
                Ok(())
            }

            async fn insert_merge(&mut self, survivor: &str, merged: &str, moved: &str, by: &str, now: i64) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO identity_merge (survivor, merged, moved_sources, merged_at_us, merged_by) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(survivor)
                .bind(merged)
                .bind(moved)
                .bind(now)
                .bind(by)
                .fetch_one(&mut **self)
                .await?)
            }

            async fn publish_event(&mut self, topic: &str, patient: Option<&str>, payload: &str, now: i64) -> Result<()> {
                use megalis_store::events::AppendEvent as _;
                self.append_event(topic, patient, payload, now).await?;
                Ok(())
            }

            async fn merge_row(&mut self, id: i64) -> Result<Option<MergeRow>> {
                let row: Option<(String, String, String, Option<i64>)> = sqlx::query_as(
                    "SELECT survivor, merged, moved_sources, unmerged_at_us FROM identity_merge WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&mut **self)
                .await?;
                Ok(row.map(|(survivor, merged, moved, unmerged)| MergeRow {
                    survivor, merged, moved, unmerged: unmerged.is_some(),
                }))
            }

            async fn set_unmerged(&mut self, id: i64, by: &str, now: i64) -> Result<()> {
                sqlx::query("UPDATE identity_merge SET unmerged_at_us = $2, unmerged_by = $3 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .bind(by)
                    .execute(&mut **self)
                    .await?;
                Ok(())
            }

            async fn hl7_ack(&mut self, sender: &str, control_id: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT ack FROM identity_hl7_message WHERE sender = $1 AND control_id = $2",
                )
                .bind(sender)
                .bind(control_id)
                .fetch_optional(&mut **self)
                .await?)
            }

            async fn put_hl7_ack(&mut self, sender: &str, control_id: &str, ack: &str, now: i64) -> Result<()> {
                sqlx::query(
                    "INSERT INTO identity_hl7_message (sender, control_id, received_at_us, ack) VALUES ($1, $2, $3, $4)",
                )
                .bind(sender)
                .bind(control_id)
                .bind(now)
                .bind(ack)
                .execute(&mut **self)
                .await?;
                Ok(())
            }
        }
    };
}

impl_index_tx!(sqlx::Sqlite, None::<&str>);
impl_index_tx!(
    sqlx::Postgres,
    Some("SELECT seq FROM identity_counter WHERE id = 1 FOR UPDATE")
);
