//! The FHIR side without a database: DocumentReference both ways, every refused input with its
//! FHIRPath, ITI-65 bundle checks, ITI-67 parameters and Bundle, and fuzzing of the parsers.

mod common;

use common::*;
use megalis_blobs::Sha256Digest;
use megalis_documents::bundle::{EntryKind, provide_bundle};
use megalis_documents::fhir;
use megalis_documents::fhir::{
    BinaryRef, SHA256_EXTENSION, SearchPage, Subject, incoming_document, search_bundle,
    search_request,
};
use megalis_documents::model::{Binary, Confidentiality, Status};
use serde_json::{Value, json};

fn binary_of(content: &[u8], content_type: &str) -> Binary {
    Binary {
        id: "b1".into(),
        sha256: Sha256Digest::of(content),
        sha1: hex::encode(ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            content,
        )),
        size: content.len() as u64,
        content_type: content_type.into(),
        uploaded_by: "client".into(),
        created_at_us: 0,
    }
}

#[test]
fn document_reference_round_trip() {
    let content = pdf("round trip");
    let master = "urn:oid:1.2.250.1.999.1.1";
    let resource = document_reference("Binary/b1", &content, master);
    let incoming = incoming_document(&resource, "DocumentReference").unwrap();
    assert_eq!(incoming.subject, Subject::Patient(PATIENT.into()));
    assert_eq!(incoming.attachment.url, BinaryRef::Stored("b1".into()));
    assert_eq!(incoming.confidentiality, Confidentiality::N);
    let entry = incoming
        .into_entry(
            "d1".into(),
            PATIENT.into(),
            &binary_of(&content, "application/pdf"),
            "client",
            1_000,
        )
        .unwrap();
    assert_eq!(entry.status, Status::Current);
    let author = entry.metadata.author.as_ref().unwrap();
    assert_eq!(author.national_id, AUTHOR);
    assert_eq!(author.organisation.as_ref().unwrap().value, "1290000017");

    let out = fhir::document_reference(&entry);
    assert_eq!(out["resourceType"], "DocumentReference");
    assert_eq!(out["id"], "d1");
    assert_eq!(out["subject"]["reference"], format!("Patient/{PATIENT}"));
    assert_eq!(out["masterIdentifier"]["value"], master);
    assert_eq!(out["status"], "current");
    assert_eq!(out["docStatus"], "final");
    assert_eq!(out["type"]["coding"][0]["code"], "11488-4");
    assert_eq!(out["category"][0]["coding"][0]["code"], "10");
    assert_eq!(out["date"], "2024-03-01T10:00:00+01:00");
    assert_eq!(out["author"][0]["reference"], "PractitionerRole/pr1");
    assert_eq!(out["author"][0]["identifier"]["value"], AUTHOR);
    assert_eq!(out["author"][1]["type"], "Organization");
    assert_eq!(out["custodian"]["identifier"]["value"], "1290000017");
    assert_eq!(out["securityLabel"][0]["coding"][0]["code"], "N");
    let att = &out["content"][0]["attachment"];
    assert_eq!(att["url"], "Binary/b1");
    assert_eq!(att["contentType"], "application/pdf");
    assert_eq!(att["size"], content.len());
    assert_eq!(att["hash"], sha1_b64(&content));
    assert_eq!(att["extension"][0]["url"], SHA256_EXTENSION);
    assert_eq!(
        att["extension"][0]["valueString"],
        Sha256Digest::of(&content).to_hex()
    );
    assert_eq!(att["title"], "CR de consultation");
    assert_eq!(att["language"], "fr-FR");
    assert_eq!(att["creation"], "2024-03-01T09:30:00+01:00");
    assert_eq!(out["context"]["period"]["end"], "2024-03-01T09:45:00+01:00");
    assert_eq!(
        out["context"]["practiceSetting"]["coding"][0]["code"],
        "ETABLISSEMENT"
    );

    // What we write, we read back to the same metadata (the SHA-256 extension included).
    let again = incoming_document(&out, "DocumentReference")
        .unwrap()
        .into_entry(
            "d1".into(),
            PATIENT.into(),
            &binary_of(&content, "application/pdf"),
            "client",
            1_000,
        )
        .unwrap();
    assert_eq!(again.metadata, entry.metadata);
}

