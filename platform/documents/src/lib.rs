//! Shared documents of the region, as IHE MHD on FHIR R4: `DocumentReference` metadata in the
//! database, contents (`Binary`) in the blob store under their SHA-256.
//!
//! - [`model`], [`datetime`], [`sniff`], [`fhir`], [`bundle`]: pure domain — the document entry
//!   and its rules, FHIR date ranges, the content-type allowlist and sniffer, the
//!   DocumentReference mapping both ways, ITI-65 bundle checks, ITI-67 parameters and Bundle.
//! - [`Documents`]: the service on the database and the blob store — streamed Binary upload
//!   ([`Documents::store_binary`]), ITI-65 provide ([`Documents::provide_bundle`]), ITI-67 find
//!   ([`Documents::find`]), ITI-68 retrieve ([`Documents::binary_access`],
//!   [`Documents::open_binary`]), withdrawal ([`Documents::mark_entered_in_error`]).
//!
//! Access decisions (consent, care links) and audit records are the server's: every write
//! returns [`Effect`]s saying what changed for which patient, and every read tells which
//! patient(s) it concerns before any content is sent.
//!
//! Nothing is ever deleted: replacing a document marks the old version `superseded` and keeps
//! it; withdrawing one marks it `entered-in-error`. Blobs are written before the rows that
//! reference them (content-addressed, so an unreferenced blob is harmless).

pub mod bundle;
pub mod datetime;
mod db;
pub mod fhir;
mod ingest;
pub mod model;
pub mod sniff;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use megalis_blobs::{BlobError, BlobStore, BlobStream, PutStream, Sha256Digest};
use megalis_store::Database;
use serde::Serialize;
use serde_json::Value;

use db::{DocTx, in_tx};
pub use fhir::{DocumentQuery, InputError, SearchPage, SearchRequest, Subject};
pub use model::{Binary, DocumentEntry, Status};

/// The one error type of the documents context.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The request is wrong (400): the element at fault and why.
    #[error("{0}")]
    Invalid(InputError),
    /// The subject names no known patient (MHD `UnknownPatientId`).
    #[error("unknown patient: {0}")]
    UnknownPatient(InputError),
    /// The request contradicts the stored state (409): a masterIdentifier already used, a
    /// replaced document that is no longer current…
    #[error("{0}")]
    Conflict(InputError),
    /// A streamed content passed the size limit (413); nothing was stored.
    #[error("content larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("{0} not found")]
    NotFound(String),
    /// The patient resolver (identity index) failed.
    #[error("patient resolver: {0}")]
    Resolver(String),
    #[error("corrupt stored document: {0}")]
    Corrupt(String),
    #[error("blob store: {0}")]
    Blob(#[source] BlobError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

impl DocumentError {
    /// The FHIRPath and message for an OperationOutcome, when the error is about the input.
    pub fn input_error(&self) -> Option<&InputError> {
        match self {
            DocumentError::Invalid(e)
            | DocumentError::UnknownPatient(e)
            | DocumentError::Conflict(e) => Some(e),
            _ => None,
        }
    }

    /// Errors caused by the request (4xx), as opposed to the platform (5xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            DocumentError::Invalid(_)
                | DocumentError::UnknownPatient(_)
                | DocumentError::Conflict(_)
                | DocumentError::TooLarge { .. }
                | DocumentError::NotFound(_)
        )
    }
}

impl From<InputError> for DocumentError {
    fn from(e: InputError) -> Self {
        DocumentError::Invalid(e)
    }
}

type Result<T> = std::result::Result<T, DocumentError>;

