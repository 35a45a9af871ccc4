//! The plugin host in the real binary: `/apps/{plugin}/…` over HTTPS, errors as problem+json,
//! plugins.toml reloads, and the `megalis plugin` commands (fetch, check, run).

use std::path::Path;
use std::time::{Duration, Instant};

use megalis_e2e::{free_port, megalis, server, stderr, stdout};
use megalis_testkit::{test_plugin, test_plugins_dir};

fn digest(bytes: &[u8]) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// Fetches a test plugin into the data directory with `megalis plugin fetch`; returns its digest.
pub fn fetch_into(data_dir: &Path, name: &str) -> String {
    let path = test_plugins_dir().join(format!("{name}.wasm"));
    let sha = digest(&test_plugin(name));
    let url = format!("file://{}", path.display());
    let o = megalis(
        &[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "plugin",
            "fetch",
            &url,
            "--sha256",
            &sha,
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        data_dir
            .join("plugins")
            .join(format!("{sha}.wasm"))
            .exists()
    );
    sha
}

pub fn plugins_toml(entries: &[(&str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(id, sha, grants)| {
            format!(
                "[[plugins]]\nid = \"{id}\"\nsha256 = \"{sha}\"\ngrants = [{grants}]\n\
                 [plugins.limits]\ntimeout_ms = 1000\n[plugins.config]\ngreeting = \"Demat\"\n"
            )
        })
        .collect()
}

#[tokio::test]
async fn plugins_are_served_under_apps_with_the_platform_error_format() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let hello = fetch_into(&data, "hello");
    let probe = fetch_into(&data, "probe");
    std::fs::write(
        data.join("plugins.toml"),
        plugins_toml(&[
            ("hello", &hello, ""),
            ("probe", &probe, "\"context\", \"store\", \"logging\""),
        ]),
    )
    .unwrap();
    let mut s = server().data_dir(&data).start().await;
    let c = s.client();

    // Plugins load in the background once the server is up.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.get(s.url("/apps/hello")).send().await.unwrap();
        if r.status() == 200 {
            assert_eq!(r.text().await.unwrap(), "Hello from a Megalis plugin\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hello never loaded:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // What reaches the plugin: no cookie, no authorization, a path relative to the plugin.
    let r = c
        .get(s.url("/apps/probe/headers?q=1"))
        .header("cookie", "megalis_session=secret")
        .header("authorization", "Bearer secret")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let echo: serde_json::Value = r.json().await.unwrap();
    assert_eq!(echo["path"], "/headers");
    let echoed = echo["headers"].to_string();
    assert!(
        echoed.contains("x-custom") && !echoed.contains("secret"),
        "{echoed}"
    );

    // The plugin store on the platform database (SQLite here).
    let r = c
        .put(s.url("/apps/probe/store/k1"))
        .body("v1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c.get(s.url("/apps/probe/store/k1")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "v1");

    // Errors: problem+json with the correlation id, from the one error mapper.
    for (path, status) in [
        ("/apps/probe/loop", 504),
        ("/apps/probe/private/hello", 401),
        ("/apps/probe/api/hello", 401),
        ("/apps/nobody/x", 404),
        ("/apps/probe/trap", 500),
    ] {
        let r = c
            .get(s.url(path))
            .header("x-request-id", "e2e-plugin-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["status"], status, "{path}");
        assert!(
            problem.to_string().contains("e2e-plugin-1"),
            "{path}: {problem}"
        );
    }
    // The host is healthy after the loop and the trap.
    assert_eq!(
        c.get(s.url("/apps/probe/hello"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "megalis_plugin_invocations_total{plugin=\"probe\"}",
        "megalis_plugin_errors_total{kind=\"deadline\",plugin=\"probe\"} 1",
        "megalis_plugin_errors_total{kind=\"trap\",plugin=\"probe\"} 1",
        "megalis_plugin_memory_high_water_bytes{plugin=\"hello\"}",
    ] {
        assert!(metrics.contains(line), "metrics lack {line}");
    }

    // Changing plugins.toml swaps the plugin behind an id without a restart.
    std::fs::write(
        data.join("plugins.toml"),
        plugins_toml(&[("hello", &probe, "\"context\", \"store\", \"logging\"")]),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.get(s.url("/apps/hello/hello")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        if r.text().await.unwrap() == "hello" {
            break;
        }
        assert!(Instant::now() < deadline, "no swap:\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        c.get(s.url("/apps/probe/hello"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "a plugin removed from plugins.toml is gone"
    );
}

#[test]
fn fetch_refuses_a_module_whose_digest_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = test_plugins_dir().join("hello.wasm");
    let wrong = "0".repeat(64);
    let o = megalis(
        &[
            "--data-dir",
            tmp.path().to_str().unwrap(),
            "plugin",
            "fetch",
            path.to_str().unwrap(),
            "--sha256",
            &wrong,
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nothing was stored"), "{}", stderr(&o));
    assert!(
        !tmp.path()
            .join("plugins")
            .join(format!("{wrong}.wasm"))
            .exists()
    );
}

#[test]
fn check_prints_imports_exports_and_refuses_what_is_not_a_plugin() {
    let probe = test_plugins_dir().join("probe.wasm");
    let o = megalis(&["plugin", "check", probe.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    for expected in [
        "manifest probe 0.1.0",
        "import   megalis:platform/store@0.1.1  (capability store)",
        "export   wasi:http/incoming-handler@0.2",
        "route    /api (bearer(probe.read))",
        "channel  /signal (public; join /channels/join; deliver relay; max 65536 bytes, 16 members)",
        "channel  /shout (public; join /channels/join; deliver plugin /channels/shout; max 1024 bytes, 2 members)",
        "ok: a valid megalis:platform@0.1 plugin",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }

    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x01\0\0\0").unwrap();
    let o = megalis(&["plugin", "check", junk.to_str().unwrap()], &[]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("NOT a plugin"), "{}", stdout(&o));
}

#[tokio::test]
async fn run_serves_one_plugin_at_the_root_with_local_capabilities() {
    let probe = test_plugins_dir().join("probe.wasm");
    // Without grants the load is refused, naming the import.
    let o = megalis(
        &[
            "plugin",
            "run",
            probe.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("megalis:platform/") && stderr(&o).contains("--grant"),
        "{}",
        stderr(&o)
    );

    let port = free_port();
    let mut child = std::process::Command::new(megalis_e2e::megalis_bin())
        .args(["plugin", "run", probe.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--grant",
            "context,store,logging",
            "--set",
            "greeting=Demat",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let whoami = loop {
        if let Ok(r) = client.get(format!("{base}/private/whoami")).send().await {
            break r;
        }
        assert!(Instant::now() < deadline, "plugin run never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The local runner authenticates the session route as the developer (no 401 from the host).
    assert_eq!(whoami.status(), 200);
    let dev: serde_json::Value = whoami.json().await.unwrap();
    assert_eq!(dev["kind"], "user");
    assert_eq!(dev["subject"], "dev");
    let me: serde_json::Value = client
        .get(format!("{base}/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["greeting"], "Demat");
    assert_eq!(
        client
            .get(format!("{base}/private/hello"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "private"
    );
    let r = client.get(format!("{base}/trap")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The platform's principal reaches plugins: a session route sees the signed-in user only when
/// the user is granted the application, a bearer route sees the client holding the route's
/// scopes, unsafe session requests need the same origin, and refusals are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_routes_see_the_platform_principal_and_its_grants() {
    use super::auth::{admin, ok, password_login};
    use serde_json::Value;

    const PASSWORD: &str = "Ty-Kreiz-Kemper-29!";
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let probe = fetch_into(&data, "probe");
    std::fs::write(
        data.join("plugins.toml"),
        plugins_toml(&[("probe", &probe, "\"context\", \"store\", \"logging\"")]),
    )
    .unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let pw = pw.to_str().unwrap();
    for (user, kind, national_id) in [
        ("alegoff", "professional", Some("810001234567")),
        ("secretariat", "staff", None),
    ] {
        let mut args = vec![
            "user",
            "add",
            "--username",
            user,
            "--kind",
            kind,
            "--name",
            user,
            "--password-file",
            pw,
        ];
        if let Some(n) = national_id {
            args.extend(["--national-id", n]);
        } else {
            args.extend(["--organisation", "350000139"]);
        }
        ok(admin(&data, &args));
    }
    ok(admin(
        &data,
        &[
            "grant",
            "add",
            "--application",
            "probe",
            "--individual",
            "810001234567",
        ],
    ));
    for (client, scope) in [
        ("sys-probe", "probe.read"),
        ("sys-other", "system/Patient.rs"),
    ] {
        let secret = tmp.path().join(client);
        std::fs::write(&secret, format!("{client}-secret-0123456789abcdef0123\n")).unwrap();
        ok(admin(
            &data,
            &[
                "client",
                "add",
                "--id",
                client,
                "--secret-file",
                secret.to_str().unwrap(),
                "--grant",
                "client_credentials",
                "--scope",
                scope,
            ],
        ));
    }
    let mut s = server().data_dir(&data).start().await;
    let _ = s.client();
    let http = s.no_redirect_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(s.url("/apps/probe/hello"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(
            Instant::now() < deadline,
            "probe never loaded:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let whoami = |path: &'static str, header: Option<(&'static str, String)>| {
        let mut r = http.get(s.url(path));
        if let Some((k, v)) = header {
            r = r.header(k, v);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // A granted user on a session route: the plugin sees who, from the directory.
    let anne = password_login(&http, &s, "alegoff", PASSWORD).await;
    let (status, me) = whoami("/apps/probe/private/whoami", Some(("cookie", anne.clone()))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["national_id"], "810001234567");
    assert!(!me["subject"].as_str().unwrap().is_empty());
    // The same user on a public route is known too (granted), with no credential forwarded.
    let (_, me) = whoami("/apps/probe/whoami", Some(("cookie", anne.clone()))).await;
    assert_eq!(me["kind"], "user");
    // Without a session: 401; a user without a grant: 403 (and the plugin never learns who).
    assert_eq!(whoami("/apps/probe/private/whoami", None).await.0, 401);
    let staff = password_login(&http, &s, "secretariat", PASSWORD).await;
    let (status, problem) = whoami(
        "/apps/probe/private/whoami",
        Some(("cookie", staff.clone())),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert!(problem.to_string().contains("probe"), "{problem}");
    let (_, me) = whoami("/apps/probe/whoami", Some(("cookie", staff.clone()))).await;
    assert_eq!(me["kind"], "anonymous");

    // Unsafe session requests: only from the platform's own origin.
    let post = |origin: Option<String>| {
        let mut r = http
            .post(s.url("/apps/probe/private/hello"))
            .header("cookie", anne.clone());
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        async move { r.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 403);
    assert_eq!(post(Some("https://evil.example".into())).await, 403);
    let origin = s.url("/").trim_end_matches('/').to_string();
    assert_eq!(post(Some(origin)).await, 200);

    // Bearer routes: a client holding the route's scope; not one holding another scope.
    let token = |client: &'static str| {
        let secret = format!("{client}-secret-0123456789abcdef0123");
        let r = http
            .post(s.url("/oauth2/token"))
            .basic_auth(client, Some(secret))
            .form(&[("grant_type", "client_credentials")]);
        async move {
            let body: Value = r.send().await.unwrap().json().await.unwrap();
            body["access_token"]
                .as_str()
                .expect("access token")
                .to_string()
        }
    };
    let bearer = format!("Bearer {}", token("sys-probe").await);
    let (status, me) = whoami(
        "/apps/probe/api/whoami",
        Some(("authorization", bearer.clone())),
    )
    .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["kind"], "system");
    assert_eq!(me["subject"], "sys-probe");
    assert_eq!(me["roles"], serde_json::json!(["probe.read"]));
    // A bearer token is not a session.
    assert_eq!(
        whoami(
            "/apps/probe/private/whoami",
            Some(("authorization", bearer))
        )
        .await
        .0,
        401
    );
    let other = format!("Bearer {}", token("sys-other").await);
    let (status, problem) = whoami("/apps/probe/api/whoami", Some(("authorization", other))).await;
    assert_eq!(status, 403);
    assert!(problem.to_string().contains("probe.read"), "{problem}");
    assert_eq!(
        whoami(
            "/apps/probe/api/whoami",
            Some(("authorization", "Bearer forged".into()))
        )
        .await
        .0,
        401
    );

    // Both refusals of known callers are in the audit trail.
    let db = megalis_store::Database::open(
        &megalis_store::Database::default_url(&data),
        &megalis_store::PoolSettings::default(),
    )
    .unwrap();
    let denials: Vec<String> = match &db {
        megalis_store::Database::Sqlite(pool) => sqlx::query_scalar(
            "SELECT actor_subject FROM audit_record \
             WHERE action = 'application.use' AND outcome = 'denied' AND object_id = 'probe'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        megalis_store::Database::Postgres(_) => unreachable!("the default database is SQLite"),
    };
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert!(denials.contains(&"sys-other".to_string()), "{denials:?}");
}

/// A plugin reaches patients only under the core's own access decision, with the caller's
/// rights: the identity look-up needs a health professional signed in with a second factor,
/// the patient's records need the care team; each answer is in the patient's access log, with
/// the decision's reason. Installed under the demo application `messagerie` (granted to
/// everyone in the demo region).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_reach_patients_under_the_core_access_decision() {
    use megalis_store::{Database, PoolSettings, with_pool};
    use serde_json::Value;

    use super::auth::csrf_field;
    use super::patients::{Session, demo_server};

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let records = fetch_into(&data, "records");
    std::fs::write(
        data.join("plugins.toml"),
        plugins_toml(&[(
            "messagerie",
            &records,
            "\"context\", \"identity\", \"directory\", \"events\", \"consent\", \"blobs\", \"logging\"",
        )]),
    )
    .unwrap();
    // A directory extract, so the plugin's directory look-up has professionals to find.
    let extract = super::directory::generate(tmp.path(), "rpps.txt", 20, 7);
    let o = super::directory::import(&data, None, &extract);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = demo_server(&data, None).await;
    let db = Database::open(&Database::default_url(&data), &PoolSettings::default()).unwrap();
    let patient: String = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
        "SELECT regional_id FROM identity_patient WHERE merged_into IS NULL ORDER BY seq LIMIT 1")
        .fetch_one(pool).await)
    .unwrap();
    let http = s.no_redirect_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http
        .get(s.url("/apps/messagerie/public/patient/x"))
        .send()
        .await
        .unwrap()
        .status()
        == 404
    {
        assert!(
            Instant::now() < deadline,
            "plugin never loaded:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let get = |session: Option<&Session>, path: String| {
        let mut r = http.get(s.url(&path));
        if let Some(session) = session {
            r = r.header("cookie", session.cookie.clone());
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };

    // Anonymous, on the plugin's public route: no patient.
    let (status, body) = get(None, format!("/apps/messagerie/public/patient/{patient}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Authentification requise"), "{body}");

    // A doctor without a second factor: refused, whatever the plugin asks.
    let doctor = Session::sign_in(&s, ("alegoff", "Demo-Docteur-Rennes-29!")).await;
    let (status, body) = get(Some(&doctor), format!("/apps/messagerie/patient/{patient}")).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("second facteur"), "{body}");
    // Nor can it tell whether a hospital's local id is known: refused before the look-up.
    let resolve = "/apps/messagerie/resolve?system=1.2.250.1.999.9&value=NO-SUCH-IPP";
    let (status, body) = get(Some(&doctor), resolve.into()).await;
    assert_eq!(status, 403, "{body}");

    // With a second factor: the identity look-up of a health professional is allowed…
    doctor.add_second_factor().await;
    let (status, body) = get(Some(&doctor), format!("/apps/messagerie/patient/{patient}")).await;
    assert_eq!(status, 200, "{body}");
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["id"], patient.as_str());
    let (status, body) = get(Some(&doctor), resolve.into()).await;
    assert_eq!((status, body.as_str()), (200, r#"{"id":null}"#));
    assert!(!found["family"].as_str().unwrap().is_empty());
    // …but the patient's records need the care team.
    let (_, body) = get(Some(&doctor), format!("/apps/messagerie/consent/{patient}")).await;
    let decision: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(decision["allowed"], false, "{decision}");
    assert!(
        decision["reason"]
            .as_str()
            .unwrap()
            .contains("équipe de soins")
    );
    let publish = |session: &Session, query: String| {
        http.post(s.url(&format!("/apps/messagerie/events/note.added{query}")))
            .header("cookie", session.cookie.clone())
            .header("origin", s.url(""))
            .header("content-type", "application/json")
            .body(r#"{"note":"suivi"}"#)
            .send()
    };
    let r = publish(&doctor, format!("?patient={patient}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The doctor declares the care relationship in the portal: the plugin now reaches them too.
    let page = doctor.page(&format!("/patients/{patient}/sharing")).await;
    let csrf = csrf_field(&page);
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
    let (_, body) = get(Some(&doctor), format!("/apps/messagerie/consent/{patient}")).await;
    let decision: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(decision["allowed"], true, "{decision}");
    let r = publish(&doctor, format!("?patient={patient}"))
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, body) = get(
        Some(&doctor),
        "/apps/messagerie/events?topic=plugin.messagerie.note.added".into(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let events: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(events.len(), 1, "{body}");
    assert_eq!(events[0]["patient"], patient.as_str());

    // A secretary (staff, not a health professional) sees none of it, events included.
    let secretary =
        Session::sign_in(&s, ("secretariat.rennes", "Demo-Secretariat-Rennes-35!")).await;
    let (status, body) = get(
        Some(&secretary),
        format!("/apps/messagerie/patient/{patient}"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (_, body) = get(
        Some(&secretary),
        "/apps/messagerie/events?topic=plugin.messagerie.note.added".into(),
    )
    .await;
    assert_eq!(body, "[]");

    // The directory answers from the RPPS extract (public information), active ones only.
    let (national_id, family): (String, String) = with_pool!(&db, pool =>
        megalis_store::sqlx::query_as(
            "SELECT national_id, family_name FROM dir_practitioner WHERE active \
             ORDER BY national_id LIMIT 1")
        .fetch_one(pool).await)
    .unwrap();
    let (status, body) = get(
        Some(&secretary),
        format!("/apps/messagerie/practitioner/{national_id}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["family"], family.as_str());
    let (status, _) = get(
        Some(&doctor),
        "/apps/messagerie/practitioner/899999999999".into(),
    )
    .await;
    assert_eq!(status, 404);

    // The patient the portal links with is the plugin's patient in context; a malformed id is
    // none.
    let (_, body) = get(
        Some(&doctor),
        format!("/apps/messagerie/context?lang=fr&patient={patient}"),
    )
    .await;
    assert_eq!(body, format!(r#"{{"patient":"{patient}"}}"#));
    let (_, body) = get(
        Some(&doctor),
        "/apps/messagerie/context?patient=BZH1".into(),
    )
    .await;
    assert_eq!(body, r#"{"patient":null}"#);

    // An HTML fragment is shown inside the portal shell, titled by the plugin; a whole
    // document is sent as the plugin wrote it.
    // (The application's root, where the launcher's tile points, is the plugin's too.)
    let r = http
        .get(s.url(&format!("/apps/messagerie/?patient={patient}")))
        .header("cookie", doctor.cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-megalis-title").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("<header class=\"banner\">"), "{page}");
    assert!(
        page.contains("<title>Dossiers partagés — Megalis</title>"),
        "{page}"
    );
    assert!(page.contains("<h1 id=\"records-title\">"), "{page}");
    assert!(
        page.contains("action=\"/logout\""),
        "the signed-in user's bar: {page}"
    );
    let (_, alone) = get(Some(&doctor), "/apps/messagerie/document".into()).await;
    // The patient's page offers the applications installed here, for this patient.
    let page = doctor.page(&format!("/patients/{patient}")).await;
    assert!(
        page.contains(&format!("href=\"/apps/messagerie/?patient={patient}\"")),
        "{page}"
    );
    assert!(
        alone.starts_with("<!DOCTYPE html>") && !alone.contains("banner"),
        "{alone}"
    );

    // The refusal before the look-up is audited too, without a patient.
    let refused_lookups: i64 = with_pool!(&db, pool => megalis_store::sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_record WHERE action = 'plugin.patient.resolve' \
         AND outcome = 'denied' AND patient_id IS NULL AND detail LIKE '%second-factor-required%'")
        .fetch_one(pool).await)
    .unwrap();
    assert_eq!(refused_lookups, 1);

    // Every answer about the patient is in their access log, with the decision's reason.
    let rows: Vec<(String, String, Option<String>)> = with_pool!(&db, pool =>
        megalis_store::sqlx::query_as(
            "SELECT action, outcome, detail FROM audit_record \
             WHERE patient_id = $1 AND action LIKE 'plugin.%' ORDER BY seq")
        .bind(&patient).fetch_all(pool).await)
    .unwrap();
    let reasons: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(a, o, d)| {
            let d = d.as_deref().unwrap_or("");
            (
                a.as_str(),
                o.as_str(),
                d.split("reason=").nth(1).unwrap_or(""),
            )
        })
        .collect();
    for expected in [
        ("plugin.patient.read", "denied", "not-authenticated"),
        ("plugin.patient.read", "denied", "second-factor-required"),
        ("plugin.patient.read", "success", "identity-lookup"),
        ("plugin.consent-check.read", "denied", "not-in-care-team"),
        ("plugin.event.write", "denied", "not-in-care-team"),
        ("plugin.consent-check.read", "success", "care-team"),
        ("plugin.event.write", "success", "care-team"),
        ("plugin.event.read", "success", "care-team"),
    ] {
        assert!(
            reasons.contains(&expected),
            "{expected:?} not in {reasons:?}"
        );
    }
}