#[test]
fn a_missing_date_is_the_submission_time_and_confidentiality_defaults_to_normal() {
    let content = pdf("x");
    let mut r = document_reference("Binary/b1", &content, "urn:oid:1.2.3");
    r.as_object_mut().unwrap().remove("date");
    r.as_object_mut().unwrap().remove("securityLabel");
    let e = incoming_document(&r, "DocumentReference")
        .unwrap()
        .into_entry(
            "d".into(),
            PATIENT.into(),
            &binary_of(&content, "application/pdf"),
            "c",
            1_709_164_800_000_000,
        )
        .unwrap();
    assert_eq!(e.metadata.date.as_str(), "2024-02-29T00:00:00.000000Z");
    assert_eq!(e.metadata.confidentiality, Confidentiality::N);
}

type Mutation = fn(&mut Value);

#[test]
fn every_refused_element_is_named() {
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            |r| r["type"]["coding"][0]["code"] = json!("11488-5"),
            "DocumentReference.type.coding[0].code",
            "not a LOINC code",
        ),
        (
            |r| r["type"]["coding"][0]["code"] = json!("consult"),
            "DocumentReference.type.coding[0].code",
            "not a LOINC code",
        ),
        (
            |r| r["type"]["coding"][0]["system"] = json!("urn:oid:1.2.3"),
            "DocumentReference.type.coding",
            "http://loinc.org",
        ),
        (
            |r| {
                r.as_object_mut().unwrap().remove("type");
            },
            "DocumentReference.type",
            "required",
        ),
        (
            |r| r["securityLabel"][0]["coding"][0]["code"] = json!("X"),
            "DocumentReference.securityLabel[0].coding[0].code",
            "not a confidentiality code",
        ),
        (
            |r| {
                r["securityLabel"][0]["coding"][0]["system"] =
                    json!("urn:oid:1.2.250.1.213.1.1.4.13")
            },
            "DocumentReference.securityLabel[0].coding[0].system",
            "only confidentiality",
        ),
        (
            |r| r["date"] = json!("2024-03-01"),
            "DocumentReference.date",
            "instant",
        ),
        (
            |r| r["date"] = json!("2024-02-30T10:00:00Z"),
            "DocumentReference.date",
            "no such day",
        ),
        (
            |r| r["date"] = json!("2024-03-01T10:00:00"),
            "DocumentReference.date",
            "zone",
        ),
        (
            |r| r["context"]["period"]["start"] = json!("yesterday"),
            "DocumentReference.context.period.start",
            "not a FHIR date",
        ),
        (
            |r| r["context"]["period"]["end"] = json!("2024-02-01"),
            "DocumentReference.context.period",
            "ends before it starts",
        ),
        (
            |r| r["content"][0]["attachment"]["creation"] = json!("2024-13"),
            "DocumentReference.content[0].attachment.creation",
            "month",
        ),
        (
            |r| {
                r.as_object_mut().unwrap().remove("subject");
            },
            "DocumentReference.subject",
            "required",
        ),
        (
            |r| r["subject"] = json!({ "reference": "Group/1" }),
            "DocumentReference.subject.reference",
            "Patient/{id}",
        ),
        (
            |r| {
                r["subject"] =
                    json!({ "identifier": { "system": "http://example.org", "value": "1" } })
            },
            "DocumentReference.subject.identifier.system",
            "urn:oid",
        ),
        (
            |r| r["masterIdentifier"]["value"] = json!("12345"),
            "DocumentReference.masterIdentifier.value",
            "urn:oid",
        ),
        (
            |r| r["masterIdentifier"]["system"] = json!("http://example.org"),
            "DocumentReference.masterIdentifier.system",
            "rfc:3986",
        ),
        (
            |r| {
                r.as_object_mut().unwrap().remove("masterIdentifier");
            },
            "DocumentReference.masterIdentifier",
            "required",
        ),
        (
            |r| r["status"] = json!("superseded"),
            "DocumentReference.status",
            "current",
        ),
        (
            |r| r["docStatus"] = json!("done"),
            "DocumentReference.docStatus",
            "preliminary",
        ),
        (
            |r| r["content"][0]["attachment"]["contentType"] = json!("text/html"),
            "DocumentReference.content[0].attachment.contentType",
            "not accepted",
        ),
        (
            |r| {
                r["content"][0]["attachment"]
                    .as_object_mut()
                    .unwrap()
                    .remove("contentType");
            },
            "DocumentReference.content[0].attachment.contentType",
            "required",
        ),
        (
            |r| {
                let c = r["content"][0].clone();
                r["content"].as_array_mut().unwrap().push(c);
            },
            "DocumentReference.content",
            "one content",
        ),
        (
            |r| r["content"][0]["attachment"]["hash"] = json!("not base64!"),
            "DocumentReference.content[0].attachment.hash",
            "base64",
        ),
        (
            |r| r["content"][0]["attachment"]["hash"] = json!(b64(&[0; 32])),
            "DocumentReference.content[0].attachment.hash",
            "20 bytes",
        ),
        (
            |r| r["content"][0]["attachment"]["size"] = json!(-1),
            "DocumentReference.content[0].attachment.size",
            "non-negative",
        ),
        (
            |r| r["content"][0]["attachment"]["url"] = json!("http://elsewhere/doc.pdf"),
            "DocumentReference.content[0].attachment.url",
            "Binary/{id}",
        ),
        (
            |r| r["content"][0]["attachment"]["data"] = json!("AAAA"),
            "DocumentReference.content[0].attachment.data",
            "inline",
        ),
        (
            |r| {
                r["content"][0]["attachment"]["extension"] =
                    json!([{ "url": SHA256_EXTENSION, "valueString": "abc" }])
            },
            "DocumentReference.content[0].attachment.extension[0].valueString",
            "64 hexadecimal",
        ),
        (
            |r| {
                r["author"][0].as_object_mut().unwrap().remove("identifier");
            },
            "DocumentReference.author[0].identifier",
            "national identifier",
        ),
        (
            |r| r["author"][0]["identifier"]["value"] = json!("12345"),
            "DocumentReference.author[0].identifier.value",
            "8+RPPS",
        ),
        (
            |r| r["author"][0]["identifier"]["system"] = json!("urn:oid:1.2.250.1.71.4.2.2"),
            "DocumentReference.author[0].identifier.system",
            "national id",
        ),
        (
            |r| r["author"][0]["reference"] = json!("Patient/x"),
            "DocumentReference.author[0].reference",
            "Practitioner",
        ),
        (
            |r| {
                r["relatesTo"] =
                    json!([{ "code": "appends", "target": { "reference": "DocumentReference/x" } }])
            },
            "DocumentReference.relatesTo[0].code",
            "only replaces",
        ),
        (
            |r| {
                r["relatesTo"] =
                    json!([{ "code": "replaces", "target": { "reference": "Binary/x" } }])
            },
            "DocumentReference.relatesTo[0].target.reference",
            "DocumentReference/{id}",
        ),
        (
            |r| {
                let c = r["category"][0].clone();
                r["category"].as_array_mut().unwrap().push(c);
            },
            "DocumentReference.category",
            "one category",
        ),
        (
            |r| r["category"][0]["coding"][0]["system"] = json!("classcode"),
            "DocumentReference.category[0].coding[0].system",
            "absolute URI",
        ),
        (
            |r| r["description"] = json!(42),
            "DocumentReference.description",
            "string",
        ),
        (
            |r| r["resourceType"] = json!("Patient"),
            "DocumentReference.resourceType",
            "not a Patient",
        ),
    ];
    let content = pdf("x");
    for (mutate, expression, message) in cases {
        let mut r = document_reference("Binary/b1", &content, "urn:oid:1.2.3.4");
        mutate(&mut r);
        let e = incoming_document(&r, "DocumentReference")
            .expect_err(&format!("accepted with a fault at {expression}"));
        assert_eq!(e.expression, expression, "{}", e.message);
        assert!(e.message.contains(message), "{expression}: {}", e.message);
    }
}