/// Failure of a [`PatientResolver`].
pub type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// Turns a document's subject into a regional patient id; the server plugs in the identity
/// index (which also decides whether an INS is acceptable). `Ok(None)`: no such patient.
pub trait PatientResolver: Send + Sync {
    fn resolve(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = std::result::Result<Option<String>, ResolveError>> + Send;
}

/// Any `Fn(&Subject) -> impl Future<…>` is a resolver (the future owns what it needs).
impl<F, Fut> PatientResolver for F
where
    F: Fn(&Subject) -> Fut + Send + Sync,
    Fut: Future<Output = std::result::Result<Option<String>, ResolveError>> + Send,
{
    fn resolve(
        &self,
        subject: &Subject,
    ) -> impl Future<Output = std::result::Result<Option<String>, ResolveError>> + Send {
        self(subject)
    }
}

/// Resolves `subject`, or fails with [`DocumentError::UnknownPatient`] at `expression`.
pub async fn resolve_subject(
    resolver: &impl PatientResolver,
    subject: &Subject,
    expression: &str,
) -> Result<String> {
    match resolver.resolve(subject).await {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(DocumentError::UnknownPatient(InputError {
            expression: expression.to_string(),
            message: match subject {
                Subject::Patient(id) => format!("Patient/{id} is not known"),
                Subject::Identifier(i) => {
                    format!("no patient has the identifier {}|{}", i.system, i.value)
                }
            },
        })),
        Err(e) => Err(DocumentError::Resolver(e.to_string())),
    }
}

/// Size limits of contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest streamed Binary (`POST /fhir/Binary`): EEG recordings reach hundreds of MB.
    pub max_binary_size: u64,
    /// Largest base64 Binary inside an ITI-65 Bundle, which sits in memory whole: keep it small
    /// and send large contents streamed.
    pub max_inline_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_binary_size: 1 << 30,
            max_inline_size: 20 << 20,
        }
    }
}

/// A hash the uploader declared for a streamed content, checked once it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredHash {
    Sha256(Sha256Digest),
    /// Lower-case hex SHA-1.
    Sha1(String),
}

impl DeclaredHash {
    /// A SHA-256 in hexadecimal (64 digits) or a SHA-1 in base64 (FHIR `Attachment.hash`).
    pub fn parse(s: &str) -> std::result::Result<Self, InputError> {
        use base64::Engine;
        if let Ok(d) = s.parse::<Sha256Digest>() {
            return Ok(DeclaredHash::Sha256(d));
        }
        match base64::engine::general_purpose::STANDARD.decode(s) {
            Ok(b) if b.len() == 20 => Ok(DeclaredHash::Sha1(hex::encode(b))),
            _ => Err(fhir::input(
                "Binary",
                "a declared hash is a SHA-256 in hexadecimal or a SHA-1 in base64",
            )),
        }
    }
}

/// What a write changed, for which patient: one audit record each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// `document.create`, `document.supersede`, `document.entered-in-error`, `binary.create`.
    pub action: &'static str,
    /// The regional patient; `None` for a Binary uploaded before any document names it.
    pub patient_id: Option<String>,
    /// `DocumentReference/{id}` or `Binary/{id}`.
    pub resource: String,
    pub detail: String,
}

/// Result of an ITI-65 provide.
#[derive(Debug, Clone)]
pub struct Provided {
    pub documents: Vec<DocumentEntry>,
    /// Binaries created from the bundle's Binary entries.
    pub binaries: Vec<Binary>,
    pub effects: Vec<Effect>,
    /// The `transaction-response` Bundle to answer with.
    pub response: Value,
}

/// What the access decision of an ITI-68 read needs: the Binary and the documents (with their
/// patients) that use it. A Binary no document uses yet belongs to its uploader only.
#[derive(Debug, Clone)]
pub struct BinaryAccess {
    pub binary: Binary,
    /// `(document id, patient id)` of each document whose content it is.
    pub documents: Vec<(String, String)>,
}

