//! The rendered `megalis.toml`, loaded by the server's own configuration loader (megalis-config)
//! exactly as `megalis --config /etc/megalis/megalis.toml serve` would, with the environment the
//! Deployment sets.

mod common;

use std::collections::HashMap;

use clap::Command;
use megalis_config::{Scope, Settings, global_args, resolve, scoped_args};
use megalis_operator_api::RegionalPlatform;
use megalis_operator_build::{ManagedKind, build};

/// Keys of optional features: absent from the minimal region's configuration.
const OPTIONAL: [&str; 6] = ["mtls_listen", "cps", "mllp", "dicom", "oidc", "plugins"];

fn load(platform: &RegionalPlatform) -> Result<Settings, String> {
    let name = platform.metadata.name.clone().unwrap();
    let state = build(platform, &[]).unwrap();
    let config = state
        .find(ManagedKind::ConfigMap, &format!("{name}-config"))
        .unwrap();
    // Exactly as rendered: every key must be one the server knows.
    let text = config.data["data"]["megalis.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("megalis.toml");
    std::fs::write(&path, text).unwrap();

    // The environment of the server container; files of mounted Secrets are replaced by values.
    let deployment =
        serde_json::to_value(state.find(ManagedKind::Deployment, &name).unwrap()).unwrap();
    let mut env: HashMap<String, String> = HashMap::new();
    for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
    {
        let name = var["name"].as_str().unwrap().to_owned();
        match (var["value"].as_str(), name.strip_suffix("_FILE")) {
            (_, Some(plain)) => {
                let value = if plain == "MEGALIS_DATABASE_URL" {
                    "postgres://megalis@db:5432/megalis"
                } else {
                    "secret"
                };
                env.insert(plain.to_owned(), value.to_owned());
            }
            (Some(value), None) => {
                env.insert(name, value.to_owned());
            }
            (None, None) => {
                env.insert(name, "from-secret".to_owned());
            }
        }
    }
    let command = global_args(Command::new("megalis"))
        .subcommand(scoped_args(Command::new("serve"), Scope::Serve));
    let args = ["megalis", "--config", path.to_str().unwrap(), "serve"];
    let matches = command
        .try_get_matches_from(args)
        .map_err(|e| e.to_string())?;
    let (_, serve) = matches.subcommand().unwrap();
    let resolved = resolve(serve, &|var| env.get(var).cloned()).map_err(|e| e.to_string())?;
    Settings::from_resolved(&resolved).map_err(|e| e.to_string())
}

#[test]
fn minimal_region_config_loads_in_the_server_as_rendered() {
    let platform = common::platform("platform-minimal.yaml");
    let state = build(&platform, &[]).unwrap();
    let text = state
        .find(ManagedKind::ConfigMap, "demo-config")
        .unwrap()
        .data["data"]["megalis.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let table: toml::Table = text.parse().unwrap();
    for key in OPTIONAL {
        assert!(
            !table.contains_key(key),
            "{key} rendered for a region that does not use it"
        );
    }
    let settings = load(&platform).expect("the server accepts the rendered configuration");
    assert_eq!(settings.public_url, "https://demo.megalis.example.org");
    assert_eq!(settings.data_dir.to_str(), Some("/var/lib/megalis"));
    assert_eq!(
        settings.plain_http_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        settings.database_url,
        "sqlite:///var/lib/megalis/megalis.db"
    );
    assert_eq!(settings.shutdown_grace_period.as_secs(), 20);
}

#[test]
fn production_region_config_loads_in_the_server() {
    let (platform, _) = common::bretagne();
    let settings = load(&platform).expect("every key the server knows is accepted");
    assert_eq!(settings.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(settings.database_url, "postgres://megalis@db:5432/megalis");
    assert_eq!(settings.database_max_connections, 40);
    assert_eq!(settings.trusted_proxies.len(), 1);
    assert_eq!(
        settings.audit_signing_key.to_str(),
        Some("/etc/megalis/audit/signing.key")
    );
    // The card listener, its trust files, the MLLP feed and the watched plugin list, as the
    // Deployment mounts them.
    assert!(settings.mtls_listen.is_some());
    assert!(settings.cps_ca.is_some());
    assert_eq!(
        settings.cps_public_url.as_deref(),
        Some("https://cps.sante.bretagne.example.org:8444")
    );
    assert!(settings.mllp_listen.ip().is_unspecified());
    assert!(settings.plugins_config.is_absolute());
    // Pro Santé Connect, its secret from the mounted Secret file.
    let psc = settings.oidc_upstream.expect("upstream provider");
    assert_eq!(psc.client_secret, "secret");
    assert_eq!(psc.acr, "eidas1");
}
