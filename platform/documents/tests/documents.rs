//! The documents service on SQLite and PostgreSQL with a local blob store: provide, find and
//! retrieve, streamed Binaries, replacement and withdrawal, and every refused request leaving
//! nothing behind.

mod common;

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use futures::StreamExt;
use megalis_blobs::{BlobStore, LocalBlobStore, PutStream, Sha256Digest};
use megalis_documents::datetime::DateCondition;
use megalis_documents::fhir::{self, DocumentQuery, Subject};
use megalis_documents::{
    DeclaredHash, DocumentError, Documents, Limits, PatientResolver, ResolveError, Status,
};
use megalis_store::{Backend, Database, with_pool};
use megalis_testkit::fresh_database;
use serde_json::{Value, json};

struct Env {
    _db_dir: Option<tempfile::TempDir>,
    _blob_dir: tempfile::TempDir,
    db: Database,
    blobs: Arc<dyn BlobStore>,
    docs: Documents,
}

const LIMITS: Limits = Limits {
    max_binary_size: 256 * 1024,
    max_inline_size: 64 * 1024,
};

async fn env(backend: Backend) -> Env {
    let (dir, db) = fresh_database(backend).await;
    let blob_dir = tempfile::tempdir().unwrap();
    let blobs: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(blob_dir.path()).unwrap());
    let docs = Documents::new(db.clone(), blobs.clone(), LIMITS);
    Env {
        _db_dir: dir,
        _blob_dir: blob_dir,
        db,
        blobs,
        docs,
    }
}

async fn both(f: impl AsyncFn(Env)) {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        f(env(backend).await).await;
    }
}

/// The identity index stand-in: two known patients, one of them also known by its INS.
fn resolver() -> impl PatientResolver {
    |s: &Subject| {
        let found = match s {
            Subject::Patient(id) if id == PATIENT || id == OTHER_PATIENT => Some(id.clone()),
            Subject::Identifier(i)
                if i.system == "urn:oid:1.2.250.1.213.1.4.8" && i.value == INS =>
            {
                Some(PATIENT.to_string())
            }
            _ => None,
        };
        async move { Ok::<_, ResolveError>(found) }
    }
}

async fn count(db: &Database, table: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table}");
    with_pool!(db, pool => sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(pool).await.unwrap())
}

fn stream_of(data: Vec<u8>, chunk: usize) -> PutStream {
    let parts: Vec<io::Result<Bytes>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(parts))
}

