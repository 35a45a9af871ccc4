//! The route walk (issue 5): the router is built from one table in which every route declares
//! whether it touches patient data (`platform/server/src/http/routes.rs`). This test reads that
//! table from the running server, calls every patient-data route as principals without rights
//! — a staff account (no national id, no role) signed in to the portal, and a system client
//! whose token has no patient scope — and expects each request to be denied (401/403, never
//! data, never a 404 that would skip the decision) and each denial to be in the audit trail
//! under the request's id. A route added without a class cannot be mounted; one classified as
//! patient data but forgetting the decision fails here.

use std::time::Duration;

use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::{Value, json};

use super::auth::{admin, csrf_field, ok, password_login};
use super::cps::no_redirect_client;

const PASSWORD: &str = "Walk-the-routes-2026!";
const SECRET: &str = "walker-secret-0123456789abcdef0123456789";
const BREST: &str = "1.2.250.1.71.4.2.2.290000017";

#[tokio::test]
async fn every_patient_data_route_denies_a_principal_without_rights() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    ok(admin(
        &data,
        &[
            "user",
            "add",
            "--username",
            "secretariat",
            "--kind",
            "staff",
            "--name",
            "Secrétariat",
            "--organisation",
            "359999001",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, SECRET).unwrap();
    ok(admin(
        &data,
        &[
            "client",
            "add",
            "--id",
            "annuaire-only",
            "--secret-file",
            secret.to_str().unwrap(),
            "--grant",
            "client_credentials",
            "--scope",
            "system/Practitioner.rs",
        ],
    ));

    ok(admin(
        &data,
        &[
            "client",
            "add",
            "--id",
            "walk-feeder",
            "--secret-file",
            secret.to_str().unwrap(),
            "--grant",
            "client_credentials",
            "--scope",
            "system/Patient.cru",
            "--authority",
            BREST,
        ],
    ));
    // Test mode (not --demo): the route table is served at /_test/routes.
    let s = megalis_e2e::server().data_dir(&data).start().await;
    let http = no_redirect_client(&s);
    let token_of = |id: &'static str| {
        let http = http.clone();
        let url = s.url("/oauth2/token");
        async move {
            let v: Value = http
                .post(url)
                .basic_auth(id, Some(SECRET))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["access_token"].as_str().expect("token").to_string()
        }
    };
    // One patient, fed by a hospital system.
    let feeder = token_of("walk-feeder").await;
    let created = http
        .post(s.url("/fhir/Patient"))
        .bearer_auth(&feeder)
        .header("content-type", "application/fhir+json")
        .body(
            json!({
                "resourceType": "Patient",
                "identifier": [{"system": format!("urn:oid:{BREST}"), "value": "WALK-PATIENT"}],
                "name": [{"use": "official", "family": "LE BRIS", "given": ["Nolwenn"]}],
                "gender": "female",
                "birthDate": "1971-03-08",
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let patient = created["id"].as_str().unwrap().to_string();
    let db = Database::open(&Database::default_url(&data), &PoolSettings::default()).unwrap();

    // The two principals without rights.
    let cookie = password_login(&http, &s, "secretariat", PASSWORD).await;
    let profile = http
        .get(s.url("/profile"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_field(&profile);
    let token = token_of("annuaire-only").await;

    let table = http.get(s.url("/_test/routes")).send().await.unwrap();
    assert_eq!(table.status(), 200);
    let table: Value = table.json().await.unwrap();
    let table = table.as_array().unwrap_or_else(|| panic!("{table}"));
    let classes: Vec<&str> = table.iter().filter_map(|r| r["class"].as_str()).collect();
    assert!(
        classes
            .iter()
            .all(|c| ["no-patient-data", "patient-data", "plugin", "test-only"].contains(c)),
        "{classes:?}"
    );
    let mut walked = Vec::new();
    let mut failures = Vec::new();
    for route in table.iter().filter(|r| r["class"] == "patient-data") {
        for probe in route["probes"].as_array().unwrap() {
            let fill = |t: &str| t.replace("{patient}", &patient).replace("{csrf}", &csrf);
            let method = probe["method"].as_str().unwrap();
            let path = fill(probe["path"].as_str().unwrap());
            let request_id = format!("walk-{}", walked.len());
            let mut r = http
                .request(method.parse().unwrap(), s.url(&path))
                .header("x-request-id", &request_id);
            let body = probe["body"].as_str().map(fill);
            r = match probe["auth"].as_str().unwrap() {
                "session" => {
                    let r = r.header("cookie", &cookie).header("accept", "text/html");
                    match body {
                        Some(b) => r
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(b),
                        None => r,
                    }
                }
                _ => {
                    let r = r.bearer_auth(&token);
                    match body {
                        Some(b) => r.header("content-type", "application/fhir+json").body(b),
                        None => r,
                    }
                }
            };
            let response = r.send().await.unwrap();
            let status = response.status().as_u16();
            if status != 401 && status != 403 {
                failures.push(format!(
                    "{method} {path} ({}): {status} {}",
                    route["path"],
                    response.text().await.unwrap_or_default()
                ));
            }
            walked.push((request_id, format!("{method} {path}")));
        }
    }
    assert!(failures.is_empty(), "not denied:\n{}", failures.join("\n"));
    assert!(walked.len() >= 15, "{} probes walked", walked.len());

    // Every denial is in the audit trail, under its request id.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut unaudited = Vec::new();
    for (request_id, what) in &walked {
        let denied: i64 = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_record WHERE request_id = $1 AND outcome = 'denied'")
            .bind(request_id)
            .fetch_one(pool).await)
        .unwrap();
        if denied == 0 {
            unaudited.push(what.clone());
        }
    }
    assert!(
        unaudited.is_empty(),
        "denials without an audit record:\n{}",
        unaudited.join("\n")
    );
}
