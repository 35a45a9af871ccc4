//! FHIR R4 `DocumentReference` and `Binary` as IHE MHD uses them, both ways, and the ITI-67
//! search parameters and result Bundle. Pure: no database, no blob store.
//!
//! Every refusal of an input names the element at fault with its FHIRPath
//! (`DocumentReference.content[0].attachment.contentType`, or
//! `Bundle.entry[2].resource.content[0]…` inside a transaction) so the server can answer an
//! `OperationOutcome` whose `issue.expression` points at it.

use base64::Engine;
use megalis_blobs::Sha256Digest;
use serde_json::{Map, Value, json};

use crate::datetime::{DateCondition, FhirDateTime};
use crate::model::*;
use crate::sniff::MediaType;

/// Extension carrying the SHA-256 (lower-case hex) of an attachment: the blob store's address,
/// a stronger hash than R4's SHA-1 `Attachment.hash`. A sender may give it to have the content
/// checked; we always write it.
pub const SHA256_EXTENSION: &str = "https://megalis.bzh/fhir/StructureDefinition/attachment-sha256";
/// Identifier system of master identifiers (RFC 3986 URIs: `urn:oid:…`, `urn:uuid:…`).
pub const URI_SYSTEM: &str = "urn:ietf:rfc:3986";

/// The error of a FHIR input: the FHIRPath of the offending element and what is wrong, for the
/// OperationOutcome (`issue.expression`, `issue.diagnostics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub expression: String,
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.expression, self.message)
    }
}

pub(crate) fn input(expression: impl Into<String>, message: impl Into<String>) -> InputError {
    InputError {
        expression: expression.into(),
        message: message.into(),
    }
}

/// Who a document is about, as the sender named them; the server's resolver (the identity
/// index) turns it into a regional patient id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `Patient/{id}`: a regional patient id.
    Patient(String),
    /// A logical reference: an INS (`urn:oid:1.2.250.1.213.1.4.8`), a regional identifier, or
    /// a local identifier of a known authority.
    Identifier(Identifier),
}

/// Where an attachment's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BinaryRef {
    /// `urn:uuid:…`: the `fullUrl` of a Binary entry of the same transaction.
    Bundle(String),
    /// `Binary/{id}`: a Binary stored before (e.g. streamed by `POST /fhir/Binary`).
    Stored(String),
}

/// The attachment of an incoming DocumentReference, before its content is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingAttachment {
    pub url: BinaryRef,
    pub content_type: MediaType,
    pub size: Option<u64>,
    /// Declared SHA-1, lower-case hex (from the base64 `hash`).
    pub sha1: Option<String>,
    pub sha256: Option<Sha256Digest>,
    pub title: Option<String>,
    pub language: Option<String>,
    pub creation: Option<FhirDateTime>,
    pub format: Option<Coding>,
}

/// A DocumentReference read from a provide request: its metadata, whom it is about, and where
/// its content is. [`IncomingDocument::into_entry`] completes it once the content is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingDocument {
    /// FHIRPath of the resource (`DocumentReference` or `Bundle.entry[i].resource`).
    pub path: String,
    pub subject: Subject,
    pub master_identifier: String,
    pub doc_status: Option<DocStatus>,
    pub doc_type: Coding,
    pub category: Option<Coding>,
    pub author: Option<Author>,
    pub custodian: Option<Identifier>,
    pub confidentiality: Confidentiality,
    pub period_start: Option<FhirDateTime>,
    pub period_end: Option<FhirDateTime>,
    pub facility_type: Option<Coding>,
    pub practice_setting: Option<Coding>,
    pub date: Option<FhirDateTime>,
    pub description: Option<String>,
    pub replaces: Option<String>,
    pub attachment: IncomingAttachment,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An optional string element: absent is fine, present must be a non-empty string.
fn opt_string(v: &Value, key: &str, path: &str) -> Result<Option<String>, InputError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(input(format!("{path}.{key}"), "must be a non-empty string")),
    }
}

fn array<'a>(v: &'a Value, key: &str, path: &str) -> Result<&'a [Value], InputError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(input(format!("{path}.{key}"), "must be an array")),
    }
}

fn object<'a>(v: &'a Value, key: &str, path: &str) -> Result<Option<&'a Value>, InputError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(o @ Value::Object(_)) => Ok(Some(o)),
        Some(_) => Err(input(format!("{path}.{key}"), "must be an object")),
    }
}

fn date_time(v: &Value, key: &str, path: &str) -> Result<Option<FhirDateTime>, InputError> {
    opt_string(v, key, path)?
        .map(|s| FhirDateTime::parse(&s).map_err(|e| input(format!("{path}.{key}"), e)))
        .transpose()
}