#[test]
fn the_declared_content_must_match_the_binary() {
    let content = pdf("declared");
    let r = document_reference("Binary/b1", &content, "urn:oid:1.2.3");
    let doc = incoming_document(&r, "DocumentReference").unwrap();
    let other = pdf("another content");
    let e = doc
        .check_binary(&binary_of(&other, "application/pdf"))
        .unwrap_err();
    assert_eq!(e.expression, "DocumentReference.content[0].attachment.size");
    let mut same_size = content.clone();
    same_size[20] ^= 1;
    let e = doc
        .check_binary(&binary_of(&same_size, "application/pdf"))
        .unwrap_err();
    assert_eq!(e.expression, "DocumentReference.content[0].attachment.hash");
    let e = doc
        .check_binary(&binary_of(&content, "image/png"))
        .unwrap_err();
    assert_eq!(
        e.expression,
        "DocumentReference.content[0].attachment.contentType"
    );
    doc.check_binary(&binary_of(&content, "application/pdf"))
        .unwrap();
}

#[test]
fn a_valid_bundle_is_read_whole() {
    let content = pdf("bundle");
    let plan = provide_bundle(&provide_bundle_json(&content), 1 << 20, "client", 5).unwrap();
    assert_eq!(
        plan.kinds,
        vec![
            EntryKind::SubmissionSet,
            EntryKind::DocumentReference,
            EntryKind::Binary
        ]
    );
    assert_eq!(plan.documents.len(), 1);
    assert_eq!(plan.documents[0].document.path, "Bundle.entry[1].resource");
    let b = &plan.binaries[0];
    assert_eq!(b.data, content);
    assert_eq!(b.binary.sha256, Sha256Digest::of(&content));
    assert_eq!(b.binary.content_type, "application/pdf");
    assert_eq!(b.binary.uploaded_by, "client");
}

