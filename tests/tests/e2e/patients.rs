//! The portal's patient identity pages on the demo population (issue 4), end to end: `megalis
//! serve --demo` feeds its documented patients; a clinician and the identity-vigilance demo
//! account sign in through the login form, add a second factor on their profile page (TOTP
//! codes computed by the Python standard library, as an authenticator app would), search,
//! read patients, decide reviews and merge/unmerge through the forms with their CSRF token; the
//! audit trail is read back from the database; a restart does not feed the population twice.
//! The staff path also runs in headless Chromium (Selenium) with accessibility checks.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use megalis_e2e::{Server, fresh_postgres_url, server};
use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::Value;

use super::auth::{csrf_field, password_login};

const DOCTOR: (&str, &str) = ("alegoff", "Demo-Docteur-Rennes-29!");
const STAFF: (&str, &str) = ("identito", "Demo-Vigilance-Vannes-56!");

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// RFC 6238 code (SHA-1, 30 s, 6 digits) with the Python standard library.
fn totp(secret: &str, at: u64) -> String {
    const CODE: &str = "import base64,hmac,hashlib,struct,sys\n\
        s=sys.argv[1]; t=int(sys.argv[2])\n\
        k=base64.b32decode(s+'='*(-len(s)%8))\n\
        m=hmac.new(k,struct.pack('>Q',t//30),hashlib.sha1).digest()\n\
        o=m[-1]&15\n\
        print('%06d'%((struct.unpack('>I',m[o:o+4])[0]&0x7fffffff)%1000000))";
    let out = Command::new(python())
        .args(["-c", CODE, secret, &at.to_string()])
        .output()
        .expect("python for TOTP");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} in {html}"))
        + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

/// A signed-in browser-like session: the cookie and the no-redirect client.
pub struct Session {
    pub http: reqwest::Client,
    pub cookie: String,
    pub base: String,
}

impl Session {
    pub async fn sign_in(s: &Server, (user, password): (&str, &str)) -> Session {
        let http = s.no_redirect_client();
        let cookie = password_login(&http, s, user, password).await;
        Session {
            http,
            cookie,
            base: s.url(""),
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Posts a form; the status and the `Location` it redirects to.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("accept", "text/html")
            .form(form)
            .send()
            .await
            .unwrap();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string())
            .unwrap_or_default();
        (r.status().as_u16(), location)
    }

    /// Enrols TOTP on the profile page: the session itself then counts as two-factor.
    pub async fn add_second_factor(&self) {
        let profile = self.page("/profile").await;
        let csrf = csrf_field(&profile);
        let r = self
            .http
            .post(format!("{}/profile/totp", self.base))
            .header("cookie", &self.cookie)
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .unwrap();
        let html = r.text().await.unwrap();
        let secret = between(&html, "id=\"totp-secret\">", "<").to_string();
        let code = totp(&secret, now());
        let r = self
            .http
            .post(format!("{}/profile/totp/confirm", self.base))
            .header("cookie", &self.cookie)
            .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
            .send()
            .await
            .unwrap();
        assert!(
            r.text().await.unwrap().contains("id=\"recovery-codes\""),
            "TOTP enrolled"
        );
    }

    /// Regional ids of the search results, in order.
    async fn search(&self, query: &str) -> Vec<String> {
        let html = self.page(&format!("/patients?{query}")).await;
        html.split("data-patient=\"")
            .skip(1)
            .map(|s| s[..s.find('"').unwrap()].to_string())
            .collect()
    }
}

/// Review ids of the open queue with the text of their row.
fn review_rows(html: &str) -> Vec<(String, String)> {
    html.split("data-review=\"")
        .skip(1)
        .map(|s| {
            let id = s[..s.find('"').unwrap()].to_string();
            (id, s[..s.find("</tr>").unwrap()].to_string())
        })
        .collect()
}

