//! The directory of health professionals through the real binary: `megalis directory generate`
//! and `import` (counts, idempotence, closure, malformed rows, refusals) and the FHIR R4
//! endpoint over HTTPS, on SQLite and PostgreSQL. Every resource the server returns is validated
//! by an independent FHIR implementation (PyPI `fhir.resources`, via `$MEGALIS_PYTHON`).

use std::path::Path;
use std::process::{Command, Stdio};

use megalis_e2e::{fresh_postgres_url, megalis, server, stderr, stdout};
use serde_json::Value;

pub fn generate(dir: &Path, name: &str, rows: u64, seed: u64) -> String {
    let path = dir.join(name);
    let p = path.to_str().unwrap().to_string();
    let o = megalis(
        &[
            "directory",
            "generate",
            "--rows",
            &rows.to_string(),
            "--seed",
            &seed.to_string(),
            "--output",
            &p,
        ],
        &[],
    );
    assert!(o.status.success(), "generate: {}", stderr(&o));
    p
}

/// `megalis directory import` with a data directory and an optional database URL.
pub fn import(data_dir: &Path, db: Option<&str>, file: &str) -> std::process::Output {
    let mut args = vec!["--data-dir", data_dir.to_str().unwrap()];
    if let Some(url) = db {
        args.extend(["--database-url", url]);
    }
    args.extend(["directory", "import", file]);
    megalis(&args, &[])
}

/// The counts row of one entity kind in the import report.
fn counts(report: &str, kind: &str) -> Vec<u64> {
    let line = report
        .lines()
        .find(|l| l.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} line in:\n{report}"));
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

fn without_practitioner(text: &str, national_id: &str) -> String {
    text.lines()
        .filter(|l| l.split('|').nth(2) != Some(national_id))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn import_reports_counts_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = generate(dir.path(), "annuaire.txt", 400, 2);
    let first = import(&data, None, &file);
    assert!(first.status.success(), "{}", stderr(&first));
    let report = stdout(&first);
    assert!(report.contains("400 rows read, 0 rejected"), "{report}");
    let p = counts(&report, "practitioners");
    assert!(p[0] > 200, "created: {report}");
    assert_eq!(&p[1..], &[0, 0, 0, 0], "{report}");

    let second = import(&data, None, &file);
    assert!(second.status.success(), "{}", stderr(&second));
    let report2 = stdout(&second);
    for kind in ["practitioners", "organisations", "activities"] {
        let c = counts(&report2, kind);
        assert_eq!(c[0], 0, "created on re-import: {report2}");
        assert_eq!(c[1], 0, "updated on re-import: {report2}");
        assert_eq!(c[3..], [0, 0], "{report2}");
        assert_eq!(c[2], counts(&report, kind)[0], "{report2}");
    }
}

#[test]
fn malformed_rows_are_listed_with_line_numbers_and_the_rest_imported() {
    let dir = tempfile::tempdir().unwrap();
    let file = generate(dir.path(), "annuaire.txt", 30, 3);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[3] = format!("X{}", &lines[3][1..]);
    lines[7] = "une ligne abîmée".into();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let o = import(&dir.path().join("data"), None, &file);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&o);
    assert!(report.contains("30 rows read, 2 rejected"), "{report}");
    assert!(
        report.contains("rejected line 4: column 1 (Type d'identifiant PP)"),
        "{report}"
    );
    assert!(
        report.contains("rejected line 8: 1 fields, expected 52"),
        "{report}"
    );
}

#[test]
fn unreadable_files_and_wrong_headers_fail_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = import(&data, None, "/nonexistent/annuaire.txt");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read /nonexistent/annuaire.txt"),
        "{}",
        stderr(&o)
    );

    let wrong = dir.path().join("wrong.txt");
    std::fs::write(&wrong, "Identifiant;Nom;Prénom\n8;LE GALL;Yann\n").unwrap();
    let o = import(&data, None, wrong.to_str().unwrap());
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("header: 1 columns, expected 52"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty());
}

/// Validates resources with `fhir.resources` (R4B models); panics with its explanation.
fn validate(resources: &[Value]) {
    let python = std::env::var("MEGALIS_PYTHON").expect(
        "MEGALIS_PYTHON is not set: create a venv with `pip install -r tests/requirements.txt` \
         and export MEGALIS_PYTHON=/path/to/venv/bin/python (scripts/test.sh does this)",
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/validate_fhir.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the FHIR validator");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(resources).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "FHIR validation failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Fhir {
    client: reqwest::Client,
    base: String,
    /// Every resource received, validated at the end.
    seen: Vec<Value>,
}

impl Fhir {
    async fn get(&mut self, path_and_query: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        assert_eq!(
            r.headers()["content-type"],
            "application/fhir+json",
            "{path_and_query}"
        );
        let body: Value = r.json().await.unwrap();
        self.seen.push(body.clone());
        (status, body)
    }

    async fn total(&mut self, path_and_query: &str) -> u64 {
        let (status, body) = self.get(path_and_query).await;
        assert_eq!(status, 200, "{path_and_query}: {body}");
        assert_eq!(body["type"], "searchset");
        body["total"].as_u64().unwrap()
    }
}

fn link<'a>(bundle: &'a Value, relation: &str) -> Option<&'a str> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
}

