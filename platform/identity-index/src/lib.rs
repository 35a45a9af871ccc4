//! The regional patient index: stores source records, links them to golden records (regional
//! patients) by matching, keeps a review queue of possible duplicates, merges and unmerges with
//! history, and audits every change through [`megalis_audit::AuditLog`].
//!
//! Every change runs in one database transaction that first takes the identity write lock
//! (SQLite's write lock, a row lock on PostgreSQL): matching reads candidates and writes links,
//! and two records of one new patient arriving together must not both create a patient. The
//! audit records are appended after the commit, one per patient touched, before the caller is
//! answered.

mod db;
pub mod encounter;
pub mod fhir;
pub mod hl7;
pub mod mllp;
pub mod review;
pub mod search;

/// The identity domain crate, for callers of the index (its types appear in this API).
pub use megalis_identity as identity;

use megalis_audit::{Actor, AuditLog, AuditRecord, Outcome};
use megalis_identity::matching::{Decision, MatchConfig, MatchRecord, blocking_keys};
use megalis_identity::{
    GoldenRecord, IdentityError, RegionalId, SourceId, SourceRecord, SourceTrust, survive,
};
use megalis_store::Database;
use serde::Serialize;

use db::IndexTx;

/// The one error type of the index service.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("unknown patient {0}")]
    UnknownPatient(String),
    #[error("unknown source record {0}")]
    UnknownSource(String),
    #[error("patient {0} was merged into {1}")]
    PatientMerged(String, String),
    #[error("unknown review task {0}")]
    UnknownReview(i64),
    #[error("review task {0} is already closed")]
    ReviewClosed(i64),
    #[error("unknown merge {0}")]
    UnknownMerge(i64),
    #[error("merge {0} was already undone")]
    AlreadyUnmerged(i64),
    #[error("a patient cannot be merged with itself")]
    SelfMerge,
    #[error("source record {0} already exists: merge the records (A40) instead of renaming")]
    SourceExists(String),
    #[error("visit number {0} belongs to another patient of this hospital")]
    VisitConflict(String),
    #[error("several patients carry the identifier {0}")]
    Ambiguous(String),
    #[error("MLLP sender bindings {0}")]
    Bindings(String),
    #[error("corrupt stored record: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("audit trail: {0}")]
    Audit(#[from] megalis_audit::AuditError),
}

impl IndexError {
    /// Errors caused by the content of a request (answer AE / 4xx), as opposed to the platform.
    pub fn is_bad_input(&self) -> bool {
        !matches!(
            self,
            IndexError::Store(_) | IndexError::Audit(_) | IndexError::Corrupt(_)
        )
    }
}

type Result<T> = std::result::Result<T, IndexError>;

/// Settings of the index.
#[derive(Debug, Clone, Default)]
pub struct IndexSettings {
    pub matching: MatchConfig,
    pub trust: SourceTrust,
}

/// One change asked by a feed.
#[derive(Debug, Clone)]
pub enum Change {
    /// Create or update a source record (ADT A01/A04/A05/A08/A28/A31, FHIR create/update).
    Upsert(SourceRecord),
    /// The source says its record `merged` is the same person as its record `survivor` (A40).
    MergeSources {
        survivor: SourceId,
        merged: SourceId,
    },
    /// The source corrects the local identifier of one of its records (A47): same person, same
    /// regional patient, new identifier.
    RenameSource { from: SourceId, to: SourceId },
    /// A hospital stay and its doctors (ADT PV1), for the patient's care team.
    Encounter(encounter::Encounter),
}

/// What a change did to which patient, for the caller and for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    pub regional_id: String,
    /// `patient.create`, `patient.link`, `patient.update`, `patient.review`, `patient.merge`…
    pub action: &'static str,
    pub detail: String,
}

/// Result of [`PatientIndex::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Applied now; the effects in order.
    Done(Vec<Effect>),
    /// The message was applied before: the stored acknowledgement, nothing applied again.
    Duplicate(String),
}

