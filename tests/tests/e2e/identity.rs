//! The patient identity feed of `megalis serve`, driven by a third-party HL7 client
//! (python-hl7's `MLLPClient`, PyPI `hl7`, via `$MEGALIS_PYTHON`).

use megalis_e2e::server;

const RENNES: &str = "1.2.250.1.71.4.2.2.350005179";

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").expect(
        "MEGALIS_PYTHON is not set: create a venv with `pip install -r tests/requirements.txt` \
         and export MEGALIS_PYTHON=/path/to/venv/bin/python (scripts/test.sh does this)",
    )
}

#[tokio::test]
async fn hl7_feed_with_python_hl7_client() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("mllp-senders.toml"),
        format!("\"DXCARE|CHU_RENNES\" = [\"{RENNES}\"]\n"),
    )
    .unwrap();
    let s = server().data_dir(&data).start().await;

    // An INS with a correct key (97 − n mod 97).
    let number: u64 = 2_690_229_019_123;
    let ins = format!("{number}{:02}", 97 - number % 97);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/python/mllp_feed.py");
    let out = tokio::process::Command::new(&python)
        .args([
            script,
            "127.0.0.1",
            &s.mllp.port().to_string(),
            RENNES,
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
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msa = |k: &str| r[k]["msa"].as_str().unwrap().to_string();
    let err = |k: &str| r[k]["err"].as_str().unwrap_or("").to_string();
    assert_eq!(msa("first"), "MSA|AA|E2E-1");
    assert_eq!(
        r["redelivered"], r["first"],
        "the stored acknowledgement comes back"
    );
    assert!(msa("junk").starts_with("MSA|AR"), "{r}");
    assert_eq!(msa("wrong_key"), "MSA|AE|E2E-2");
    assert!(err("wrong_key").starts_with("ERR||PID^1^3|102"), "{r}");
    assert_eq!(msa("a40_unknown"), "MSA|AE|E2E-3");
    assert!(err("a40_unknown").starts_with("ERR||MRG^1^1|204"), "{r}");
    assert_eq!(msa("after"), "MSA|AA|E2E-4", "the connection stayed usable");
}

/// One HL7 message over TLS with `openssl s_client` (a third-party TLS client), presenting
/// `cert` when given; the acknowledgement's text, empty when the connection was refused.
fn mllp_over_tls(
    port: u16,
    ca: &std::path::Path,
    cert: Option<(&std::path::Path, &std::path::Path)>,
    message: &str,
) -> String {
    use std::io::Write;
    // -quiet alone would imply -ign_eof (never exit); `timeout` bounds a stuck handshake.
    let mut cmd = std::process::Command::new("timeout");
    cmd.args([
        "10",
        "openssl",
        "s_client",
        "-quiet",
        "-no_ign_eof",
        "-verify_return_error",
        "-connect",
    ])
    .arg(format!("127.0.0.1:{port}"))
    .arg("-CAfile")
    .arg(ca)
    .args(["-servername", "localhost"]);
    if let Some((c, k)) = cert {
        cmd.arg("-cert").arg(c).arg("-key").arg(k);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("\x0b{message}\x1c\r").as_bytes())
        .unwrap();
    // Keep stdin open long enough for the answer, then close (s_client exits on EOF).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim_matches(|c| c == '\x0b' || c == '\x1c' || c == '\r' || c == '\n')
        .to_string()
}

fn a28(control: &str, authority: &str, ipp: &str) -> String {
    format!(
        "MSH|^~\\&|CROSSWAY|CH_VANNES|MEGALIS|ARS_BZH|20261126120000||ADT^A28^ADT_A05|{control}|P|2.5\r\
         EVN||20261126120000\r\
         PID|||{ipp}^^^CHBA&{authority}&ISO^PI||LE BIHAN^YANN^^^^^L||19770322|M\r"
    )
}

fn msa(ack: &str) -> String {
    ack.split('\r')
        .find(|s| s.starts_with("MSA|"))
        .unwrap_or_default()
        .to_string()
}

/// MLLP over TLS: the hospital's system is known by the certificate registered to its OAuth
/// client and feeds only the assigning authorities that client is bound to.
#[tokio::test]
async fn mllp_over_tls_with_client_certificates() {
    use megalis_e2e::{megalis, stderr, stdout};
    const VANNES: &str = "1.2.250.1.71.4.2.2.560008799";
    let dir = tempfile::tempdir().unwrap();
    let s = server()
        .data_dir(dir.path())
        .arg("--mllp-tls")
        .arg("true")
        .start()
        .await;
    let port = s.mllp.port();
    let cert = |name: &str| {
        let mut params = rcgen::CertificateParams::new(vec![format!("{name}.test")]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let c = params.self_signed(&key).unwrap();
        let (cp, kp) = (
            dir.path().join(format!("{name}.pem")),
            dir.path().join(format!("{name}.key")),
        );
        std::fs::write(&cp, c.pem()).unwrap();
        std::fs::write(&kp, key.serialize_pem()).unwrap();
        (cp, kp)
    };
    let (vannes_cert, vannes_key) = cert("ch-vannes");
    let (stranger_cert, stranger_key) = cert("stranger");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "ch-vannes-secret-0123456789abcdef0123").unwrap();
    let admin = |args: &[&str]| {
        let mut all = vec![
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--mode",
            "test",
            "admin",
            "client",
        ];
        all.extend_from_slice(args);
        let o = megalis(&all, &[]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    };
    admin(&[
        "add",
        "--id",
        "ch-vannes",
        "--secret-file",
        secret.to_str().unwrap(),
        "--grant",
        "client_credentials",
        "--scope",
        "system/Patient.cu",
        "--certificate",
        vannes_cert.to_str().unwrap(),
        "--authority",
        VANNES,
    ]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let ca = s.cert_path();
    let vannes = Some((vannes_cert.as_path(), vannes_key.as_path()));

    let ack = mllp_over_tls(port, &ca, vannes, &a28("TLS-1", VANNES, "V-1"));
    assert_eq!(msa(&ack), "MSA|AA|TLS-1", "{ack}\n{}", s.log());
    // Another establishment's identifiers: refused, naming the field.
    let ack = mllp_over_tls(
        port,
        &ca,
        vannes,
        &a28("TLS-2", "1.2.250.1.71.4.2.2.350005179", "R-1"),
    );
    assert!(msa(&ack).starts_with("MSA|AE|TLS-2"), "{ack}");
    assert!(ack.contains("ERR||PID^1^3|204"), "{ack}");
    // A certificate registered to no client: every message refused, with the reason.
    let ack = mllp_over_tls(
        port,
        &ca,
        Some((&stranger_cert, &stranger_key)),
        &a28("TLS-3", VANNES, "V-2"),
    );
    assert!(msa(&ack).starts_with("MSA|AR|TLS-3"), "{ack}");
    assert!(ack.contains("registered to no active client"), "{ack}");
    // No certificate: the handshake itself is refused, nothing is answered.
    let ack = mllp_over_tls(port, &ca, None, &a28("TLS-4", VANNES, "V-3"));
    assert!(msa(&ack).is_empty(), "{ack}");
    // Unbinding the authority applies to the next message of an established client.
    admin(&[
        "authority",
        "remove",
        "--id",
        "ch-vannes",
        "--authority",
        VANNES,
    ]);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let ack = mllp_over_tls(port, &ca, vannes, &a28("TLS-5", VANNES, "V-4"));
    assert!(msa(&ack).starts_with("MSA|AR|TLS-5"), "{ack}");
    assert!(ack.contains("bound to no assigning authority"), "{ack}");
}