pub async fn demo_server(data: &Path, database: Option<&str>) -> Server {
    let mut b = server().data_dir(data).arg("--demo");
    if let Some(url) = database {
        b = b.database(url);
    }
    let mut s = b.start().await;
    // The population is fed in the background once the database is ready.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !s.log().contains("demo patients fed") {
        assert!(
            std::time::Instant::now() < deadline,
            "demo patients not fed:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = s.client();
    s
}

async fn count(db: &Database, sql: &'static str, arg: &str) -> i64 {
    with_pool!(db, pool => megalis_store::sqlx::query_scalar(sql).bind(arg).fetch_one(pool).await)
        .unwrap()
}

async fn rows_of(db: &Database, table: &'static str) -> i64 {
    let sql = match table {
        "identity_patient" => "SELECT COUNT(*) FROM identity_patient",
        _ => "SELECT COUNT(*) FROM identity_source",
    };
    with_pool!(db, pool => megalis_store::sqlx::query_scalar(sql).fetch_one(pool).await).unwrap()
}

async fn identity_pages(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut s = demo_server(&data, database.as_deref()).await;

    // A clinician without a second factor is refused, and told how to get one.
    let doctor = Session::sign_in(&s, DOCTOR).await;
    let (status, body) = doctor.get("/patients").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("second facteur"), "{body}");
    doctor.add_second_factor().await;
    let home = doctor.page("/").await;
    assert!(home.contains("href=\"/patients\""), "navigation link");
    assert!(!home.contains("href=\"/identity/reviews\""), "not staff");

    // Search: the twins are two patients; the Brest record of Tristan joined him.
    let twins = doctor.search("family=le+duff").await;
    assert_eq!(twins.len(), 2, "{twins:?}");
    let mut tristan = None;
    for id in &twins {
        let html = doctor.page(&format!("/patients/{id}")).await;
        if html.contains("Tristan") {
            assert_eq!(html.matches("data-source=").count(), 2, "Rennes and Brest");
            assert!(html.contains("CHU de Brest") && html.contains("CHU de Rennes"));
            tristan = Some(id.clone());
        } else {
            assert!(html.contains("Gurvan"));
            assert_eq!(html.matches("data-source=").count(), 1);
        }
    }
    let tristan = tristan.expect("Tristan");
    // The INS is shown for a qualified identity only.
    let kerguelen = doctor.search("family=kerguelen").await;
    assert_eq!(kerguelen.len(), 1);
    let html = doctor.page(&format!("/patients/{}", kerguelen[0])).await;
    let ins = between(&html, "id=\"ins\">", "<");
    assert!(
        ins.len() == 15 && ins.bytes().all(|b| b.is_ascii_digit()),
        "{ins}"
    );
    let by_ins = doctor.search(&format!("identifier={ins}")).await;
    assert_eq!(by_ins, kerguelen, "found by INS");
    let calvez = doctor.search("family=calvez&sex=female").await;
    let html = doctor.page(&format!("/patients/{}", calvez[0])).await;
    assert!(
        html.contains("communiqué que pour une identité qualifiée"),
        "RECUP: INS withheld"
    );
    // A birth date typed the French way, and a disagreement between hospitals.
    let tanguy = doctor.search("birth_date=12%2F03%2F1958").await;
    assert_eq!(tanguy.len(), 1);
    let html = doctor.page(&format!("/patients/{}", tanguy[0])).await;
    assert!(
        html.contains("id=\"conflicts\""),
        "birthplace conflict shown"
    );
    // Paging: 20 per page, a next link.
    let html = doctor.page("/patients?sex=female").await;
    assert!(html.contains("rel=\"next\""), "{html}");
    // English on request.
    let html = doctor.page("/patients?family=le+duff&lang=en").await;
    assert!(html.contains("Birth name") && html.contains("lang=\"en\""));
    // A professional reads but does not decide.
    for path in ["/identity/reviews", "/identity/reviews/1"] {
        let (status, body) = doctor.get(path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("identitovigilance"), "{body}");
    }
    let hamon = doctor.search("family=hamon").await;
    assert_eq!(hamon.len(), 1, "the A40 merge of the demo");
    let html = doctor.page(&format!("/patients/{}", hamon[0])).await;
    assert!(html.contains("data-merge="), "merge listed");
    assert!(
        !html.contains("/unmerge"),
        "no unmerge button for clinicians"
    );
    let (status, _) = doctor
        .post(
            &format!("/patients/{}/merge", twins[0]),
            &[
                ("csrf", csrf_field(&html).as_str()),
                ("other", twins[1].as_str()),
            ],
        )
        .await;
    assert_eq!(status, 403, "a clinician may not merge");

    // Identity-vigilance staff: the review queue.
    let staff = Session::sign_in(&s, STAFF).await;
    let (status, _) = staff.get("/identity/reviews").await;
    assert_eq!(status, 403, "second factor first");
    staff.add_second_factor().await;
    let queue = staff.page("/identity/reviews").await;
    let rows = review_rows(&queue);
    assert_eq!(rows.len(), 3, "{queue}");
    let find = |name: &str| {
        rows.iter()
            .find(|(_, r)| r.contains(name))
            .unwrap_or_else(|| panic!("{name} in queue"))
            .0
            .clone()
    };
    let (cadiou, le_roux) = (find("CADIOU"), find("LE ROUX"));
    let html = staff.page(&format!("/identity/reviews/{cadiou}")).await;
    assert!(html.contains("id=\"decide-same\"") && html.contains("id=\"decide-distinct\""));
    assert!(html.contains("class=\"differs\""), "differences marked");
    let confirm = staff
        .page(&format!(
            "/identity/reviews/{cadiou}/confirm?decision=distinct"
        ))
        .await;
    assert!(confirm.contains("id=\"confirm-form\""));
    let csrf = csrf_field(&confirm);
    // Without the CSRF token: refused, nothing decided.
    let (status, _) = staff
        .post(
            &format!("/identity/reviews/{cadiou}"),
            &[("decision", "distinct")],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(review_rows(&staff.page("/identity/reviews").await).len(), 3);
    let (status, location) = staff
        .post(
            &format!("/identity/reviews/{cadiou}"),
            &[("csrf", csrf.as_str()), ("decision", "distinct")],
        )
        .await;
    assert_eq!(
        (status, location.as_str()),
        (303, "/identity/reviews?done=distinct&lang=fr")
    );
    let queue = staff.page("/identity/reviews?done=distinct").await;
    assert!(queue.contains("role=\"status\""));
    assert_eq!(review_rows(&queue).len(), 2);
    let html = staff.page(&format!("/identity/reviews/{cadiou}")).await;
    assert!(html.contains("id=\"review-state\"") && !html.contains("decide-same"));
    assert_eq!(staff.search("family=cadiou").await.len(), 2, "still two");
    // Deciding a closed task again is a conflict.
    let (status, _) = staff
        .post(
            &format!("/identity/reviews/{cadiou}"),
            &[("csrf", csrf.as_str()), ("decision", "same")],
        )
        .await;
    assert_eq!(status, 409);
    // Same patient: the two LE ROUX become one with both records.
    let (status, _) = staff
        .post(
            &format!("/identity/reviews/{le_roux}"),
            &[("csrf", csrf.as_str()), ("decision", "same")],
        )
        .await;
    assert_eq!(status, 303);
    let le_roux_ids = staff.search("family=le+roux").await;
    assert_eq!(le_roux_ids.len(), 1);
    let html = staff.page(&format!("/patients/{}", le_roux_ids[0])).await;
    assert_eq!(html.matches("data-source=").count(), 2);

    // Merge from the patient page, then undo it.
    let perrin = staff.search("family=perrin").await.remove(0);
    let paugam = staff.search("family=paugam").await.remove(0);
    let html = staff
        .page(&format!("/patients/{perrin}/merge?other={paugam}"))
        .await;
    assert!(html.contains("id=\"confirm-form\"") && html.contains(&paugam));
    let (status, _) = staff
        .post(
            &format!("/patients/{perrin}/merge"),
            &[("other", paugam.as_str())],
        )
        .await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, location) = staff
        .post(
            &format!("/patients/{perrin}/merge"),
            &[("csrf", csrf.as_str()), ("other", paugam.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(location, format!("/patients/{perrin}?done=merged&lang=fr"));
    let merged = staff.page(&format!("/patients/{paugam}")).await;
    assert!(
        merged.contains("id=\"merged-into\"") && merged.contains(&format!("/patients/{perrin}"))
    );
    assert!(!merged.contains("data-source=\"29200003\""));
    let survivor = staff.page(&format!("/patients/{perrin}")).await;
    assert!(survivor.contains("data-source=\"29200003\""));
    let merge_id = between(&survivor, "data-merge=\"", "\"").to_string();
    // Merging into a merged patient, or a fictitious identity, is refused.
    let (status, _) = staff
        .post(
            &format!("/patients/{paugam}/merge"),
            &[("csrf", csrf.as_str()), ("other", tristan.as_str())],
        )
        .await;
    assert_eq!(status, 409);
    let anonyme = staff.search("family=anonyme").await.remove(0);
    let (status, _) = staff
        .post(
            &format!("/patients/{perrin}/merge"),
            &[("csrf", csrf.as_str()), ("other", anonyme.as_str())],
        )
        .await;
    assert_eq!(status, 409, "FICTI");
    let confirm = staff
        .page(&format!("/identity/merges/{merge_id}/unmerge"))
        .await;
    assert!(confirm.contains("id=\"confirm-form\""));
    let (status, _) = staff
        .post(&format!("/identity/merges/{merge_id}/unmerge"), &[])
        .await;
    assert_eq!(status, 403, "no CSRF token");
    let (status, location) = staff
        .post(
            &format!("/identity/merges/{merge_id}/unmerge"),
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(
        location,
        format!("/patients/{paugam}?done=unmerged&lang=fr")
    );
    let restored = staff.page(&format!("/patients/{paugam}")).await;
    assert!(!restored.contains("id=\"merged-into\""));
    assert!(restored.contains("data-source=\"29200003\""), "source back");
    let survivor = staff.page(&format!("/patients/{perrin}")).await;
    assert!(!survivor.contains("data-source=\"29200003\""));
    assert_eq!(staff.search("family=paugam").await, vec![paugam.clone()]);

    // The audit trail: each patient seen, each refusal, each decision.
    let url = database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data.join("megalis.db").display()));
    let db = Database::open(&url, &PoolSettings::default()).unwrap();
    let by_patient = "SELECT COUNT(*) FROM audit_record WHERE action = $1 AND patient_id = $2";
    for (action, patient) in [
        ("patient.read", tristan.as_str()),
        ("patient.search", tristan.as_str()),
        ("patient.merge", perrin.as_str()),
        ("patient.merge", paugam.as_str()),
        ("patient.unmerge", paugam.as_str()),
    ] {
        let n: i64 = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(by_patient)
            .bind(action).bind(patient).fetch_one(pool).await)
        .unwrap();
        assert!(n >= 1, "{action} {patient}");
    }
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_record WHERE action = $1",
            "patient.distinct"
        )
        .await
            >= 2
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_record WHERE action = 'patient.access' AND outcome = $1",
            "denied"
        )
        .await
            >= 3,
        "refusals audited"
    );
    let patients = rows_of(&db, "identity_patient").await;
    let sources = rows_of(&db, "identity_source").await;
    assert!(patients >= 35, "{patients}");

    // A second start feeds nothing again: the decisions made stay.
    s.sigterm();
    assert!(s.wait_exit(Duration::from_secs(20)).await.success());
    let again = demo_server(&data, database.as_deref()).await;
    assert_eq!(rows_of(&db, "identity_patient").await, patients);
    assert_eq!(rows_of(&db, "identity_source").await, sources);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM identity_review WHERE state = $1",
            "open"
        )
        .await,
        1,
        "the reviews decided stay decided"
    );
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_identity_pages_on_sqlite() {
    identity_pages(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_identity_pages_on_postgres() {
    identity_pages(Some(fresh_postgres_url().await)).await;
}

/// The identity-vigilance path in headless Chromium: search, a patient page, the review queue,
/// a decision cancelled then confirmed, a merge and its undoing, with the accessibility basics
/// checked on every page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_identity_vigilance() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = demo_server(&data, None).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/python/browser_patients.py");
    let out = Command::new(python())
        .arg(script)
        .args([&format!("https://{}", s.https), STAFF.0, STAFF.1])
        .output()
        .expect("run the browser test");
    assert!(
        out.status.success(),
        "browser test failed:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]), "accessibility: {v}");
    assert_eq!(v["twins"], 2, "{v}");
    assert_eq!(v["sources_of_tristan"], 2, "{v}");
    assert_eq!(v["queue_before"], 3, "{v}");
    assert_eq!(v["cancel_kept_task_open"], true, "{v}");
    assert_eq!(v["queue_after"], 2, "{v}");
    assert_eq!(v["merged_notice"], true, "{v}");
    assert_eq!(v["unmerged_notice"], true, "{v}");
    assert_eq!(v["sources_back"], true, "{v}");
}