/// A message key for redelivery detection and the acknowledgement to store with it.
pub struct MessageKey<'a> {
    pub sender: &'a str,
    pub control_id: &'a str,
    pub ack: &'a str,
}

/// A regional patient as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Patient {
    pub regional_id: String,
    pub golden: GoldenRecord,
    pub sources: Vec<SourceRecord>,
    pub merged_into: Option<String>,
}

/// A possible duplicate waiting for a person.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewTask {
    pub id: i64,
    pub source: SourceId,
    pub candidate: String,
    pub score: f64,
    pub levels: String,
    pub reason: String,
    pub state: String,
}

/// Columns of `identity_review` as read: id, authority, local id, candidate, score, levels,
/// reason, state.
type ReviewColumns = (i64, String, String, String, f64, String, String, String);

impl ReviewTask {
    fn from_row(
        (id, authority, local_id, candidate, score, levels, reason, state): ReviewColumns,
    ) -> Self {
        ReviewTask {
            id,
            source: SourceId {
                authority,
                local_id,
            },
            candidate,
            score,
            levels,
            reason,
            state,
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Same person: the source record's patient is merged into the candidate.
    SamePatient,
    /// Different persons: never proposed again.
    Distinct,
}

/// The index service.
#[derive(Clone)]
pub struct PatientIndex {
    db: Database,
    audit: AuditLog,
    settings: std::sync::Arc<IndexSettings>,
}

macro_rules! in_tx {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            Database::Sqlite(pool) => {
                // Take the write lock at BEGIN: a deferred transaction that reads, then writes,
                // could fail with SQLITE_BUSY at the upgrade instead of waiting.
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                $tx.lock().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Database::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                $tx.lock().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

fn now_us() -> i64 {
    megalis_audit::record::now_us()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("identity types serialise")
}

fn parse_record(json: &str) -> Result<SourceRecord> {
    serde_json::from_str(json).map_err(|e| IndexError::Corrupt(e.to_string()))
}

fn source_label(id: &SourceId) -> String {
    format!("{}^{}", id.local_id, id.authority)
}

impl PatientIndex {
    pub fn new(db: Database, audit: AuditLog, settings: IndexSettings) -> Result<Self> {
        settings.matching.validate()?;
        Ok(PatientIndex {
            db,
            audit,
            settings: std::sync::Arc::new(settings),
        })
    }

    /// Applies `changes` in one transaction, all or nothing. With a message key, a message seen
    /// before is not applied again (its stored acknowledgement is returned), and the new
    /// acknowledgement is stored in the same transaction as the changes.
    pub async fn apply(
        &self,
        actor: &Actor,
        changes: &[Change],
        message: Option<MessageKey<'_>>,
    ) -> Result<Applied> {
        let now = now_us();
        let today = time::OffsetDateTime::now_utc().date();
        for change in changes {
            if let Change::Upsert(r) = change {
                r.validate(today)?;
            }
        }
        let settings = &self.settings;
        let applied = in_tx!(&self.db, tx => {
            let seen = match &message {
                Some(m) => tx.hl7_ack(m.sender, m.control_id).await?,
                None => None,
            };
            if let Some(ack) = seen {
                Applied::Duplicate(ack)
            } else {
                let mut effects = Vec::new();
                for change in changes {
                    match change {
                        Change::Upsert(r) => upsert(&mut tx, settings, r, now, &mut effects).await?,
                        Change::MergeSources { survivor, merged } => {
                            merge_sources(&mut tx, settings, survivor, merged, &actor.subject, now, &mut effects).await?
                        }
                        Change::RenameSource { from, to } => {
                            rename_source(&mut tx, settings, from, to, now, &mut effects).await?
                        }
                        Change::Encounter(e) => record_encounter(&mut tx, e, now, &mut effects).await?,
                    }
                }
                if let Some(m) = &message {
                    tx.put_hl7_ack(m.sender, m.control_id, m.ack, now).await?;
                }
                Applied::Done(effects)
            }
        });
        if let Applied::Done(effects) = &applied {
            self.audit_effects(actor, effects).await?;
        }
        Ok(applied)
    }

    async fn audit_effects(&self, actor: &Actor, effects: &[Effect]) -> Result<()> {
        for e in effects {
            let record = AuditRecord::new(actor.clone(), e.action, "Patient", Outcome::Success)
                .with_patient(e.regional_id.clone())
                .with_detail(e.detail.clone());
            self.audit.append(record).await?;
        }
        Ok(())
    }

    /// Merges patient `merged` into `survivor` (a person decided); returns the merge id.
    pub async fn merge(&self, actor: &Actor, survivor: &str, merged: &str) -> Result<i64> {
        let now = now_us();
        let settings = &self.settings;
        let mut effects = Vec::new();
        let id = in_tx!(&self.db, tx => merge_patients(&mut tx, settings, survivor, merged, &actor.subject, now, &mut effects).await?);
        self.audit_effects(actor, &effects).await?;
        Ok(id)
    }

    /// Undoes merge `merge_id`: the source records that moved go back to the merged patient,
    /// which becomes active again; both golden records are rebuilt.
    pub async fn unmerge(&self, actor: &Actor, merge_id: i64) -> Result<()> {
        let now = now_us();
        let settings = &self.settings;
        let effects = in_tx!(&self.db, tx => {
            let row = tx.merge_row(merge_id).await?.ok_or(IndexError::UnknownMerge(merge_id))?;
            if row.unmerged {
                return Err(IndexError::AlreadyUnmerged(merge_id));
            }
            let moved: Vec<SourceId> = serde_json::from_str(&row.moved)
                .map_err(|e| IndexError::Corrupt(e.to_string()))?;
            let mut holders = std::collections::BTreeSet::new();
            let mut missing = Vec::new();
            for id in &moved {
                // The record may have moved on since (a later merge): take it from where it is.
                // A record renamed since (A47) is no longer under this identifier: it stays
                // where it is, and the detail says so.
                let Some(s) = tx.source(id).await? else {
                    missing.push(source_label(id));
                    continue;
                };
                holders.insert(s.regional_id);
                tx.relink(id, &row.merged, &format!("unmerge {merge_id}"), now).await?;
            }
            tx.set_merged_into(&row.merged, None, now).await?;
            tx.set_unmerged(merge_id, &actor.subject, now).await?;
            rebuild(&mut tx, settings, &row.merged, now).await?;
            let mut effects = vec![Effect {
                regional_id: row.merged.clone(),
                action: "patient.unmerge",
                detail: if missing.is_empty() {
                    format!("merge {merge_id} undone, {} source records restored", moved.len())
                } else {
                    format!(
                        "merge {merge_id} undone, {} source records restored; renamed since and left in place: {}",
                        moved.len() - missing.len(),
                        missing.join(", ")
                    )
                },
            }];
            holders.insert(row.survivor.clone());
            for h in holders {
                if h != row.merged {
                    rebuild(&mut tx, settings, &h, now).await?;
                    effects.push(Effect {
                        regional_id: h,
                        action: "patient.unmerge",
                        detail: format!("merge {merge_id} undone"),
                    });
                }
            }
            let payload = serde_json::json!({
                "merge": merge_id,
                "survivor": row.survivor,
                "restored": row.merged,
            });
            tx.publish_event(
                megalis_store::events::PATIENT_UNMERGED,
                Some(&row.merged),
                &payload.to_string(),
                now,
            )
            .await?;
            effects
        });
        self.audit_effects(actor, &effects).await
    }

    /// Decides a review task.
    pub async fn resolve_review(
        &self,
        actor: &Actor,
        id: i64,
        resolution: Resolution,
    ) -> Result<()> {
        let now = now_us();
        let settings = &self.settings;
        let mut effects = Vec::new();
        in_tx!(&self.db, tx => {
            let task = tx.review(id).await?.ok_or(IndexError::UnknownReview(id))?;
            if task.state != "open" {
                return Err(IndexError::ReviewClosed(id));
            }
            let source = SourceId { authority: task.authority.clone(), local_id: task.local_id.clone() };
            let current = tx.source(&source).await?.ok_or_else(|| IndexError::UnknownSource(source_label(&source)))?;
            let candidate = active(&mut tx, &task.candidate).await?;
            match resolution {
                Resolution::SamePatient => {
                    if current.regional_id != candidate {
                        merge_patients(&mut tx, settings, &candidate, &current.regional_id, &actor.subject, now, &mut effects).await?;
                    }
                    tx.close_review(id, "same", &actor.subject, now).await?;
                }
                Resolution::Distinct => {
                    tx.insert_distinct(&current.regional_id, &candidate, &actor.subject, now).await?;
                    tx.close_review(id, "distinct", &actor.subject, now).await?;
                    for r in [&current.regional_id, &candidate] {
                        effects.push(Effect { regional_id: r.clone(), action: "patient.distinct", detail: format!("review {id}") });
                    }
                }
            }
        });
        self.audit_effects(actor, &effects).await
    }

    /// A patient with its golden record and sources; follows nothing (a merged patient is
    /// returned with `merged_into` set).
    pub async fn patient(&self, regional_id: &str) -> Result<Option<Patient>> {
        let row: Option<(String, Option<String>)> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as("SELECT golden, merged_into FROM identity_patient WHERE regional_id = $1")
                .bind(regional_id)
                .fetch_optional(pool)
                .await?);
        let Some((golden, merged_into)) = row else {
            return Ok(None);
        };
        let records: Vec<String> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_scalar("SELECT record FROM identity_source WHERE regional_id = $1 ORDER BY authority, local_id")
                .bind(regional_id)
                .fetch_all(pool)
                .await?);
        let sources = records
            .iter()
            .map(|r| parse_record(r))
            .collect::<Result<Vec<_>>>()?;
        let golden = match survive(&sources, &self.settings.trust) {
            Some(g) => g,
            // A merged patient has no sources left: its last golden record is kept as stored.
            None => serde_json::from_str::<StoredGolden>(&golden)
                .map_err(|e| IndexError::Corrupt(e.to_string()))?
                .into_golden()?,
        };
        Ok(Some(Patient {
            regional_id: regional_id.to_string(),
            golden,
            sources,
            merged_into,
        }))
    }

    /// The patient a source record is linked to.
    pub async fn patient_of(&self, source: &SourceId) -> Result<Option<String>> {
        Ok(megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_scalar("SELECT regional_id FROM identity_source WHERE authority = $1 AND local_id = $2")
                .bind(&source.authority)
                .bind(&source.local_id)
                .fetch_optional(pool)
                .await?))
    }

    /// Open review tasks, oldest first.
    pub async fn open_reviews(&self, limit: i64) -> Result<Vec<ReviewTask>> {
        let rows: Vec<ReviewColumns> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(
                "SELECT id, authority, local_id, candidate_regional_id, score, levels, reason, state \
                 FROM identity_review WHERE state = 'open' ORDER BY id LIMIT $1")
                .bind(limit)
                .fetch_all(pool)
                .await?);
        Ok(rows.into_iter().map(ReviewTask::from_row).collect())
    }

