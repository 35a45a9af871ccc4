//! ITI-65 "Provide Document Bundle": the transaction Bundle read and checked as a whole before
//! anything is written. Pure: Binary entries are decoded, hashed and sniffed in memory (the
//! bundle already is in memory; large contents come through the streamed `POST /fhir/Binary`
//! and are referenced as `Binary/{id}`).
//!
//! Accepted shape (MHD Comprehensive or Minimal, SubmissionSet optional): entries are
//! `POST DocumentReference`, `POST Binary` (base64 `data`) and at most one `POST List` (the
//! SubmissionSet, accepted and not stored). Attachments reference Binaries of the bundle by
//! their `urn:uuid:` fullUrl, or Binaries stored before as `Binary/{id}`.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use serde_json::{Value, json};

use crate::fhir::{BinaryRef, IncomingDocument, InputError, incoming_document, input};
use crate::ingest::hashes;
use crate::model::{Binary, is_uuid};
use crate::sniff::MediaType;

/// A Binary entry of the bundle, decoded and checked, not yet stored.
#[derive(Debug, Clone)]
pub struct BundleBinary {
    /// Index of the entry in the bundle.
    pub index: usize,
    pub full_url: String,
    /// Its record as it will be stored (id assigned, hashes computed).
    pub binary: Binary,
    pub data: Vec<u8>,
}

/// A DocumentReference entry of the bundle.
#[derive(Debug, Clone)]
pub struct BundleDocument {
    pub index: usize,
    pub full_url: Option<String>,
    pub document: IncomingDocument,
}

/// What each entry of the request is, to answer in the same order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    DocumentReference,
    Binary,
    SubmissionSet,
}

/// A checked ITI-65 transaction.
#[derive(Debug, Clone)]
pub struct ProvideBundle {
    pub documents: Vec<BundleDocument>,
    pub binaries: Vec<BundleBinary>,
    pub kinds: Vec<EntryKind>,
}

/// Reads and checks an ITI-65 transaction Bundle. `max_binary_size` bounds each decoded Binary;
/// `uploader` is recorded on them.
pub fn provide_bundle(
    bundle: &Value,
    max_binary_size: u64,
    uploader: &str,
    now_us: i64,
) -> Result<ProvideBundle, InputError> {
    if !bundle.is_object() {
        return Err(input("Bundle", "the body is not a FHIR resource"));
    }
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(input(
            "Bundle.resourceType",
            "an ITI-65 request is a Bundle",
        ));
    }
    if bundle.get("type").and_then(Value::as_str) != Some("transaction") {
        return Err(input("Bundle.type", "the Bundle type is transaction"));
    }
    let entries = match bundle.get("entry") {
        Some(Value::Array(e)) if !e.is_empty() => e,
        _ => return Err(input("Bundle.entry", "the Bundle has no entries")),
    };
    let mut documents = Vec::new();
    let mut binaries: Vec<BundleBinary> = Vec::new();
    let mut kinds = Vec::new();
    let mut full_urls = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("Bundle.entry[{i}]");
        let resource = entry
            .get("resource")
            .filter(|r| r.is_object())
            .ok_or_else(|| input(format!("{path}.resource"), "each entry holds a resource"))?;
        let kind = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                input(
                    format!("{path}.resource.resourceType"),
                    "not a FHIR resource",
                )
            })?;
        let method = entry.pointer("/request/method").and_then(Value::as_str);
        let url = entry.pointer("/request/url").and_then(Value::as_str);
        if method != Some("POST") || url != Some(kind) {
            return Err(input(
                format!("{path}.request"),
                format!("each entry is created: request POST {kind}"),
            ));
        }
        let full_url = match entry.get("fullUrl") {
            None | Some(Value::Null) => None,
            Some(Value::String(u)) => {
                if !u.strip_prefix("urn:uuid:").is_some_and(is_uuid) {
                    return Err(input(
                        format!("{path}.fullUrl"),
                        "the fullUrl of a created entry is a urn:uuid:",
                    ));
                }
                if !full_urls.insert(u.clone()) {
                    return Err(input(
                        format!("{path}.fullUrl"),
                        "this fullUrl is used twice",
                    ));
                }
                Some(u.clone())
            }
            Some(_) => return Err(input(format!("{path}.fullUrl"), "the fullUrl is a string")),
        };
        let rpath = format!("{path}.resource");
        match kind {
            "DocumentReference" => {
                let document = incoming_document(resource, &rpath)?;
                documents.push(BundleDocument {
                    index: i,
                    full_url,
                    document,
                });
                kinds.push(EntryKind::DocumentReference);
            }
            "Binary" => {
                let full_url = full_url.ok_or_else(|| {
                    input(
                        format!("{path}.fullUrl"),
                        "a Binary needs a urn:uuid fullUrl for its DocumentReference to name it",
                    )
                })?;
                binaries.push(binary(
                    resource,
                    &rpath,
                    i,
                    full_url,
                    max_binary_size,
                    uploader,
                    now_us,
                )?);
                kinds.push(EntryKind::Binary);
            }
            "List" => {
                if kinds.contains(&EntryKind::SubmissionSet) {
                    return Err(input(&rpath, "one SubmissionSet (List) per transaction"));
                }
                kinds.push(EntryKind::SubmissionSet);
            }
            other => {
                return Err(input(
                    format!("{rpath}.resourceType"),
                    format!(
                        "an ITI-65 transaction holds DocumentReference, Binary and List entries, not {other}"
                    ),
                ));
            }
        }
    }
    if documents.is_empty() {
        return Err(input(
            "Bundle.entry",
            "the transaction provides no DocumentReference",
        ));
    }
    // Every attachment names a Binary of the bundle (checked here) or a stored one (checked
    // against the database by the caller); every Binary of the bundle is used.
    let by_url: HashMap<&str, &BundleBinary> =
        binaries.iter().map(|b| (b.full_url.as_str(), b)).collect();
    let mut used = HashSet::new();
    let mut masters = HashSet::new();
    let mut replaced = HashSet::new();
    for d in &documents {
        let doc = &d.document;
        if let BinaryRef::Bundle(url) = &doc.attachment.url {
            let b = by_url.get(url.as_str()).ok_or_else(|| {
                input(
                    format!("{}.url", doc.attachment_path()),
                    format!("{url} is not the fullUrl of a Binary of this Bundle"),
                )
            })?;
            doc.check_binary(&b.binary)?;
            used.insert(url.as_str());
        }
        if !masters.insert(doc.master_identifier.as_str()) {
            return Err(input(
                format!("{}.masterIdentifier", doc.path),
                "two documents of the Bundle share this masterIdentifier",
            ));
        }
        if let Some(r) = &doc.replaces
            && !replaced.insert(r.as_str())
        {
            return Err(input(
                format!("{}.relatesTo", doc.path),
                "two documents of the Bundle replace the same document",
            ));
        }
    }
    if let Some(b) = binaries
        .iter()
        .find(|b| !used.contains(b.full_url.as_str()))
    {
        return Err(input(
            format!("Bundle.entry[{}]", b.index),
            "this Binary is not the content of any DocumentReference of the Bundle",
        ));
    }
    Ok(ProvideBundle {
        documents,
        binaries,
        kinds,
    })
}