/// A Coding with a system that is a URI and a code.
fn coding(v: &Value, path: &str) -> Result<Coding, InputError> {
    let system = opt_string(v, "system", path)?
        .ok_or_else(|| input(format!("{path}.system"), "a coding needs a system"))?;
    if !system.contains(':') {
        return Err(input(
            format!("{path}.system"),
            format!("a code system is an absolute URI, not {system:?}"),
        ));
    }
    let code = opt_string(v, "code", path)?
        .ok_or_else(|| input(format!("{path}.code"), "a coding needs a code"))?;
    Ok(Coding {
        system,
        code,
        display: opt_string(v, "display", path)?,
    })
}

/// The first coding of a CodeableConcept (`{ "coding": [...] }`), required to be present.
fn first_coding(v: &Value, path: &str) -> Result<Coding, InputError> {
    let codings = array(v, "coding", path)?;
    let first = codings
        .first()
        .ok_or_else(|| input(format!("{path}.coding"), "a coding is required"))?;
    coding(first, &format!("{path}.coding[0]"))
}

fn identifier(v: &Value, path: &str) -> Result<Identifier, InputError> {
    let system = opt_string(v, "system", path)?
        .ok_or_else(|| input(format!("{path}.system"), "an identifier needs a system"))?;
    let value = opt_string(v, "value", path)?
        .ok_or_else(|| input(format!("{path}.value"), "an identifier needs a value"))?;
    Ok(Identifier { system, value })
}

/// `Type/{id}` with a valid FHIR id, for the expected type.
fn literal_id<'a>(reference: &'a str, resource: &str) -> Option<&'a str> {
    reference
        .strip_prefix(resource)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|id| is_fhir_id(id))
}

/// Reads a `subject` reference.
pub fn subject(v: &Value, path: &str) -> Result<Subject, InputError> {
    if let Some(reference) = opt_string(v, "reference", path)? {
        return literal_id(&reference, "Patient")
            .map(|id| Subject::Patient(id.to_string()))
            .ok_or_else(|| {
                input(
                    format!("{path}.reference"),
                    format!("the subject is a Patient/{{id}} reference, not {reference:?}"),
                )
            });
    }
    if let Some(id) = object(v, "identifier", path)? {
        let id = identifier(id, &format!("{path}.identifier"))?;
        if !id.system.starts_with("urn:oid:") || !is_oid(&id.system[8..]) {
            return Err(input(
                format!("{path}.identifier.system"),
                format!(
                    "patient identifier systems are urn:oid:…, not {:?}",
                    id.system
                ),
            ));
        }
        return Ok(Subject::Identifier(id));
    }
    Err(input(
        path,
        "the subject needs a Patient reference or an identifier (INS or regional identifier)",
    ))
}

fn author(entries: &[Value], path: &str) -> Result<Option<Author>, InputError> {
    let mut practitioner: Option<Author> = None;
    let mut organisation: Option<Identifier> = None;
    for (i, a) in entries.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let reference = opt_string(a, "reference", &p)?;
        let kind = opt_string(a, "type", &p)?;
        let id = object(a, "identifier", &p)?
            .map(|v| identifier(v, &format!("{p}.identifier")))
            .transpose()?;
        let is_org = reference
            .as_deref()
            .is_some_and(|r| r.starts_with("Organization/"))
            || kind.as_deref() == Some("Organization");
        if let Some(r) = &reference
            && r.starts_with('#')
        {
            return Err(input(
                format!("{p}.reference"),
                "contained authors are not supported: give the author's identifier on the reference",
            ));
        }
        if is_org {
            let id = id.ok_or_else(|| {
                input(
                    &p,
                    "an Organization author needs its identifier (FINESS, SIRET…)",
                )
            })?;
            if organisation.replace(id).is_some() {
                return Err(input(&p, "at most one Organization author"));
            }
            continue;
        }
        if let Some(r) = &reference
            && literal_id(r, "Practitioner").is_none()
            && literal_id(r, "PractitionerRole").is_none()
        {
            return Err(input(
                format!("{p}.reference"),
                format!("an author is a Practitioner, PractitionerRole or Organization, not {r:?}"),
            ));
        }
        let Some(id) = id else {
            return Err(input(
                format!("{p}.identifier"),
                format!(
                    "the author needs the national identifier of the professional (system urn:oid:{NATIONAL_ID_OID})"
                ),
            ));
        };
        if id.system != format!("urn:oid:{NATIONAL_ID_OID}") {
            return Err(input(
                format!("{p}.identifier.system"),
                format!(
                    "professionals are identified by their national id (urn:oid:{NATIONAL_ID_OID}), not {:?}",
                    id.system
                ),
            ));
        }
        if !is_national_id(&id.value) {
            return Err(input(
                format!("{p}.identifier.value"),
                format!("{:?} is not a national id (8+RPPS or 0+ADELI)", id.value),
            ));
        }
        let new = Author {
            national_id: id.value,
            reference,
            organisation: None,
        };
        if practitioner.replace(new).is_some() {
            return Err(input(&p, "at most one professional author"));
        }
    }
    match (practitioner, organisation) {
        (Some(mut a), org) => {
            a.organisation = org;
            Ok(Some(a))
        }
        (None, Some(_)) => Err(input(
            path,
            "an Organization author needs a professional author beside it",
        )),
        (None, None) => Ok(None),
    }
}