    /// Versions of a source record, oldest first: `(version, regional_id, change, record)`.
    pub async fn history(
        &self,
        source: &SourceId,
    ) -> Result<Vec<(i64, String, String, SourceRecord)>> {
        let rows: Vec<(i64, String, String, String)> = megalis_store::with_pool!(&self.db, pool =>
            sqlx::query_as(
                "SELECT version, regional_id, change, record FROM identity_source_history \
                 WHERE authority = $1 AND local_id = $2 ORDER BY version")
                .bind(&source.authority)
                .bind(&source.local_id)
                .fetch_all(pool)
                .await?);
        rows.into_iter()
            .map(|(v, p, c, r)| Ok((v, p, c, parse_record(&r)?)))
            .collect()
    }
}

/// The golden record as stored in `identity_patient.golden` (the derived view, kept for merged
/// patients whose sources moved away).
#[derive(serde::Deserialize)]
struct StoredGolden {
    sources_snapshot: Vec<SourceRecord>,
}

impl StoredGolden {
    fn into_golden(self) -> Result<GoldenRecord> {
        survive(&self.sources_snapshot, &SourceTrust::new())
            .ok_or_else(|| IndexError::Corrupt("empty golden snapshot".into()))
    }
}

/// Rebuilds and stores the golden record of a patient from its sources; a patient left without
/// sources (merged away) keeps its last snapshot.
async fn rebuild<T: IndexTx>(
    tx: &mut T,
    settings: &IndexSettings,
    regional_id: &str,
    now: i64,
) -> Result<()> {
    let records = tx.sources_of(regional_id).await?;
    if records.is_empty() {
        return Ok(());
    }
    let sources = records
        .iter()
        .map(|r| parse_record(r))
        .collect::<Result<Vec<_>>>()?;
    let golden = survive(&sources, &settings.trust).expect("sources are not empty");
    let keys = search::SearchKeys::of(&golden);
    let stored = serde_json::json!({ "golden": golden, "sources_snapshot": sources });
    tx.save_golden(
        regional_id,
        golden.status.code(),
        &stored.to_string(),
        &keys,
        now,
    )
    .await
}