impl BinaryAccess {
    /// The distinct patients concerned.
    pub fn patients(&self) -> Vec<&str> {
        let mut p: Vec<&str> = self.documents.iter().map(|(_, p)| p.as_str()).collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

/// A Bundle that passed [`Documents::check_bundle`]: only that function makes one, so
/// [`Documents::provide_checked`] never writes an unchecked plan.
#[derive(Debug, Clone)]
pub struct CheckedBundle {
    plan: bundle::ProvideBundle,
    patient_id: String,
}

impl CheckedBundle {
    /// The one regional patient all its documents are about (for the access decision).
    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// How many DocumentReferences it provides.
    pub fn documents(&self) -> usize {
        self.plan.documents.len()
    }
}

/// The documents service.
#[derive(Clone)]
pub struct Documents {
    db: Database,
    blobs: Arc<dyn BlobStore>,
    limits: Limits,
}

fn unique_violation(e: &DocumentError) -> bool {
    matches!(e, DocumentError::Store(sqlx::Error::Database(d)) if d.is_unique_violation())
}

impl Documents {
    pub fn new(db: Database, blobs: Arc<dyn BlobStore>, limits: Limits) -> Self {
        Documents { db, blobs, limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Streams a content into the blob store and records it as a Binary (`POST /fhir/Binary`).
    /// The content is refused while it streams if it passes `max_binary_size`
    /// ([`DocumentError::TooLarge`]) or is not what `content_type` declares; a `declared` hash
    /// is compared once it is complete. No row is written unless everything holds.
    pub async fn store_binary(
        &self,
        data: PutStream,
        content_type: &str,
        declared: Option<DeclaredHash>,
        uploader: &str,
    ) -> Result<(Binary, Effect)> {
        let media = sniff::MediaType::parse(content_type)
            .map_err(|e| fhir::input("Binary.contentType", e.to_string()))?;
        let limit = self.limits.max_binary_size;
        let inspected = ingest::put_inspected(&*self.blobs, data, media.clone(), limit)
            .await
            .map_err(|e| match e {
                ingest::IngestError::Refused(e) => {
                    DocumentError::Invalid(fhir::input("Binary.data", e.to_string()))
                }
                ingest::IngestError::Blob(BlobError::TooLarge { limit }) => {
                    DocumentError::TooLarge { limit }
                }
                ingest::IngestError::Blob(e) => DocumentError::Blob(e),
            })?;
        // A mismatch leaves the blob in the store: it is content-addressed and may be another
        // document's content too, so it is never deleted here (no row references it).
        match &declared {
            Some(DeclaredHash::Sha256(d)) if *d != inspected.blob.sha256 => {
                return Err(DocumentError::Invalid(fhir::input(
                    "Binary",
                    format!(
                        "the declared SHA-256 {d} does not match the content's {}",
                        inspected.blob.sha256
                    ),
                )));
            }
            Some(DeclaredHash::Sha1(d)) if *d != inspected.sha1 => {
                return Err(DocumentError::Invalid(fhir::input(
                    "Binary",
                    format!(
                        "the declared SHA-1 {} does not match the content's {}",
                        model::sha1_base64(d),
                        model::sha1_base64(&inspected.sha1)
                    ),
                )));
            }
            _ => {}
        }
        let binary = Binary {
            id: model::new_id(),
            sha256: inspected.blob.sha256,
            sha1: inspected.sha1,
            size: inspected.blob.size,
            content_type: media.as_str().to_string(),
            uploaded_by: uploader.to_string(),
            created_at_us: datetime::now_us(),
        };
        in_tx!(&self.db, tx => tx.insert_binary(&binary).await?)?;
        let effect = Effect {
            action: "binary.create",
            patient_id: None,
            resource: format!("Binary/{}", binary.id),
            detail: format!(
                "{} bytes, {}, sha256 {}",
                binary.size, binary.content_type, binary.sha256
            ),
        };
        Ok((binary, effect))
    }

    /// ITI-65: checks a transaction Bundle whole, resolves its patient, writes the Binary
    /// contents to the blob store, then creates every row in one transaction (all or nothing).
    /// All documents of one transaction are about one patient (as an XDS submission set). To
    /// decide access before anything is written, call [`Documents::check_bundle`], decide on
    /// [`CheckedBundle::patient_id`], then [`Documents::provide_checked`].
    pub async fn provide_bundle(
        &self,
        bundle: &Value,
        resolver: &impl PatientResolver,
        submitter: &str,
    ) -> Result<Provided> {
        let checked = self.check_bundle(bundle, resolver, submitter).await?;
        self.provide_checked(checked, submitter).await
    }

    /// Provides a single DocumentReference (`POST /fhir/DocumentReference`) whose attachment
    /// names a Binary stored before: a one-entry ITI-65.
    pub async fn provide_document(
        &self,
        resource: &Value,
        resolver: &impl PatientResolver,
        submitter: &str,
    ) -> Result<Provided> {
        let document = fhir::incoming_document(resource, "DocumentReference")?;
        if let fhir::BinaryRef::Bundle(url) = &document.attachment.url {
            return Err(DocumentError::Invalid(fhir::input(
                format!("{}.url", document.attachment_path()),
                format!("{url} names a bundle entry: outside a Bundle the url is Binary/{{id}}"),
            )));
        }
        let patient_id = resolve_subject(
            resolver,
            &document.subject,
            &format!("{}.subject", document.path),
        )
        .await?;
        let plan = bundle::ProvideBundle {
            documents: vec![bundle::BundleDocument {
                index: 0,
                full_url: None,
                document,
            }],
            binaries: Vec::new(),
            kinds: vec![bundle::EntryKind::DocumentReference],
        };
        self.provide_checked(CheckedBundle { plan, patient_id }, submitter)
            .await
    }

    /// The checks of [`Documents::provide_bundle`] that need no write: the Bundle's shape and
    /// contents, and its one patient (resolved). Lets the server decide access before writing.
    pub async fn check_bundle(
        &self,
        bundle: &Value,
        resolver: &impl PatientResolver,
        submitter: &str,
    ) -> Result<CheckedBundle> {
        let plan = bundle::provide_bundle(
            bundle,
            self.limits.max_inline_size,
            submitter,
            datetime::now_us(),
        )?;
        let mut resolved: HashMap<&Subject, String> = HashMap::new();
        let mut patient: Option<String> = None;
        for d in &plan.documents {
            let subject = &d.document.subject;
            let path = format!("{}.subject", d.document.path);
            let id = match resolved.get(subject) {
                Some(id) => id.clone(),
                None => {
                    let id = resolve_subject(resolver, subject, &path).await?;
                    resolved.insert(subject, id.clone());
                    id
                }
            };
            match &patient {
                None => patient = Some(id),
                Some(p) if *p != id => {
                    return Err(DocumentError::Invalid(fhir::input(
                        path,
                        "all documents of a transaction are about one patient",
                    )));
                }
                Some(_) => {}
            }
        }
        let patient_id = patient.expect("a checked bundle has a document");
        Ok(CheckedBundle { plan, patient_id })
    }

    /// Writes a Bundle checked by [`Documents::check_bundle`] with the same `submitter`: the
    /// blobs, then every row in one transaction (all or nothing). The checks that need the
    /// stored state (a named `Binary/{id}`, the replaced version, the masterIdentifier) run
    /// inside that transaction.
    pub async fn provide_checked(
        &self,
        checked: CheckedBundle,
        submitter: &str,
    ) -> Result<Provided> {
        let CheckedBundle { plan, patient_id } = checked;
        // Contents first: content-addressed, so a failure below leaves only unreferenced blobs.
        for b in &plan.binaries {
            let stored = self
                .blobs
                .put_bytes(bytes::Bytes::copy_from_slice(&b.data))
                .await
                .map_err(DocumentError::Blob)?;
            if stored.sha256 != b.binary.sha256 || stored.size != b.binary.size {
                return Err(DocumentError::Blob(BlobError::Corrupt {
                    sha256: stored.sha256,
                    detail: "stored content differs from the one hashed".into(),
                }));
            }
        }
        let now = datetime::now_us();
        let by_url: HashMap<&str, &Binary> = plan
            .binaries
            .iter()
            .map(|b| (b.full_url.as_str(), &b.binary))
            .collect();
        let result = in_tx!(&self.db, tx => {
            let mut entries = Vec::new();
            let mut effects = Vec::new();
            for b in &plan.binaries {
                tx.insert_binary(&b.binary).await?;
                effects.push(Effect {
                    action: "binary.create",
                    patient_id: Some(patient_id.clone()),
                    resource: format!("Binary/{}", b.binary.id),
                    detail: format!("{} bytes, {}", b.binary.size, b.binary.content_type),
                });
            }
            for d in &plan.documents {
                let doc = &d.document;
                let url_path = format!("{}.url", doc.attachment_path());
                let binary = match &doc.attachment.url {
                    fhir::BinaryRef::Bundle(url) => (*by_url.get(url.as_str()).ok_or_else(|| {
                        fhir::input(&url_path, "no Binary of the Bundle has this fullUrl")
                    })?)
                    .clone(),
                    fhir::BinaryRef::Stored(id) => {
                        let b = tx.binary(id).await?.ok_or_else(|| {
                            fhir::input(&url_path, format!("Binary/{id} does not exist"))
                        })?;
                        // Binary ids travel in URLs and logs: only the uploader may make its
                        // upload a patient's document.
                        if b.uploaded_by != submitter {
                            return Err(DocumentError::Invalid(fhir::input(
                                &url_path,
                                format!("Binary/{id} was uploaded by another client"),
                            )));
                        }
                        b
                    }
                };
                if let Some(existing) = tx.master_identifier(&doc.master_identifier).await? {
                    return Err(DocumentError::Conflict(fhir::input(
                        format!("{}.masterIdentifier", doc.path),
                        format!("DocumentReference/{existing} already has this masterIdentifier"),
                    )));
                }
                if let Some(replaced) = &doc.replaces {
                    let rel = format!("{}.relatesTo[0].target", doc.path);
                    let head = tx.head(replaced).await?.ok_or_else(|| {
                        fhir::input(&rel, format!("DocumentReference/{replaced} does not exist"))
                    })?;
                    if head.patient_id != patient_id {
                        return Err(DocumentError::Invalid(fhir::input(
                            &rel,
                            "the replaced document is about another patient",
                        )));
                    }
                    if head.status != Status::Current
                        || !tx.set_status(replaced, Status::Current, Status::Superseded, now).await?
                    {
                        return Err(DocumentError::Conflict(fhir::input(
                            &rel,
                            format!("DocumentReference/{replaced} is {}, not current", head.status.as_str()),
                        )));
                    }
                    effects.push(Effect {
                        action: "document.supersede",
                        patient_id: Some(patient_id.clone()),
                        resource: format!("DocumentReference/{replaced}"),
                        detail: "replaced by a new version".into(),
                    });
                }
                let entry = doc.clone().into_entry(model::new_id(), patient_id.clone(), &binary, submitter, now)?;
                tx.insert_entry(&entry).await?;
                effects.push(Effect {
                    action: "document.create",
                    patient_id: Some(patient_id.clone()),
                    resource: format!("DocumentReference/{}", entry.id),
                    detail: format!(
                        "type {} ({}), {}, content Binary/{}",
                        entry.metadata.doc_type.code,
                        entry.metadata.master_identifier,
                        entry.metadata.confidentiality.code(),
                        binary.id
                    ),
                });
                entries.push(entry);
            }
            // Last in the transaction: the event exists exactly when the documents do.
            for entry in &entries {
                let payload = serde_json::json!({
                    "document": entry.id,
                    "type": entry.metadata.doc_type.code,
                    "replaces": entry.metadata.replaces,
                });
                tx.publish_event(
                    megalis_store::events::DOCUMENT_SHARED,
                    Some(&entry.patient_id),
                    &payload.to_string(),
                    now,
                )
                .await?;
            }
            (entries, effects)
        });
        let (documents, effects) = match result {
            Ok(v) => v,
            // Two providers raced on one masterIdentifier: the loser learns it here.
            Err(e) if unique_violation(&e) => {
                return Err(DocumentError::Conflict(fhir::input(
                    "DocumentReference.masterIdentifier",
                    "a document with this masterIdentifier was provided concurrently",
                )));
            }
            Err(e) => return Err(e),
        };
        let binaries: Vec<Binary> = plan.binaries.into_iter().map(|b| b.binary).collect();
        let response = bundle::response_bundle(
            &plan.kinds,
            &documents.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
            &binaries.iter().map(|b| b.id.clone()).collect::<Vec<_>>(),
        );
        Ok(Provided {
            documents,
            binaries,
            effects,
            response,
        })
    }

    /// ITI-67: a page of one patient's documents, newest first (date desc, then id).
    pub async fn find(&self, query: &DocumentQuery) -> Result<SearchPage> {
        let (total, entries) = db::find(&self.db, query).await?;
        Ok(SearchPage {
            total,
            entries,
            offset: query.offset,
            count: query.count,
        })
    }

    /// A document entry by id (`GET /fhir/DocumentReference/{id}`).
    pub async fn document(&self, id: &str) -> Result<DocumentEntry> {
        db::document(&self.db, id)
            .await?
            .ok_or_else(|| DocumentError::NotFound(format!("DocumentReference/{id}")))
    }

    /// The id of the newer version that replaced a document, if any.
    pub async fn replaced_by(&self, id: &str) -> Result<Option<String>> {
        db::replaced_by(&self.db, id).await
    }

    /// ITI-68, first step: the Binary and the documents (patients) using it, for the access
    /// decision before anything is sent.
    pub async fn binary_access(&self, id: &str) -> Result<BinaryAccess> {
        let binary = db::binary(&self.db, id)
            .await?
            .ok_or_else(|| DocumentError::NotFound(format!("Binary/{id}")))?;
        let documents = db::binary_users(&self.db, id).await?;
        Ok(BinaryAccess { binary, documents })
    }

    /// ITI-68, second step: the content's stream. The blob store checks it against its SHA-256
    /// while streaming and ends the stream with an error instead of its last chunk if it does
    /// not match (see `megalis_blobs`).
    pub async fn open_binary(&self, binary: &Binary) -> Result<BlobStream> {
        self.blobs
            .get(&binary.sha256)
            .await
            .map_err(DocumentError::Blob)
    }

    /// Withdraws a document: its status becomes `entered-in-error` (the row and its content
    /// stay, for the record and the patient's access log). A version it replaced stays
    /// superseded: the author provides a new version if one is needed.
    pub async fn mark_entered_in_error(&self, id: &str, by: &str) -> Result<Effect> {
        let now = datetime::now_us();
        in_tx!(&self.db, tx => {
            let head = tx
                .head(id)
                .await?
                .ok_or_else(|| DocumentError::NotFound(format!("DocumentReference/{id}")))?;
            if head.status == Status::EnteredInError
                || !tx.set_status(id, head.status, Status::EnteredInError, now).await?
            {
                return Err(DocumentError::Conflict(fhir::input(
                    "DocumentReference.status",
                    format!("DocumentReference/{id} is already entered-in-error"),
                )));
            }
            Effect {
                action: "document.entered-in-error",
                patient_id: Some(head.patient_id),
                resource: format!("DocumentReference/{id}"),
                detail: format!("was {}, withdrawn by {by}", head.status.as_str()),
            }
        })
    }
}
