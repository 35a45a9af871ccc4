//! The patient's own space, end to end on the demo region: a doctor of the care team issues a
//! one-time activation code for a patient whose identity is checked; the patient creates their
//! account with it (a wrong birth date or a used code is refused), signs in, reads who accessed
//! their record, when and why; blocks the doctor (refused on the doctor's next request), lifts
//! the block, objects to sharing, masks a document (the doctor no longer sees it), and every
//! step is in the audit trail.

use base64::Engine;
use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::json;

use super::auth::{csrf_field, password_login};
use super::documents::{add_client, document, pdf, token};
use super::patients::{Session, demo_server};

const DOCTOR: (&str, &str) = ("alegoff", "Demo-Docteur-Rennes-29!");
const PATIENT_PASSWORD: &str = "Mon-dossier-breton-2026!";

#[tokio::test]
async fn the_patient_sees_who_accessed_and_decides() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = demo_server(&data, None).await;
    let db = Database::open(&Database::default_url(&data), &PoolSettings::default()).unwrap();
    let (patient, birth_date, unchecked): (String, String, String) = with_pool!(&db, pool => {
        let (p, b): (String, String) = megalis_store::sqlx::query_as(
            "SELECT regional_id, birth_date FROM identity_patient WHERE merged_into IS NULL \
             AND status IN ('VALI', 'QUAL') ORDER BY seq LIMIT 1")
            .fetch_one(pool).await.unwrap();
        let u: String = megalis_store::sqlx::query_scalar(
            "SELECT regional_id FROM identity_patient WHERE merged_into IS NULL \
             AND status = 'PROV' ORDER BY seq LIMIT 1")
            .fetch_one(pool).await.unwrap();
        (p, b, u)
    });

    // A document by another doctor, deposited by a hospital.
    add_client(&s, "dpi-demo", "system/DocumentReference.crs", None);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let hospital = token(&s, "dpi-demo").await;
    let report = pdf("Compte rendu d'hospitalisation");
    let mut reference = document(
        json!({"reference": format!("Patient/{patient}")}),
        "urn:uuid:7b0c0000-0000-4000-8000-000000000001",
        "application/pdf",
        &report,
        "Compte rendu d'hospitalisation",
    );
    reference["author"][0]["identifier"]["value"] = json!("810009999999");
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:7b0c0000-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Binary", "contentType": "application/pdf",
                      "data": base64::engine::general_purpose::STANDARD.encode(&report)},
         "request": {"method": "POST", "url": "Binary"}},
        {"fullUrl": "urn:uuid:7b0c0000-0000-4000-8000-000000000002", "resource": reference,
         "request": {"method": "POST", "url": "DocumentReference"}}]});
    let http = s.no_redirect_client();
    let r = http
        .post(s.url("/fhir"))
        .bearer_auth(&hospital)
        .header("content-type", "application/fhir+json")
        .body(bundle.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The doctor joins the care team and issues the code.
    let doctor = Session::sign_in(&s, DOCTOR).await;
    doctor.add_second_factor().await;
    let sharing = doctor.page(&format!("/patients/{patient}/sharing")).await;
    let csrf = csrf_field(&sharing);
    let (status, _) = doctor
        .post(
            &format!("/patients/{patient}/care-links"),
            &[
                ("csrf", csrf.as_str()),
                ("justification", "Médecin traitant déclaré"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let documents = doctor.page(&format!("/patients/{patient}/documents")).await;
    assert_eq!(documents.matches("data-document=").count(), 1);
    // An unchecked identity gets no code.
    let (status, _) = doctor
        .post(
            &format!("/patients/{unchecked}/patient-access"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert!(status == 403 || status == 409, "{status}");
    let issued = doctor
        .http
        .post(format!("{}/patients/{patient}/patient-access", doctor.base))
        .header("cookie", &doctor.cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.status(), 200);
    let html = issued.text().await.unwrap();
    let code = html
        .split("id=\"activation-code\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_string();
    assert_eq!(code.len(), 14, "{code}");

    // The patient activates: a wrong birth date is refused; then the account is created.
    let activate = |birth: String, username: &'static str| {
        let http = http.clone();
        let url = s.url("/patient/activate");
        let code = code.clone();
        async move {
            let form = http.get(&url).send().await.unwrap();
            let cookie = form
                .headers()
                .get_all("set-cookie")
                .iter()
                .find_map(|v| {
                    v.to_str()
                        .ok()?
                        .split(';')
                        .next()
                        .filter(|c| c.starts_with("__Host-megalis-activate-csrf="))
                        .map(str::to_string)
                })
                .unwrap();
            let csrf = csrf_field(&form.text().await.unwrap());
            http.post(&url)
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("code", &code.to_lowercase()),
                    ("birth_date", &birth),
                    ("username", username),
                    ("password", PATIENT_PASSWORD),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(activate("1900-01-01".into(), "patient.breton").await, 400);
    assert_eq!(activate(birth_date.clone(), "patient.breton").await, 303);
    assert_eq!(
        activate(birth_date.clone(), "patient.autre").await,
        400,
        "a code is used once"
    );

    // The patient signs in and reads who accessed the record, when and why.
    let cookie = password_login(&http, &s, "patient.breton", PATIENT_PASSWORD).await;
    let me = Session {
        http: http.clone(),
        cookie,
        base: s.url(""),
    };
    let (status, _) = me.get("/").await;
    assert_eq!(status, 303, "a patient's home is their record");
    let record = me.page("/mon-dossier").await;
    assert!(
        record.contains("Professionnel de santé 810001234567"),
        "{record}"
    );
    assert!(record.contains("Inscription dans votre équipe de soins"));
    assert!(
        record.contains("Membre de l"),
        "the reason of the doctor's accesses"
    );
    assert!(record.contains("Compte rendu d"));
    // Another patient's pages are not theirs.
    let (status, _) = me.get(&format!("/patients/{patient}/sharing")).await;
    assert_eq!(status, 403);

    // Block the doctor: refused on the doctor's next request; then lift it.
    let csrf = csrf_field(&record);
    let (status, _) = me
        .post(
            "/mon-dossier/choices",
            &[
                ("csrf", csrf.as_str()),
                ("action", "block"),
                ("practitioner", "810001234567"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (status, page) = doctor.get(&format!("/patients/{patient}/sharing")).await;
    assert_eq!(status, 403);
    assert!(
        page.contains("bloqué") || page.contains("opposé à ce que vous"),
        "{page}"
    );
    let record = me.page("/mon-dossier").await;
    let choice = record
        .split("data-choice=\"")
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .unwrap();
    let (status, _) = me
        .post(
            "/mon-dossier/choices",
            &[
                ("csrf", csrf.as_str()),
                ("action", "revoke"),
                ("id", choice.as_str()),
            ],
        )
        .await;
    assert_eq!(status, 303);
    doctor.page(&format!("/patients/{patient}/sharing")).await;
    assert!(
        me.page("/mon-dossier").await.contains("(refusé)"),
        "the refused access is in the patient's log"
    );

    // Mask the document: the doctor no longer sees it (and is told one is withheld).
    let document_id = record
        .split("<li data-document=\"")
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .unwrap();
    let (status, _) = me
        .post(
            &format!("/mon-dossier/documents/{document_id}/mask"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    let list = doctor.page(&format!("/patients/{patient}/documents")).await;
    assert_eq!(list.matches("data-document=").count(), 0);
    assert!(list.contains("id=\"withheld\""));

    // Object to sharing: the doctor is refused with the reason.
    let (status, _) = me
        .post(
            "/mon-dossier/choices",
            &[("csrf", csrf.as_str()), ("action", "object")],
        )
        .await;
    assert_eq!(status, 303);
    let page = doctor.page(&format!("/patients/{patient}/sharing")).await;
    assert!(page.contains("opposé au partage"));

    // The audit trail.
    let count = |action: &'static str| {
        let db = db.clone();
        let patient = patient.clone();
        async move {
            let n: i64 = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_record WHERE patient_id = $1 AND action = $2")
                .bind(&patient).bind(action).fetch_one(pool).await)
            .unwrap();
            n
        }
    };
    assert_eq!(
        count("patient-account.issue").await,
        2,
        "the decision and the issue"
    );
    assert_eq!(
        count("patient-account.activate").await,
        2,
        "refused birth date, success"
    );
    assert!(count("access-log.read").await >= 3);
    assert!(count("consent.record").await >= 3);
}
