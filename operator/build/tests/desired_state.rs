//! Properties of the build step, case by case.

mod common;

use megalis_operator_api::{FlowPeer, RegionalPlatform};
use megalis_operator_build::{ManagedKind, build};
use serde_json::Value;

fn objects_of(state: &megalis_operator_build::DesiredState, kind: ManagedKind) -> Vec<&Value> {
    state
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| &o.object.data)
        .collect()
}

fn deployment(state: &megalis_operator_build::DesiredState, name: &str) -> Value {
    serde_json::to_value(
        state
            .find(ManagedKind::Deployment, name)
            .expect("deployment"),
    )
    .unwrap()
}

fn config_toml(state: &megalis_operator_build::DesiredState, name: &str) -> toml::Table {
    let cm = state
        .find(ManagedKind::ConfigMap, &format!("{name}-config"))
        .expect("config map");
    cm.data["data"]["megalis.toml"]
        .as_str()
        .unwrap()
        .parse()
        .expect("valid TOML")
}

#[test]
fn bretagne_has_one_policy_per_flow_and_a_default_deny() {
    let (platform, plugins) = common::bretagne();
    let state = build(&platform, &plugins).unwrap();
    let names: Vec<_> = state
        .objects
        .iter()
        .filter(|o| o.kind == ManagedKind::NetworkPolicy)
        .map(|o| o.name().to_owned())
        .collect();
    assert_eq!(names[0], "bretagne-default-deny");
    assert_eq!(state.allowed_flows.len(), 20, "{names:?}");
    assert_eq!(names.len(), 21);
    for expected in [
        "bretagne-allow-ingress-controller",
        "bretagne-allow-mtls",
        "bretagne-allow-mllp",
        "bretagne-allow-dicom",
        "bretagne-allow-metrics-scrape",
        "bretagne-allow-dns",
        "bretagne-allow-database",
        "bretagne-allow-object-storage",
        "bretagne-allow-oidc-upstream",
        "bretagne-allow-plugin-sources",
        "bretagne-allow-flow-turn-relay",
        "bretagne-allow-flow-support-vpn",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn no_policy_rule_ever_has_an_empty_peer_list() {
    // An empty `from`/`to` in a NetworkPolicy rule means "everyone": a region whose peer lists
    // are all empty must come out with the default deny alone.
    let mut platform = common::platform("platform-bretagne.yaml");
    let spec = &mut platform.spec;
    spec.ingress.controller_peers.clear();
    spec.database.postgres.as_mut().unwrap().peers.clear();
    spec.blobs.s3.as_mut().unwrap().peers.clear();
    spec.oidc.as_mut().unwrap().egress_peers.clear();
    spec.mtls.as_mut().unwrap().exposure.sources.clear();
    spec.mllp.as_mut().unwrap().exposure.sources.clear();
    spec.dicom.as_mut().unwrap().exposure.sources.clear();
    spec.monitoring.scraper_peers.clear();
    spec.isolation.plugin_source_peers.clear();
    spec.isolation.dns_peers = Some(vec![]);
    for flow in &mut spec.isolation.flows {
        flow.peers.clear();
    }
    let state = build(&platform, &[]).unwrap();
    let policies = objects_of(&state, ManagedKind::NetworkPolicy);
    assert_eq!(policies.len(), 1, "only the default deny remains");
    assert!(state.allowed_flows.is_empty());

    let (platform, plugins) = common::bretagne();
    for policy in objects_of(
        &build(&platform, &plugins).unwrap(),
        ManagedKind::NetworkPolicy,
    ) {
        for rule in policy["spec"]["ingress"].as_array().into_iter().flatten() {
            assert!(!rule["from"].as_array().unwrap().is_empty());
            assert!(!rule["ports"].as_array().unwrap().is_empty());
        }
        for rule in policy["spec"]["egress"].as_array().into_iter().flatten() {
            assert!(!rule["to"].as_array().unwrap().is_empty());
            assert!(!rule["ports"].as_array().unwrap().is_empty());
        }
    }
}

#[test]
fn database_url_never_reaches_the_config_map() {
    let cases: [(&str, &str, Option<&str>); 2] = [
        (
            "platform-bretagne.yaml",
            "MEGALIS_DATABASE_URL_FILE",
            Some("/run/secrets/megalis/database/url"),
        ),
        (
            "platform-minimal.yaml",
            "MEGALIS_DATABASE_URL",
            Some("sqlite:///var/lib/megalis/megalis.db"),
        ),
    ];
    for (file, variable, value) in cases {
        let platform = common::platform(file);
        let name = platform.metadata.name.clone().unwrap();
        let state = build(&platform, &[]).unwrap();
        let toml = config_toml(&state, &name);
        assert!(
            toml.get("database").and_then(|d| d.get("url")).is_none(),
            "{file}"
        );
        for cm in objects_of(&state, ManagedKind::ConfigMap) {
            let text = serde_json::to_string(cm).unwrap();
            assert!(
                !text.contains("postgres://") && !text.contains("sqlite://"),
                "{file}: {text}"
            );
        }
        let env =
            deployment(&state, &name)["spec"]["template"]["spec"]["containers"][0]["env"].clone();
        let found = env
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == variable)
            .expect(variable);
        assert_eq!(found["value"].as_str(), value, "{file}");
    }
}

#[test]
fn configuration_keys_follow_the_platform_contract() {
    let (platform, plugins) = common::bretagne();
    let toml = config_toml(&build(&platform, &plugins).unwrap(), "bretagne");
    let get = |path: &str| -> String {
        let mut value = toml::Value::Table(toml.clone());
        for part in path.split('.') {
            value = value
                .get(part)
                .unwrap_or_else(|| panic!("{path} missing"))
                .clone();
        }
        match value {
            toml::Value::String(s) => s,
            other => other.to_string(),
        }
    };
    let cases = [
        ("data_dir", "/var/lib/megalis"),
        ("mode", "production"),
        ("public_url", "https://sante.bretagne.example.org"),
        ("plain_http_listen", "0.0.0.0:8080"),
        ("listen", "0.0.0.0:8443"),
        ("mtls_listen", "0.0.0.0:8444"),
        ("tls.cert", "/etc/megalis/tls/tls.crt"),
        ("cps.ca", "/etc/megalis/cps/ca.crt"),
        ("cps.crl", "/etc/megalis/cps/crl.pem"),
        ("database.max_connections", "40"),
        ("blobs.backend", "s3"),
        ("blobs.s3_bucket", "megalis-bretagne"),
        ("audit.signing_key", "/etc/megalis/audit/signing.key"),
        ("audit.checkpoint_interval", "10s"),
        ("shutdown.grace_period", "20s"),
        ("mllp.listen", "0.0.0.0:2575"),
        (
            "cps.public_url",
            "https://cps.sante.bretagne.example.org:8444",
        ),
        ("oidc.upstream_client_id", "megalis-bretagne"),
        ("plugins.config", "/etc/megalis/plugins.toml"),
        ("log.format", "json"),
    ];
    for (key, expected) in cases {
        assert_eq!(get(key), expected, "{key}");
    }
    assert_eq!(toml["trusted_proxies"].as_array().unwrap().len(), 1);
    assert!(
        toml["oidc"].get("upstream_client_secret").is_none(),
        "secrets stay out of the ConfigMap"
    );
    assert!(toml["blobs"].get("s3_secret_access_key").is_none());
    assert!(
        toml.get("dicom").is_none(),
        "no server key for DICOM until the server has a DIMSE gateway"
    );
}

#[test]
fn single_writer_storage_recreates_instead_of_rolling() {
    let cases = [
        ("platform-minimal.yaml", "Recreate", Some(1)),
        ("platform-bretagne.yaml", "RollingUpdate", None),
    ];
    for (file, strategy, replicas) in cases {
        let platform = common::platform(file);
        let name = platform.metadata.name.clone().unwrap();
        let deployment = deployment(&build(&platform, &[]).unwrap(), &name);
        assert_eq!(deployment["spec"]["strategy"]["type"], strategy, "{file}");
        // Bretagne autoscales: the Deployment must not carry replicas or apply would fight the HPA.
        assert_eq!(deployment["spec"]["replicas"].as_i64(), replicas, "{file}");
    }
}

#[test]
fn pods_meet_the_restricted_pod_security_standard() {
    let (platform, plugins) = common::bretagne();
    let deployment = deployment(&build(&platform, &plugins).unwrap(), "bretagne");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .chain(pod["initContainers"].as_array().unwrap());
    for container in containers {
        let sc = &container["securityContext"];
        assert_eq!(
            sc["allowPrivilegeEscalation"], false,
            "{}",
            container["name"]
        );
        assert_eq!(sc["readOnlyRootFilesystem"], true);
        assert_eq!(sc["capabilities"]["drop"][0], "ALL");
    }
    let server = &pod["containers"][0];
    assert_eq!(server["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(server["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        server["args"],
        serde_json::json!(["--config", "/etc/megalis/megalis.toml", "serve"])
    );
}

#[test]
fn checksum_rolls_pods_for_server_config_and_modules_but_not_plugin_grants() {
    let (platform, plugins) = common::bretagne();
    let base = build(&platform, &plugins).unwrap().config_checksum;

    let mut louder = platform.clone();
    louder.spec.log.level = "debug".into();
    assert_ne!(
        build(&louder, &plugins).unwrap().config_checksum,
        base,
        "server config change"
    );

    let mut new_module = plugins.clone();
    new_module[0].spec.module.sha256 = "a".repeat(64);
    assert_ne!(
        build(&platform, &new_module).unwrap().config_checksum,
        base,
        "module change"
    );

    let mut new_grant = plugins.clone();
    new_grant[0].spec.config.insert("quota".into(), "10".into());
    new_grant[1].spec.limits.memory_mib = 1024;
    assert_eq!(
        build(&platform, &new_grant).unwrap().config_checksum,
        base,
        "plugins.toml is watched"
    );

    let mut reordered = platform.clone();
    reordered.spec.plugins.reverse();
    assert_eq!(
        build(&reordered, &plugins).unwrap().config_checksum,
        base,
        "order of the list is irrelevant"
    );
}

#[test]
fn plugins_are_reported_loaded_missing_or_refused() {
    let (mut platform, mut plugins) = common::bretagne();
    platform.spec.plugins.push("absent".into());
    platform.spec.plugins.push("elsewhere".into());
    let mut foreign = plugins[0].clone();
    foreign.metadata.name = Some("elsewhere".into());
    foreign.metadata.namespace = Some("megalis-finistere".into());
    plugins.push(foreign);
    plugins[1].spec.platform_ref = "finistere".into();
    plugins[2].spec.module.sha256 = "not-a-digest".into();
    let state = build(&platform, &plugins).unwrap();
    assert_eq!(state.plugins.enabled, 6);
    assert_eq!(state.plugins.loaded, vec!["breizh-rein", "messaging"]);
    assert_eq!(
        state.plugins.missing,
        vec!["absent", "elsewhere"],
        "another namespace is out of reach"
    );
    let refused: Vec<_> = state
        .plugins
        .invalid
        .iter()
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(refused, vec!["imaging", "video"]);
    assert!(
        state.plugins.invalid[1].1.contains("sha256"),
        "{:?}",
        state.plugins.invalid
    );

    let cm = state
        .find(ManagedKind::ConfigMap, "bretagne-plugins")
        .unwrap();
    let toml: toml::Table = cm.data["data"]["plugins.toml"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let entries = toml["plugins"].as_array().unwrap();
    let loaded: Vec<_> = entries.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(loaded, vec!["breizh-rein", "messaging"]);
    let messaging = &entries[1];
    assert_eq!(
        messaging["sha256"].as_str().unwrap(),
        "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    );
    assert_eq!(messaging["limits"]["memory_mib"].as_integer(), Some(128));
    assert_eq!(
        messaging["limits"]["max_concurrency"].as_integer(),
        Some(64)
    );
    assert_eq!(
        messaging["config"]["mssante-domain"].as_str(),
        Some("bretagne.mssante.fr")
    );
}

#[test]
fn owner_reference_only_when_the_platform_comes_from_the_api_server() {
    let mut platform: RegionalPlatform = common::platform("platform-minimal.yaml");
    let rendered = build(&platform, &[]).unwrap();
    assert!(
        rendered
            .objects
            .iter()
            .all(|o| o.object.metadata.owner_references.is_none())
    );

    platform.metadata.uid = Some("6c1f4c0e-9d5e-4a43-9a53-0d3c1f1c2b7a".into());
    let applied = build(&platform, &[]).unwrap();
    for object in &applied.objects {
        let owners = &object.object.metadata.owner_references;
        if object.kind == ManagedKind::PersistentVolumeClaim {
            assert!(
                owners.is_none(),
                "deleting the platform must not delete health data"
            );
        } else {
            let owner = &owners.as_ref().expect("owned")[0];
            assert_eq!(owner.kind, "RegionalPlatform");
            assert_eq!(owner.controller, Some(true));
        }
    }
}

#[test]
fn peers_become_ip_blocks_or_selectors() {
    let mut platform = common::platform("platform-minimal.yaml");
    platform.spec.isolation.dns_peers = Some(vec![FlowPeer {
        cidr: Some("10.96.0.10/32".into()),
        except: vec![],
        ..Default::default()
    }]);
    let state = build(&platform, &[]).unwrap();
    let dns = state
        .find(ManagedKind::NetworkPolicy, "demo-allow-dns")
        .unwrap();
    let rule = &dns.data["spec"]["egress"][0];
    assert_eq!(rule["to"][0]["ipBlock"]["cidr"], "10.96.0.10/32");
    let ports: Vec<_> = rule["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(ports, vec!["UDP", "TCP"]);
    let ingress = state
        .find(ManagedKind::NetworkPolicy, "demo-allow-ingress-controller")
        .unwrap();
    let from = &ingress.data["spec"]["ingress"][0]["from"][0];
    assert_eq!(
        from["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    assert_eq!(
        from["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "ingress-nginx"
    );
}

#[test]
fn external_listeners_keep_hospital_source_addresses() {
    let (platform, plugins) = common::bretagne();
    let state = build(&platform, &plugins).unwrap();
    for listener in ["mtls", "mllp", "dicom"] {
        let service = state
            .find(ManagedKind::Service, &format!("bretagne-{listener}"))
            .unwrap();
        assert_eq!(service.data["spec"]["type"], "LoadBalancer", "{listener}");
        assert_eq!(
            service.data["spec"]["externalTrafficPolicy"], "Local",
            "{listener}"
        );
    }
}