fn binary(
    resource: &Value,
    path: &str,
    index: usize,
    full_url: String,
    max_size: u64,
    uploader: &str,
    now_us: i64,
) -> Result<BundleBinary, InputError> {
    let declared = resource
        .get("contentType")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            input(
                format!("{path}.contentType"),
                "the content type is required",
            )
        })?;
    let media = MediaType::parse(declared)
        .map_err(|e| input(format!("{path}.contentType"), e.to_string()))?;
    let data = resource
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            input(
                format!("{path}.data"),
                "the content (base64 data) is required",
            )
        })?;
    // base64 grows 4/3: refuse before decoding what would be over the limit anyway.
    if (data.len() as u64 / 4).saturating_mul(3) > max_size.saturating_add(3) {
        return Err(input(
            format!("{path}.data"),
            format!("the content exceeds the limit of {max_size} bytes"),
        ));
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| input(format!("{path}.data"), "the data is not base64"))?;
    if data.len() as u64 > max_size {
        return Err(input(
            format!("{path}.data"),
            format!("the content exceeds the limit of {max_size} bytes"),
        ));
    }
    let prefix = &data[..data.len().min(crate::sniff::SNIFF_LEN)];
    let kind = media
        .check_prefix(prefix, data.len() <= crate::sniff::SNIFF_LEN)
        .map_err(|e| input(format!("{path}.data"), e.to_string()))?;
    crate::sniff::check_complete(kind, prefix, data.len() as u64)
        .map_err(|e| input(format!("{path}.data"), e.to_string()))?;
    let (sha256, sha1) = hashes(&data);
    Ok(BundleBinary {
        index,
        full_url,
        binary: Binary {
            id: crate::model::new_id(),
            sha256,
            sha1,
            size: data.len() as u64,
            content_type: media.as_str().to_string(),
            uploaded_by: uploader.to_string(),
            created_at_us: now_us,
        },
        data,
    })
}

/// The `transaction-response` Bundle: one entry per request entry, in order, with the location
/// of what was created. The SubmissionSet was accepted but is not kept as a resource: `200 OK`
/// without a location.
pub fn response_bundle(kinds: &[EntryKind], documents: &[String], binaries: &[String]) -> Value {
    let (mut d, mut b) = (documents.iter(), binaries.iter());
    let entries: Vec<Value> = kinds
        .iter()
        .map(|k| match k {
            EntryKind::DocumentReference => json!({ "response": {
                "status": "201 Created",
                "location": format!("DocumentReference/{}", d.next().map(String::as_str).unwrap_or_default()),
            } }),
            EntryKind::Binary => json!({ "response": {
                "status": "201 Created",
                "location": format!("Binary/{}", b.next().map(String::as_str).unwrap_or_default()),
            } }),
            EntryKind::SubmissionSet => json!({ "response": { "status": "200 OK" } }),
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": entries })
}
