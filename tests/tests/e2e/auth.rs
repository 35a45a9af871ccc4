//! Accounts, single sign-on and the portal, end to end (issue 3): the admin CLI on the server's
//! own data directory, a real OpenID Connect relying party (Python Authlib, via
//! `$MEGALIS_PYTHON`), CSRF and redirect checks with raw HTTP, and a real browser (headless
//! Chromium driven over WebDriver by Selenium) logging in through to the launcher.

use std::path::{Path, PathBuf};
use std::process::Command;

use megalis_e2e::{Server, megalis, server, stderr, stdout};
use serde_json::Value;

const PASSWORD: &str = "Ty-Kreiz-Kemper-29!";
const SECRET: &str = "rein-secret-0123456789abcdef0123456789";
const SYSTEM_SECRET: &str = "sih-secret-0123456789abcdef0123456789";
const REDIRECT: &str = "https://rein.example/callback";

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").expect(
        "MEGALIS_PYTHON is not set: create a venv with `pip install -r tests/requirements.txt` \
         and export MEGALIS_PYTHON=/path/to/venv/bin/python (scripts/test.sh does this)",
    )
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e/python")
        .join(name)
}

pub fn admin(data: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "--mode",
        "test",
        "admin",
    ];
    all.extend_from_slice(args);
    megalis(&all, &[])
}

pub fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Accounts, clients and grants made with the CLI before the server starts.
fn provision(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let secret_file = |name: &str, value: &str| {
        let p = data.with_extension(name);
        std::fs::write(&p, format!("{value}\n")).unwrap();
        p.to_str().unwrap().to_string()
    };
    let pw = secret_file("pw", PASSWORD);
    ok(admin(
        data,
        &[
            "user",
            "add",
            "--username",
            "alegoff",
            "--kind",
            "professional",
            "--name",
            "Dr Anne Le Goff",
            "--national-id",
            "810001234567",
            "--role",
            "clinician",
            "--password-file",
            &pw,
        ],
    ));
    ok(admin(
        data,
        &[
            "user",
            "add",
            "--username",
            "root",
            "--kind",
            "admin",
            "--name",
            "Admin",
            "--password-file",
            &pw,
        ],
    ));
    let s = secret_file("secret", SECRET);
    ok(admin(
        data,
        &[
            "client",
            "add",
            "--id",
            "breizh-rein",
            "--secret-file",
            &s,
            "--grant",
            "authorization_code",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid profile",
            "--launch-url",
            "https://rein.example/",
        ],
    ));
    let s = secret_file("system-secret", SYSTEM_SECRET);
    ok(admin(
        data,
        &[
            "client",
            "add",
            "--id",
            "sih-chu",
            "--secret-file",
            &s,
            "--grant",
            "client_credentials",
            "--scope",
            "system/Patient.rs",
        ],
    ));
    ok(admin(
        data,
        &[
            "grant",
            "add",
            "--application",
            "breizh-rein",
            "--profession",
            "10",
        ],
    ));
}