async fn fhir_endpoint(postgres: bool) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db_url = if postgres {
        Some(fresh_postgres_url().await)
    } else {
        None
    };
    let file = generate(dir.path(), "annuaire.txt", 300, 4);
    let o = import(&data, db_url.as_deref(), &file);
    assert!(o.status.success(), "{}", stderr(&o));

    let mut builder = server().data_dir(&data);
    if let Some(url) = &db_url {
        builder = builder.database(url);
    }
    let mut s = builder.start().await;
    let mut f = Fhir {
        client: s.client(),
        base: s.url("/fhir"),
        seen: Vec::new(),
    };

    // CapabilityStatement: the directory's resources, then the other modules' (identity,
    // consent, shared documents).
    let (status, cap) = f.get("/metadata").await;
    assert_eq!(status, 200);
    assert_eq!(cap["resourceType"], "CapabilityStatement");
    let types: Vec<&str> = cap["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Patient",
            "Consent",
            "DocumentReference",
            "Binary"
        ]
    );

    // Paging: _count, total, next/previous with absolute URLs under the public URL.
    let (_, page1) = f.get("/Practitioner?_count=7").await;
    let total = page1["total"].as_u64().unwrap();
    assert!(total > 150, "{total}");
    assert_eq!(page1["entry"].as_array().unwrap().len(), 7);
    let next = link(&page1, "next").expect("next link");
    // Absolute, under the configured public URL (in test mode, the listener's own address).
    let (public, query) = next
        .split_once("/fhir/Practitioner?")
        .expect("absolute link");
    assert!(public.starts_with("https://127.0.0.1:"), "{next}");
    assert!(link(&page1, "previous").is_none());
    let (_, page2) = f.get(&format!("/Practitioner?{query}")).await;
    assert_eq!(page2["entry"].as_array().unwrap().len(), 7);
    assert_ne!(
        page1["entry"][0]["resource"]["id"],
        page2["entry"][0]["resource"]["id"]
    );
    assert!(link(&page2, "previous").unwrap().contains("_offset=0"));
    let (_, last) = f
        .get(&format!("/Practitioner?_count=7&_offset={}", total - 2))
        .await;
    assert_eq!(last["entry"].as_array().unwrap().len(), 2);
    assert!(link(&last, "next").is_none());

    // Read, and search by identifier, names (case and accents ignored), role, organisation.
    let first = page1["entry"][0]["resource"].clone();
    let id = first["id"].as_str().unwrap().to_string();
    let (status, read) = f.get(&format!("/Practitioner/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        read["identifier"][0]["system"],
        "urn:oid:1.2.250.1.71.4.2.1"
    );
    assert_eq!(
        f.total(&format!(
            "/Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1%7C{id}"
        ))
        .await,
        1
    );
    let family = read["name"][0]["family"].as_str().unwrap().to_string();
    let folded: String = family.to_lowercase().replace(['é', 'è', 'ê'], "e");
    let by_family = f
        .total(&format!(
            "/Practitioner?family={}",
            folded.replace(' ', "%20")
        ))
        .await;
    assert!(by_family >= 1);
    let (_, roles) = f
        .get(&format!("/PractitionerRole?practitioner=Practitioner/{id}"))
        .await;
    let role = roles["entry"][0]["resource"].clone();
    assert_eq!(
        role["practitioner"]["reference"],
        format!("Practitioner/{id}")
    );
    if let Some(org) = role["organization"]["reference"].as_str() {
        let (status, organization) = f.get(&format!("/{org}")).await;
        assert_eq!(status, 200);
        assert!(organization["name"].is_string());
        let org_id = org.trim_start_matches("Organization/");
        let word = organization["name"]
            .as_str()
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        assert!(
            f.total(&format!("/Organization?name={}", word.to_lowercase()))
                .await
                >= 1
        );
        assert!(
            f.total(&format!("/PractitionerRole?organization={org_id}"))
                .await
                >= 1
        );
    }
    let gps = f
        .total("/PractitionerRole?specialty=SM54&role=10&active=true&_count=3")
        .await;
    assert!(gps > 10, "{gps}");
    assert!(f.total("/Practitioner?_lastUpdated=ge2020-01-01").await == total);
    assert_eq!(f.total("/Practitioner?_lastUpdated=lt2020-01-01").await, 0);

    // Injection attempts: bound parameters and escaped LIKE; nothing matches, nothing breaks.
    for attack in [
        "/Practitioner?name=%25",
        "/Practitioner?name=_",
        "/Practitioner?family=%27%20OR%20%271%27%3D%271",
        "/Practitioner?_id=x%27%3B%20DROP%20TABLE%20dir_practitioner%3B%20--",
        "/Organization?identifier=%27%20OR%201%3D1%20--",
        "/PractitionerRole?specialty=SM54%27%20OR%20%27a%27%3D%27a",
    ] {
        assert_eq!(f.total(attack).await, 0, "{attack}");
    }
    assert_eq!(
        f.total("/Practitioner?_count=0").await,
        total,
        "table intact"
    );

    // Errors are OperationOutcomes.
    for (path, status) in [
        ("/Practitioner?birthdate=1970", 400),
        ("/Practitioner?active=peut-etre", 400),
        ("/Practitioner/899999999999", 404),
        ("/Appointment/1", 404),
    ] {
        let (got, body) = f.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
    }

    // A newer file without this practitioner closes them, visible at once through FHIR.
    let text = std::fs::read_to_string(&file).unwrap();
    let newer = dir.path().join("newer.txt");
    std::fs::write(&newer, without_practitioner(&text, &id)).unwrap();
    let o = import(&data, db_url.as_deref(), newer.to_str().unwrap());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&stdout(&o), "practitioners")[4], 1, "{}", stdout(&o));
    let (_, closed) = f.get(&format!("/Practitioner/{id}")).await;
    assert_eq!(closed["active"], false);
    assert_eq!(
        f.total(&format!("/Practitioner?_id={id}&active=false"))
            .await,
        1
    );

    validate(&f.seen);
}

#[tokio::test]
async fn fhir_endpoint_sqlite() {
    fhir_endpoint(false).await
}

#[tokio::test]
async fn fhir_endpoint_postgres() {
    fhir_endpoint(true).await
}
