//! Host side of `megalis:platform@0.1.1`. Every call that touches a patient asks the core's
//! access decision and writes the audit trail here, whatever the plugin asked for.

use megalis_audit::{Actor, AuditRecord, Outcome};
use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker, Resource};

use crate::access::{AccessAction, AccessResource, Decision, PrincipalKind as HostKind};
use crate::host::Services;
use crate::kv::{KvEntry, KvFailure};
use crate::manifest::Capability;
use crate::state::{CallContext, HostState};

wasmtime::component::bindgen!({
    path: "../../plugins/wit",
    world: "megalis:platform/imports",
    imports: { default: async },
    with: {
        "megalis:platform/blobs.upload": crate::blobs::UploadState,
        "megalis:platform/blobs.download": crate::blobs::DownloadState,
    },
});

use megalis::platform::types::{CapError, Principal, PrincipalKind};
use megalis::platform::{
    audit, blobs, consent, context, directory, events, identity, logging, store, types,
};

/// Keys and values the store accepts (the WIT documents them).
const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 1 << 20;
const MAX_SCAN: u32 = 1000;

/// Adds the granted capabilities to a plugin's linker; the others stay absent, so an import of
/// them cannot be satisfied.
pub(crate) fn add_to_linker(
    linker: &mut Linker<HostState>,
    granted: &std::collections::BTreeSet<Capability>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    for capability in granted {
        match capability {
            Capability::Context => {
                context::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Consent => {
                consent::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Store => {
                store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Audit => {
                audit::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Logging => {
                logging::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Identity => {
                identity::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Directory => {
                directory::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Events => {
                events::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
            Capability::Blobs => {
                blobs::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?
            }
        }
    }
    Ok(())
}

impl types::Host for HostState {}

impl CallContext {
    fn actor(&self) -> Actor {
        let p = &self.principal;
        let mut actor = Actor::new(p.audit_subject());
        actor.national_id = p.national_id.clone();
        actor.organisation = p.organisation.clone();
        actor.roles = p.roles.clone();
        actor
    }

    fn audit_record(&self, action: &str, object_type: &str, outcome: Outcome) -> AuditRecord {
        let mut record = AuditRecord::new(self.actor(), action, object_type, outcome)
            .with_request_id(self.request_id.clone())
            .with_detail(format!("plugin={}", self.plugin));
        if let Some(addr) = &self.source_address {
            record = record.with_source_address(addr.clone());
        }
        record
    }

    /// Asks the access decision about `patient` and writes the answer to the audit trail; the
    /// caller goes on only when both the decision allowed it and the record was written.
    async fn check_patient(
        &self,
        services: &Services,
        patient: &str,
        resource: AccessResource,
        action: AccessAction,
        purpose: &str,
        object: &str,
    ) -> Result<Decision, CapError> {
        let decision = services
            .access
            .decide(&self.principal, patient, resource, action, purpose)
            .await;
        let outcome = if decision.allowed {
            Outcome::Success
        } else {
            Outcome::Denied
        };
        let record = self
            .audit_record(
                &format!("plugin.{}.{}", object, action.as_str()),
                object,
                outcome,
            )
            .with_patient(patient)
            .with_purpose(purpose)
            .with_detail(format!("plugin={} reason={}", self.plugin, decision.code));
        services
            .audit
            .append(record)
            .await
            .map_err(|_| CapError::Unavailable)?;
        Ok(decision)
    }

    /// [`check_patient`](Self::check_patient) where a refusal ends the call: `denied`, with the
    /// decision's reason for the user.
    async fn require_patient(
        &self,
        services: &Services,
        patient: &str,
        resource: AccessResource,
        action: AccessAction,
        purpose: &str,
        object: &str,
    ) -> Result<(), CapError> {
        let d = self
            .check_patient(services, patient, resource, action, purpose, object)
            .await?;
        if d.allowed {
            Ok(())
        } else {
            Err(CapError::Denied(d.reason))
        }
    }
}

impl context::Host for HostState {
    async fn current(&mut self) -> Principal {
        let p = &self.call.principal;
        Principal {
            kind: match p.kind {
                HostKind::User => PrincipalKind::User,
                HostKind::System => PrincipalKind::System,
                HostKind::PatientLink => PrincipalKind::PatientLink,
                HostKind::Anonymous => PrincipalKind::Anonymous,
            },
            subject: p.subject.clone(),
            national_id: p.national_id.clone(),
            profession: p.profession.clone(),
            organisation: p.organisation.clone(),
            roles: p.roles.clone(),
        }
    }

    async fn patient(&mut self) -> Option<String> {
        self.call.patient.clone()
    }

    async fn request_id(&mut self) -> String {
        self.call.request_id.clone()
    }

    async fn plugin_id(&mut self) -> String {
        self.call.plugin.to_string()
    }

    async fn config(&mut self, key: String) -> Option<String> {
        self.call.config.get(&key).cloned()
    }
}

impl consent::Host for HostState {
    async fn check(
        &mut self,
        patient: String,
        action: consent::Action,
        purpose: String,
    ) -> consent::Decision {
        let action = match action {
            consent::Action::Read => AccessAction::Read,
            consent::Action::Write => AccessAction::Write,
            consent::Action::Share => AccessAction::Share,
        };
        match self
            .call
            .check_patient(
                &self.services,
                &patient,
                AccessResource::Record,
                action,
                &purpose,
                "consent-check",
            )
            .await
        {
            Ok(d) => consent::Decision {
                allowed: d.allowed,
                reason: d.reason,
            },
            // No audit record, no access.
            Err(_) => consent::Decision {
                allowed: false,
                reason: "the audit trail is unavailable".into(),
            },
        }
    }
}

fn kv_error(e: KvFailure) -> CapError {
    if e.unavailable {
        CapError::Unavailable
    } else {
        CapError::Invalid("the store refused the operation".into())
    }
}

/// Purpose recorded for store access: the plugin acts within the care the route serves.
const STORE_PURPOSE: &str = "care";

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> Result<Option<store::Entry>, CapError> {
        let services = self.services.clone();
        let Some(entry) = services
            .kv
            .get(&self.call.plugin, &key)
            .await
            .map_err(kv_error)?
        else {
            return Ok(None);
        };
        if let Some(patient) = &entry.patient {
            self.call
                .require_patient(
                    &services,
                    patient,
                    AccessResource::Record,
                    AccessAction::Read,
                    STORE_PURPOSE,
                    "store-entry",
                )
                .await?;
        }
        Ok(Some(store::Entry {
            key: entry.key,
            value: entry.value,
            patient: entry.patient,
        }))
    }

    async fn put(
        &mut self,
        key: String,
        value: Vec<u8>,
        patient: Option<String>,
    ) -> Result<(), CapError> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(CapError::Invalid(format!(
                "keys are 1 to {MAX_KEY} bytes long"
            )));
        }
        if value.len() > MAX_VALUE {
            return Err(CapError::QuotaExceeded);
        }
        let services = self.services.clone();
        // Replacing an entry about a patient is a write to that patient's data too.
        let previous = services
            .kv
            .get(&self.call.plugin, &key)
            .await
            .map_err(kv_error)?
            .and_then(|e| e.patient);
        for p in previous.iter().chain(patient.iter()) {
            self.call
                .require_patient(
                    &services,
                    p,
                    AccessResource::Record,
                    AccessAction::Write,
                    STORE_PURPOSE,
                    "store-entry",
                )
                .await?;
        }
        services
            .kv
            .put(
                &self.call.plugin,
                KvEntry {
                    key,
                    value,
                    patient,
                },
            )
            .await
            .map_err(kv_error)
    }

    async fn delete(&mut self, key: String) -> Result<bool, CapError> {
        let services = self.services.clone();
        let existing = services
            .kv
            .get(&self.call.plugin, &key)
            .await
            .map_err(kv_error)?;
        if let Some(patient) = existing.as_ref().and_then(|e| e.patient.as_deref()) {
            self.call
                .require_patient(
                    &services,
                    patient,
                    AccessResource::Record,
                    AccessAction::Write,
                    STORE_PURPOSE,
                    "store-entry",
                )
                .await?;
        }
        services
            .kv
            .delete(&self.call.plugin, &key)
            .await
            .map_err(kv_error)
    }

    async fn scan(
        &mut self,
        prefix: String,
        start_after: Option<String>,
        limit: u32,
    ) -> Result<Vec<store::Entry>, CapError> {
        let services = self.services.clone();
        let entries = services
            .kv
            .scan(
                &self.call.plugin,
                &prefix,
                start_after.as_deref(),
                limit.min(MAX_SCAN),
            )
            .await
            .map_err(kv_error)?;
        let mut visible = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(patient) = &entry.patient {
                let d = self
                    .call
                    .check_patient(
                        &services,
                        patient,
                        AccessResource::Record,
                        AccessAction::Read,
                        STORE_PURPOSE,
                        "store-entry",
                    )
                    .await?;
                if !d.allowed {
                    continue;
                }
            }
            visible.push(store::Entry {
                key: entry.key,
                value: entry.value,
                patient: entry.patient,
            });
        }
        Ok(visible)
    }
}

impl audit::Host for HostState {
    async fn emit(&mut self, event: audit::Event) -> Result<(), CapError> {
        if event.action.is_empty() || event.action.len() > 128 || event.object_type.len() > 128 {
            return Err(CapError::Invalid(
                "action and object-type are 1 to 128 bytes".into(),
            ));
        }
        // The plugin's action is namespaced so it cannot pass for one of the core's.
        let mut record = self.call.audit_record(
            &format!("plugin.{}.{}", self.call.plugin, event.action),
            &event.object_type,
            Outcome::Success,
        );
        if let Some(id) = event.object_id {
            record = record.with_object_id(id);
        }
        if let Some(p) = event.patient {
            record = record.with_patient(p);
        }
        let services = self.services.clone();
        services
            .audit
            .append(record)
            .await
            .map_err(|_| CapError::Unavailable)
    }
}

impl logging::Host for HostState {
    async fn log(&mut self, level: logging::Level, message: String) {
        let plugin = &*self.call.plugin;
        let request_id = &self.call.request_id;
        // Bounded so a plugin cannot flood the log with one call.
        let message = truncate(&message, 8192);
        match level {
            logging::Level::Trace => tracing::trace!(plugin, request_id, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, request_id, "{message}"),
            logging::Level::Info => tracing::info!(plugin, request_id, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, request_id, "{message}"),
            logging::Level::Error => tracing::error!(plugin, request_id, "{message}"),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn unavailable(_: crate::services::ServiceUnavailable) -> CapError {
    CapError::Unavailable
}

/// Purpose recorded for identity look-ups made by a plugin on behalf of its caller.
const IDENTITY_PURPOSE: &str = "care";

impl identity::Host for HostState {
    async fn get(&mut self, id: String) -> Result<identity::Patient, CapError> {
        let services = self.services.clone();
        // Decided before the look-up: a caller without access learns nothing of whether the id
        // exists (the decision on an unknown patient finds no ground for access).
        self.call
            .require_patient(
                &services,
                &id,
                AccessResource::Identity,
                AccessAction::Read,
                IDENTITY_PURPOSE,
                "patient",
            )
            .await?;
        let patient = services
            .identity
            .patient(&id)
            .await
            .map_err(unavailable)?
            .ok_or(CapError::NotFound)?;
        Ok(identity::Patient {
            id: patient.id,
            family: patient.family,
            given: patient.given,
            birth_date: patient.birth_date,
            gender: patient.gender,
            ins: patient.ins,
            identifiers: patient
                .identifiers
                .into_iter()
                .map(|(system, value)| identity::Identifier { system, value })
                .collect(),
            merged_into: patient.merged_into,
        })
    }

    async fn resolve(&mut self, system: String, value: String) -> Result<Option<String>, CapError> {
        if system.is_empty() || system.len() > 128 || value.is_empty() || value.len() > 128 {
            return Err(CapError::Invalid(
                "system and value are 1 to 128 characters".into(),
            ));
        }
        let services = self.services.clone();
        // "No such patient" is an answer too (whether someone is known to a given hospital): a
        // caller who may read no identity at all is refused before the look-up, and audited
        // without a patient.
        let pre = services
            .access
            .precheck(
                &self.call.principal,
                AccessResource::Identity,
                AccessAction::Read,
            )
            .await;
        if !pre.allowed {
            let record = self
                .call
                .audit_record("plugin.patient.resolve", "patient", Outcome::Denied)
                .with_detail(format!("plugin={} reason={}", self.call.plugin, pre.code));
            services
                .audit
                .append(record)
                .await
                .map_err(|_| CapError::Unavailable)?;
            return Err(CapError::Denied(pre.reason));
        }
        let Some(id) = services
            .identity
            .resolve(&system, &value)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        self.call
            .require_patient(
                &services,
                &id,
                AccessResource::Identity,
                AccessAction::Read,
                IDENTITY_PURPOSE,
                "patient",
            )
            .await?;
        Ok(Some(id))
    }
}

impl directory::Host for HostState {
    async fn get(
        &mut self,
        national_id: String,
    ) -> Result<Option<directory::Practitioner>, CapError> {
        if national_id.is_empty() || national_id.len() > 32 {
            return Err(CapError::Invalid(
                "a national id is 1 to 32 characters".into(),
            ));
        }
        let services = self.services.clone();
        let found = services
            .directory
            .practitioner(&national_id)
            .await
            .map_err(unavailable)?;
        Ok(found.map(|p| directory::Practitioner {
            national_id: p.national_id,
            family: p.family,
            given: p.given,
            profession: p.profession,
            profession_label: p.profession_label,
            specialties: p.specialties,
            organisations: p.organisations,
        }))
    }
}

/// Payloads are JSON of at most 64 KiB; a poll returns at most 500 events.
const MAX_EVENT_PAYLOAD: usize = 64 * 1024;
const MAX_POLL: u32 = 500;

fn valid_event_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

impl events::Host for HostState {
    async fn publish(
        &mut self,
        name: String,
        payload: String,
        patient: Option<String>,
    ) -> Result<u64, CapError> {
        if !valid_event_name(&name) {
            return Err(CapError::Invalid(
                "an event name is 1 to 64 characters of a-z, 0-9, '.' and '-'".into(),
            ));
        }
        if payload.len() > MAX_EVENT_PAYLOAD {
            return Err(CapError::QuotaExceeded);
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(&payload).is_err() {
            return Err(CapError::Invalid("the payload is not JSON".into()));
        }
        let services = self.services.clone();
        // An event about a patient is a record about them: written under the decision.
        if let Some(p) = &patient {
            self.call
                .require_patient(
                    &services,
                    p,
                    AccessResource::Record,
                    AccessAction::Write,
                    STORE_PURPOSE,
                    "event",
                )
                .await?;
        }
        let topic = format!("plugin.{}.{name}", self.call.plugin);
        services
            .events
            .publish(&topic, patient.as_deref(), &payload, now_us())
            .await
            .map_err(unavailable)
    }

    async fn poll(
        &mut self,
        topic: String,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<events::Event>, CapError> {
        let own = topic
            .strip_prefix("plugin.")
            .and_then(|rest| rest.strip_prefix(&*self.call.plugin))
            .is_some_and(|rest| rest.starts_with('.'));
        if !own && !self.call.subscriptions.contains(&topic) {
            return Err(CapError::Denied(format!(
                "topic {topic:?} is neither one of this plugin's nor a core topic its manifest \
                 subscribes to"
            )));
        }
        let services = self.services.clone();
        let found = services
            .events
            .poll(&topic, after.unwrap_or(0), limit.min(MAX_POLL))
            .await
            .map_err(unavailable)?;
        // One decision (and audit record) per patient of the batch, not per event.
        let mut decided: std::collections::HashMap<String, bool> = Default::default();
        let mut visible = Vec::with_capacity(found.len());
        for e in found {
            if let Some(p) = &e.patient {
                let allowed = match decided.get(p) {
                    Some(a) => *a,
                    None => {
                        let d = self
                            .call
                            .check_patient(
                                &services,
                                p,
                                AccessResource::Record,
                                AccessAction::Read,
                                STORE_PURPOSE,
                                "event",
                            )
                            .await?;
                        decided.insert(p.clone(), d.allowed);
                        d.allowed
                    }
                };
                if !allowed {
                    continue;
                }
            }
            visible.push(events::Event {
                id: e.id,
                topic: e.topic,
                payload: e.payload,
                patient: e.patient,
                published_at: (e.published_at_us / 1000).max(0) as u64,
            });
        }
        Ok(visible)
    }
}

fn blob_info(record: &crate::blobs::BlobRecord, patient: Option<String>) -> blobs::BlobInfo {
    blobs::BlobInfo {
        id: record.id.clone(),
        size: record.size,
        media_type: record.media_type.clone(),
        sha256: record.sha256.clone(),
        patient,
        created_at: record.created_at_ms,
    }
}

/// Purpose recorded for blob access: as for store entries, the care the route serves.
const BLOB_PURPOSE: &str = "care";

impl HostState {
    fn blob_service(&self) -> Result<Arc<crate::blobs::PluginBlobs>, CapError> {
        self.services.blobs.clone().ok_or(CapError::Unavailable)
    }

    fn take_blob_handle(&mut self) -> Result<(), CapError> {
        if self.open_blob_handles >= crate::blobs::MAX_OPEN {
            return Err(CapError::QuotaExceeded);
        }
        self.open_blob_handles += 1;
        Ok(())
    }
}

/// The record of blob `id` of this plugin, after the access decision on its patient.
async fn blob_record(
    call: &CallContext,
    services: &Services,
    id: &str,
    action: AccessAction,
) -> Result<(crate::blobs::BlobRecord, Option<String>), CapError> {
    if id.is_empty() || id.len() > 64 {
        return Err(CapError::NotFound);
    }
    let entry = services
        .kv
        .get(&crate::blobs::namespace(&call.plugin), id)
        .await
        .map_err(kv_error)?
        .ok_or(CapError::NotFound)?;
    if let Some(patient) = &entry.patient {
        call.require_patient(
            services,
            patient,
            AccessResource::Record,
            action,
            BLOB_PURPOSE,
            "blob",
        )
        .await?;
    }
    let record: crate::blobs::BlobRecord = serde_json::from_slice(&entry.value).map_err(|e| {
        tracing::error!(plugin = %call.plugin, id, error = %e, "blob record unreadable");
        CapError::Unavailable
    })?;
    Ok((record, entry.patient))
}

fn blob_error(plugin: &str, e: megalis_blobs::BlobError) -> CapError {
    match e {
        megalis_blobs::BlobError::TooLarge { .. } => CapError::QuotaExceeded,
        megalis_blobs::BlobError::NotFound(_) => CapError::NotFound,
        other => {
            tracing::error!(plugin, error = %other, "plugin blob");
            CapError::Unavailable
        }
    }
}

impl blobs::Host for HostState {
    async fn create(
        &mut self,
        media_type: String,
        patient: Option<String>,
    ) -> Result<Resource<crate::blobs::UploadState>, CapError> {
        if media_type.is_empty()
            || media_type.len() > 127
            || !media_type.contains('/')
            || media_type.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(CapError::Invalid(
                "media-type is a MIME type such as application/dicom".into(),
            ));
        }
        let blobs = self.blob_service()?;
        let services = self.services.clone();
        if let Some(p) = &patient {
            self.call
                .require_patient(
                    &services,
                    p,
                    AccessResource::Record,
                    AccessAction::Write,
                    BLOB_PURPOSE,
                    "blob",
                )
                .await?;
        }
        self.take_blob_handle()?;
        let upload = crate::blobs::UploadState::start(&blobs, media_type, patient);
        self.table.push(upload).map_err(|_| {
            self.open_blob_handles -= 1;
            CapError::QuotaExceeded
        })
    }

    async fn stat(&mut self, id: String) -> Result<blobs::BlobInfo, CapError> {
        let (record, patient) =
            blob_record(&self.call, &self.services.clone(), &id, AccessAction::Read).await?;
        Ok(blob_info(&record, patient))
    }

    async fn open(
        &mut self,
        id: String,
    ) -> Result<Resource<crate::blobs::DownloadState>, CapError> {
        let blobs = self.blob_service()?;
        let (record, _) =
            blob_record(&self.call, &self.services.clone(), &id, AccessAction::Read).await?;
        let digest = crate::blobs::digest_of(&record.sha256).ok_or(CapError::Unavailable)?;
        self.take_blob_handle()?;
        let stream = match blobs.store.get(&digest).await {
            Ok(s) => s,
            Err(e) => {
                self.open_blob_handles -= 1;
                return Err(blob_error(&self.call.plugin, e));
            }
        };
        self.table
            .push(crate::blobs::DownloadState::new(stream))
            .map_err(|_| {
                self.open_blob_handles -= 1;
                CapError::QuotaExceeded
            })
    }

    async fn delete(&mut self, id: String) -> Result<bool, CapError> {
        let (_, _) =
            match blob_record(&self.call, &self.services.clone(), &id, AccessAction::Write).await {
                Ok(r) => r,
                Err(CapError::NotFound) => return Ok(false),
                Err(e) => return Err(e),
            };
        // Only the record goes: the content may be shared (same bytes stored by another plugin
        // or as a document), and content without records is the retention job's to remove.
        let services = self.services.clone();
        services
            .kv
            .delete(&crate::blobs::namespace(&self.call.plugin), &id)
            .await
            .map_err(kv_error)
    }
}

impl blobs::HostUpload for HostState {
    async fn write(
        &mut self,
        this: Resource<crate::blobs::UploadState>,
        piece: Vec<u8>,
    ) -> Result<(), CapError> {
        if piece.len() > crate::blobs::MAX_PIECE {
            return Err(CapError::Invalid("a piece is at most 1 MiB".into()));
        }
        let upload = self
            .table
            .get_mut(&this)
            .map_err(|_| CapError::Invalid("unknown upload".into()))?;
        let Some(pieces) = upload.pieces.clone() else {
            return Err(CapError::Invalid("the upload is finished".into()));
        };
        upload.written += piece.len() as u64;
        if upload.written > upload.max_size {
            // Over the cap: the upload is over and nothing of it is kept (the store's own cap
            // refuses it too; this answers before the content is read).
            upload.abandon();
            return Err(CapError::QuotaExceeded);
        }
        // Waits while the store is behind (back-pressure). A closed channel means the store's
        // task ended early: `finish` reports why.
        pieces
            .send(Ok(bytes::Bytes::from(piece)))
            .await
            .map_err(|_| CapError::Unavailable)
    }

    async fn finish(
        &mut self,
        this: Resource<crate::blobs::UploadState>,
    ) -> Result<blobs::BlobInfo, CapError> {
        let plugin = self.call.plugin.clone();
        let upload = self
            .table
            .get_mut(&this)
            .map_err(|_| CapError::Invalid("unknown upload".into()))?;
        let (Some(pieces), Some(task)) = (upload.pieces.take(), upload.task.take()) else {
            return Err(CapError::Invalid("the upload is finished".into()));
        };
        let media_type = upload.media_type.clone();
        let patient = upload.patient.clone();
        // The end of the pieces ends the store's stream.
        drop(pieces);
        let stored = match task.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(blob_error(&plugin, e)),
            Err(e) => {
                tracing::error!(plugin = %plugin, error = %e, "plugin blob upload task");
                return Err(CapError::Unavailable);
            }
        };
        let record = crate::blobs::BlobRecord {
            id: crate::blobs::new_id(),
            sha256: stored.sha256.to_hex(),
            size: stored.size,
            media_type,
            created_at_ms: (now_us() / 1000).max(0) as u64,
        };
        let value = serde_json::to_vec(&record).expect("a blob record serialises");
        let services = self.services.clone();
        services
            .kv
            .put(
                &crate::blobs::namespace(&plugin),
                KvEntry {
                    key: record.id.clone(),
                    value,
                    patient: patient.clone(),
                },
            )
            .await
            .map_err(kv_error)?;
        Ok(blob_info(&record, patient))
    }

    async fn drop(&mut self, this: Resource<crate::blobs::UploadState>) -> wasmtime::Result<()> {
        // An unfinished upload's task is aborted by UploadState's Drop: nothing is kept.
        self.table.delete(this)?;
        self.open_blob_handles = self.open_blob_handles.saturating_sub(1);
        Ok(())
    }
}

impl blobs::HostDownload for HostState {
    async fn read(
        &mut self,
        this: Resource<crate::blobs::DownloadState>,
        max: u32,
    ) -> Result<Vec<u8>, CapError> {
        let plugin = self.call.plugin.clone();
        let download = self
            .table
            .get_mut(&this)
            .map_err(|_| CapError::Invalid("unknown download".into()))?;
        let max = (max as usize).clamp(1, crate::blobs::MAX_PIECE);
        download
            .read(max)
            .await
            .map(|b| b.to_vec())
            .map_err(|e| blob_error(&plugin, e))
    }

    async fn drop(&mut self, this: Resource<crate::blobs::DownloadState>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        self.open_blob_handles = self.open_blob_handles.saturating_sub(1);
        Ok(())
    }
}
