//! Sharing with consent in the portal and over FHIR, end to end on the demo region: a
//! professional outside the care team is refused with the reason shown, declares a care
//! relationship and is let in; the patient's objection (recorded by that professional on the
//! patient's behalf) stops the team on the next request; another professional breaks the glass
//! with a stated reason and reads the patient's choices as FHIR `Consent`; the privacy officer
//! reviews the emergency access; every decision and change is in the patient's audit log.

use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::Value;

use super::auth::csrf_field;
use super::patients::{Session, demo_server};

const DOCTOR: (&str, &str) = ("alegoff", "Demo-Docteur-Rennes-29!");
const NURSE: (&str, &str) = ("ykerbrat", "Demo-Infirmier-Brest-29!");
const OFFICER: (&str, &str) = ("dpo", "Demo-Protection-Donnees-35!");
const SECRETARY: (&str, &str) = ("secretariat.rennes", "Demo-Secretariat-Rennes-35!");

async fn count(db: &Database, sql: &'static str, a: &str, b: &str) -> i64 {
    with_pool!(db, pool => megalis_store::sqlx::query_scalar(sql).bind(a).bind(b).fetch_one(pool).await)
        .unwrap()
}

async fn fhir(session: &Session, path: &str) -> (u16, Value) {
    let r = session
        .http
        .get(format!("{}{path}", session.base))
        .header("cookie", &session.cookie)
        .header("accept", "application/fhir+json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn care_team_consent_and_emergency_access() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = demo_server(&data, None).await;
    let db = Database::open(&Database::default_url(&data), &PoolSettings::default()).unwrap();
    let patient: String = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
        "SELECT regional_id FROM identity_patient WHERE merged_into IS NULL ORDER BY seq LIMIT 1")
        .fetch_one(pool).await)
    .unwrap();
    let sharing = format!("/patients/{patient}/sharing");

    // A professional outside the care team: refused, with the reason and the ways forward.
    let doctor = Session::sign_in(&s, DOCTOR).await;
    doctor.add_second_factor().await;
    let page = doctor.page(&sharing).await;
    assert!(
        page.contains("id=\"access-decision\">Accès refusé"),
        "{page}"
    );
    assert!(page.contains("appartenez pas"));
    assert!(page.contains("id=\"declare-form\""));
    assert!(
        !page.contains("id=\"team\""),
        "no sharing records before access"
    );
    let csrf = csrf_field(&page);

    // A declaration needs a real justification; then the doctor is in the team.
    let (status, _) = doctor
        .post(
            &format!("/patients/{patient}/care-links"),
            &[("csrf", csrf.as_str()), ("justification", "suivi")],
        )
        .await;
    assert_eq!(status, 400);
    let (status, location) = doctor
        .post(
            &format!("/patients/{patient}/care-links"),
            &[
                ("csrf", csrf.as_str()),
                ("justification", "Médecin traitant déclaré"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.contains("notice=declared"));
    let page = doctor.page(&sharing).await;
    assert!(
        page.contains("id=\"access-decision\">Accès autorisé"),
        "{page}"
    );
    assert!(page.contains("Membre de l"));
    assert!(page.contains("data-practitioner=\"810001234567\""));
    assert!(page.contains("Médecin traitant déclaré"));

    // Without CSRF token, a change is refused.
    let (status, _) = doctor
        .post(
            &format!("/patients/{patient}/directives"),
            &[("kind", "objection")],
        )
        .await;
    assert_eq!(status, 403);
    // The patient objects to sharing; the doctor records it on the patient's behalf. It takes
    // effect on the next request: the doctor is refused.
    let (status, _) = doctor
        .post(
            &format!("/patients/{patient}/directives"),
            &[
                ("csrf", csrf.as_str()),
                ("kind", "objection"),
                ("note", "Exprimé en consultation"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let page = doctor.page(&sharing).await;
    assert!(page.contains("Accès refusé"), "{page}");
    assert!(page.contains("opposé au partage"));
    let (status, outcome) =
        fhir(&doctor, &format!("/fhir/Consent?patient=Patient/{patient}")).await;
    assert_eq!(status, 403, "{outcome}");
    assert_eq!(outcome["resourceType"], "OperationOutcome");

    // Another professional breaks the glass: a stated reason, a bounded duration.
    let nurse = Session::sign_in(&s, NURSE).await;
    nurse.add_second_factor().await;
    let page = nurse.page(&sharing).await;
    assert!(page.contains("Accès refusé"));
    let csrf = csrf_field(&page);
    let (status, _) = nurse
        .post(
            &format!("/patients/{patient}/emergency"),
            &[
                ("csrf", csrf.as_str()),
                ("reason", "urgent"),
                ("hours", "4"),
            ],
        )
        .await;
    assert_eq!(status, 400, "a reason is a sentence");
    let (status, _) = nurse
        .post(
            &format!("/patients/{patient}/emergency"),
            &[
                ("csrf", csrf.as_str()),
                ("reason", "Patiente inconsciente aux urgences de Brest"),
                ("hours", "48"),
            ],
        )
        .await;
    assert_eq!(status, 400, "at most 24 hours");
    let (status, location) = nurse
        .post(
            &format!("/patients/{patient}/emergency"),
            &[
                ("csrf", csrf.as_str()),
                ("reason", "Patiente inconsciente aux urgences de Brest"),
                ("hours", "2"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(location.contains("notice=emergency"));
    let page = nurse.page(&sharing).await;
    assert!(page.contains("Accès autorisé"), "{page}");
    assert!(page.contains("urgence déclaré"));
    assert!(page.contains("Patiente inconsciente aux urgences de Brest"));
    // The patient's choices as FHIR Consent, read under the emergency access.
    let (status, bundle) = fhir(&nurse, &format!("/fhir/Consent?patient=Patient/{patient}")).await;
    assert_eq!(status, 200, "{bundle}");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["total"], 1);
    let consent = &bundle["entry"][0]["resource"];
    assert_eq!(consent["status"], "active");
    assert_eq!(consent["provision"]["type"], "deny");
    assert_eq!(consent["policyRule"]["coding"][0]["code"], "OPTOUT");
    let id = consent["id"].as_str().unwrap();
    let (status, one) = fhir(&nurse, &format!("/fhir/Consent/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["id"], id);

    // Staff without a health profession: refused, audited.
    let secretary = Session::sign_in(&s, SECRETARY).await;
    let (status, _) = secretary.get(&sharing).await;
    assert_eq!(status, 403);

    // The privacy officer reviews the emergency access.
    let officer = Session::sign_in(&s, OFFICER).await;
    officer.add_second_factor().await;
    let queue = officer.page("/sharing/emergencies").await;
    assert!(
        queue.contains("Patiente inconsciente aux urgences de Brest"),
        "{queue}"
    );
    let emergency_id = queue
        .split("data-emergency=\"")
        .nth(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .unwrap();
    let csrf = csrf_field(&queue);
    let (status, _) = officer
        .post(
            &format!("/sharing/emergencies/{emergency_id}/review"),
            &[
                ("csrf", csrf.as_str()),
                ("note", "Urgence vitale confirmée"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert!(
        officer
            .page("/sharing/emergencies")
            .await
            .contains("id=\"officer-empty\"")
    );
    // Professionals may not open the officer's queue.
    let (status, _) = nurse.get("/sharing/emergencies").await;
    assert_eq!(status, 403);

    // The patient's log: every decision and change, with its reason.
    let by_action = "SELECT COUNT(*) FROM audit_record WHERE patient_id = $1 AND action = $2";
    for action in [
        "care-link.declare",
        "consent.record",
        "emergency.declare",
        "emergency.review",
    ] {
        assert_eq!(count(&db, by_action, &patient, action).await, 1, "{action}");
    }
    let with_reason = "SELECT COUNT(*) FROM audit_record WHERE patient_id = $1 AND detail LIKE $2";
    for reason in [
        "reason=not-in-care-team%",
        "reason=care-team%",
        "reason=patient-objects%",
        "reason=emergency%",
    ] {
        assert!(
            count(&db, with_reason, &patient, reason).await >= 1,
            "an audit record with {reason}"
        );
    }
    let denied = "SELECT COUNT(*) FROM audit_record WHERE patient_id = $1 AND outcome = $2";
    assert!(count(&db, denied, &patient, "denied").await >= 4);
}