async fn read_all(docs: &Documents, binary_id: &str) -> Vec<u8> {
    let access = docs.binary_access(binary_id).await.unwrap();
    let mut stream = docs.open_binary(&access.binary).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

fn expression(e: &DocumentError) -> &str {
    &e.input_error()
        .unwrap_or_else(|| panic!("not an input error: {e}"))
        .expression
}

#[tokio::test]
async fn provide_find_retrieve_round_trip() {
    both(async |e: Env| {
        let content = pdf("round trip");
        let bundle = provide_bundle(&content, "urn:oid:1.2.250.1.999.1.1");
        // Checked first (the server decides access on its patient), then written.
        let checked = e
            .docs
            .check_bundle(&bundle, &resolver(), "hospital-a")
            .await
            .unwrap();
        assert_eq!((checked.patient_id(), checked.documents()), (PATIENT, 1));
        assert_eq!(count(&e.db, "document_entry").await, 0);
        let provided = e.docs.provide_checked(checked, "hospital-a").await.unwrap();
        assert_eq!(provided.documents.len(), 1);
        let doc = &provided.documents[0];
        let binary = &provided.binaries[0];
        assert_eq!(doc.patient_id, PATIENT);
        assert_eq!(doc.metadata.content.binary_id, binary.id);
        assert_eq!(binary.sha256, Sha256Digest::of(&content));

        // The answer lists each entry in request order; the audit effects name the patient.
        let entries = provided.response["entry"].as_array().unwrap();
        assert_eq!(entries[0]["response"]["status"], "200 OK");
        assert_eq!(
            entries[1]["response"]["location"],
            format!("DocumentReference/{}", doc.id)
        );
        assert_eq!(
            entries[2]["response"]["location"],
            format!("Binary/{}", binary.id)
        );
        let actions: Vec<&str> = provided.effects.iter().map(|e| e.action).collect();
        assert_eq!(actions, ["binary.create", "document.create"]);
        assert!(
            provided
                .effects
                .iter()
                .all(|x| x.patient_id.as_deref() == Some(PATIENT))
        );

        // ITI-67 by regional id finds it, with the same resource as a read.
        let page = e.docs.find(&DocumentQuery::patient(PATIENT)).await.unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.entries[0], e.docs.document(&doc.id).await.unwrap());
        let resource = fhir::document_reference(&page.entries[0]);
        assert_eq!(
            resource["content"][0]["attachment"]["url"],
            format!("Binary/{}", binary.id)
        );
        assert_eq!(
            resource["content"][0]["attachment"]["hash"],
            sha1_b64(&content)
        );
        assert_eq!(resource["author"][0]["identifier"]["value"], AUTHOR);
        assert!(
            e.docs
                .find(&DocumentQuery::patient(OTHER_PATIENT))
                .await
                .unwrap()
                .entries
                .is_empty()
        );

        // ITI-68: the access decision learns the patient, then the content streams back.
        let access = e.docs.binary_access(&binary.id).await.unwrap();
        assert_eq!(access.patients(), [PATIENT]);
        assert_eq!(read_all(&e.docs, &binary.id).await, content);
        assert!(matches!(
            e.docs.binary_access("nope").await,
            Err(DocumentError::NotFound(_))
        ));
        assert!(matches!(
            e.docs.document("nope").await,
            Err(DocumentError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn a_large_streamed_binary_then_its_document_reference() {
    both(async |e: Env| {
        // An EEG of about 100 kB, sent in 8 kB chunks with its SHA-256 declared.
        let eeg = edf(8, 25, 256);
        assert!(eeg.len() > 64 * 1024);
        let declared = DeclaredHash::parse(&Sha256Digest::of(&eeg).to_hex()).unwrap();
        let (binary, effect) = e
            .docs
            .store_binary(stream_of(eeg.clone(), 8192), "application/edf", Some(declared), "neuro-lab")
            .await
            .unwrap();
        assert_eq!(binary.size, eeg.len() as u64);
        assert_eq!(binary.content_type, "application/edf");
        assert_eq!((effect.action, effect.patient_id.as_deref()), ("binary.create", None));
        // Not used by any document yet: no patient to decide access on.
        assert!(e.docs.binary_access(&binary.id).await.unwrap().patients().is_empty());

        // The DocumentReference names it, the subject given by INS.
        let mut dr = document_reference(&format!("Binary/{}", binary.id), &eeg, "urn:oid:1.2.250.1.999.2.1");
        dr["content"][0]["attachment"]["contentType"] = json!("application/edf");
        dr["type"]["coding"][0] = json!({ "system": "http://loinc.org", "code": "11523-8", "display": "EEG study" });
        dr["subject"] = json!({ "identifier": { "system": "urn:oid:1.2.250.1.213.1.4.8", "value": INS } });
        // Only the uploader may attach its upload to a patient.
        let stolen = e.docs.provide_document(&dr, &resolver(), "someone-else").await.unwrap_err();
        assert!(stolen.to_string().contains("uploaded by another client"), "{stolen}");
        let provided = e.docs.provide_document(&dr, &resolver(), "neuro-lab").await.unwrap();
        let doc = &provided.documents[0];
        assert_eq!(doc.patient_id, PATIENT);
        assert_eq!(doc.metadata.content.sha256, binary.sha256);
        assert_eq!(provided.response["entry"][0]["response"]["location"], format!("DocumentReference/{}", doc.id));
        assert_eq!(e.docs.binary_access(&binary.id).await.unwrap().patients(), [PATIENT]);
        assert_eq!(read_all(&e.docs, &binary.id).await, eeg);

        // A bundle may also name a stored Binary.
        let (second, _) = e.docs.store_binary(stream_of(cda(), 100), "text/xml; charset=UTF-8", None, "neuro-lab").await.unwrap();
        let mut bundle = json!({ "resourceType": "Bundle", "type": "transaction", "entry": [{
            "fullUrl": uuid(7),
            "resource": document_reference(&format!("Binary/{}", second.id), &cda(), "urn:oid:1.2.250.1.999.2.2"),
            "request": { "method": "POST", "url": "DocumentReference" } }] });
        bundle["entry"][0]["resource"]["content"][0]["attachment"]["contentType"] = json!("text/xml");
        let p = e.docs.provide_bundle(&bundle, &resolver(), "neuro-lab").await.unwrap();
        assert_eq!(p.documents[0].metadata.content.content_type, "text/xml");
        assert_eq!(e.docs.find(&DocumentQuery::patient(PATIENT)).await.unwrap().total, 2);
    })
    .await;
}

#[tokio::test]
async fn replacement_keeps_both_versions() {
    both(async |e: Env| {
        let v1 = pdf("version 1");
        let first = e.docs.provide_bundle(&provide_bundle(&v1, "urn:oid:1.2.3.1"), &resolver(), "h").await.unwrap();
        let old = first.documents[0].id.clone();

        let v2 = pdf("version 2");
        let mut bundle = provide_bundle(&v2, "urn:oid:1.2.3.2");
        bundle["entry"][1]["resource"]["relatesTo"] =
            json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{old}") } }]);
        let second = e.docs.provide_bundle(&bundle, &resolver(), "h").await.unwrap();
        let new = second.documents[0].id.clone();
        let actions: Vec<(&str, &str)> = second.effects.iter().map(|x| (x.action, x.resource.as_str())).collect();
        assert!(actions.contains(&("document.supersede", format!("DocumentReference/{old}").as_str())));

        assert_eq!(e.docs.document(&old).await.unwrap().status, Status::Superseded);
        let current = e.docs.document(&new).await.unwrap();
        assert_eq!(current.status, Status::Current);
        assert_eq!(current.metadata.replaces.as_deref(), Some(old.as_str()));
        assert_eq!(e.docs.replaced_by(&old).await.unwrap().as_deref(), Some(new.as_str()));
        assert_eq!(fhir::document_reference(&current)["relatesTo"][0]["target"]["reference"], format!("DocumentReference/{old}"));
        // Both versions stay, and both contents can still be read.
        assert_eq!(e.docs.find(&DocumentQuery::patient(PATIENT)).await.unwrap().total, 2);
        assert_eq!(read_all(&e.docs, &e.docs.document(&old).await.unwrap().metadata.content.binary_id).await, v1);

        // A superseded version cannot be replaced again (a fork): 409, nothing written.
        let mut fork = provide_bundle(&pdf("fork"), "urn:oid:1.2.3.3");
        fork["entry"][1]["resource"]["relatesTo"] =
            json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{old}") } }]);
        let err = e.docs.provide_bundle(&fork, &resolver(), "h").await.unwrap_err();
        assert!(matches!(err, DocumentError::Conflict(_)), "{err}");
        assert_eq!(expression(&err), "Bundle.entry[1].resource.relatesTo[0].target");
        // Nor can a document of another patient be replaced.
        let mut other = provide_bundle(&pdf("other patient"), "urn:oid:1.2.3.4");
        other["entry"][1]["resource"]["subject"]["reference"] = json!(format!("Patient/{OTHER_PATIENT}"));
        other["entry"][1]["resource"]["relatesTo"] =
            json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{new}") } }]);
        let err = e.docs.provide_bundle(&other, &resolver(), "h").await.unwrap_err();
        assert!(err.to_string().contains("another patient"), "{err}");
        // Nor a document that does not exist.
        let mut ghost = provide_bundle(&pdf("ghost"), "urn:oid:1.2.3.5");
        ghost["entry"][1]["resource"]["relatesTo"] =
            json!([{ "code": "replaces", "target": { "reference": "DocumentReference/ghost" } }]);
        let err = e.docs.provide_bundle(&ghost, &resolver(), "h").await.unwrap_err();
        assert!(matches!(err, DocumentError::Invalid(_)) && err.to_string().contains("does not exist"), "{err}");
        assert_eq!(count(&e.db, "document_entry").await, 2);
        assert_eq!(count(&e.db, "document_binary").await, 2);
        // One event per document provided (plugins follow them), none for the refused ones.
        let events = megalis_store::events::poll(&e.db, megalis_store::events::DOCUMENT_SHARED, 0, 10)
            .await
            .unwrap();
        let seen: Vec<(Option<&str>, Value)> = events
            .iter()
            .map(|ev| (ev.patient_id.as_deref(), serde_json::from_str(&ev.payload).unwrap()))
            .collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[0].0, Some(PATIENT));
        assert_eq!(seen[0].1["document"], json!(old));
        assert_eq!(seen[1].1["document"], json!(new));
        assert_eq!(seen[1].1["replaces"], json!(old));
        assert!(events[0].id < events[1].id);
    })
    .await;
}

#[tokio::test]
async fn deletion_is_a_status_change() {
    both(async |e: Env| {
        let p = e
            .docs
            .provide_bundle(
                &provide_bundle(&pdf("wrong patient"), "urn:oid:1.2.4.1"),
                &resolver(),
                "h",
            )
            .await
            .unwrap();
        let id = p.documents[0].id.clone();
        let effect = e.docs.mark_entered_in_error(&id, "dr-house").await.unwrap();
        assert_eq!(effect.action, "document.entered-in-error");
        assert_eq!(effect.patient_id.as_deref(), Some(PATIENT));
        assert!(effect.detail.contains("was current"));
        let doc = e.docs.document(&id).await.unwrap();
        assert_eq!(doc.status, Status::EnteredInError);
        assert!(doc.updated_at_us >= doc.created_at_us);
        assert_eq!(fhir::document_reference(&doc)["status"], "entered-in-error");
        // The row and the content stay.
        assert_eq!(count(&e.db, "document_entry").await, 1);
        assert_eq!(
            read_all(&e.docs, &doc.metadata.content.binary_id).await,
            pdf("wrong patient")
        );
        // Searches for current documents no longer see it.
        let mut q = DocumentQuery::patient(PATIENT);
        q.filters.status = vec![vec![Status::Current]];
        assert_eq!(e.docs.find(&q).await.unwrap().total, 0);
        // Twice is a conflict; an unknown id is not found.
        assert!(matches!(
            e.docs.mark_entered_in_error(&id, "x").await,
            Err(DocumentError::Conflict(_))
        ));
        assert!(matches!(
            e.docs.mark_entered_in_error("nope", "x").await,
            Err(DocumentError::NotFound(_))
        ));
        // Its masterIdentifier stays taken: a corrected document is a new one.
        let again = e
            .docs
            .provide_bundle(
                &provide_bundle(&pdf("again"), "urn:oid:1.2.4.1"),
                &resolver(),
                "h",
            )
            .await
            .unwrap_err();
        assert!(matches!(again, DocumentError::Conflict(_)), "{again}");
    })
    .await;
}

#[tokio::test]
async fn refused_requests_leave_nothing() {
    both(async |e: Env| {
        let content = pdf("refused");
        type Case = (&'static str, fn(&mut Value), &'static str);
        let cases: Vec<Case> = vec![
            ("broken reference", |b| {
                b["entry"][1]["resource"]["content"][0]["attachment"]["url"] = json!("Binary/does-not-exist");
                b["entry"].as_array_mut().unwrap().remove(2);
            },
                "Bundle.entry[1].resource.content[0].attachment.url"),
            ("hash mismatch", |b| { let mut d = pdf("refused"); d[15] ^= 4; b["entry"][2]["resource"]["data"] = json!(b64(&d)); },
                "Bundle.entry[1].resource.content[0].attachment.hash"),
            ("wrong content type", |b| b["entry"][2]["resource"]["data"] = json!(b64(&cda())),
                "Bundle.entry[2].resource.data"),
            ("unknown patient", |b| b["entry"][1]["resource"]["subject"] = json!({ "reference": "Patient/RB19999999999" }),
                "Bundle.entry[1].resource.subject"),
            ("unknown INS", |b| b["entry"][1]["resource"]["subject"] = json!({ "identifier": { "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "199999999999999" } }),
                "Bundle.entry[1].resource.subject"),
            ("invalid LOINC", |b| b["entry"][1]["resource"]["type"]["coding"][0]["code"] = json!("11488-3"),
                "Bundle.entry[1].resource.type.coding[0].code"),
            ("invalid confidentiality", |b| b["entry"][1]["resource"]["securityLabel"][0]["coding"][0]["code"] = json!("S"),
                "Bundle.entry[1].resource.securityLabel[0].coding[0].code"),
            ("invalid date", |b| b["entry"][1]["resource"]["date"] = json!("2024-02-30T10:00:00Z"),
                "Bundle.entry[1].resource.date"),
        ];
        for (what, mutate, at) in cases {
            let mut b = provide_bundle(&content, "urn:oid:1.2.5.1");
            mutate(&mut b);
            let err = e.docs.provide_bundle(&b, &resolver(), "h").await.expect_err(what);
            assert!(err.is_bad_input(), "{what}: {err}");
            assert_eq!(expression(&err), at, "{what}: {err}");
            if what.starts_with("unknown") {
                assert!(matches!(err, DocumentError::UnknownPatient(_)), "{what}: {err}");
            }
        }
        assert_eq!(count(&e.db, "document_entry").await, 0);
        assert_eq!(count(&e.db, "document_binary").await, 0);

        // All or nothing: the second document of a bundle conflicts with a stored one, so the
        // first document and both Binaries are not kept either.
        e.docs.provide_bundle(&provide_bundle(&pdf("stored"), "urn:oid:1.2.5.9"), &resolver(), "h").await.unwrap();
        let mut b = provide_bundle(&content, "urn:oid:1.2.5.2");
        let entries = b["entry"].as_array_mut().unwrap();
        let other = pdf("second");
        entries.push(json!({ "fullUrl": uuid(20), "resource": document_reference(&uuid(21), &other, "urn:oid:1.2.5.9"),
                             "request": { "method": "POST", "url": "DocumentReference" } }));
        entries.push(json!({ "fullUrl": uuid(21), "resource": { "resourceType": "Binary", "contentType": "application/pdf", "data": b64(&other) },
                             "request": { "method": "POST", "url": "Binary" } }));
        let err = e.docs.provide_bundle(&b, &resolver(), "h").await.unwrap_err();
        assert!(matches!(err, DocumentError::Conflict(_)), "{err}");
        assert_eq!(expression(&err), "Bundle.entry[3].resource.masterIdentifier");
        assert_eq!(count(&e.db, "document_entry").await, 1);
        assert_eq!(count(&e.db, "document_binary").await, 1);

        // Documents of two patients in one transaction are refused.
        let mut b = provide_bundle(&content, "urn:oid:1.2.5.3");
        let entries = b["entry"].as_array_mut().unwrap();
        let mut second = document_reference(&uuid(2), &content, "urn:oid:1.2.5.4");
        second["subject"]["reference"] = json!(format!("Patient/{OTHER_PATIENT}"));
        entries.push(json!({ "fullUrl": uuid(30), "resource": second, "request": { "method": "POST", "url": "DocumentReference" } }));
        let err = e.docs.provide_bundle(&b, &resolver(), "h").await.unwrap_err();
        assert_eq!(expression(&err), "Bundle.entry[3].resource.subject");
        assert_eq!(count(&e.db, "document_entry").await, 1);
    })
    .await;
}

#[tokio::test]
async fn streamed_uploads_are_checked() {
    both(async |e: Env| {
        // Over the limit: refused while streaming, no row, no blob.
        let big = edf(16, 40, 256);
        assert!(big.len() as u64 > LIMITS.max_binary_size);
        let err = e
            .docs
            .store_binary(
                stream_of(big.clone(), 16 * 1024),
                "application/edf",
                None,
                "lab",
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, DocumentError::TooLarge { limit } if limit == LIMITS.max_binary_size),
            "{err}"
        );
        assert!(!e.blobs.exists(&Sha256Digest::of(&big)).await.unwrap());

        // Declared one type, sent another.
        let err = e
            .docs
            .store_binary(stream_of(png(), 10), "application/pdf", None, "lab")
            .await
            .unwrap_err();
        assert_eq!(expression(&err), "Binary.data");
        assert!(err.to_string().contains("is a PNG image"), "{err}");
        // A type outside the allowlist.
        let err = e
            .docs
            .store_binary(stream_of(pdf("x"), 10), "text/html", None, "lab")
            .await
            .unwrap_err();
        assert_eq!(expression(&err), "Binary.contentType");

        // Declared hashes that do not match, in both forms.
        let content = pdf("hashed");
        let wrong256 = DeclaredHash::parse(&Sha256Digest::of(b"other").to_hex()).unwrap();
        let err = e
            .docs
            .store_binary(
                stream_of(content.clone(), 7),
                "application/pdf",
                Some(wrong256),
                "lab",
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SHA-256"), "{err}");
        let wrong1 = DeclaredHash::parse(&sha1_b64(b"other")).unwrap();
        let err = e
            .docs
            .store_binary(
                stream_of(content.clone(), 7),
                "application/pdf",
                Some(wrong1),
                "lab",
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("SHA-1"), "{err}");
        assert!(DeclaredHash::parse("md5:abc").is_err());
        assert_eq!(count(&e.db, "document_binary").await, 0);

        // The right SHA-1 passes, and the same bytes twice are two Binaries over one blob.
        let right = DeclaredHash::parse(&sha1_b64(&content)).unwrap();
        let (a, _) = e
            .docs
            .store_binary(
                stream_of(content.clone(), 7),
                "application/pdf",
                Some(right),
                "lab",
            )
            .await
            .unwrap();
        let (b, _) = e
            .docs
            .store_binary(
                stream_of(content.clone(), 3),
                "APPLICATION/PDF",
                None,
                "lab",
            )
            .await
            .unwrap();
        assert_ne!(a.id, b.id);
        assert_eq!(a.sha256, b.sha256);
        assert_eq!(a.sha1_base64(), sha1_b64(&content));
        assert_eq!(count(&e.db, "document_binary").await, 2);
    })
    .await;
}

/// (LOINC type, category code, date, author, period) of a document of the search set.
type Spec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);
/// Search parameters and the indexes (in the search set) of the documents expected.
type SearchCase<'a> = (Vec<(&'a str, &'a str)>, Vec<usize>);

/// Documents of one patient with varied metadata, for the search tests.
async fn load_search_set(e: &Env) -> Vec<(String, i64, Option<(i64, i64)>)> {
    let specs: Vec<Spec> = vec![
        // (LOINC type, category code, date, author, period)
        (
            "11488-4",
            "10",
            "2023-06-15T08:00:00Z",
            AUTHOR,
            Some(("2023-06-15", "2023-06-15")),
        ),
        ("11488-4", "10", "2024-01-10T12:00:00Z", AUTHOR, None),
        (
            "18748-4",
            "20",
            "2024-02-29T23:59:59Z",
            "810009876543",
            Some(("2024-02", "2024-03")),
        ),
        (
            "18748-4",
            "20",
            "2024-03-01T00:00:00Z",
            AUTHOR,
            Some(("2024-03-01T00:00:00Z", "2024-03-01T01:00:00Z")),
        ),
        (
            "34133-9",
            "10",
            "2024-03-01T00:00:00Z",
            "810009876543",
            None,
        ),
        (
            "11524-6",
            "30",
            "2025-01-01T12:00:00+01:00",
            AUTHOR,
            Some(("2024-12-31", "2025-01-02")),
        ),
    ];
    let mut out = Vec::new();
    for (i, (loinc, category, date, author, period)) in specs.into_iter().enumerate() {
        let content = pdf(&format!("search {i}"));
        let mut b = provide_bundle(&content, &format!("urn:oid:1.2.6.{i}"));
        let r = &mut b["entry"][1]["resource"];
        r["type"]["coding"][0] = json!({ "system": "http://loinc.org", "code": loinc });
        r["category"][0]["coding"][0]["code"] = json!(category);
        r["date"] = json!(date);
        r["author"][0]["identifier"]["value"] = json!(author);
        match period {
            Some((s, end)) => r["context"]["period"] = json!({ "start": s, "end": end }),
            None => {
                r["context"].as_object_mut().unwrap().remove("period");
            }
        }
        let p = e.docs.provide_bundle(&b, &resolver(), "h").await.unwrap();
        let d = &p.documents[0].metadata;
        let period = (d.period_start.is_some() || d.period_end.is_some()).then(|| {
            (
                d.period_start.as_ref().map_or(i64::MIN, |s| s.start_us()),
                d.period_end.as_ref().map_or(i64::MAX, |s| s.end_us()),
            )
        });
        out.push((p.documents[0].id.clone(), d.date.start_us(), period));
    }
    out
}

async fn ids(docs: &Documents, params: &[(&str, &str)]) -> (u64, Vec<String>) {
    let mut p: Vec<(String, String)> = vec![("patient".into(), PATIENT.into())];
    p.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let q = fhir::search_request(&p).unwrap().into_query(PATIENT.into());
    let page = docs.find(&q).await.unwrap();
    (page.total, page.entries.into_iter().map(|d| d.id).collect())
}

#[tokio::test]
async fn search_filters_and_paging() {
    both(async |e: Env| {
        let set = load_search_set(&e).await;
        let id = |i: usize| set[i].0.clone();
        // Newest first; equal dates in id order.
        let (total, all) = ids(&e.docs, &[]).await;
        assert_eq!(total, 6);
        let mut tied = vec![id(3), id(4)];
        tied.sort();
        assert_eq!(all, [vec![id(5)], tied, vec![id(2), id(1), id(0)]].concat());

        let author_token = format!("{NATIONAL_ID_SYSTEM}|{AUTHOR}");
        let cases: Vec<SearchCase> = vec![
            (vec![("type", "11488-4")], vec![1, 0]),
            (
                vec![("type", "http://loinc.org|18748-4,http://loinc.org|34133-9")],
                vec![3, 4, 2],
            ),
            (vec![("type", "http://snomed.info/sct|11488-4")], vec![]),
            (vec![("type", "http://loinc.org|")], vec![5, 3, 4, 2, 1, 0]),
            (
                vec![("category", "urn:oid:1.2.250.1.213.1.1.4.1|20")],
                vec![3, 2],
            ),
            (vec![("category", "10,30")], vec![5, 4, 1, 0]),
            (vec![("author.identifier", "810009876543")], vec![4, 2]),
            (
                vec![("author.identifier", &author_token), ("type", "18748-4")],
                vec![3],
            ),
            (vec![("date", "2024-03-01")], vec![3, 4]),
            (
                vec![("date", "ge2024-02-29"), ("date", "lt2024-03-01")],
                vec![2],
            ),
            (vec![("date", "le2024")], vec![3, 4, 2, 1, 0]),
            (vec![("date", "sa2024")], vec![5]),
            (vec![("date", "eb2024-01-10T12:00:00Z")], vec![0]),
            (vec![("date", "2024-01-10T12:00:00Z")], vec![1]),
            (vec![("period", "2024-03-01")], vec![3]),
            (vec![("period", "ge2024-03-15")], vec![5, 2]),
            (vec![("period", "2025")], vec![]),
            (vec![("period", "ge2025")], vec![5]),
            (vec![("status", "superseded")], vec![]),
            (
                vec![("status", "current,entered-in-error"), ("type", "11524-6")],
                vec![5],
            ),
        ];
        for (params, expected) in cases {
            let (total, got) = ids(&e.docs, &params).await;
            let mut want: Vec<String> = expected.iter().map(|i| id(*i)).collect();
            // Equal dates are in id order.
            if expected.starts_with(&[3, 4]) || expected.windows(2).any(|w| w == [3, 4]) {
                let at = expected.iter().position(|i| *i == 3).unwrap();
                want[at..at + 2].sort();
            }
            assert_eq!(got, want, "{params:?}");
            assert_eq!(total, expected.len() as u64, "{params:?}");
        }

        // The SQL agrees with the reference semantics of each date prefix, on every document.
        for prefix in ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"] {
            for value in [
                "2024",
                "2024-02",
                "2024-03-01",
                "2023-06-15T08:00:00Z",
                "2025-01-01",
            ] {
                let cond = DateCondition::parse(&format!("{prefix}{value}")).unwrap();
                let date_want: Vec<&String> = set
                    .iter()
                    .filter(|(_, d, _)| cond.matches(Some(*d), Some(d + 1)))
                    .map(|(i, _, _)| i)
                    .collect();
                let (_, got) = ids(&e.docs, &[("date", &format!("{prefix}{value}"))]).await;
                assert_eq!(got.len(), date_want.len(), "date={prefix}{value}");
                assert!(
                    date_want.iter().all(|i| got.contains(i)),
                    "date={prefix}{value}"
                );
                let period_want: Vec<&String> = set
                    .iter()
                    .filter(|(_, _, p)| p.is_some_and(|(s, e)| cond.matches(Some(s), Some(e))))
                    .map(|(i, _, _)| i)
                    .collect();
                let (_, got) = ids(&e.docs, &[("period", &format!("{prefix}{value}"))]).await;
                assert_eq!(got.len(), period_want.len(), "period={prefix}{value}");
                assert!(
                    period_want.iter().all(|i| got.contains(i)),
                    "period={prefix}{value}"
                );
            }
        }

        // Paging walks the same order without gaps or repeats; _count=0 gives the total only.
        let mut walked = Vec::new();
        for offset in [0, 4] {
            let (total, page) = ids(
                &e.docs,
                &[("_count", "4"), ("_offset", &offset.to_string())],
            )
            .await;
            assert_eq!(total, 6);
            walked.extend(page);
        }
        assert_eq!(walked, all);
        let (total, none) = ids(&e.docs, &[("_count", "0")]).await;
        assert_eq!((total, none.len()), (6, 0));
        let (_, beyond) = ids(&e.docs, &[("_offset", "100")]).await;
        assert!(beyond.is_empty());

        // The search Bundle of a page.
        let q = fhir::search_request(&[
            ("patient".into(), PATIENT.into()),
            ("_count".into(), "2".into()),
        ])
        .unwrap();
        let echo = q.echo.clone();
        let page = e.docs.find(&q.into_query(PATIENT.into())).await.unwrap();
        let bundle = fhir::search_bundle(&page, "https://megalis.example/fhir", &echo);
        assert_eq!(bundle["total"], 6);
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 2);
        assert_eq!(bundle["entry"][0]["resource"]["id"], all[0]);
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            format!("https://megalis.example/fhir/DocumentReference/{}", all[0])
        );
        assert!(
            bundle["link"][1]["url"]
                .as_str()
                .unwrap()
                .ends_with("_count=2&_offset=2")
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_replacements_of_one_version_cannot_both_win() {
    both(async |e: Env| {
        let first = e.docs.provide_bundle(&provide_bundle(&pdf("v1"), "urn:oid:1.2.7.1"), &resolver(), "h").await.unwrap();
        let old = first.documents[0].id.clone();
        let replacement = |n: u32| {
            let mut b = provide_bundle(&pdf(&format!("v2 by {n}")), &format!("urn:oid:1.2.7.{}", n + 10));
            b["entry"][1]["resource"]["relatesTo"] =
                json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{old}") } }]);
            b
        };
        let (a, b) = (replacement(1), replacement(2));
        let resolver = resolver();
        let (ra, rb) = tokio::join!(
            e.docs.provide_bundle(&a, &resolver, "h"),
            e.docs.provide_bundle(&b, &resolver, "h"),
        );
        let wins = [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(wins, 1, "{ra:?} / {rb:?}");
        let loser = ra.err().or(rb.err()).unwrap();
        assert!(matches!(loser, DocumentError::Conflict(_)), "{loser}");
        assert_eq!(count(&e.db, "document_entry").await, 2);
    })
    .await;
}