/// The active patient: follows `merged_into` so that reviews and merges act on the survivor.
async fn active<T: IndexTx>(tx: &mut T, regional_id: &str) -> Result<String> {
    let mut current = regional_id.to_string();
    for _ in 0..64 {
        match tx.patient_state(&current).await? {
            None => return Err(IndexError::UnknownPatient(current)),
            Some(None) => return Ok(current),
            Some(Some(next)) => current = next,
        }
    }
    Err(IndexError::Corrupt(format!(
        "merge chain from {regional_id} too long"
    )))
}

async fn upsert<T: IndexTx>(
    tx: &mut T,
    settings: &IndexSettings,
    record: &SourceRecord,
    now: i64,
    effects: &mut Vec<Effect>,
) -> Result<()> {
    let features = MatchRecord::from_source(record);
    let keys = blocking_keys(&features);
    if let Some(stored) = tx.source(&record.id).await? {
        // Known source record: an update. The link stays; strict-trait changes of a record
        // whose status vouched for them downgrade its status (RNIV).
        let mut current = parse_record(&stored.record)?;
        let before = current.status;
        current.apply_update(record.clone(), false);
        let json = to_json(&current);
        tx.write_source(
            &record.id,
            &stored.regional_id,
            current.ins.as_ref().map(|i| i.as_str()),
            current.status.code(),
            &json,
            stored.version + 1,
            "update",
            now,
        )
        .await?;
        tx.set_keys(&record.id, &keys).await?;
        rebuild(tx, settings, &stored.regional_id, now).await?;
        let detail = if before != current.status {
            format!(
                "{} updated; status {} → {}",
                source_label(&record.id),
                before.code(),
                current.status.code()
            )
        } else {
            format!("{} updated", source_label(&record.id))
        };
        effects.push(Effect {
            regional_id: stored.regional_id,
            action: "patient.update",
            detail,
        });
        return Ok(());
    }

    // New source record: compare with every record sharing a blocking key, decide per patient.
    let mut best: std::collections::BTreeMap<String, (Decision, f64, String)> = Default::default();
    let mut vetoed = std::collections::BTreeSet::new();
    if !record.attributes.fictitious {
        for c in tx.candidates(&keys).await? {
            let other = parse_record(&c.record)?;
            let (decision, score, cmp) = settings
                .matching
                .decide(&features, &MatchRecord::from_source(&other));
            let both_retrieved = record.status.ins_retrieved() && other.status.ins_retrieved();
            if decision == Decision::Distinct && both_retrieved && cmp.levels[5] == 1 {
                // Two INS retrieved from INSi that differ: this patient is someone else.
                vetoed.insert(c.regional_id.clone());
            }
            let entry = best.entry(c.regional_id).or_insert((
                Decision::Distinct,
                f64::NEG_INFINITY,
                String::new(),
            ));
            let rank = |d: Decision| match d {
                Decision::Link => 2,
                Decision::Review => 1,
                Decision::Distinct => 0,
            };
            if rank(decision) > rank(entry.0)
                || (rank(decision) == rank(entry.0) && score > entry.1)
            {
                *entry = (decision, score, format!("{:?}", cmp.levels));
            }
        }
    }
    for v in &vetoed {
        best.remove(v);
    }
    let mut links: Vec<(&String, &(Decision, f64, String))> =
        best.iter().filter(|(_, d)| d.0 == Decision::Link).collect();
    links.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    let (regional_id, action) = match links.first() {
        Some((id, _)) => ((*id).clone(), "patient.link"),
        None => {
            let seq = tx.next_seq().await?;
            let id = RegionalId::from_sequence(seq as u64).to_string();
            tx.insert_patient(&id, seq, now).await?;
            (id, "patient.create")
        }
    };
    let json = to_json(record);
    tx.write_source(
        &record.id,
        &regional_id,
        record.ins.as_ref().map(|i| i.as_str()),
        record.status.code(),
        &json,
        1,
        action.trim_start_matches("patient."),
        now,
    )
    .await?;
    tx.set_keys(&record.id, &keys).await?;
    rebuild(tx, settings, &regional_id, now).await?;
    effects.push(Effect {
        regional_id: regional_id.clone(),
        action,
        detail: format!(
            "{} {}",
            source_label(&record.id),
            action.trim_start_matches("patient.")
        ),
    });
    // Every other plausible patient goes to review: a second automatic link would be an
    // automatic merge of two existing patients, which only a person may decide.
    for (candidate, (decision, score, levels)) in &best {
        if *candidate == regional_id || *decision == Decision::Distinct {
            continue;
        }
        if tx.is_distinct(&regional_id, candidate).await? {
            continue;
        }
        let reason = if *decision == Decision::Link {
            "several patients match"
        } else {
            "possible match"
        };
        let id = tx
            .insert_review(&record.id, candidate, *score, levels, reason, now)
            .await?;
        effects.push(Effect {
            regional_id: candidate.clone(),
            action: "patient.review",
            detail: format!(
                "review {id}: {} may be {candidate} (score {score:.1})",
                source_label(&record.id)
            ),
        });
    }
    Ok(())
}