async fn provisioned_server() -> (tempfile::TempDir, Server) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    provision(&data);
    let s = server().data_dir(&data).start().await;
    (tmp, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_cli_validates_and_audits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    provision(&data);
    // A weak password is refused with the policy's reason.
    let weak = data.with_extension("weak");
    std::fs::write(&weak, "short\n").unwrap();
    let o = admin(
        &data,
        &[
            "user",
            "add",
            "--username",
            "x",
            "--kind",
            "admin",
            "--name",
            "X",
            "--password-file",
            weak.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("12"), "{}", stderr(&o));
    // A short client secret is refused.
    let o = admin(
        &data,
        &[
            "client",
            "add",
            "--id",
            "c",
            "--secret-file",
            weak.to_str().unwrap(),
            "--grant",
            "client_credentials",
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("32"),
        "{}",
        stderr(&o)
    );
    // An individual grant given by user name is stored with the person's national id.
    ok(admin(
        &data,
        &[
            "grant",
            "add",
            "--application",
            "breizh-rein",
            "--individual",
            "alegoff",
        ],
    ));
    let list = ok(admin(&data, &["grant", "list"]));
    assert!(list.contains("breizh-rein\tprofession\t10"), "{list}");
    assert!(
        list.contains("breizh-rein\tindividual\t810001234567"),
        "{list}"
    );
    // The hospital system may feed its own identifier domain (URN or bare OID), nothing else;
    // a malformed OID is refused with the expected form, and leaves no client behind.
    ok(admin(
        &data,
        &[
            "client",
            "authority",
            "add",
            "--id",
            "sih-chu",
            "--authority",
            "urn:oid:1.2.250.1.71.4.2.1.350000139",
        ],
    ));
    let o = admin(
        &data,
        &[
            "client",
            "authority",
            "add",
            "--id",
            "sih-chu",
            "--authority",
            "CHU-Rennes",
        ],
    );
    assert!(
        !o.status.success() && stderr(&o).contains("1.2.250.1.71.4.2.1"),
        "{}",
        stderr(&o)
    );
    let o = admin(
        &data,
        &[
            "client",
            "add",
            "--id",
            "half",
            "--secret-file",
            &data.with_extension("secret").to_string_lossy(),
            "--grant",
            "client_credentials",
            "--authority",
            "1..2",
        ],
    );
    assert!(!o.status.success(), "{}", stdout(&o));
    let o = admin(&data, &["client", "authority", "list", "--id", "half"]);
    assert!(!o.status.success(), "a refused client is not registered");
    assert_eq!(
        ok(admin(
            &data,
            &["client", "authority", "list", "--id", "sih-chu"]
        ))
        .trim(),
        "1.2.250.1.71.4.2.1.350000139"
    );
    ok(admin(&data, &["user", "disable", "--username", "alegoff"]));
    assert!(
        ok(admin(&data, &["user", "list"]))
            .contains("alegoff\tprofessional\t810001234567\t\t-\tdisabled")
    );
    ok(admin(
        &data,
        &[
            "grant",
            "remove",
            "--application",
            "breizh-rein",
            "--profession",
            "10",
        ],
    ));
    // Every change (and the refusals) is in an intact audit chain.
    let o = megalis(
        &["--data-dir", data.to_str().unwrap(), "audit", "verify"],
        &[],
    );
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let db = megalis_store::Database::open(
        &megalis_store::Database::default_url(&data),
        &megalis_store::PoolSettings::default(),
    )
    .unwrap();
    let actions: Vec<String> = match &db {
        megalis_store::Database::Sqlite(pool) => {
            sqlx::query_scalar("SELECT action || ':' || outcome FROM audit_record ORDER BY seq")
                .fetch_all(pool)
                .await
                .unwrap()
        }
        megalis_store::Database::Postgres(_) => unreachable!("the default database is SQLite"),
    };
    for expected in [
        "admin.user.add:success",
        "admin.client.add:success",
        "admin.grant.add:success",
        "admin.client.authority.add:success",
        "admin.failed:failure",
        "admin.user.disable:success",
        "admin.grant.remove:success",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_relying_party_completes_the_flows() {
    let (_tmp, s) = provisioned_server().await;
    // The issuer is the public URL (by default https://<listen>), not the harness's localhost.
    let base = format!("https://{}", s.https);
    let out = Command::new(python())
        .arg(script("oidc_client.py"))
        .args([
            &base,
            s.cert_path().to_str().unwrap(),
            "alegoff",
            PASSWORD,
            "breizh-rein",
            SECRET,
            REDIRECT,
            "sih-chu",
            SYSTEM_SECRET,
        ])
        .output()
        .expect("run the Authlib client");
    assert!(
        out.status.success(),
        "Authlib client failed:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["id_token"]["national_id"], "810001234567");
    assert_eq!(v["id_token"]["profession"], "10");
    assert_eq!(v["access_token"]["typ"], "at+jwt");
    assert_eq!(v["access_token"]["aud"], base.as_str());
    assert_eq!(v["userinfo"]["national_id"], "810001234567");
    assert_eq!(v["userinfo"]["roles"], serde_json::json!(["clinician"]));
    assert_eq!(v["refresh_reuse"]["status"], 400);
    assert_eq!(v["refresh_reuse"]["error"], "invalid_grant");
    assert_eq!(v["after_reuse_active"], false);
    assert_eq!(v["system_scope"], "system/Patient.rs");
    assert_eq!(v["system_active"], true);
    assert_eq!(v["system_active_after_revoke"], false);
}

/// The value of a cookie set by a response.
pub fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()
                .and_then(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
}

pub fn csrf_field(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// Signs in through the login form (with its CSRF double submit); returns the `cookie` header
/// value of the session. `http` must not follow redirects.
pub async fn password_login(
    http: &reqwest::Client,
    s: &Server,
    user: &str,
    password: &str,
) -> String {
    let page = http.get(s.url("/login")).send().await.unwrap();
    let login_cookie = set_cookie(&page, "__Host-megalis-login-csrf").unwrap();
    let token = csrf_field(&page.text().await.unwrap());
    let r = http
        .post(s.url("/login"))
        .header(
            "cookie",
            format!("__Host-megalis-login-csrf={login_cookie}"),
        )
        .form(&[
            ("csrf", token.as_str()),
            ("username", user),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "login of {user}");
    let session = set_cookie(&r, "__Host-megalis-session").expect("session cookie");
    format!("__Host-megalis-session={session}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_need_csrf_and_redirects_are_exact() {
    let (_tmp, mut s) = provisioned_server().await;
    let http = s.no_redirect_client();
    let _ = s.client();
    // Login without the CSRF token: refused.
    let r = http
        .post(s.url("/login"))
        .form(&[("username", "alegoff"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // With the double-submit token: a session cookie with the right attributes.
    let page = http.get(s.url("/login")).send().await.unwrap();
    let login_cookie = set_cookie(&page, "__Host-megalis-login-csrf").unwrap();
    let token = csrf_field(&page.text().await.unwrap());
    // A wrong password gives the same page and message as an unknown account.
    let mut answers = vec![];
    for user in ["alegoff", "nobody-here"] {
        let r = http
            .post(s.url("/login"))
            .header(
                "cookie",
                format!("__Host-megalis-login-csrf={login_cookie}"),
            )
            .form(&[
                ("csrf", token.as_str()),
                ("username", user),
                ("password", "Wrong-Pass-word-1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        answers.push(body[body.find("role=\"alert\"").unwrap()..][..120].to_string());
    }
    assert_eq!(answers[0], answers[1], "no account enumeration");
    let r = http
        .post(s.url("/login"))
        .header(
            "cookie",
            format!("__Host-megalis-login-csrf={login_cookie}"),
        )
        .form(&[
            ("csrf", token.as_str()),
            ("username", "alegoff"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = set_cookie(&r, "__Host-megalis-session").expect("session cookie");
    let cookie = format!("__Host-megalis-session={session}");
    // Logout without the session's CSRF token: refused; the session lives on.
    let r = http
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let home = http
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let home = home.text().await.unwrap();
    assert!(
        home.contains("data-app=\"breizh-rein\""),
        "launcher shows the granted app"
    );
    // Authorization requests: wrong redirect URI → error page, never a redirect.
    let authorize = |redirect: &str, pkce: bool| {
        let mut u = url_with(
            &s.url("/oauth2/authorize"),
            &[
                ("client_id", "breizh-rein"),
                ("redirect_uri", redirect),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "s1"),
            ],
        );
        if pkce {
            u.push_str("&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256");
        }
        u
    };
    let r = http
        .get(authorize("https://rein.example/callback/../evil", true))
        .header("cookie", &cookie)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    // Missing PKCE → back to the client with invalid_request.
    let r = http
        .get(authorize(REDIRECT, false))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(REDIRECT) && location.contains("error=invalid_request"),
        "{location}"
    );
    // An application not granted: 403 and an audit record.
    let r = http
        .get(s.url("/apps/imagerie/"))
        .header("cookie", &cookie)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // A bearer token that does not validate is a 401 with an RFC 6750 challenge.
    let r = http
        .get(s.url("/oauth2/userinfo"))
        .bearer_auth("eyJhbGciOiJub25lIn0.e30.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    // Token endpoint errors are RFC 6749 bodies.
    let r = http
        .post(s.url("/oauth2/token"))
        .basic_auth("breizh-rein", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "forged"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let r = http
        .post(s.url("/oauth2/token"))
        .basic_auth("breizh-rein", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    // Logout with the token ends the session.
    let token = csrf_field(&home);
    let r = http
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = http
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "session ended");
}

fn url_with(base: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("{base}?{}", query.join("&"))
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs one of the Selenium scripts against the server as `user` (password [`PASSWORD`]);
/// returns the JSON summary it prints, or fails with its output and the server's log.
fn run_browser_script(s: &Server, name: &str, user: &str) -> Value {
    let out = Command::new(python())
        .arg(script(name))
        .args([&format!("https://{}", s.https), user, PASSWORD])
        .output()
        .expect("run the browser test");
    assert!(
        out.status.success(),
        "browser test {name} failed:\n{}{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_logs_in_to_the_launcher() {
    let (_tmp, s) = provisioned_server().await;
    let v = run_browser_script(&s, "browser_login.py", "alegoff");
    assert_eq!(v["lang"], "fr");
    assert_eq!(v["tiles"], serde_json::json!(["breizh-rein"]));
    assert_eq!(v["cps_button"], false, "no card listener, no card button");
    // TOTP enrolment in the browser, then a sign-in that needs the code.
    assert_eq!(v["recovery_codes"], 10);
    assert_eq!(v["profile_after_logout"], true);
    assert_eq!(v["refused_without_code"], true);
    assert_eq!(v["tiles_after_totp"], serde_json::json!(["breizh-rein"]));
}

/// The administration pages driven in Chromium: refused until the administrator signs in with a
/// second factor (enrolled on the profile page), then account creation, a grant that puts the
/// application in the new user's launcher, disabling the account, removing the grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_administers_accounts_and_grants() {
    let (_tmp, s) = provisioned_server().await;
    let v = run_browser_script(&s, "browser_admin.py", "root");
    assert_eq!(v["refused_without_second_factor"], true, "{v}");
    assert_eq!(v["problems"], serde_json::json!([]), "accessibility: {v}");
    assert_eq!(v["account_listed"], true, "{v}");
    assert_eq!(v["grant_listed"], true, "{v}");
    assert_eq!(
        v["new_user_tiles"],
        serde_json::json!(["breizh-rein"]),
        "{v}"
    );
    assert_eq!(v["new_user_admin_refused"], true, "{v}");
    assert_eq!(v["grant_after_removal"], false, "{v}");
    assert_eq!(v["disabled_login_alert"], true, "{v}");
    assert_eq!(v["disabled_user_has_launcher"], false, "{v}");
}

/// A practitioner closed by a directory import loses access at once: the portal session ends on
/// the next request and their access tokens are refused (the revocation list polls closures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_closure_ends_sessions_and_tokens() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    provision(&data);
    // A synthetic extraction; take its first practitioner and give them an account.
    let file = tmp.path().join("annuaire.txt");
    let file_s = file.to_str().unwrap();
    ok(megalis(
        &[
            "directory",
            "generate",
            "--rows",
            "40",
            "--seed",
            "7",
            "--output",
            file_s,
        ],
        &[],
    ));
    let text = std::fs::read_to_string(&file).unwrap();
    let nid = text
        .lines()
        .nth(1)
        .unwrap()
        .split('|')
        .nth(2)
        .unwrap()
        .to_string();
    let d = data.to_str().unwrap();
    ok(megalis(
        &["--data-dir", d, "directory", "import", file_s],
        &[],
    ));
    let pw = data.with_extension("pw");
    ok(admin(
        &data,
        &[
            "user",
            "add",
            "--username",
            "closed.soon",
            "--kind",
            "professional",
            "--name",
            "Closed Soon",
            "--national-id",
            &nid,
            "--password-file",
            pw.to_str().unwrap(),
        ],
    ));
    ok(admin(
        &data,
        &[
            "grant",
            "add",
            "--application",
            "breizh-rein",
            "--individual",
            &nid,
        ],
    ));
    let s = server().data_dir(&data).start().await;
    let http = s.no_redirect_client();
    // Portal login.
    let page = http.get(s.url("/login")).send().await.unwrap();
    let login_cookie = set_cookie(&page, "__Host-megalis-login-csrf").unwrap();
    let token = csrf_field(&page.text().await.unwrap());
    let r = http
        .post(s.url("/login"))
        .header(
            "cookie",
            format!("__Host-megalis-login-csrf={login_cookie}"),
        )
        .form(&[
            ("csrf", token.as_str()),
            ("username", "closed.soon"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", s.log());
    let cookie = format!(
        "__Host-megalis-session={}",
        set_cookie(&r, "__Host-megalis-session").unwrap()
    );
    // Single sign-on to the application: code + PKCE, then an access token.
    let verifier = "dBjftJeZ4CVP-mB0unH4WUnVbG7TlNTq5wL8HsqmEIw";
    let challenge = "xdaQoELc2tUt_2hV50NTkMy6UXPJEFyFLMHxrEWZ6Cw";
    let r = http
        .get(url_with(
            &s.url("/oauth2/authorize"),
            &[
                ("client_id", "breizh-rein"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
            ],
        ))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let code = location
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap_or_else(|| panic!("no code in {location}"))
        .to_string();
    let tokens: Value = http
        .post(s.url("/oauth2/token"))
        .basic_auth("breizh-rein", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let userinfo = |http: reqwest::Client, url: String, access: String| async move {
        http.get(url)
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        userinfo(http.clone(), s.url("/oauth2/userinfo"), access.clone()).await,
        200
    );
    // The next import no longer lists them: closed (and audited by the directory).
    let without: String = text
        .lines()
        .filter(|l| l.split('|').nth(2) != Some(nid.as_str()))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&file, without).unwrap();
    ok(megalis(
        &[
            "--data-dir",
            d,
            "directory",
            "import",
            "--allow-mass-closure",
            file_s,
        ],
        &[],
    ));
    // The portal session is refused on the next request (the directory is asked every time).
    let r = http
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a closed practitioner's session must end");
    // Tokens: every replica reads closures once a second; wait for it, never for long.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = userinfo(http.clone(), s.url("/oauth2/userinfo"), access.clone()).await;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "token still accepted: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
