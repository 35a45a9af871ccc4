//! FHIR `Patient` of the regional patient index, end to end: two hospital systems feeding
//! through a third-party FHIR client (PyPI fhirpy) with client-credentials tokens bound to their
//! assigning authorities, a reader searching, matching and cross-referencing, every resource
//! validated by an independent FHIR R4 implementation; then the refusals, each an
//! OperationOutcome, none of which changes what was accepted; and the audit trail.

use megalis_e2e::{Server, megalis, server, stderr, stdout};
use serde_json::{Value, json};

use super::cps::no_redirect_client;

const RENNES: &str = "1.2.250.1.71.4.2.2.350005179";
const BREST: &str = "1.2.250.1.71.4.2.2.290000017";

/// A refusal: name, method, path, token, body, expected status, expected FHIRPath.
type Case<'a> = (
    &'a str,
    reqwest::Method,
    String,
    Option<&'a str>,
    Option<Value>,
    u16,
    Option<&'a str>,
);

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").expect("MEGALIS_PYTHON is not set (scripts/test.sh sets it)")
}

/// A NIR with its key (97 − n mod 97).
fn nir(number: u64) -> String {
    format!("{number}{:02}", 97 - number % 97)
}

fn add_client(s: &Server, id: &str, scope: &str, authority: Option<&str>) {
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

async fn token(s: &Server, id: &str) -> String {
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

fn patient(authority: &str, ipp: &str, family: &str, birth_date: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": format!("urn:oid:{authority}"), "value": ipp}],
        "name": [{"use": "official", "family": family, "given": ["Yann"]}],
        "gender": "male",
        "birthDate": birth_date,
    })
}

