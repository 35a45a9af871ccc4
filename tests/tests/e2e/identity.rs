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
