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
fn fetch_into(data_dir: &Path, name: &str) -> String {
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

fn plugins_toml(entries: &[(&str, &str, &str)]) -> String {
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
        "import   megalis:platform/store@0.1.0  (capability store)",
        "export   wasi:http/incoming-handler@0.2",
        "route    /api (bearer(probe.read))",
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
    // The probe has no /private/whoami route but the local runner authenticates the session
    // route as the developer: 404 from the plugin itself, not 401 from the host.
    assert_eq!(whoami.status(), 404);
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