fn confidentiality(labels: &[Value], path: &str) -> Result<Confidentiality, InputError> {
    let mut found = None;
    for (i, label) in labels.iter().enumerate() {
        let p = format!("{path}[{i}]");
        for (j, c) in array(label, "coding", &p)?.iter().enumerate() {
            let cp = format!("{p}.coding[{j}]");
            let c = coding(c, &cp)?;
            // Dropping a security label we do not understand could expose a document its
            // author meant to restrict: refuse it instead.
            if c.system != CONFIDENTIALITY {
                return Err(input(
                    format!("{cp}.system"),
                    format!("only confidentiality labels ({CONFIDENTIALITY}) are supported"),
                ));
            }
            let level = Confidentiality::parse(&c.code).ok_or_else(|| {
                input(
                    format!("{cp}.code"),
                    format!(
                        "{:?} is not a confidentiality code (U, L, M, N, R, V)",
                        c.code
                    ),
                )
            })?;
            if found.replace(level).is_some() {
                return Err(input(&cp, "one confidentiality code only"));
            }
        }
    }
    // Health data without a label is normal confidentiality (HL7 v3 guidance).
    Ok(found.unwrap_or(Confidentiality::N))
}

fn sha1_hex(hash_b64: &str, path: &str) -> Result<String, InputError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hash_b64)
        .map_err(|_| {
            input(
                path,
                "the hash is base64 (FHIR R4: the SHA-1 of the content)",
            )
        })?;
    if bytes.len() != 20 {
        return Err(input(
            path,
            format!(
                "the hash is a SHA-1 (20 bytes in base64), not {} bytes",
                bytes.len()
            ),
        ));
    }
    Ok(hex::encode(bytes))
}

fn attachment(content: &[Value], path: &str) -> Result<IncomingAttachment, InputError> {
    let [content] = content else {
        return Err(input(
            path,
            if content.is_empty() {
                "a DocumentReference needs one content"
            } else {
                "one content per DocumentReference (one document, one version)"
            },
        ));
    };
    let path = format!("{path}[0]");
    let format = object(content, "format", &path)?
        .map(|f| coding(f, &format!("{path}.format")))
        .transpose()?;
    let att = object(content, "attachment", &path)?.ok_or_else(|| {
        input(
            format!("{path}.attachment"),
            "the content needs an attachment",
        )
    })?;
    let path = format!("{path}.attachment");
    if att.get("data").is_some() {
        return Err(input(
            format!("{path}.data"),
            "inline data is not accepted: send the content as a Binary and reference it in url",
        ));
    }
    let content_type = opt_string(att, "contentType", &path)?.ok_or_else(|| {
        input(
            format!("{path}.contentType"),
            "the content type is required",
        )
    })?;
    let content_type = MediaType::parse(&content_type)
        .map_err(|e| input(format!("{path}.contentType"), e.to_string()))?;
    let url = opt_string(att, "url", &path)?
        .ok_or_else(|| input(format!("{path}.url"), "the url of the Binary is required"))?;
    let url = if let Some(uuid) = url.strip_prefix("urn:uuid:") {
        if !is_uuid(uuid) {
            return Err(input(
                format!("{path}.url"),
                format!("{url:?} is not a urn:uuid"),
            ));
        }
        BinaryRef::Bundle(url.clone())
    } else if let Some(id) = literal_id(&url, "Binary") {
        BinaryRef::Stored(id.to_string())
    } else {
        return Err(input(
            format!("{path}.url"),
            format!(
                "the url is a Binary/{{id}} or the urn:uuid of a Binary of the bundle, not {url:?}"
            ),
        ));
    };
    let size =
        match att.get("size") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                input(format!("{path}.size"), "the size is a non-negative integer")
            })?),
        };
    let sha1 = opt_string(att, "hash", &path)?
        .map(|h| sha1_hex(&h, &format!("{path}.hash")))
        .transpose()?;
    let mut sha256 = None;
    for (i, ext) in array(att, "extension", &path)?.iter().enumerate() {
        let ep = format!("{path}.extension[{i}]");
        if str_at(ext, "url") == Some(SHA256_EXTENSION) {
            let value = opt_string(ext, "valueString", &ep)?.ok_or_else(|| {
                input(
                    format!("{ep}.valueString"),
                    "the SHA-256 is a hexadecimal string",
                )
            })?;
            sha256 = Some(value.parse::<Sha256Digest>().map_err(|_| {
                input(
                    format!("{ep}.valueString"),
                    "the SHA-256 is 64 hexadecimal digits",
                )
            })?);
        }
    }
    let language = opt_string(att, "language", &path)?;
    if let Some(l) = &language
        && !(l.len() <= 35 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(input(
            format!("{path}.language"),
            "the language is a BCP 47 code",
        ));
    }
    Ok(IncomingAttachment {
        url,
        content_type,
        size,
        sha1,
        sha256,
        title: opt_string(att, "title", &path)?,
        language,
        creation: date_time(att, "creation", &path)?,
        format,
    })
}