fn provide_bundle_json(content: &[u8]) -> Value {
    common::provide_bundle(content, "urn:uuid:0c287d32-01e3-4d87-9953-9fcc9404eb21")
}

#[test]
fn broken_bundles_are_refused_with_the_element_at_fault() {
    let content = pdf("bundle");
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            |b| b["entry"][1]["resource"]["content"][0]["attachment"]["url"] = json!(uuid(99)),
            "Bundle.entry[1].resource.content[0].attachment.url",
            "not the fullUrl of a Binary",
        ),
        (
            |b| b["entry"][2]["resource"]["data"] = json!(b64(&pdf("tampered"))),
            "Bundle.entry[1].resource.content[0].attachment.size",
            "declared",
        ),
        (
            |b| {
                let mut other = pdf("bundle");
                other[12] ^= 1;
                b["entry"][2]["resource"]["data"] = json!(b64(&other));
            },
            "Bundle.entry[1].resource.content[0].attachment.hash",
            "SHA-1",
        ),
        (
            |b| b["entry"][2]["resource"]["data"] = json!(b64(&png())),
            "Bundle.entry[2].resource.data",
            "is a PNG image",
        ),
        (
            |b| b["entry"][2]["resource"]["contentType"] = json!("application/octet-stream"),
            "Bundle.entry[2].resource.contentType",
            "not accepted",
        ),
        (
            |b| b["entry"][2]["resource"]["data"] = json!("%%%"),
            "Bundle.entry[2].resource.data",
            "base64",
        ),
        (
            |b| {
                b["entry"][2]["resource"]
                    .as_object_mut()
                    .unwrap()
                    .remove("data");
            },
            "Bundle.entry[2].resource.data",
            "required",
        ),
        (
            |b| {
                b["entry"][2].as_object_mut().unwrap().remove("fullUrl");
            },
            "Bundle.entry[2].fullUrl",
            "urn:uuid",
        ),
        (
            |b| b["entry"][2]["fullUrl"] = json!(uuid(3)),
            "Bundle.entry[2].fullUrl",
            "used twice",
        ),
        (
            |b| b["entry"][1]["fullUrl"] = json!("http://x/DocumentReference/1"),
            "Bundle.entry[1].fullUrl",
            "urn:uuid",
        ),
        (|b| b["type"] = json!("batch"), "Bundle.type", "transaction"),
        (|b| b["entry"] = json!([]), "Bundle.entry", "no entries"),
        (
            |b| b["entry"][1]["request"]["method"] = json!("PUT"),
            "Bundle.entry[1].request",
            "POST",
        ),
        (
            |b| b["entry"][0]["resource"] = json!({ "resourceType": "Patient" }),
            "Bundle.entry[0].request",
            "POST Patient",
        ),
        (
            |b| {
                b["entry"][0]["resource"] = json!({ "resourceType": "Patient" });
                b["entry"][0]["request"]["url"] = json!("Patient");
            },
            "Bundle.entry[0].resource.resourceType",
            "not Patient",
        ),
        (
            |b| {
                let e = b["entry"][1].clone();
                b["entry"].as_array_mut().unwrap().remove(1);
                let _ = e;
            },
            "Bundle.entry",
            "no DocumentReference",
        ),
        (
            |b| {
                let mut extra = b["entry"][2].clone();
                extra["fullUrl"] = json!(uuid(50));
                b["entry"].as_array_mut().unwrap().push(extra);
            },
            "Bundle.entry[3]",
            "not the content of any",
        ),
        (
            |b| {
                let mut twin = b["entry"][1].clone();
                twin["fullUrl"] = json!(uuid(60));
                b["entry"].as_array_mut().unwrap().push(twin);
            },
            "Bundle.entry[3].resource.masterIdentifier",
            "share",
        ),
        (
            |b| b["entry"][1]["resource"]["type"]["coding"][0]["code"] = json!("1-1"),
            "Bundle.entry[1].resource.type.coding[0].code",
            "LOINC",
        ),
    ];
    for (mutate, expression, message) in cases {
        let mut b = provide_bundle_json(&content);
        mutate(&mut b);
        let e = provide_bundle(&b, 1 << 20, "client", 0)
            .expect_err(&format!("accepted with a fault at {expression}"));
        assert_eq!(e.expression, expression, "{}", e.message);
        assert!(e.message.contains(message), "{expression}: {}", e.message);
    }
    // An inline Binary over the limit is refused before decoding.
    let e = provide_bundle(&provide_bundle_json(&content), 10, "client", 0).unwrap_err();
    assert_eq!(e.expression, "Bundle.entry[2].resource.data");
    assert!(e.message.contains("limit of 10 bytes"));
}

fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn search_parameters() {
    let r = search_request(&params(&[
        ("patient", &format!("Patient/{PATIENT}")),
        ("status", "current,superseded"),
        ("type", "http://loinc.org|11488-4"),
        ("date", "ge2024-01-01"),
        ("date", "lt2025"),
        (
            "author.identifier",
            &format!("{NATIONAL_ID_SYSTEM}|{AUTHOR}"),
        ),
        ("_count", "10"),
        ("_offset", "20"),
    ]))
    .unwrap();
    assert_eq!(r.subject, Subject::Patient(PATIENT.into()));
    assert_eq!(
        r.filters.status,
        vec![vec![Status::Current, Status::Superseded]]
    );
    assert_eq!(r.filters.date.len(), 2);
    assert_eq!(r.filters.author, vec![vec![AUTHOR.to_string()]]);
    assert_eq!((r.count, r.offset), (10, 20));
    assert_eq!(r.echo.len(), 6);

    let by_ins = search_request(&params(&[(
        "patient.identifier",
        &format!("urn:oid:1.2.250.1.213.1.4.8|{INS}"),
    )]))
    .unwrap();
    assert!(matches!(by_ins.subject, Subject::Identifier(ref i) if i.value == INS));

    let bad: Vec<(Vec<(String, String)>, &str)> = vec![
        (
            params(&[("status", "current")]),
            "DocumentReference?patient",
        ),
        (params(&[("patient", "a/b/c")]), "DocumentReference?patient"),
        (
            params(&[("patient", "p1"), ("patient", "p2")]),
            "DocumentReference?patient",
        ),
        (
            params(&[("patient", "p1"), ("status", "final")]),
            "DocumentReference?status",
        ),
        (
            params(&[("patient", "p1"), ("date", "2024-13")]),
            "DocumentReference?date",
        ),
        (
            params(&[("patient", "p1"), ("period", "ap2024")]),
            "DocumentReference?period",
        ),
        (
            params(&[("patient", "p1"), ("_count", "100000")]),
            "DocumentReference?_count",
        ),
        (
            params(&[("patient", "p1"), ("_offset", "-1")]),
            "DocumentReference?_offset",
        ),
        (
            params(&[("patient", "p1"), ("author.identifier", "123")]),
            "DocumentReference?author.identifier",
        ),
        (
            params(&[("patient", "p1"), ("_text", "rein")]),
            "DocumentReference?_text",
        ),
        (
            params(&[("patient.identifier", "1.2.3|x")]),
            "DocumentReference?patient.identifier",
        ),
    ];
    for (p, expression) in bad {
        let e = search_request(&p).expect_err(&format!("{p:?} accepted"));
        assert_eq!(e.expression, expression, "{p:?}: {}", e.message);
    }
}

