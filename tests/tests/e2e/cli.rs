//! The command line: configuration errors, `config show`, `--help`, `migrate`.

use megalis_e2e::{megalis, stderr, stdout};

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["config", "--help"],
        vec!["config", "show", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
    ] {
        let o = megalis(&args, &[]);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage: megalis"), "{args:?}");
    }
    let o = megalis(&["serve", "--help"], &[]);
    let help = stdout(&o);
    for flag in [
        "--listen",
        "--tls-cert",
        "--plain-http-listen",
        "--demo",
        "--database-url",
        "MEGALIS_LISTEN",
    ] {
        assert!(help.contains(flag), "serve --help lacks {flag}");
    }
}

#[test]
fn configuration_errors_exit_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let malformed = write(
        dir.path(),
        "malformed.toml",
        "listen = \"127.0.0.1:1\"\n[log\n",
    );
    let unknown = write(dir.path(), "unknown.toml", "[http]\nbody_limt = \"1MiB\"\n");
    let bad_url = write(
        dir.path(),
        "url.toml",
        "public_url = \"htps://sante.bzh\"\n",
    );
    // (arguments, environment, expected message)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["--config", &malformed, "serve"],
            vec![],
            "not valid TOML",
        ),
        (
            vec!["--config", &unknown, "serve"],
            vec![],
            "unknown key `http.body_limt`",
        ),
        (vec!["--config", &bad_url, "serve"], vec![], "`public_url`"),
        (
            vec!["--config", "/nonexistent.toml", "migrate"],
            vec![],
            "cannot read configuration file",
        ),
        (
            vec!["serve"],
            vec![("MEGALIS_DATABASE_URL", "oracle://x")],
            "`database.url`",
        ),
        (
            vec!["serve", "--listen", "everywhere"],
            vec![],
            "`listen` (from flag --listen)",
        ),
    ];
    for (args, env, expected) in cases {
        let o = megalis(&args, &env);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(expected), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn unreadable_tls_files_stop_the_server_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = megalis(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "/nonexistent/cert.pem",
            "--tls-key",
            "/nonexistent/key.pem",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("TLS: /nonexistent/cert.pem"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_show_tells_sources_and_hides_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "megalis.toml", "[log]\nformat = \"json\"\n");
    let secret = write(
        dir.path(),
        "db-url",
        "postgres://megalis:TopSecret@db.example:5432/megalis\n",
    );
    let o = megalis(
        &[
            "--config",
            &file,
            "config",
            "show",
            "--listen",
            "127.0.0.1:9443",
        ],
        &[("MEGALIS_DATABASE_URL_FILE", &secret)],
    );
    // --listen is a serve flag: config show does not take it.
    assert_eq!(o.status.code(), Some(2));
    let o = megalis(
        &["--config", &file, "--mode", "demo", "config", "show"],
        &[("MEGALIS_DATABASE_URL_FILE", &secret)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("TopSecret"), "{out}");
    assert!(out.contains("url = \"postgres://megalis:***@db.example:5432/megalis\"  # environment variable MEGALIS_DATABASE_URL_FILE"), "{out}");
    assert!(
        out.contains("format = \"json\"  # configuration file"),
        "{out}"
    );
    assert!(out.contains("mode = \"demo\"  # flag --mode"), "{out}");
    assert!(
        out.contains("listen = \"127.0.0.1:8443\"  # default"),
        "{out}"
    );
}

#[test]
fn migrate_creates_the_schema_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for _ in 0..2 {
        let o = megalis(&["--data-dir", data.to_str().unwrap(), "migrate"], &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("migrations applied"));
    }
    assert!(data.join("megalis.db").exists());
}

#[test]
fn an_invalid_log_filter_is_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = megalis(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--log-level",
            "megalis=loud",
            "migrate",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("log.level"), "{}", stderr(&o));
    assert!(!data.join("megalis.db").exists(), "nothing done");
}