/// Reads a DocumentReference to provide. `path` is its FHIRPath (`DocumentReference`, or
/// `Bundle.entry[i].resource` inside a transaction).
pub fn incoming_document(resource: &Value, path: &str) -> Result<IncomingDocument, InputError> {
    if !resource.is_object() {
        return Err(input(path, "a resource is a JSON object"));
    }
    match str_at(resource, "resourceType") {
        Some("DocumentReference") => {}
        Some(other) => {
            return Err(input(
                format!("{path}.resourceType"),
                format!("a DocumentReference was expected, not a {other}"),
            ));
        }
        None => return Err(input(format!("{path}.resourceType"), "not a FHIR resource")),
    }
    let master = object(resource, "masterIdentifier", path)?.ok_or_else(|| {
        input(
            format!("{path}.masterIdentifier"),
            "the masterIdentifier (unique id of the document) is required",
        )
    })?;
    let mp = format!("{path}.masterIdentifier");
    if let Some(system) = opt_string(master, "system", &mp)?
        && system != URI_SYSTEM
    {
        return Err(input(
            format!("{mp}.system"),
            format!("the master identifier's system is {URI_SYSTEM}"),
        ));
    }
    let master_identifier = opt_string(master, "value", &mp)?
        .ok_or_else(|| input(format!("{mp}.value"), "the master identifier needs a value"))?;
    if !is_master_identifier(&master_identifier) {
        return Err(input(
            format!("{mp}.value"),
            format!("{master_identifier:?} is neither a urn:oid: nor a urn:uuid:"),
        ));
    }
    match opt_string(resource, "status", path)?.as_deref() {
        Some("current") => {}
        Some(other) => {
            return Err(input(
                format!("{path}.status"),
                format!("a provided document is current, not {other:?}"),
            ));
        }
        None => return Err(input(format!("{path}.status"), "the status is required")),
    }
    let doc_status = opt_string(resource, "docStatus", path)?
        .map(|s| {
            DocStatus::parse(&s).ok_or_else(|| {
                input(
                    format!("{path}.docStatus"),
                    format!("{s:?} is not preliminary, final, amended or entered-in-error"),
                )
            })
        })
        .transpose()?;
    let tp = format!("{path}.type");
    let type_concept = object(resource, "type", path)?
        .ok_or_else(|| input(&tp, "the type of document (LOINC) is required"))?;
    let codings = array(type_concept, "coding", &tp)?;
    let (i, loinc) = codings
        .iter()
        .enumerate()
        .find(|(_, c)| str_at(c, "system") == Some(LOINC))
        .ok_or_else(|| {
            input(
                format!("{tp}.coding"),
                format!("a {LOINC} coding is required"),
            )
        })?;
    let doc_type = coding(loinc, &format!("{tp}.coding[{i}]"))?;
    if !is_loinc_code(&doc_type.code) {
        return Err(input(
            format!("{tp}.coding[{i}].code"),
            format!(
                "{:?} is not a LOINC code (digits, '-', check digit)",
                doc_type.code
            ),
        ));
    }
    let categories = array(resource, "category", path)?;
    if categories.len() > 1 {
        // MHD maps the XDS classCode, one per document, to category.
        return Err(input(
            format!("{path}.category"),
            "one category (class code) only",
        ));
    }
    let category = categories
        .first()
        .map(|c| first_coding(c, &format!("{path}.category[0]")))
        .transpose()?;
    let subject = subject(
        object(resource, "subject", path)?.ok_or_else(|| {
            input(
                format!("{path}.subject"),
                "the subject (patient) is required",
            )
        })?,
        &format!("{path}.subject"),
    )?;
    let date = date_time(resource, "date", path)?;
    if let Some(d) = &date
        && !d.is_instant()
    {
        return Err(input(
            format!("{path}.date"),
            "the date is an instant: date, time with seconds and zone",
        ));
    }
    let author = author(array(resource, "author", path)?, &format!("{path}.author"))?;
    let custodian = object(resource, "custodian", path)?
        .map(|c| {
            let cp = format!("{path}.custodian");
            let id = object(c, "identifier", &cp)?.ok_or_else(|| {
                input(
                    format!("{cp}.identifier"),
                    "the custodian needs its identifier",
                )
            })?;
            identifier(id, &format!("{cp}.identifier"))
        })
        .transpose()?;
    let confidentiality = confidentiality(
        array(resource, "securityLabel", path)?,
        &format!("{path}.securityLabel"),
    )?;
    let mut replaces = None;
    for (i, r) in array(resource, "relatesTo", path)?.iter().enumerate() {
        let rp = format!("{path}.relatesTo[{i}]");
        match opt_string(r, "code", &rp)?.as_deref() {
            Some("replaces") => {}
            Some(other) => {
                return Err(input(
                    format!("{rp}.code"),
                    format!("only replaces is supported, not {other:?}"),
                ));
            }
            None => return Err(input(format!("{rp}.code"), "the relation code is required")),
        }
        let target = object(r, "target", &rp)?
            .and_then(|t| str_at(t, "reference"))
            .and_then(|t| literal_id(t, "DocumentReference"))
            .ok_or_else(|| {
                input(
                    format!("{rp}.target.reference"),
                    "the replaced document is a DocumentReference/{id} reference",
                )
            })?;
        if replaces.replace(target.to_string()).is_some() {
            return Err(input(&rp, "a document replaces one document"));
        }
    }
    let (mut period_start, mut period_end, mut facility_type, mut practice_setting) =
        (None, None, None, None);
    if let Some(context) = object(resource, "context", path)? {
        let cp = format!("{path}.context");
        if let Some(period) = object(context, "period", &cp)? {
            let pp = format!("{cp}.period");
            period_start = date_time(period, "start", &pp)?;
            period_end = date_time(period, "end", &pp)?;
            if let (Some(s), Some(e)) = (&period_start, &period_end)
                && s.start_us() >= e.end_us()
            {
                return Err(input(pp, "the period ends before it starts"));
            }
        }
        facility_type = object(context, "facilityType", &cp)?
            .map(|f| first_coding(f, &format!("{cp}.facilityType")))
            .transpose()?;
        practice_setting = object(context, "practiceSetting", &cp)?
            .map(|f| first_coding(f, &format!("{cp}.practiceSetting")))
            .transpose()?;
    }
    let attachment = attachment(
        array(resource, "content", path)?,
        &format!("{path}.content"),
    )?;
    Ok(IncomingDocument {
        path: path.to_string(),
        subject,
        master_identifier,
        doc_status,
        doc_type,
        category,
        author,
        custodian,
        confidentiality,
        period_start,
        period_end,
        facility_type,
        practice_setting,
        date,
        description: opt_string(resource, "description", path)?,
        replaces,
        attachment,
    })
}