#[tokio::test]
async fn patient_fhir_with_fhirpy_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let s = server().data_dir(dir.path()).start().await;
    add_client(&s, "his-rennes", "system/Patient.cruds", Some(RENNES));
    add_client(&s, "his-brest", "system/Patient.cru", Some(BREST));
    add_client(&s, "reader", "system/Patient.rs", None);
    // The server's refresher reloads the authority bindings every second.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (rennes, brest, reader) = (
        token(&s, "his-rennes").await,
        token(&s, "his-brest").await,
        token(&s, "reader").await,
    );

    let ins = nir(2_850_535_238_123);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/python/fhir_patient_client.py"
    );
    let out = tokio::process::Command::new(python())
        .args([
            script,
            &s.url("/fhir"),
            s.cert_path().to_str().unwrap(),
            &rennes,
            &brest,
            &reader,
            RENNES,
            BREST,
            &ins,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let regional = r["created"]["id"].as_str().unwrap().to_string();
    assert!(regional.starts_with("BZH"), "{r}");
    assert_eq!(
        r["linked"]["id"], regional,
        "Brest's record links to the same patient"
    );
    let search = r["search"].as_array().unwrap();
    assert_eq!(search.len(), 1, "{r}");
    let identifiers = search[0]["identifier"].to_string();
    assert!(identifiers.contains("R-1001") && identifiers.contains("B-77"));
    assert!(
        !identifiers.contains(&ins),
        "the INS of a PROV identity is not shown"
    );
    assert_eq!(r["match"]["entry"][0]["resource"]["id"], regional);
    let grade = &r["match"]["entry"][0]["search"]["extension"][0]["valueCode"];
    assert!(grade == "certain" || grade == "probable", "{r}");
    let pix = r["pix"]["parameter"].as_array().unwrap();
    assert!(
        pix.iter().any(|p| p["valueIdentifier"]["value"] == "B-77"),
        "{r}"
    );
    assert!(
        !pix.iter()
            .any(|p| p["valueIdentifier"]["value"] == "R-1001"),
        "only the target system is returned: {r}"
    );
    assert!(r["metadata"].to_string().contains("\"Patient\""));
    assert!(r["validated"].as_u64().unwrap() >= 8);

    // Refusals, each an OperationOutcome.
    let http = no_redirect_client(&s);
    let send = |method: reqwest::Method, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut req = http.request(method, s.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/fhir+json")
                .body(b.to_string());
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };
    let before = send(
        reqwest::Method::GET,
        &format!("/fhir/Patient/{regional}"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(before.0, 200);
    let good = patient(RENNES, "R-2", "Kerjean", "1990-01-01");
    let mut wrong_key = patient(RENNES, "R-1001", "Le Goff", "1985-05-12");
    wrong_key["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "285053523812399"}));
    let mut test_oid = patient(RENNES, "R-1001", "Le Goff", "1985-05-12");
    test_oid["identifier"]
        .as_array_mut()
        .unwrap()
        .push(json!({"system": "urn:oid:1.2.250.1.213.1.4.10", "value": ins}));
    let mut no_given = patient(RENNES, "R-1001", "Le Goff", "1985-05-12");
    no_given["name"][0]["given"] = json!([]);
    let cases: Vec<Case> = vec![
        (
            "no token",
            reqwest::Method::GET,
            format!("/fhir/Patient/{regional}"),
            None,
            None,
            401,
            None,
        ),
        (
            "forged token",
            reqwest::Method::GET,
            format!("/fhir/Patient/{regional}"),
            Some("x.y.z"),
            None,
            401,
            None,
        ),
        (
            "reader may not feed",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&reader),
            Some(good.clone()),
            403,
            None,
        ),
        (
            "Brest may not feed Rennes' identifiers",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&brest),
            Some(good.clone()),
            403,
            None,
        ),
        (
            "not a Patient",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(json!({"resourceType": "Observation", "status": "final"})),
            400,
            Some("resourceType"),
        ),
        (
            "wrong NIR key",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(wrong_key),
            400,
            Some("Patient.identifier[1].value"),
        ),
        (
            "test INS OID outside test mode",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(test_oid),
            400,
            Some("Patient.identifier[1].value"),
        ),
        (
            "impossible date",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(patient(RENNES, "R-1001", "Le Goff", "1985-02-30")),
            400,
            Some("Patient.birthDate"),
        ),
        (
            "future birth",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(patient(RENNES, "R-1001", "Le Goff", "2999-01-01")),
            400,
            None,
        ),
        (
            "missing first names",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(no_given),
            400,
            Some("Patient.name.given"),
        ),
        (
            "no local identifier",
            reqwest::Method::POST,
            "/fhir/Patient".into(),
            Some(&rennes),
            Some(
                json!({"resourceType": "Patient", "name": [{"family": "X", "given": ["Y"]}], "birthDate": "1990-01-01"}),
            ),
            400,
            Some("Patient.identifier"),
        ),
        (
            "update of another patient's identifier",
            reqwest::Method::PUT,
            "/fhir/Patient/BZH00000000999".into(),
            Some(&rennes),
            Some(patient(RENNES, "R-1001", "Le Goff", "1985-05-12")),
            409,
            None,
        ),
        (
            "search without criteria",
            reqwest::Method::GET,
            "/fhir/Patient?gender=male".into(),
            Some(&reader),
            None,
            400,
            None,
        ),
        (
            "unknown search parameter",
            reqwest::Method::GET,
            "/fhir/Patient?family=x&nom=y".into(),
            Some(&reader),
            None,
            400,
            None,
        ),
        (
            "bad date search",
            reqwest::Method::GET,
            "/fhir/Patient?family=x&birthdate=12/05/1985".into(),
            Some(&reader),
            None,
            400,
            None,
        ),
        (
            "pix unknown domain",
            reqwest::Method::GET,
            "/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:1.2.3|1".into(),
            Some(&reader),
            None,
            400,
            Some("sourceIdentifier"),
        ),
        (
            "pix unknown target",
            reqwest::Method::GET,
            format!(
                "/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:{RENNES}|R-1001&targetSystem=urn:oid:1.2.3"
            ),
            Some(&reader),
            None,
            403,
            None,
        ),
        (
            "pix unknown patient",
            reqwest::Method::GET,
            format!("/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:{RENNES}|nobody"),
            Some(&reader),
            None,
            404,
            None,
        ),
        (
            "$match without resource",
            reqwest::Method::POST,
            "/fhir/Patient/$match".into(),
            Some(&reader),
            Some(json!({"resourceType": "Parameters", "parameter": []})),
            400,
            Some("Parameters.parameter"),
        ),
    ];
    for (name, method, path, token, body, status, expression) in cases {
        let (got, outcome) = send(method, &path, token, body).await;
        assert_eq!(got, status, "{name}: {outcome}");
        assert_eq!(
            outcome["resourceType"], "OperationOutcome",
            "{name}: {outcome}"
        );
        if let Some(e) = expression {
            assert_eq!(outcome["issue"][0]["expression"][0], e, "{name}: {outcome}");
        }
    }
    // Injection attempts in search parameters find nothing and break nothing.
    for q in [
        "family=%27%20OR%201%3D1%20--",
        "family=x%25",
        "given=%25",
        "identifier=%27%20OR%20%271%27%3D%271",
    ] {
        let (status, bundle) = send(
            reqwest::Method::GET,
            &format!("/fhir/Patient?{q}"),
            Some(&reader),
            None,
        )
        .await;
        assert!(status == 200 || status == 400, "{q}: {status} {bundle}");
        if status == 200 {
            assert_eq!(bundle["total"], 0, "{q}: {bundle}");
        }
    }
    // Wrong media type.
    let r = http
        .post(s.url("/fhir/Patient"))
        .bearer_auth(&rennes)
        .header("content-type", "text/plain")
        .body(good.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Nothing accepted before was changed by the refusals.
    let after = send(
        reqwest::Method::GET,
        &format!("/fhir/Patient/{regional}"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(after.1, before.1);

    // Conditional update by the local identifier, then a search by that identifier.
    let mut renamed = patient(RENNES, "R-2", "Kerjean", "1990-01-01");
    let (status, created) = send(
        reqwest::Method::PUT,
        &format!("/fhir/Patient?identifier=urn:oid:{RENNES}|R-2"),
        Some(&rennes),
        Some(renamed.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    renamed["name"][0]["given"] = json!(["Yann", "Erwan"]);
    let (status, updated) = send(
        reqwest::Method::PUT,
        &format!("/fhir/Patient?identifier=urn:oid:{RENNES}|R-2"),
        Some(&rennes),
        Some(renamed),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"][0]["given"], json!(["Yann", "Erwan"]));
    let (_, bundle) = send(
        reqwest::Method::GET,
        &format!("/fhir/Patient?identifier=urn:oid:{RENNES}|R-2"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(bundle["total"], 1);
    assert_eq!(bundle["entry"][0]["resource"]["id"], created["id"]);

    // The audit trail: each patient shown to the reader is in that patient's log; refusals too.
    let actions = super::cps::audit_actions(&s).await;
    let has = |a: &str, o: &str| actions.iter().any(|(x, y, _)| x == a && y == o);
    for (a, o) in [
        ("patient.create", "success"),
        ("patient.link", "success"),
        ("patient.read", "success"),
        ("patient.search", "success"),
        ("patient.match", "success"),
        ("patient.access", "denied"),
    ] {
        assert!(has(a, o), "{a}/{o} missing: {actions:?}");
    }
}
