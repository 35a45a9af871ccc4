//! What the host reads from the rest of the platform for the `identity`, `directory` and
//! `events` capabilities, as traits: the server implements identity and directory with the
//! regional identity index and the RPPS directory, the event log sits on the platform database
//! ([`SqlEvents`]); the in-memory versions serve `megalis plugin run` and the tests.
//!
//! These traits only fetch. The access decision and the audit record of every patient the
//! answers name are the host's job (`capabilities.rs`), so no implementation can forget them.

use std::collections::BTreeMap;
use std::sync::Mutex;

use megalis_store::Database;

use crate::access::BoxFuture;

/// A platform service could not answer (database down): the plugin gets `unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceUnavailable;

/// A patient of the identity index, as plugins see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    pub id: String,
    pub family: String,
    pub given: Vec<String>,
    /// `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// FHIR administrative gender.
    pub gender: String,
    /// Only when qualified.
    pub ins: Option<String>,
    /// (assigning authority, local id) of each source.
    pub identifiers: Vec<(String, String)>,
    pub merged_into: Option<String>,
}

pub trait IdentityService: Send + Sync {
    fn patient<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PatientRecord>, ServiceUnavailable>>;
    /// The regional id of a source's local identifier.
    fn resolve<'a>(
        &'a self,
        system: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ServiceUnavailable>>;
}

/// An active professional of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PractitionerRecord {
    pub national_id: String,
    pub family: String,
    pub given: String,
    pub profession: String,
    pub profession_label: String,
    pub specialties: Vec<String>,
    pub organisations: Vec<String>,
}

pub trait DirectoryService: Send + Sync {
    fn practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerRecord>, ServiceUnavailable>>;
}

/// Synthetic patients and professionals for a plugin author's machine (`megalis plugin run`)
/// and the host's tests; empty unless filled.
#[derive(Default)]
pub struct MemoryDirectory {
    patients: Mutex<BTreeMap<String, PatientRecord>>,
    practitioners: Mutex<BTreeMap<String, PractitionerRecord>>,
}

impl MemoryDirectory {
    /// Two synthetic patients (one merged into the other) and one professional, so a plugin
    /// author can exercise every answer of `identity` and `directory` locally.
    pub fn synthetic() -> MemoryDirectory {
        let d = MemoryDirectory::default();
        d.add_patient(PatientRecord {
            id: "BZH90000000015".into(),
            family: "TEST".into(),
            given: vec!["Nolwenn".into()],
            birth_date: Some("1970-01-01".into()),
            gender: "female".into(),
            ins: None,
            identifiers: vec![("1.2.250.1.999.1".into(), "IPP-1".into())],
            merged_into: None,
        });
        d.add_patient(PatientRecord {
            id: "BZH90000000028".into(),
            family: "TEST".into(),
            given: vec!["Nolwen".into()],
            birth_date: Some("1970-01-01".into()),
            gender: "female".into(),
            ins: None,
            identifiers: vec![],
            merged_into: Some("BZH90000000015".into()),
        });
        d.add_practitioner(PractitionerRecord {
            national_id: "810000000000".into(),
            family: "DÉVELOPPEUR".into(),
            given: "Dev".into(),
            profession: "10".into(),
            profession_label: "Médecin".into(),
            specialties: vec!["Néphrologie".into()],
            organisations: vec!["Centre hospitalier de test".into()],
        });
        d
    }

    pub fn add_patient(&self, p: PatientRecord) {
        lock(&self.patients).insert(p.id.clone(), p);
    }

    pub fn add_practitioner(&self, p: PractitionerRecord) {
        lock(&self.practitioners).insert(p.national_id.clone(), p);
    }
}

/// Each operation is one insert or read, so a poisoned lock still holds a consistent map.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl IdentityService for MemoryDirectory {
    fn patient<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PatientRecord>, ServiceUnavailable>> {
        let found = lock(&self.patients).get(id).cloned();
        Box::pin(async move { Ok(found) })
    }

    fn resolve<'a>(
        &'a self,
        system: &'a str,
        value: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, ServiceUnavailable>> {
        let found = lock(&self.patients)
            .values()
            .find(|p| p.identifiers.iter().any(|(s, v)| s == system && v == value))
            .map(|p| p.id.clone());
        Box::pin(async move { Ok(found) })
    }
}

impl DirectoryService for MemoryDirectory {
    fn practitioner<'a>(
        &'a self,
        national_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PractitionerRecord>, ServiceUnavailable>> {
        let found = lock(&self.practitioners).get(national_id).cloned();
        Box::pin(async move { Ok(found) })
    }
}

/// One event of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: u64,
    pub topic: String,
    pub patient: Option<String>,
    pub payload: String,
    pub published_at_us: i64,
}

/// The platform's event log.
pub trait EventLog: Send + Sync {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        patient: Option<&'a str>,
        payload: &'a str,
        now_us: i64,
    ) -> BoxFuture<'a, Result<u64, ServiceUnavailable>>;
    fn poll<'a>(
        &'a self,
        topic: &'a str,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, ServiceUnavailable>>;
}

/// On the platform database (`platform_event`), shared by every replica.
pub struct SqlEvents {
    db: Database,
}

impl SqlEvents {
    pub fn new(db: Database) -> SqlEvents {
        SqlEvents { db }
    }
}

fn unavailable(e: megalis_store::StoreError) -> ServiceUnavailable {
    tracing::error!(error = %e, "plugin host: event log");
    ServiceUnavailable
}

impl EventLog for SqlEvents {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        patient: Option<&'a str>,
        payload: &'a str,
        now_us: i64,
    ) -> BoxFuture<'a, Result<u64, ServiceUnavailable>> {
        Box::pin(async move {
            megalis_store::events::publish(&self.db, topic, patient, payload, now_us)
                .await
                .map(|id| id as u64)
                .map_err(unavailable)
        })
    }

    fn poll<'a>(
        &'a self,
        topic: &'a str,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, ServiceUnavailable>> {
        Box::pin(async move {
            let after = i64::try_from(after).unwrap_or(i64::MAX);
            let rows = megalis_store::events::poll(&self.db, topic, after, i64::from(limit))
                .await
                .map_err(unavailable)?;
            Ok(rows
                .into_iter()
                .map(|r| EventRecord {
                    id: r.id as u64,
                    topic: r.topic,
                    patient: r.patient_id,
                    payload: r.payload,
                    published_at_us: r.published_at_us,
                })
                .collect())
        })
    }
}

/// In memory: `megalis plugin run` and tests.
#[derive(Default)]
pub struct MemoryEvents {
    events: Mutex<Vec<EventRecord>>,
}

impl EventLog for MemoryEvents {
    fn publish<'a>(
        &'a self,
        topic: &'a str,
        patient: Option<&'a str>,
        payload: &'a str,
        now_us: i64,
    ) -> BoxFuture<'a, Result<u64, ServiceUnavailable>> {
        let mut events = lock(&self.events);
        let id = events.len() as u64 + 1;
        events.push(EventRecord {
            id,
            topic: topic.to_owned(),
            patient: patient.map(str::to_owned),
            payload: payload.to_owned(),
            published_at_us: now_us,
        });
        Box::pin(async move { Ok(id) })
    }

    fn poll<'a>(
        &'a self,
        topic: &'a str,
        after: u64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<EventRecord>, ServiceUnavailable>> {
        let found: Vec<EventRecord> = lock(&self.events)
            .iter()
            .filter(|e| e.topic == topic && e.id > after)
            .take(limit as usize)
            .cloned()
            .collect();
        Box::pin(async move { Ok(found) })
    }
}