impl IncomingDocument {
    /// FHIRPath of the attachment, for errors about the content.
    pub fn attachment_path(&self) -> String {
        format!("{}.content[0].attachment", self.path)
    }

    /// Checks the declared content against the Binary it names (type, size, hashes).
    pub fn check_binary(&self, binary: &Binary) -> Result<(), InputError> {
        let a = &self.attachment;
        let path = self.attachment_path();
        if a.content_type.as_str() != binary.content_type {
            return Err(input(
                format!("{path}.contentType"),
                format!(
                    "declared {} but the Binary is {}",
                    a.content_type, binary.content_type
                ),
            ));
        }
        if let Some(size) = a.size
            && size != binary.size
        {
            return Err(input(
                format!("{path}.size"),
                format!("declared {size} bytes but the Binary holds {}", binary.size),
            ));
        }
        if let Some(sha1) = &a.sha1
            && *sha1 != binary.sha1
        {
            return Err(input(
                format!("{path}.hash"),
                format!(
                    "the SHA-1 does not match the Binary's ({})",
                    binary.sha1_base64()
                ),
            ));
        }
        if let Some(sha256) = &a.sha256
            && *sha256 != binary.sha256
        {
            return Err(input(
                format!("{path}.extension"),
                format!(
                    "the SHA-256 does not match the Binary's ({})",
                    binary.sha256
                ),
            ));
        }
        Ok(())
    }

