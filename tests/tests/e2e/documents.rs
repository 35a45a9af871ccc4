//! Shared documents over FHIR (IHE MHD), end to end: a hospital system provides a report
//! (ITI-65 transaction Bundle with its Binary) and streams an EEG recording (`POST /fhir/Binary`
//! then a DocumentReference naming the patient by INS); another hospital finds (ITI-67) and
//! retrieves (ITI-68) them byte for byte; every resource returned validates with an
//! independent FHIR R4 implementation (fhir.resources); bad input is refused with an
//! OperationOutcome naming the element and nothing is stored; a system without the scope is
//! refused; the custodian withdraws a document (status entered-in-error, kept); the audit trail
//! has every step in the patient's log.

use std::path::Path;

use base64::Engine;
use megalis_e2e::{Server, megalis, server, stderr, stdout};
use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::{Value, json};

use super::cps::no_redirect_client;
use super::patients::Session;

const BREST: &str = "1.2.250.1.71.4.2.2.290000017";
const DOCTOR: &str = "810001234567";

pub fn add_client(s: &Server, id: &str, scope: &str, authority: Option<&str>) {
    let secret = s.data_dir.join(format!("{id}.secret"));
    std::fs::write(&secret, format!("{id}-secret-0123456789abcdef0123456789")).unwrap();
    let mut args = vec![
        "--data-dir",
        s.data_dir.to_str().unwrap(),
        "--mode",
        "test",
        "admin",
        "client",
        "add",
        "--id",
        id,
        "--secret-file",
        secret.to_str().unwrap(),
        "--grant",
        "client_credentials",
        "--scope",
        scope,
    ];
    if let Some(a) = authority {
        args.extend(["--authority", a]);
    }
    let o = megalis(&args, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
}

pub async fn token(s: &Server, id: &str) -> String {
    let r = no_redirect_client(s)
        .post(s.url("/oauth2/token"))
        .basic_auth(id, Some(format!("{id}-secret-0123456789abcdef0123456789")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "token for {id}");
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A small, well-formed PDF.
pub fn pdf(text: &str) -> Vec<u8> {
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages \
         /Kids [] /Count 0 >> endobj\n% {text}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    .into_bytes()
}

/// An EDF recording: `channels` signals at 256 Hz, `records` one-second records, built from
/// the EDF specification (ASCII header of 256 + 256 × ns bytes, then 16-bit samples).
fn edf(channels: usize, records: usize) -> Vec<u8> {
    let field = |s: &str, n: usize| format!("{s:<n$}");
    let mut h = String::new();
    h += &field("0", 8);
    h += &field("X X X X", 80);
    h += &field("Startdate 20-NOV-2026 X X X", 80);
    h += &field("20.11.26", 8);
    h += &field("09.30.00", 8);
    h += &field(&(256 * (channels + 1)).to_string(), 8);
    h += &field("", 44);
    h += &field(&records.to_string(), 8);
    h += &field("1", 8);
    h += &field(&channels.to_string(), 4);
    let each = |f: &dyn Fn(usize) -> String, n: usize| -> String {
        (0..channels).map(|i| field(&f(i), n)).collect()
    };
    h += &each(&|i| format!("EEG C{i}"), 16);
    h += &each(&|_| "AgAgCl electrode".into(), 80);
    h += &each(&|_| "uV".into(), 8);
    h += &each(&|_| "-3200".into(), 8);
    h += &each(&|_| "3200".into(), 8);
    h += &each(&|_| "-32768".into(), 8);
    h += &each(&|_| "32767".into(), 8);
    h += &each(&|_| "HP:0.1Hz LP:75Hz".into(), 80);
    h += &each(&|_| "256".into(), 8);
    h += &each(&|_| String::new(), 32);
    let mut out = h.into_bytes();
    assert_eq!(out.len(), 256 * (channels + 1));
    for r in 0..records {
        for c in 0..channels {
            for n in 0..256usize {
                let v = (((r * 256 + n) as f64 / 10.0 + c as f64).sin() * 8000.0) as i16;
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    out
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn sha1_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref())
}

pub fn document(subject: Value, url: &str, content_type: &str, data: &[u8], title: &str) -> Value {
    json!({
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid_like(title))},
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3", "display": "Progress note"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}]}],
        "subject": subject,
        "date": "2026-11-20T10:15:00+01:00",
        "author": [{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": DOCTOR}}],
        "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]}],
        "content": [{"attachment": {
            "contentType": content_type,
            "url": url,
            "size": data.len(),
            "hash": sha1_base64(data),
            "title": title
        }}]
    })
}

/// A stable UUID-shaped value from a text (distinct documents, reproducible runs).
fn uuid_like(seed: &str) -> String {
    let h = sha256_hex(seed.as_bytes());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").expect("MEGALIS_PYTHON is not set (scripts/test.sh sets it)")
}

fn validate(resources: &[Value]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/validate_fhir.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(resources.to_vec()).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "fhir.resources: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn shared_documents_over_mhd() {
    let dir = tempfile::tempdir().unwrap();
    let s = server()
        .data_dir(dir.path())
        .arg("--documents-max-size")
        .arg("2MiB")
        .start()
        .await;
    add_client(
        &s,
        "dpi-brest",
        "system/Patient.cru system/DocumentReference.crs",
        Some(BREST),
    );
    add_client(&s, "dpi-rennes", "system/DocumentReference.rs", None);
    add_client(&s, "annuaire", "system/Practitioner.rs", None);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (brest, rennes, annuaire) = (
        token(&s, "dpi-brest").await,
        token(&s, "dpi-rennes").await,
        token(&s, "annuaire").await,
    );
    let http = no_redirect_client(&s);

    // The patient, fed by the hospital.
    let r = http
        .post(s.url("/fhir/Patient"))
        .bearer_auth(&brest)
        .header("content-type", "application/fhir+json")
        .body(
            json!({
                "resourceType": "Patient",
                "identifier": [{"system": format!("urn:oid:{BREST}"), "value": "IPP-DOC-1"}],
                "name": [{"use": "official", "family": "LE BRIS", "given": ["Nolwenn"]}],
                "gender": "female",
                "birthDate": "1971-03-29",
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let patient = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    // ITI-65: a report and its content in one transaction.
    let report = pdf("Compte rendu de consultation de néphrologie");
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:5e3c9a0e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                          "data": base64::engine::general_purpose::STANDARD.encode(&report)},
             "request": {"method": "POST", "url": "Binary"}},
            {"fullUrl": "urn:uuid:5e3c9a0e-0000-4000-8000-000000000002",
             "resource": document(json!({"reference": format!("Patient/{patient}")}),
                 "urn:uuid:5e3c9a0e-0000-4000-8000-000000000001", "application/pdf", &report,
                 "Consultation de néphrologie"),
             "request": {"method": "POST", "url": "DocumentReference"}}
        ]
    });
    let post = |path: &str, token: &str, body: Vec<u8>, content_type: &str| {
        http.post(s.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
    };
    let r = post(
        "/fhir",
        &brest,
        bundle.to_string().into_bytes(),
        "application/fhir+json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let response: Value = r.json().await.unwrap();
    assert_eq!(response["type"], "transaction-response");
    assert!(
        response["entry"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["response"]["status"].as_str().unwrap().starts_with("201"))
    );

    // A recording streamed, then its DocumentReference naming the patient by… its regional id
    // through the index, with the declared SHA-256 checked on arrival.
    let eeg = edf(4, 30);
    let r = post("/fhir/Binary", &brest, eeg.clone(), "application/edf")
        .header("x-content-sha256", sha256_hex(&eeg))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let binary: Value = r.json().await.unwrap();
    let binary_id = binary["id"].as_str().unwrap().to_string();
    let reference = document(
        json!({"identifier": {"system": format!("urn:oid:{BREST}"), "value": "IPP-DOC-1"}}),
        &format!("Binary/{binary_id}"),
        "application/edf",
        &eeg,
        "EEG de veille",
    );
    let r = post(
        "/fhir/DocumentReference",
        &brest,
        reference.to_string().into_bytes(),
        "application/fhir+json",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // ITI-67 by another hospital, then ITI-68 byte for byte.
    let r = http
        .get(s.url(&format!(
            "/fhir/DocumentReference?patient=Patient/{patient}&status=current"
        )))
        .bearer_auth(&rennes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let found: Value = r.json().await.unwrap();
    assert_eq!(found["total"], 2, "{found}");
    let mut resources = vec![found.clone(), binary.clone(), response.clone()];
    let mut retrieved = 0;
    for e in found["entry"].as_array().unwrap() {
        let doc = &e["resource"];
        resources.push(doc.clone());
        let url = doc["content"][0]["attachment"]["url"].as_str().unwrap();
        let id = url.rsplit('/').next().unwrap();
        let r = http
            .get(s.url(&format!("/fhir/Binary/{id}")))
            .bearer_auth(&rennes)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        let bytes = r.bytes().await.unwrap();
        let expected: &[u8] = if content_type == "application/pdf" {
            &report
        } else {
            &eeg
        };
        assert_eq!(&bytes[..], expected, "{content_type}");
        assert_eq!(
            doc["content"][0]["attachment"]["hash"],
            sha1_base64(expected),
            "Attachment.hash is the SHA-1 of the content"
        );
        retrieved += 1;
    }
    assert_eq!(retrieved, 2);
    validate(&resources);

    // Bad input, each refused with the element named, nothing stored.
    let before = found["total"].as_u64().unwrap();
    let mut broken = bundle.clone();
    broken["entry"][1]["resource"]["content"][0]["attachment"]["url"] =
        json!("urn:uuid:00000000-0000-4000-8000-00000000dead");
    broken["entry"][1]["resource"]["masterIdentifier"]["value"] =
        json!("urn:uuid:11111111-1111-4111-8111-111111111111");
    let mut wrong_hash = bundle.clone();
    wrong_hash["entry"][1]["resource"]["content"][0]["attachment"]["hash"] =
        json!(sha1_base64(b"something else"));
    wrong_hash["entry"][1]["resource"]["masterIdentifier"]["value"] =
        json!("urn:uuid:22222222-2222-4222-8222-222222222222");
    let mut unknown_patient = bundle.clone();
    unknown_patient["entry"][1]["resource"]["subject"] = json!({"reference": "Patient/BZH9999999"});
    let mut bad_loinc = bundle.clone();
    bad_loinc["entry"][1]["resource"]["type"]["coding"][0]["code"] = json!("11506-4");
    let cases: Vec<(&str, &str, Vec<u8>, &str, u16)> = vec![
        (
            "broken reference",
            "/fhir",
            broken.to_string().into_bytes(),
            "application/fhir+json",
            400,
        ),
        (
            "hash mismatch",
            "/fhir",
            wrong_hash.to_string().into_bytes(),
            "application/fhir+json",
            400,
        ),
        (
            "unknown patient",
            "/fhir",
            unknown_patient.to_string().into_bytes(),
            "application/fhir+json",
            422,
        ),
        (
            "invalid LOINC",
            "/fhir",
            bad_loinc.to_string().into_bytes(),
            "application/fhir+json",
            400,
        ),
        (
            "oversized upload",
            "/fhir/Binary",
            edf(16, 300),
            "application/edf",
            413,
        ),
        (
            "wrong content type",
            "/fhir/Binary",
            report.clone(),
            "application/edf",
            400,
        ),
        (
            "type outside the list",
            "/fhir/Binary",
            b"MZ\x90\x00".to_vec(),
            "application/octet-stream",
            400,
        ),
        (
            "declared hash differs",
            "/fhir/Binary",
            eeg.clone(),
            "application/edf",
            400,
        ),
    ];
    for (name, path, body, content_type, status) in cases {
        let mut r = post(path, &brest, body, content_type);
        if name == "declared hash differs" {
            r = r.header("x-content-sha256", sha256_hex(b"not this"));
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{name}");
        let outcome: Value = r.json().await.unwrap();
        assert_eq!(
            outcome["resourceType"], "OperationOutcome",
            "{name}: {outcome}"
        );
    }
    let r = http
        .get(s.url(&format!(
            "/fhir/DocumentReference?patient=Patient/{patient}"
        )))
        .bearer_auth(&brest)
        .send()
        .await
        .unwrap();
    let after: Value = r.json().await.unwrap();
    assert_eq!(
        after["total"].as_u64().unwrap(),
        before,
        "nothing stored by refusals"
    );

    // No scope on DocumentReference: refused, before any id is looked up.
    for path in [
        format!("/fhir/DocumentReference?patient=Patient/{patient}"),
        format!("/fhir/Binary/{binary_id}"),
        "/fhir/DocumentReference/unknown".to_string(),
    ] {
        let r = http
            .get(s.url(&path))
            .bearer_auth(&annuaire)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }

    // Withdrawal: only the custodian; the document is kept as entered-in-error.
    let doc_id = after["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http
        .delete(s.url(&format!("/fhir/DocumentReference/{doc_id}")))
        .bearer_auth(&rennes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another hospital may not withdraw it");
    let r = http
        .delete(s.url(&format!("/fhir/DocumentReference/{doc_id}")))
        .bearer_auth(&brest)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(s.url(&format!("/fhir/DocumentReference/{doc_id}")))
        .bearer_auth(&brest)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "entered-in-error"
    );
    let r = http
        .get(s.url(&format!(
            "/fhir/DocumentReference?patient=Patient/{patient}&status=current"
        )))
        .bearer_auth(&rennes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["total"], 1);

    // In the portal: a nurse outside the care team is refused with the reason; once in the
    // team (a declaration), the list, the EEG plotted as a waveform, the PDF inline.
    let pw = s.data_dir.join("nurse.pw");
    std::fs::write(&pw, "Infirmier-Brest-2026-docs!\n").unwrap();
    let o = megalis(
        &[
            "--data-dir",
            s.data_dir.to_str().unwrap(),
            "--mode",
            "test",
            "admin",
            "user",
            "add",
            "--username",
            "ykerbrat",
            "--kind",
            "professional",
            "--name",
            "Yann Kerbrat",
            "--national-id",
            "810007654321",
            "--password-file",
            pw.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let nurse = Session::sign_in(&s, ("ykerbrat", "Infirmier-Brest-2026-docs!")).await;
    nurse.add_second_factor().await;
    let (status, html) = nurse.get(&format!("/patients/{patient}/documents")).await;
    assert_eq!(status, 403);
    assert!(html.contains("id=\"refusal\""), "{html}");
    assert!(html.contains("appartenez pas"));
    let sharing = nurse.page(&format!("/patients/{patient}/sharing")).await;
    let csrf = super::auth::csrf_field(&sharing);
    let (status, _) = nurse
        .post(
            &format!("/patients/{patient}/care-links"),
            &[
                ("csrf", csrf.as_str()),
                ("justification", "Soins infirmiers à domicile"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let list = nurse.page(&format!("/patients/{patient}/documents")).await;
    let rows: Vec<String> = list
        .split("data-document=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "the withdrawn document is not listed: {list}"
    );
    // Upload from the portal: a recording the browser sends as bytes, named .edf.
    let upload = |csrf: String, title: &'static str, file: Vec<u8>| {
        let boundary = "----megalis-e2e-boundary";
        let mut body = Vec::new();
        for (name, value) in [
            ("csrf", csrf.as_str()),
            ("lang", "fr"),
            ("title", title),
            ("type", "11523-8"),
            ("confidentiality", "N"),
        ] {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"veille.edf\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        nurse
            .http
            .post(format!(
                "{}/patients/{patient}/documents/upload",
                nurse.base
            ))
            .header("cookie", &nurse.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
    };
    let list_page = nurse.page(&format!("/patients/{patient}/documents")).await;
    assert!(list_page.contains("id=\"upload-form\""));
    let csrf = super::auth::csrf_field(&list_page);
    let r = upload(csrf.clone(), "EEG de contrôle", edf(2, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let r = upload(csrf.clone(), "Pas un EEG", pdf("faux"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        400,
        "a PDF named .edf is refused by its content"
    );
    let r = upload(String::new(), "Sans jeton", edf(2, 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let all = nurse
        .page(&format!("/patients/{patient}/documents?withdrawn=1"))
        .await;
    assert_eq!(all.matches("data-document=").count(), 3);
    assert!(all.contains("EEG de contrôle"));
    assert!(all.contains("retiré"));
    // Which listed document is which: by title in the list (the EEG is the current one).
    let id_of = |title: &str| -> String {
        let at = all.find(title).unwrap_or_else(|| panic!("{title} listed"));
        let row = &all[..at];
        let start = row.rfind("data-document=\"").unwrap() + 15;
        row[start..start + row[start..].find('"').unwrap()].to_string()
    };
    let (pdf_id, eeg_id) = (id_of("Consultation de néphrologie"), id_of("EEG de veille"));
    assert!(rows[0] == eeg_id || rows[0] == pdf_id);
    let eeg_page = nurse
        .page(&format!(
            "/patients/{patient}/documents/{eeg_id}?start=5&duration=10"
        ))
        .await;
    assert!(eeg_page.contains("<svg"), "{eeg_page}");
    assert!(eeg_page.contains("role=\"img\""));
    assert!(eeg_page.contains("EEG C0"), "channel labels");
    assert!(eeg_page.contains("4 voie(s), 30 s"));
    assert!(eeg_page.contains("id=\"earlier\""));
    let r = nurse
        .http
        .get(format!(
            "{}/patients/{patient}/documents/{pdf_id}/content",
            nurse.base
        ))
        .header("cookie", &nurse.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-security-policy"],
        "frame-ancestors 'self'"
    );
    assert_eq!(r.headers()["x-frame-options"], "SAMEORIGIN");
    assert_eq!(&r.bytes().await.unwrap()[..], &report[..]);

    // The patient's log.
    let db = Database::open(
        &Database::default_url(&s.data_dir),
        &PoolSettings::default(),
    )
    .unwrap();
    for action in [
        "document.create",
        "document.search",
        "document.retrieve",
        "document.entered-in-error",
    ] {
        let n: i64 = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_record WHERE patient_id = $1 AND action = $2")
            .bind(&patient).bind(action).fetch_one(pool).await)
        .unwrap();
        assert!(n >= 1, "{action} in the patient's log");
    }
}
