use std::collections::HashMap;
use std::io::Write;

use super::*;

fn command() -> Command {
    let serve = scoped_args(Command::new("serve"), Scope::Serve);
    global_args(Command::new("megalis"))
        .subcommand(serve)
        .subcommand(Command::new("migrate"))
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<(Resolved, Settings), ConfigError> {
    let matches = command()
        .try_get_matches_from(std::iter::once("megalis").chain(args.iter().copied()))
        .expect("arguments parse");
    let (_, sub) = matches.subcommand().expect("a subcommand");
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let resolved = resolve(sub, &|name| env.get(name).cloned())?;
    let settings = Settings::from_resolved(&resolved)?;
    Ok((resolved, settings))
}

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_apply_without_any_source() {
    let (resolved, s) = load(&["serve"], &[]).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("./megalis-data"));
    assert_eq!(s.listen, "127.0.0.1:8443".parse().unwrap());
    assert_eq!(s.mode, Mode::Production);
    assert_eq!(s.public_url, "https://127.0.0.1:8443");
    assert_eq!(s.database_url, "sqlite://./megalis-data/megalis.db");
    assert_eq!(
        s.audit_signing_key,
        PathBuf::from("./megalis-data/audit-signing-key.pk8")
    );
    assert_eq!(s.http_body_limit, 10 * 1024 * 1024);
    assert_eq!(resolved.get("listen").unwrap().source, Source::Default);
}

#[test]
fn flags_beat_environment_beat_file_beat_defaults() {
    let file = toml_file(
        "listen = \"127.0.0.1:1001\"\nmode = \"test\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    );
    let path = file.path().to_str().unwrap();
    let (resolved, s) = load(
        &["--config", path, "serve", "--listen", "127.0.0.1:1003"],
        &[
            ("MEGALIS_LISTEN", "127.0.0.1:1002"),
            ("MEGALIS_MODE", "demo"),
        ],
    )
    .unwrap();
    assert_eq!(s.listen.port(), 1003, "flag wins");
    assert_eq!(s.mode, Mode::Demo, "environment beats file");
    assert_eq!(s.log_format, LogFormat::Json, "file beats default");
    assert_eq!(s.log_level, "debug");
    assert_eq!(s.http_request_timeout, Duration::from_secs(30), "default");
    assert_eq!(
        resolved.get("listen").unwrap().source,
        Source::Flag("--listen".into())
    );
    assert_eq!(
        resolved.get("mode").unwrap().source,
        Source::Env("MEGALIS_MODE".into())
    );
    assert!(matches!(
        resolved.get("log.format").unwrap().source,
        Source::File(_)
    ));
}

#[test]
fn nested_keys_map_to_flags_and_variables() {
    let (_, s) = load(
        &[
            "--database-url",
            "postgres://u:p@db/megalis",
            "serve",
            "--http-body-limit",
            "1KiB",
        ],
        &[("MEGALIS_SHUTDOWN_GRACE_PERIOD", "3s")],
    )
    .unwrap();
    assert_eq!(s.database_url, "postgres://u:p@db/megalis");
    assert_eq!(s.http_body_limit, 1024);
    assert_eq!(s.shutdown_grace_period, Duration::from_secs(3));
}

#[test]
fn global_flags_are_accepted_after_the_subcommand_too() {
    let (_, s) = load(&["migrate", "--data-dir", "/srv/megalis"], &[]).unwrap();
    assert_eq!(s.data_dir, PathBuf::from("/srv/megalis"));
    assert_eq!(s.database_url, "sqlite:///srv/megalis/megalis.db");
}

#[test]
fn secrets_are_read_from_file_variables_and_redacted() {
    let secret = toml_file("postgres://megalis:hunter2@db:5432/megalis\n");
    let (resolved, s) = load(
        &["serve"],
        &[
            ("MEGALIS_DATABASE_URL_FILE", secret.path().to_str().unwrap()),
            ("MEGALIS_BLOBS_S3_SECRET_ACCESS_KEY", "abc123"),
        ],
    )
    .unwrap();
    assert_eq!(s.database_url, "postgres://megalis:hunter2@db:5432/megalis");
    let shown = resolved.show(&s);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("abc123"), "{shown}");
    assert!(
        shown.contains("postgres://megalis:***@db:5432/megalis"),
        "{shown}"
    );
    assert!(shown.contains("s3_secret_access_key = \"***\""), "{shown}");
}

#[test]
fn file_variables_are_refused_for_non_secrets_by_being_ignored() {
    // Only secrets take *_FILE: a stray MEGALIS_LISTEN_FILE must not change the listener.
    let f = toml_file("0.0.0.0:1");
    let (_, s) = load(
        &["serve"],
        &[("MEGALIS_LISTEN_FILE", f.path().to_str().unwrap())],
    )
    .unwrap();
    assert_eq!(s.listen.port(), 8443);
}