    /// The entry to store: this document with its id, patient and checked content.
    pub fn into_entry(
        self,
        id: String,
        patient_id: String,
        binary: &Binary,
        created_by: &str,
        now_us: i64,
    ) -> Result<DocumentEntry, InputError> {
        self.check_binary(binary)?;
        let a = self.attachment;
        Ok(DocumentEntry {
            id,
            patient_id,
            status: Status::Current,
            metadata: Metadata {
                master_identifier: self.master_identifier,
                doc_status: self.doc_status,
                doc_type: self.doc_type,
                category: self.category,
                author: self.author,
                custodian: self.custodian,
                confidentiality: self.confidentiality,
                period_start: self.period_start,
                period_end: self.period_end,
                facility_type: self.facility_type,
                practice_setting: self.practice_setting,
                date: self
                    .date
                    .unwrap_or_else(|| FhirDateTime::from_unix_us(now_us)),
                description: self.description,
                replaces: self.replaces,
                content: Content {
                    binary_id: binary.id.clone(),
                    content_type: binary.content_type.clone(),
                    size: binary.size,
                    sha256: binary.sha256,
                    sha1: binary.sha1.clone(),
                    title: a.title,
                    language: a.language,
                    creation: a.creation,
                    format: a.format,
                },
            },
            created_by: created_by.to_string(),
            created_at_us: now_us,
            updated_at_us: now_us,
        })
    }
}

fn coding_json(c: &Coding) -> Value {
    let mut v = json!({ "system": c.system, "code": c.code });
    if let Some(d) = &c.display {
        v["display"] = json!(d);
    }
    v
}

fn identifier_json(i: &Identifier) -> Value {
    json!({ "system": i.system, "value": i.value })
}

/// The FHIR R4 DocumentReference of a stored entry (MHD Comprehensive shape).
pub fn document_reference(entry: &DocumentEntry) -> Value {
    let m = &entry.metadata;
    let mut r = Map::new();
    r.insert("resourceType".into(), json!("DocumentReference"));
    r.insert("id".into(), json!(entry.id));
    r.insert(
        "meta".into(),
        json!({ "lastUpdated": FhirDateTime::from_unix_us(entry.updated_at_us).as_str() }),
    );
    r.insert(
        "masterIdentifier".into(),
        json!({ "system": URI_SYSTEM, "value": m.master_identifier }),
    );
    r.insert("status".into(), json!(entry.status.as_str()));
    if let Some(d) = m.doc_status {
        r.insert("docStatus".into(), json!(d.as_str()));
    }
    r.insert(
        "type".into(),
        json!({ "coding": [coding_json(&m.doc_type)] }),
    );
    if let Some(c) = &m.category {
        r.insert("category".into(), json!([{ "coding": [coding_json(c)] }]));
    }
    r.insert(
        "subject".into(),
        json!({ "reference": format!("Patient/{}", entry.patient_id) }),
    );
    r.insert("date".into(), json!(m.date.as_str()));
    if let Some(a) = &m.author {
        let mut practitioner = json!({
            "identifier": { "system": format!("urn:oid:{NATIONAL_ID_OID}"), "value": a.national_id },
        });
        match &a.reference {
            Some(reference) => practitioner["reference"] = json!(reference),
            None => practitioner["type"] = json!("Practitioner"),
        }
        let mut authors = vec![practitioner];
        if let Some(org) = &a.organisation {
            authors.push(json!({ "type": "Organization", "identifier": identifier_json(org) }));
        }
        r.insert("author".into(), Value::Array(authors));
    }
    if let Some(c) = &m.custodian {
        r.insert(
            "custodian".into(),
            json!({ "type": "Organization", "identifier": identifier_json(c) }),
        );
    }
    if let Some(replaced) = &m.replaces {
        r.insert(
            "relatesTo".into(),
            json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{replaced}") } }]),
        );
    }
    if let Some(d) = &m.description {
        r.insert("description".into(), json!(d));
    }
    r.insert(
        "securityLabel".into(),
        json!([{ "coding": [{
            "system": CONFIDENTIALITY,
            "code": m.confidentiality.code(),
            "display": m.confidentiality.display(),
        }] }]),
    );
    let c = &m.content;
    let mut attachment = json!({
        "extension": [{ "url": SHA256_EXTENSION, "valueString": c.sha256.to_hex() }],
        "contentType": c.content_type,
        "url": format!("Binary/{}", c.binary_id),
        "size": c.size,
        "hash": sha1_base64(&c.sha1),
    });
    if let Some(l) = &c.language {
        attachment["language"] = json!(l);
    }
    if let Some(t) = &c.title {
        attachment["title"] = json!(t);
    }
    if let Some(d) = &c.creation {
        attachment["creation"] = json!(d.as_str());
    }
    let mut content = json!({ "attachment": attachment });
    if let Some(f) = &c.format {
        content["format"] = coding_json(f);
    }
    r.insert("content".into(), json!([content]));
    let mut context = Map::new();
    if m.period_start.is_some() || m.period_end.is_some() {
        let mut period = Map::new();
        if let Some(s) = &m.period_start {
            period.insert("start".into(), json!(s.as_str()));
        }
        if let Some(e) = &m.period_end {
            period.insert("end".into(), json!(e.as_str()));
        }
        context.insert("period".into(), Value::Object(period));
    }
    if let Some(f) = &m.facility_type {
        context.insert("facilityType".into(), json!({ "coding": [coding_json(f)] }));
    }
    if let Some(p) = &m.practice_setting {
        context.insert(
            "practiceSetting".into(),
            json!({ "coding": [coding_json(p)] }),
        );
    }
    if !context.is_empty() {
        r.insert("context".into(), Value::Object(context));
    }
    Value::Object(r)
}

