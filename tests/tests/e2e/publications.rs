//! Publications end to end, on `megalis serve --demo` (SQLite, then PostgreSQL): the demo
//! editor (`redaction`) signs in through the login form and, through the pages and their CSRF
//! tokens, previews, creates, publishes, schedules (a few seconds ahead: the article appears
//! with nothing run in between) and withdraws articles; anonymous readers see the published
//! public articles only, a signed-in clinician both audiences; search finds an article from a
//! query typed without accents; Markdown carrying `<script>`, `<img onerror>` and a
//! `javascript:` link comes out inert; a withdrawn article answers 410; a clinician is refused
//! the editors' pages (403 page, audited) and a POST without the CSRF token is refused; the
//! Atom feed, read by the third-party `feedparser`, lists exactly the public published ones.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use megalis_e2e::{Server, fresh_postgres_url, server};
use megalis_store::{Database, PoolSettings, with_pool};
use serde_json::Value;

use super::auth::{csrf_field, password_login};

const EDITOR: (&str, &str) = ("redaction", "Demo-Editeur-Quimper-29!");
const DOCTOR: (&str, &str) = ("alegoff", "Demo-Docteur-Rennes-29!");

const DEMO_PUBLIC: &str = "La plateforme régionale de e-santé et vos droits de patient";
const DEMO_PRO: &str = "Maladie rénale chronique : le parcours de soins régional";
const DEMO_SCHEDULED: &str = "Téléconsultation : bien se préparer";

const INJECTION: &str = "# Dépistage\n\nLa **créatinine** et l'albuminurie.\n\n\
    <script>alert('xss')</script>\n\n\
    <img src=x onerror=alert(1)>\n\n\
    [cliquez](javascript:alert(1)) et [ANS](https://esante.gouv.fr)\n";

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// A browser-like client: an optional session cookie, no redirects followed, HTML accepted.
struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
    base: String,
}

struct Answer {
    status: u16,
    location: String,
    content_type: String,
    body: String,
}

impl Browser {
    fn anonymous(s: &Server) -> Browser {
        Browser {
            http: s.no_redirect_client(),
            cookie: None,
            base: s.url(""),
        }
    }

    async fn sign_in(s: &Server, (user, password): (&str, &str)) -> Browser {
        let http = s.no_redirect_client();
        let cookie = password_login(&http, s, user, password).await;
        Browser {
            http,
            cookie: Some(cookie),
            base: s.url(""),
        }
    }

