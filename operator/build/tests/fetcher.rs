//! The init container's fetch script, run for real with the local `sh`, `wget` and `sha256sum`
//! against a small HTTP server: a module lands under its digest only if its bytes match.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use megalis_operator_build::{ManagedKind, build};

/// Serves `body` for every request and counts the requests.
fn serve(body: &'static [u8]) -> (String, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/module.wasm", listener.local_addr().unwrap());
    let hits = Arc::new(Mutex::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            *counter.lock().unwrap() += 1;
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/wasm\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    (url, hits)
}

fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()[..64].to_owned()
}

/// The script and its fixed leading arguments, taken from the rendered Deployment.
fn fetch_script() -> (String, String) {
    let (platform, plugins) = common::bretagne();
    let state = build(&platform, &plugins).unwrap();
    let deployment =
        serde_json::to_value(state.find(ManagedKind::Deployment, "bretagne").unwrap()).unwrap();
    let init = &deployment["spec"]["template"]["spec"]["initContainers"][0];
    assert_eq!(init["command"], serde_json::json!(["sh", "-c"]));
    let args = init["args"].as_array().unwrap();
    assert_eq!(
        args.len(),
        3 + 2 * 4,
        "script, $0, directory, then digest and URL per plugin"
    );
    assert_eq!(args[2], "/var/lib/megalis/plugins");
    (
        args[0].as_str().unwrap().to_owned(),
        args[1].as_str().unwrap().to_owned(),
    )
}

fn run(dir: &std::path::Path, pairs: &[(&str, &str)]) -> std::process::Output {
    let (script, zero) = fetch_script();
    let mut command = Command::new("sh");
    command.arg("-c").arg(script).arg(zero).arg(dir);
    for (sha, url) in pairs {
        command.arg(sha).arg(url);
    }
    command.output().unwrap()
}

const MODULE: &[u8] = b"\0asm\x01\0\0\0 a megalis plugin";

#[test]
fn a_matching_module_lands_under_its_digest() {
    let (url, hits) = serve(MODULE);
    let dir = tempfile::tempdir().unwrap();
    let digest = sha256(MODULE);
    let output = run(dir.path(), &[(&digest, &url)]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join(format!("{digest}.wasm"))).unwrap(),
        MODULE
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial file left"
    );

    // A restarted pod with the module already on the volume downloads nothing.
    let again = run(dir.path(), &[(&digest, &url)]);
    assert!(again.status.success());
    assert_eq!(*hits.lock().unwrap(), 1);
}

#[test]
fn a_tampered_module_is_refused_and_the_pod_does_not_start() {
    let (url, _) = serve(b"\0asm\x01\0\0\0 something else");
    let dir = tempfile::tempdir().unwrap();
    let digest = sha256(MODULE);
    let output = run(dir.path(), &[(&digest, &url)]);
    assert!(!output.status.success(), "the init container must fail");
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not match sha256"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing kept"
    );
}

#[test]
fn a_url_cannot_inject_shell() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("injected");
    let hostile = format!(
        "https://x.invalid/$(touch {})`touch {}`;touch {}",
        marker.display(),
        marker.display(),
        marker.display()
    );
    let output = run(dir.path(), &[(&"0".repeat(64), &hostile)]);
    assert!(!output.status.success());
    assert!(!marker.exists(), "the URL was executed by the shell");
}