/// The FHIR `Binary` resource of a stored content, without its data (for `Accept:
/// application/fhir+json` on ITI-68, where the server adds `data` only for small contents).
pub fn binary_resource(b: &Binary) -> Value {
    json!({
        "resourceType": "Binary",
        "id": b.id,
        "meta": { "lastUpdated": FhirDateTime::from_unix_us(b.created_at_us).as_str() },
        "contentType": b.content_type,
    })
}

// ----- ITI-67: search parameters -----------------------------------------------------------

/// One token of a search (`system|code`, `code`, `system|`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub system: Option<String>,
    pub code: Option<String>,
}

fn token(value: &str) -> Token {
    match value.split_once('|') {
        Some((system, code)) => Token {
            system: (!system.is_empty()).then(|| system.to_string()),
            code: (!code.is_empty()).then(|| code.to_string()),
        },
        None => Token {
            system: None,
            code: Some(value.to_string()),
        },
    }
}

/// The filters of an ITI-67 search besides the patient. Each inner `Vec` is one parameter's
/// comma-separated values (any of them matches); repeating a parameter requires all repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub status: Vec<Vec<Status>>,
    pub doc_type: Vec<Vec<Token>>,
    pub category: Vec<Vec<Token>>,
    /// National ids of authors.
    pub author: Vec<Vec<String>>,
    pub date: Vec<DateCondition>,
    pub period: Vec<DateCondition>,
}

/// Default and maximum page sizes.
pub const DEFAULT_COUNT: u32 = 50;
pub const MAX_COUNT: u32 = 500;

/// An ITI-67 query on one (resolved) patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentQuery {
    pub patient_id: String,
    pub filters: Filters,
    pub count: u32,
    pub offset: u64,
}

impl DocumentQuery {
    /// All documents of a patient, first page.
    pub fn patient(patient_id: impl Into<String>) -> Self {
        DocumentQuery {
            patient_id: patient_id.into(),
            filters: Filters::default(),
            count: DEFAULT_COUNT,
            offset: 0,
        }
    }
}

/// A parsed ITI-67 request, before its subject is resolved to a regional patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub subject: Subject,
    pub filters: Filters,
    pub count: u32,
    pub offset: u64,
    /// The parameters as understood, without paging, for the Bundle's links.
    pub echo: Vec<(String, String)>,
}

impl SearchRequest {
    pub fn into_query(self, patient_id: String) -> DocumentQuery {
        DocumentQuery {
            patient_id,
            filters: self.filters,
            count: self.count,
            offset: self.offset,
        }
    }
}