    async fn answer(&self, r: reqwest::RequestBuilder) -> Answer {
        let r = match &self.cookie {
            Some(c) => r.header("cookie", c),
            None => r,
        };
        let r = r.header("accept", "text/html").send().await.unwrap();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default()
        };
        let (status, location, content_type) = (
            r.status().as_u16(),
            header("location"),
            header("content-type"),
        );
        Answer {
            status,
            location,
            content_type,
            body: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.answer(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn page(&self, path: &str) -> String {
        let a = self.get(path).await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.body
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        self.answer(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }
}

/// The value of a hidden field of the first form that has it.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Titles of a reading list, in order.
fn listed(html: &str) -> Vec<String> {
    html.split("data-article=\"")
        .skip(1)
        .map(|s| {
            let text = &s[s.find('>').unwrap() + 1..];
            text[..text.find("</a>").unwrap()].replace("&#39;", "'")
        })
        .collect()
}

/// What an article body must never contain once rendered.
fn assert_inert(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "onerror", "javascript:", "alert('xss')"] {
        assert!(!lower.contains(bad), "{bad} in {html}");
    }
}

/// The instant `seconds` from now as the Paris wall-clock value of a `datetime-local` field,
/// computed by the system's time-zone database (independent of the server's own rule).
fn paris_in(seconds: u64) -> (String, std::time::SystemTime) {
    let at = std::time::SystemTime::now() + Duration::from_secs(seconds);
    let epoch = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let out = Command::new("date")
        .env("TZ", "Europe/Paris")
        .args(["-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%S %Z"])
        .output()
        .expect("date");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (local, zone) = text.trim().split_once(' ').unwrap();
    // Without the time-zone database `date` falls back to UTC silently (scripts/test.sh
    // installs tzdata).
    assert!(
        matches!(zone, "CET" | "CEST"),
        "no Europe/Paris zone data: {text}"
    );
    (local.to_string(), at)
}

async fn demo_server(data: &Path, database: Option<&str>) -> Server {
    let mut b = server().data_dir(data).arg("--demo");
    if let Some(url) = database {
        b = b.database(url);
    }
    let s = b.start().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !s.log().contains("demo publications written") {
        assert!(
            std::time::Instant::now() < deadline,
            "demo publications not written:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s
}

/// Creates an article through the form; its id (from the redirect).
async fn create(editor: &Browser, title: &str, body: &str, audience: &str, tags: &str) -> String {
    let form = editor.page("/publications/manage/new").await;
    let csrf = csrf_field(&form);
    let a = editor
        .post(
            "/publications/manage/new",
            &[
                ("csrf", csrf.as_str()),
                ("version", "0"),
                ("title", title),
                ("body", body),
                ("audience", audience),
                ("tags", tags),
                ("op", "save"),
                ("lang", "fr"),
            ],
        )
        .await;
    assert_eq!(a.status, 303, "create {title}: {}", a.body);
    let rest = a
        .location
        .strip_prefix("/publications/manage/")
        .unwrap_or_else(|| panic!("{}", a.location));
    assert!(rest.contains("done=created"), "{}", a.location);
    rest[..rest.find('?').unwrap()].to_string()
}

/// A lifecycle button of the article's page (with its form's CSRF token and version).
async fn step(editor: &Browser, id: &str, step: &str, extra: &[(&str, &str)]) -> Answer {
    let page = editor.page(&format!("/publications/manage/{id}")).await;
    let csrf = csrf_field(&page);
    let version = hidden(&page, "version");
    let mut form = vec![("csrf", csrf.as_str()), ("version", version.as_str())];
    form.extend_from_slice(extra);
    editor
        .post(&format!("/publications/manage/{id}/{step}"), &form)
        .await
}

fn slug_of(editor_page: &str) -> String {
    let v = editor_page
        .split("id=\"view-link\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .unwrap();
    let path = &v[..v.find('"').unwrap()];
    let path = &path[..path.find('?').unwrap_or(path.len())];
    path.rsplit('/').next().unwrap().to_string()
}

/// The Atom feed as feedparser reads it.
async fn feed(s: &Server) -> Value {
    let r = s
        .no_redirect_client()
        .get(s.url("/publications/feed.atom"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/atom+xml; charset=utf-8"
    );
    let body = r.bytes().await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &body).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python/atom_feed.py");
    let out = Command::new(python())
        .args([script, file.path().to_str().unwrap()])
        .output()
        .expect("run the feedparser script (MEGALIS_PYTHON with tests/requirements.txt)");
    assert!(
        out.status.success(),
        "feedparser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed["bozo"], 0, "well-formed: {parsed}");
    assert_eq!(parsed["version"], "atom10");
    parsed
}

fn feed_titles(feed: &Value) -> Vec<String> {
    let mut t: Vec<String> = feed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

async fn audit_count(db: &Database, action: &str, outcome: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM audit_record WHERE action = $1 AND outcome = $2";
    with_pool!(db, pool => megalis_store::sqlx::query_scalar(sql)
        .bind(action).bind(outcome).fetch_one(pool).await)
    .unwrap()
}

async fn publications(database: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let s = demo_server(&data, database.as_deref()).await;
    let anonymous = Browser::anonymous(&s);

    // The demo articles: the public one for everyone, the professionals' one for signed-in
    // users, the scheduled one for nobody yet.
    let public_list = anonymous.page("/publications").await;
    assert!(public_list.contains("<html lang=\"fr\">"));
    assert_eq!(listed(&public_list), [DEMO_PUBLIC]);
    let demo_pro_slug = "maladie-renale-chronique-le-parcours-de-soins-regional";
    assert_eq!(
        anonymous
            .get(&format!("/publications/{demo_pro_slug}"))
            .await
            .status,
        404
    );
    let pro = anonymous.get("/pro/publications").await;
    assert_eq!(pro.status, 303);
    assert_eq!(pro.location, "/login?next=%2Fpro%2Fpublications");
    let doctor = Browser::sign_in(&s, DOCTOR).await;
    let mut pro_list = listed(&doctor.page("/pro/publications").await);
    pro_list.sort();
    assert_eq!(pro_list, [DEMO_PUBLIC, DEMO_PRO]);
    let pro_article = doctor
        .page(&format!("/pro/publications/{demo_pro_slug}"))
        .await;
    assert!(pro_article.contains("<td>G3a</td>"), "the KDIGO table");
    // A professionals' article asked for on the public site moves to their section.
    let moved = doctor.get(&format!("/publications/{demo_pro_slug}")).await;
    assert_eq!(moved.status, 303);
    assert!(
        moved
            .location
            .starts_with(&format!("/pro/publications/{demo_pro_slug}"))
    );

    // Non-editors are refused the editors' pages: a 403 page, audited.
    let refused = doctor.get("/publications/manage").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.content_type.starts_with("text/html"),
        "{}",
        refused.content_type
    );
    assert!(
        refused.body.contains("403") && refused.body.contains("<h1>"),
        "{}",
        refused.body
    );
    let doctor_csrf = csrf_field(&doctor.page("/profile").await);
    let refused = doctor
        .post(
            "/publications/manage/new",
            &[
                ("csrf", doctor_csrf.as_str()),
                ("title", "Intrus"),
                ("body", "x"),
                ("audience", "public"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let to_login = anonymous.get("/publications/manage").await;
    assert_eq!(
        (to_login.status, to_login.location.as_str()),
        (303, "/login?next=%2Fpublications%2Fmanage")
    );

    // The editor: the list of every article with its status.
    let editor = Browser::sign_in(&s, EDITOR).await;
    let manage = editor.page("/publications/manage").await;
    assert!(
        manage.contains(DEMO_SCHEDULED),
        "scheduled demo article listed"
    );
    assert_eq!(manage.matches("data-status=\"published\"").count(), 2);
    assert_eq!(manage.matches("data-status=\"scheduled\"").count(), 1);
    assert!(
        editor
            .page("/publications")
            .await
            .contains("id=\"manage-link\""),
        "editors get the way to the editors' pages"
    );

    // Forms without (or with a wrong) CSRF token are refused, and create nothing.
    let title = "Santé des reins : le dépistage précoce";
    for token in ["", "not-the-token"] {
        let a = editor
            .post(
                "/publications/manage/new",
                &[
                    ("csrf", token),
                    ("title", title),
                    ("body", "x"),
                    ("audience", "public"),
                    ("op", "save"),
                ],
            )
            .await;
        assert_eq!(a.status, 403, "csrf {token:?}: {}", a.body);
    }

    // Preview: rendered, inert, nothing saved.
    let new_form = editor.page("/publications/manage/new").await;
    let csrf = csrf_field(&new_form);
    let preview = editor
        .post(
            "/publications/manage/new",
            &[
                ("csrf", csrf.as_str()),
                ("title", title),
                ("body", INJECTION),
                ("audience", "public"),
                ("tags", "Néphrologie, Prévention"),
                ("op", "preview"),
            ],
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    let shown = &preview.body[preview
        .body
        .find("id=\"preview\"")
        .expect("preview section")..];
    assert!(shown.contains("<h2>Dépistage</h2>"), "{shown}");
    assert!(shown.contains("<strong>créatinine</strong>"));
    assert_inert(shown);
    assert!(
        shown.contains(r#"<a href="https://esante.gouv.fr" rel="noopener noreferrer">ANS</a>"#),
        "{shown}"
    );
    assert!(
        !editor.page("/publications/manage").await.contains(title),
        "a preview saves nothing"
    );
    // An invalid form comes back with its error and the text typed.
    let invalid = editor
        .post(
            "/publications/manage/new",
            &[
                ("csrf", csrf.as_str()),
                ("title", "  "),
                ("body", "gardé"),
                ("audience", "public"),
                ("op", "save"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.body.contains("role=\"alert\"") && invalid.body.contains(">gardé</textarea>"));

    // Create, check it is a draft nobody reads, publish it.
    let id = create(
        &editor,
        title,
        INJECTION,
        "public",
        "Néphrologie, Prévention",
    )
    .await;
    let draft_page = editor
        .page(&format!("/publications/manage/{id}?done=created"))
        .await;
    assert!(draft_page.contains("data-status=\"draft\""));
    assert!(draft_page.contains("id=\"notice\""));
    assert_eq!(
        slug_of(&draft_page),
        "preview",
        "a draft links to its preview"
    );
    let editor_preview = editor
        .page(&format!("/publications/manage/{id}/preview"))
        .await;
    assert!(editor_preview.contains("id=\"preview-banner\""));
    assert_inert(&editor_preview[editor_preview.find("id=\"article-body\"").unwrap()..]);
    let reins = "sante-des-reins-le-depistage-precoce";
    assert_eq!(
        anonymous
            .get(&format!("/publications/{reins}"))
            .await
            .status,
        404
    );
    let done = step(&editor, &id, "publish", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert!(done.location.contains("done=published"));
    let published_page = editor.page(&format!("/publications/manage/{id}")).await;
    assert!(published_page.contains("data-status=\"published\""));
    assert_eq!(slug_of(&published_page), reins);
    let article = anonymous.page(&format!("/publications/{reins}")).await;
    assert_eq!(article.matches("<h1").count(), 1);
    assert!(article.contains(&format!(
        "<h1>{}</h1>",
        "Santé des reins : le dépistage précoce"
    )));
    let body = &article[article.find("id=\"article-body\"").unwrap()..];
    assert_inert(body);
    assert!(body.contains("<h2>Dépistage</h2>") && body.contains("cliquez"));

    // A professionals' article: hidden from the public, read by the clinician.
    let pro_id = create(
        &editor,
        "Protocole kaliémie en dialyse",
        "Alerte à **6,0 mmol/L**.",
        "professionals",
        "Néphrologie",
    )
    .await;
    assert_eq!(step(&editor, &pro_id, "publish", &[]).await.status, 303);
    assert_eq!(
        anonymous
            .get("/publications/protocole-kaliemie-en-dialyse")
            .await
            .status,
        404
    );
    assert_eq!(
        anonymous
            .get("/pro/publications/protocole-kaliemie-en-dialyse")
            .await
            .status,
        303
    );
    assert!(
        doctor
            .page("/pro/publications/protocole-kaliemie-en-dialyse")
            .await
            .contains("6,0 mmol/L")
    );

    // Scheduled a few seconds ahead: invisible, then visible at its time without anything run.
    let journee = "Journée régionale du rein";
    let journee_id = create(
        &editor,
        journee,
        "Le **12 mars** à Rennes.",
        "public",
        "Événements",
    )
    .await;
    let (local, at) = paris_in(6);
    let scheduled = step(
        &editor,
        &journee_id,
        "schedule",
        &[("publish_at", local.as_str())],
    )
    .await;
    assert_eq!(scheduled.status, 303, "{}", scheduled.body);
    let page = editor
        .page(&format!("/publications/manage/{journee_id}"))
        .await;
    assert!(page.contains("data-status=\"scheduled\""), "{page}");
    // Shown back in Paris time, as the system's time-zone database says.
    let shown = format!(
        "{}/{}/{} à {}",
        &local[8..10],
        &local[5..7],
        &local[..4],
        &local[11..16]
    );
    assert!(page.contains(&shown), "{shown} in {page}");
    assert_eq!(
        anonymous
            .get("/publications/journee-regionale-du-rein")
            .await
            .status,
        404
    );
    assert!(!feed_titles(&feed(&s).await).contains(&journee.to_string()));
    if let Ok(wait) = at.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait + Duration::from_millis(1500)).await;
    }
    assert_eq!(
        anonymous
            .get("/publications/journee-regionale-du-rein")
            .await
            .status,
        200
    );

    // Editing: saved over the version loaded; a second save from the same stale form is
    // refused with the text kept.
    let page = editor
        .page(&format!("/publications/manage/{journee_id}"))
        .await;
    let (csrf, version) = (csrf_field(&page), hidden(&page, "version"));
    let edit = |body: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("version", version.clone()),
            ("title", journee.to_string()),
            ("body", body.to_string()),
            ("audience", "public".to_string()),
            ("tags", "Événements, Bretagne".to_string()),
            ("op", "save".to_string()),
        ]
    };
    let form: Vec<(&str, String)> = edit("Le **12 mars** à Rennes, au Couvent des Jacobins.");
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = editor
        .post(&format!("/publications/manage/{journee_id}"), &form)
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(saved.location.contains("done=saved"));
    let stale: Vec<(&str, String)> = edit("Texte venu depuis un autre onglet");
    let stale: Vec<(&str, &str)> = stale.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = editor
        .post(&format!("/publications/manage/{journee_id}"), &stale)
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused
            .body
            .contains(">Texte venu depuis un autre onglet</textarea>"),
        "{}",
        refused.body
    );
    assert!(
        anonymous
            .page("/publications/journee-regionale-du-rein")
            .await
            .contains("Jacobins")
    );

    // Search: accents and case do not matter, words are prefixes, audiences hold.
    for q in ["depistage", "DÉPISTAGE precoce", "creat", "nephrologie"] {
        let found = listed(
            &anonymous
                .page(&format!("/publications?q={}", urlencode(q)))
                .await,
        );
        assert_eq!(found, [title], "{q}");
    }
    assert!(listed(&anonymous.page("/publications?q=protocole+kaliemie").await).is_empty());
    assert_eq!(
        listed(&doctor.page("/pro/publications?q=protocole+kaliemie").await),
        ["Protocole kaliémie en dialyse"]
    );
    let by_tag = listed(&doctor.page("/pro/publications?tag=nephrologie").await);
    assert_eq!(by_tag.len(), 3, "{by_tag:?}");
    let nothing = anonymous.page("/publications?q=zzzinconnu").await;
    assert!(listed(&nothing).is_empty() && nothing.contains("id=\"no-results\""));
    // The same pages in English.
    let english = anonymous.page("/publications?lang=en").await;
    assert!(english.contains("<html lang=\"en\">") && english.contains("Search the articles"));

    // The feed: public and published only, as a third-party reader sees it.
    let f = feed(&s).await;
    let mut expected = vec![
        DEMO_PUBLIC.to_string(),
        journee.to_string(),
        title.to_string(),
    ];
    expected.sort();
    assert_eq!(feed_titles(&f), expected, "{f}");
    let feed_id = f["id"].as_str().unwrap();
    assert!(
        feed_id.starts_with("tag:") && feed_id.ends_with(",2026:megalis/publications"),
        "{f}"
    );
    assert!(f["updated_parsed"].as_bool().unwrap());
    let links = f["links"].to_string();
    assert!(
        links.contains("/publications/feed.atom") && links.contains("\"alternate\""),
        "{links}"
    );
    for e in f["entries"].as_array().unwrap() {
        assert!(e["id"].as_str().unwrap().starts_with("urn:uuid:"), "{e}");
        assert!(e["link"].as_str().unwrap().starts_with("https://"), "{e}");
        assert_eq!(e["author"], "Rédaction Megalis");
        assert!(e["published_parsed"].as_bool().unwrap() && e["updated_parsed"].as_bool().unwrap());
        for c in e["content"].as_array().unwrap() {
            assert_inert(c.as_str().unwrap());
        }
    }
    let reins_entry = f["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["title"] == title)
        .unwrap();
    assert!(
        reins_entry["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/publications/{reins}"))
    );
    assert_eq!(
        reins_entry["tags"],
        serde_json::json!(["nephrologie", "prevention"])
    );

    // Withdrawn: 410 for everyone, out of the lists and the feed.
    let withdrawn = step(&editor, &id, "withdraw", &[]).await;
    assert_eq!(withdrawn.status, 303);
    let gone = anonymous.get(&format!("/publications/{reins}")).await;
    assert_eq!(gone.status, 410, "{}", gone.body);
    assert!(gone.body.contains("410"));
    assert_eq!(
        doctor
            .get(&format!("/pro/publications/{reins}"))
            .await
            .status,
        410
    );
    assert!(!listed(&anonymous.page("/publications").await).contains(&title.to_string()));
    assert!(!feed_titles(&feed(&s).await).contains(&title.to_string()));
    // A step the status does not allow is refused (withdrawing twice).
    assert_eq!(step(&editor, &id, "withdraw", &[]).await.status, 409);

    // Every change is in the audit trail, and so are the refusals.
    let db = match &database {
        Some(url) => Database::open(url, &PoolSettings::default()).unwrap(),
        None => Database::open(&Database::default_url(&data), &PoolSettings::default()).unwrap(),
    };
    assert_eq!(audit_count(&db, "publication.create", "success").await, 3);
    assert_eq!(audit_count(&db, "publication.publish", "success").await, 2);
    assert_eq!(audit_count(&db, "publication.schedule", "success").await, 1);
    assert_eq!(audit_count(&db, "publication.withdraw", "success").await, 1);
    assert_eq!(audit_count(&db, "publication.update", "success").await, 1);
    assert_eq!(audit_count(&db, "publication.manage", "denied").await, 2);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b' ' => "+".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_on_sqlite() {
    publications(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_on_postgres() {
    publications(Some(fresh_postgres_url().await)).await;
}