#[test]
fn unreadable_secret_file_names_the_key() {
    let err = load(
        &["serve"],
        &[("MEGALIS_DATABASE_URL_FILE", "/nonexistent/secret")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("database.url") && err.contains("/nonexistent/secret"),
        "{err}"
    );
}

#[test]
fn malformed_toml_is_reported_with_its_position() {
    let file = toml_file("listen = \"127.0.0.1:1\"\n[log\nformat = 1\n");
    let err = load(&["--config", file.path().to_str().unwrap(), "serve"], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid TOML"), "{err}");
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn unknown_keys_are_refused_with_a_suggestion() {
    let file = toml_file("[database]\nulr = \"sqlite:x\"\n");
    let err = load(&["--config", file.path().to_str().unwrap(), "serve"], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `database.ulr`"), "{err}");
    assert!(err.contains("did you mean `database.url`"), "{err}");

    let file = toml_file("[nonsense]\nx = 1\n");
    let err = load(&["--config", file.path().to_str().unwrap(), "serve"], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown key `nonsense`"), "{err}");
}

#[test]
fn missing_config_file_is_an_error() {
    let err = load(&["--config", "/nonexistent/megalis.toml", "serve"], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot read configuration file /nonexistent/megalis.toml"),
        "{err}"
    );
}

#[test]
fn invalid_values_name_key_source_and_reason() {
    // (arguments, environment, expected message)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &["serve", "--listen", "localhost"],
            &[],
            "`listen` (from flag --listen)",
        ),
        (
            &["serve"],
            &[("MEGALIS_PUBLIC_URL", "ftp://x")],
            "`public_url` (from environment variable MEGALIS_PUBLIC_URL)",
        ),
        (
            &["serve"],
            &[("MEGALIS_PUBLIC_URL", "not a url")],
            "not an absolute URL",
        ),
        (
            &["serve"],
            &[("MEGALIS_DATABASE_URL", "mysql://x/y")],
            "`database.url`",
        ),
        (
            &["serve"],
            &[("MEGALIS_MODE", "staging")],
            "expected production, test or demo",
        ),
        (
            &["serve"],
            &[("MEGALIS_HTTP_REQUEST_TIMEOUT", "soon")],
            "not a duration",
        ),
        (
            &["serve"],
            &[("MEGALIS_HTTP_BODY_LIMIT", "10 parsecs")],
            "unknown size unit",
        ),
        (
            &["serve"],
            &[("MEGALIS_TRUSTED_PROXIES", "10.0.0.0/8,banana")],
            "\"banana\" is not a CIDR",
        ),
        (
            &["serve"],
            &[("MEGALIS_DATABASE_MAX_CONNECTIONS", "0")],
            "positive integer",
        ),
        (
            &["serve", "--tls-cert", "/x.pem"],
            &[],
            "must be given together",
        ),
        (
            &["serve"],
            &[("MEGALIS_BLOBS_BACKEND", "s3")],
            "`blobs.s3_bucket`",
        ),
    ];
    for (args, env, expected) in cases {
        let err = load(args, env).unwrap_err().to_string();
        assert!(err.contains(expected), "{args:?} {env:?}: {err}");
    }
}

#[test]
fn trusted_proxies_accept_lists_from_toml_and_environment() {
    let file = toml_file("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n");
    let (resolved, s) = load(&["--config", file.path().to_str().unwrap(), "serve"], &[]).unwrap();
    assert_eq!(s.trusted_proxies.len(), 2);
    assert!(
        resolved
            .show(&s)
            .contains("trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]")
    );
    let (_, s) = load(
        &["serve"],
        &[("MEGALIS_TRUSTED_PROXIES", "fd00::/8, 127.0.0.1")],
    )
    .unwrap();
    assert_eq!(s.trusted_proxies.len(), 2);
}

#[test]
fn show_output_is_valid_toml_that_loads_back_to_the_same_settings() {
    let (resolved, before) = load(
        &["serve", "--listen", "127.0.0.1:9999"],
        &[("MEGALIS_LOG_FORMAT", "json")],
    )
    .unwrap();
    let shown = resolved.show(&before);
    assert!(
        shown.contains("signing_key = \"./megalis-data/audit-signing-key.pk8\"  # derived"),
        "{shown}"
    );
    let file = toml_file(&shown);
    let (_, after) = load(&["--config", file.path().to_str().unwrap(), "serve"], &[]).unwrap();
    assert_eq!(after.listen, before.listen);
    assert_eq!(after.log_format, before.log_format);
    assert_eq!(after.public_url, before.public_url);
    assert_eq!(after.audit_signing_key, before.audit_signing_key);
    assert_eq!(after.database_url, before.database_url);
}

#[test]
fn every_key_has_unique_flag_and_variable_names() {
    let mut flags: Vec<String> = KEYS.iter().map(Key::flag).collect();
    flags.push("config".into());
    let before = flags.len();
    flags.sort();
    flags.dedup();
    assert_eq!(before, flags.len(), "two keys map to one flag");
    for key in KEYS {
        assert!(!key.help.is_empty(), "{} has no help", key.name);
        assert!(
            !(key.secret && key.default.is_some()),
            "secret {} has a default",
            key.name
        );
    }
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("512").unwrap(), 512);
    assert_eq!(parse_size("2KiB").unwrap(), 2048);
    assert_eq!(parse_size("1GB").unwrap(), 1_000_000_000);
    assert!(parse_size("MiB").is_err());
    assert!(parse_size("99999999999999999999GiB").is_err());
}

#[test]
fn every_key_is_documented_in_the_operations_guide() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .expect("docs/operations.md");
    let missing: Vec<&str> = KEYS
        .iter()
        .map(|k| k.name)
        .filter(|name| !guide.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/operations.md: {missing:?}"
    );
}