async fn rename_source<T: IndexTx>(
    tx: &mut T,
    settings: &IndexSettings,
    from: &SourceId,
    to: &SourceId,
    now: i64,
    effects: &mut Vec<Effect>,
) -> Result<()> {
    let stored = tx
        .source(from)
        .await?
        .ok_or_else(|| IndexError::UnknownSource(source_label(from)))?;
    if tx.source(to).await?.is_some() {
        return Err(IndexError::SourceExists(source_label(to)));
    }
    let mut record = parse_record(&stored.record)?;
    record.id = to.clone();
    tx.rename_source(from, to, &to_json(&record), now).await?;
    rebuild(tx, settings, &stored.regional_id, now).await?;
    effects.push(Effect {
        regional_id: stored.regional_id,
        action: "patient.update",
        detail: format!("{} renamed {}", source_label(from), source_label(to)),
    });
    Ok(())
}

async fn record_encounter<T: IndexTx>(
    tx: &mut T,
    encounter: &encounter::Encounter,
    now: i64,
    effects: &mut Vec<Effect>,
) -> Result<()> {
    let stored = tx
        .source(&encounter.patient)
        .await?
        .ok_or_else(|| IndexError::UnknownSource(source_label(&encounter.patient)))?;
    let touched = tx.write_encounter(encounter, now).await?;
    let doctors: Vec<&str> = encounter
        .participants
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    effects.push(Effect {
        regional_id: stored.regional_id,
        action: "patient.encounter",
        detail: format!(
            "{} visit {} of {}: {} ({} row(s))",
            match encounter.event {
                encounter::EncounterEvent::Admit => "stay",
                encounter::EncounterEvent::Discharge => "discharge",
                encounter::EncounterEvent::CancelAdmit => "cancelled admission",
                encounter::EncounterEvent::CancelDischarge => "cancelled discharge",
            },
            encounter.visit_number,
            source_label(&encounter.patient),
            if doctors.is_empty() {
                "-".to_string()
            } else {
                doctors.join(", ")
            },
            touched
        ),
    });
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn merge_sources<T: IndexTx>(
    tx: &mut T,
    settings: &IndexSettings,
    survivor: &SourceId,
    merged: &SourceId,
    by: &str,
    now: i64,
    effects: &mut Vec<Effect>,
) -> Result<()> {
    let s = tx
        .source(survivor)
        .await?
        .ok_or_else(|| IndexError::UnknownSource(source_label(survivor)))?;
    let m = tx
        .source(merged)
        .await?
        .ok_or_else(|| IndexError::UnknownSource(source_label(merged)))?;
    let (s_patient, m_patient) = (
        active(tx, &s.regional_id).await?,
        active(tx, &m.regional_id).await?,
    );
    if s_patient != m_patient {
        merge_patients(tx, settings, &s_patient, &m_patient, by, now, effects).await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn merge_patients<T: IndexTx>(
    tx: &mut T,
    settings: &IndexSettings,
    survivor: &str,
    merged: &str,
    by: &str,
    now: i64,
    effects: &mut Vec<Effect>,
) -> Result<i64> {
    if survivor == merged {
        return Err(IndexError::SelfMerge);
    }
    for p in [survivor, merged] {
        match tx.patient_state(p).await? {
            None => return Err(IndexError::UnknownPatient(p.to_string())),
            Some(Some(into)) => return Err(IndexError::PatientMerged(p.to_string(), into)),
            Some(None) => {}
        }
    }
    let moved = tx.source_ids_of(merged).await?;
    for records in [tx.sources_of(survivor).await?, tx.sources_of(merged).await?] {
        for r in records {
            if parse_record(&r)?.attributes.fictitious {
                return Err(IdentityError::FictitiousNotLinkable.into());
            }
        }
    }
    let merge_id = tx
        .insert_merge(survivor, merged, &to_json(&moved), by, now)
        .await?;
    for id in &moved {
        tx.relink(id, survivor, &format!("merge {merge_id}"), now)
            .await?;
    }
    tx.set_merged_into(merged, Some(survivor), now).await?;
    rebuild(tx, settings, survivor, now).await?;
    for (p, detail) in [
        (
            survivor,
            format!("merge {merge_id}: {merged} merged into this patient"),
        ),
        (merged, format!("merge {merge_id}: merged into {survivor}")),
    ] {
        effects.push(Effect {
            regional_id: p.to_string(),
            action: "patient.merge",
            detail,
        });
    }
    // Plugins holding records under the merged id learn it here (events capability).
    let payload = serde_json::json!({
        "merge": merge_id,
        "survivor": survivor,
        "merged": merged,
    });
    tx.publish_event(
        megalis_store::events::PATIENT_MERGED,
        Some(survivor),
        &payload.to_string(),
        now,
    )
    .await?;
    Ok(merge_id)
}