/// Parses the query parameters of `GET /fhir/DocumentReference` (ITI-67). A patient is
/// required (`patient`, `subject`, or `patient.identifier`); an unknown parameter is refused
/// rather than ignored, since ignoring a filter would return documents the caller excluded.
pub fn search_request(params: &[(String, String)]) -> Result<SearchRequest, InputError> {
    let mut subject = None;
    let mut filters = Filters::default();
    let mut count = DEFAULT_COUNT;
    let mut offset = 0u64;
    let mut echo = Vec::new();
    let values = |v: &str| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    for (name, value) in params {
        let at = || format!("DocumentReference?{name}");
        let mut keep = true;
        match name.as_str() {
            "patient" | "subject" | "patient:Patient" | "subject:Patient" => {
                let id = value.strip_prefix("Patient/").unwrap_or(value);
                if !is_fhir_id(id) {
                    return Err(input(at(), format!("{value:?} is not a Patient reference")));
                }
                if subject.replace(Subject::Patient(id.to_string())).is_some() {
                    return Err(input(at(), "one patient per search"));
                }
            }
            "patient.identifier" | "subject.identifier" => {
                let t = token(value);
                let (Some(system), Some(code)) = (t.system, t.code) else {
                    return Err(input(at(), "the patient identifier is system|value"));
                };
                if !system.starts_with("urn:oid:") || !is_oid(&system[8..]) {
                    return Err(input(at(), "the identifier system is urn:oid:…"));
                }
                let id = Identifier {
                    system,
                    value: code,
                };
                if subject.replace(Subject::Identifier(id)).is_some() {
                    return Err(input(at(), "one patient per search"));
                }
            }
            "status" => {
                let list = values(value)
                    .iter()
                    .map(|s| {
                        Status::parse(s).ok_or_else(|| {
                            input(
                                at(),
                                format!("{s:?} is not current, superseded or entered-in-error"),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                filters.status.push(list);
            }
            "type" | "category" => {
                let list: Vec<Token> = values(value).iter().map(|v| token(v)).collect();
                if list.iter().any(|t| t.code.is_none() && t.system.is_none()) || list.is_empty() {
                    return Err(input(at(), "a token is system|code, code or system|"));
                }
                if name == "type" {
                    filters.doc_type.push(list);
                } else {
                    filters.category.push(list);
                }
            }
            "author.identifier" => {
                let list = values(value)
                    .iter()
                    .map(|v| {
                        let t = token(v);
                        if let Some(system) = &t.system
                            && *system != format!("urn:oid:{NATIONAL_ID_OID}")
                        {
                            return Err(input(
                                at(),
                                format!("authors are searched by national id (urn:oid:{NATIONAL_ID_OID})"),
                            ));
                        }
                        t.code
                            .filter(|c| is_national_id(c))
                            .ok_or_else(|| input(at(), "a national id is 8+RPPS or 0+ADELI"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                filters.author.push(list);
            }
            "date" | "period" => {
                let c = DateCondition::parse(value).map_err(|e| input(at(), e))?;
                if name == "date" {
                    filters.date.push(c);
                } else {
                    filters.period.push(c);
                }
            }
            "_count" => {
                count = value
                    .parse::<u32>()
                    .ok()
                    .filter(|c| *c <= MAX_COUNT)
                    .ok_or_else(|| input(at(), format!("_count is 0 to {MAX_COUNT}")))?;
                keep = false;
            }
            "_offset" => {
                offset = value
                    .parse::<u64>()
                    .ok()
                    .filter(|o| *o <= i64::MAX as u64)
                    .ok_or_else(|| input(at(), "_offset is a non-negative integer"))?;
                keep = false;
            }
            "_format" => keep = false,
            "_sort" if value == "-date" => keep = false,
            _ => {
                return Err(input(
                    at(),
                    "unsupported search parameter (supported: patient, patient.identifier, status, type, category, date, period, author.identifier, _count, _offset)",
                ));
            }
        }
        if keep {
            echo.push((name.clone(), value.clone()));
        }
    }
    let subject = subject.ok_or_else(|| {
        input(
            "DocumentReference?patient",
            "a search names its patient (patient or patient.identifier)",
        )
    })?;
    Ok(SearchRequest {
        subject,
        filters,
        count,
        offset,
        echo,
    })
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub total: u64,
    pub entries: Vec<DocumentEntry>,
    pub offset: u64,
    pub count: u32,
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn search_url(base: &str, echo: &[(String, String)], count: u32, offset: u64) -> String {
    let mut query: Vec<String> = echo
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    query.push(format!("_count={count}"));
    query.push(format!("_offset={offset}"));
    format!("{base}/DocumentReference?{}", query.join("&"))
}

/// The `searchset` Bundle of a page: `total`, `self` and (when more remain) `next` links, one
/// entry per document in the page's order. `base` is the FHIR base URL (`https://…/fhir`).
pub fn search_bundle(page: &SearchPage, base: &str, echo: &[(String, String)]) -> Value {
    let base = base.trim_end_matches('/');
    let mut links =
        vec![json!({ "relation": "self", "url": search_url(base, echo, page.count, page.offset) })];
    let next = page.offset.saturating_add(u64::from(page.count));
    if page.count > 0 && next < page.total {
        links.push(json!({ "relation": "next", "url": search_url(base, echo, page.count, next) }));
    }
    if page.offset > 0 && page.count > 0 {
        let previous = page.offset.saturating_sub(u64::from(page.count));
        links.push(
            json!({ "relation": "previous", "url": search_url(base, echo, page.count, previous) }),
        );
    }
    let entries: Vec<Value> = page
        .entries
        .iter()
        .map(|e| {
            json!({
                "fullUrl": format!("{base}/DocumentReference/{}", e.id),
                "resource": document_reference(e),
                "search": { "mode": "match" },
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    })
}
