//! Samples shared by the integration tests: contents of each format and MHD resources.
#![allow(dead_code)]

use base64::Engine;
use serde_json::{Value, json};

pub const PATIENT: &str = "RB10000000018";
pub const OTHER_PATIENT: &str = "RB10000000026";
/// An INS-NIR that the test resolver maps to [`PATIENT`].
pub const INS: &str = "269022901912344";
pub const AUTHOR: &str = "810001234567";
pub const NATIONAL_ID_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";

pub fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

pub fn sha1_b64(data: &[u8]) -> String {
    b64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref())
}

pub fn pdf(text: &str) -> Vec<u8> {
    format!("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% {text}\n%%EOF\n").into_bytes()
}

pub fn png() -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&[0, 0, 0, 13]);
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&[0; 17]);
    v
}

pub fn cda() -> Vec<u8> {
    br#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Compte rendu</title></ClinicalDocument>"#
        .to_vec()
}

/// An EDF+ recording with `signals` signals, `records` records of `samples` samples each.
pub fn edf(signals: usize, records: usize, samples: usize) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, value: &str, width: usize) {
        let mut f = value.as_bytes().to_vec();
        f.resize(width, b' ');
        out.extend_from_slice(&f);
    }
    let mut v = Vec::new();
    field(&mut v, "0", 8);
    field(&mut v, "X X X X", 80);
    field(&mut v, "Startdate 01-MAR-2024 X X X", 80);
    field(&mut v, "01.03.24", 8);
    field(&mut v, "10.00.00", 8);
    field(&mut v, &(256 * (signals + 1)).to_string(), 8);
    field(&mut v, "EDF+C", 44);
    field(&mut v, &records.to_string(), 8);
    field(&mut v, "1", 8);
    field(&mut v, &signals.to_string(), 4);
    for (name, width) in [
        ("EEG Fp1", 16),
        ("AgAgCl", 80),
        ("uV", 8),
        ("-3200", 8),
        ("3200", 8),
        ("-32768", 8),
        ("32767", 8),
        ("HP:0.1Hz", 80),
    ] {
        for _ in 0..signals {
            field(&mut v, name, width);
        }
    }
    for _ in 0..signals {
        field(&mut v, &samples.to_string(), 8);
    }
    for _ in 0..signals {
        field(&mut v, "", 32);
    }
    let header = v.len();
    v.resize(header + records * signals * samples * 2, 0);
    // Some signal so the content is not all zeros.
    for (i, b) in v[header..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    v
}

pub fn uuid(n: u32) -> String {
    format!("urn:uuid:00000000-0000-4000-8000-{n:012}")
}

/// A DocumentReference of [`PATIENT`] (by `Patient/…`), LOINC 11488-4, PDF content at `url`.
pub fn document_reference(url: &str, content: &[u8], master: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "masterIdentifier": { "system": "urn:ietf:rfc:3986", "value": master },
        "status": "current",
        "docStatus": "final",
        "type": { "coding": [{ "system": "http://loinc.org", "code": "11488-4", "display": "Consult note" }] },
        "category": [{ "coding": [{ "system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "10", "display": "Compte rendu" }] }],
        "subject": { "reference": format!("Patient/{PATIENT}") },
        "date": "2024-03-01T10:00:00+01:00",
        "author": [
            { "reference": "PractitionerRole/pr1", "identifier": { "system": NATIONAL_ID_SYSTEM, "value": AUTHOR } },
            { "type": "Organization", "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1290000017" } }
        ],
        "custodian": { "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1290000017" } },
        "description": "Consultation de néphrologie",
        "securityLabel": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N" }] }],
        "content": [{
            "attachment": {
                "contentType": "application/pdf",
                "language": "fr-FR",
                "url": url,
                "size": content.len(),
                "hash": sha1_b64(content),
                "title": "CR de consultation",
                "creation": "2024-03-01T09:30:00+01:00"
            },
            "format": { "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient" }
        }],
        "context": {
            "period": { "start": "2024-03-01T09:00:00+01:00", "end": "2024-03-01T09:45:00+01:00" },
            "facilityType": { "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite", "code": "SA01" }] },
            "practiceSetting": { "coding": [{ "system": "https://mos.esante.gouv.fr/NOS/TRE_A00-ProducteurDocNonPS/FHIR/TRE-A00-ProducteurDocNonPS", "code": "ETABLISSEMENT" }] }
        }
    })
}

/// An ITI-65 transaction: a SubmissionSet List, one DocumentReference and its Binary.
pub fn provide_bundle(content: &[u8], master: &str) -> Value {
    let binary_url = uuid(2);
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": uuid(1),
                "resource": { "resourceType": "List", "status": "current", "mode": "working",
                              "code": { "coding": [{ "system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset" }] } },
                "request": { "method": "POST", "url": "List" }
            },
            {
                "fullUrl": uuid(3),
                "resource": document_reference(&binary_url, content, master),
                "request": { "method": "POST", "url": "DocumentReference" }
            },
            {
                "fullUrl": binary_url,
                "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": b64(content) },
                "request": { "method": "POST", "url": "Binary" }
            }
        ]
    })
}