#[test]
fn search_bundle_pages() {
    let page = SearchPage {
        total: 25,
        entries: Vec::new(),
        offset: 10,
        count: 10,
    };
    let echo = params(&[("patient", "p1"), ("type", "http://loinc.org|11488-4")]);
    let b = search_bundle(&page, "https://megalis.example/fhir/", &echo);
    assert_eq!(b["type"], "searchset");
    assert_eq!(b["total"], 25);
    let links: Vec<(&str, &str)> = b["link"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["relation"].as_str().unwrap(), l["url"].as_str().unwrap()))
        .collect();
    assert_eq!(
        links[0],
        (
            "self",
            "https://megalis.example/fhir/DocumentReference?patient=p1&type=http%3A%2F%2Floinc.org%7C11488-4&_count=10&_offset=10"
        )
    );
    assert_eq!(links[1].0, "next");
    assert!(links[1].1.ends_with("_count=10&_offset=20"));
    assert_eq!(links[2].0, "previous");
    assert!(links[2].1.ends_with("_offset=0"));
    // The last page has no next link.
    let last = SearchPage {
        total: 25,
        entries: Vec::new(),
        offset: 20,
        count: 10,
    };
    let b = search_bundle(&last, "https://megalis.example/fhir", &echo);
    assert!(
        b["link"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["relation"] != "next")
    );
}

// ----- fuzzing ---------------------------------------------------------------------------------

fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("urn:uuid:00000000-0000-4000-8000-000000000002"),
            Just("Binary/b1"),
            Just("Patient/x"),
            Just("2024-03-01T10:00:00Z"),
            Just("application/pdf"),
            Just("JVBERi0="),
            Just("current"),
            Just("34133-9"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON pointers of every node of `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn remove_at(root: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    match root.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

    /// Arbitrary mutations of a valid bundle (replace or remove any node, several times) either
    /// parse or give an InputError naming an element of the Bundle; never a panic.
    #[test]
    fn mutated_bundles_parse_or_are_refused(
        edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::bool::ANY, any_json()), 1..5),
    ) {
        let mut b = provide_bundle_json(&pdf("fuzz"));
        for (pick, remove, value) in edits {
            let mut all = Vec::new();
            pointers(&b, String::new(), &mut all);
            let target = &all[pick % all.len()];
            if remove && !target.is_empty() {
                remove_at(&mut b, target);
            } else if let Some(node) = b.pointer_mut(target) {
                *node = value;
            }
        }
        match provide_bundle(&b, 1 << 20, "client", 0) {
            Ok(plan) => proptest::prop_assert!(!plan.documents.is_empty()),
            Err(e) => {
                proptest::prop_assert!(e.expression.starts_with("Bundle"), "{}", e.expression);
                proptest::prop_assert!(!e.message.is_empty());
            }
        }
    }

    /// Any JSON as a DocumentReference: a result or an InputError, never a panic.
    #[test]
    fn arbitrary_document_references_never_panic(v in any_json()) {
        if let Err(e) = incoming_document(&v, "DocumentReference") {
            proptest::prop_assert!(e.expression.starts_with("DocumentReference"));
        }
        let mut r = document_reference("Binary/b1", b"x", "urn:oid:1.2.3");
        r["content"][0]["attachment"] = v;
        if let Err(e) = incoming_document(&r, "DocumentReference") {
            proptest::prop_assert!(e.expression.starts_with("DocumentReference.content"), "{}", e.expression);
        }
    }

    /// Arbitrary search parameters: a request or an InputError.
    #[test]
    fn arbitrary_search_parameters_never_panic(
        p in proptest::collection::vec((
            proptest::sample::select(vec!["patient", "status", "type", "category", "date", "period", "author.identifier", "_count", "_offset", "patient.identifier", "x"]),
            ".{0,30}",
        ), 0..6)
    ) {
        let p: Vec<(String, String)> = p.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        if let Err(e) = search_request(&p) {
            proptest::prop_assert!(e.expression.starts_with("DocumentReference?"));
        }
    }
}
