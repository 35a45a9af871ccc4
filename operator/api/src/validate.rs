//! Validation the reconciler and `render` run before building anything.
//!
//! The CEL rules of the schema are evaluated client-side (same rules as the API server), then the
//! checks CEL cannot express cheaply: CIDR syntax and the plugin/platform relationship.

use std::net::IpAddr;

use crate::{FlowPeer, Plugin, RegionalPlatform};

/// Why a resource is refused. The message is shown to the user in the `Ready` condition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("{kind} {name}: {message}")]
    Rule {
        kind: &'static str,
        name: String,
        message: String,
    },
    #[error("{field}: {value:?} is not a CIDR (a.b.c.d/n or an IPv6 prefix)")]
    Cidr { field: String, value: String },
    #[error("plugin {plugin} belongs to platform {platform_ref}, not {platform}")]
    ForeignPlugin {
        plugin: String,
        platform_ref: String,
        platform: String,
    },
}

/// Checks a platform against its CEL rules and the CIDR syntax of every peer.
pub fn validate_platform(platform: &RegionalPlatform) -> Result<(), SpecError> {
    platform.validate_cel().map_err(|errors| SpecError::Rule {
        kind: "RegionalPlatform",
        name: platform.metadata.name.clone().unwrap_or_default(),
        message: errors.to_string(),
    })?;
    let spec = &platform.spec;
    let mut peer_lists: Vec<(String, &[FlowPeer])> = vec![
        (
            "spec.ingress.controllerPeers".into(),
            &spec.ingress.controller_peers,
        ),
        (
            "spec.isolation.pluginSourcePeers".into(),
            &spec.isolation.plugin_source_peers,
        ),
        (
            "spec.monitoring.scraperPeers".into(),
            &spec.monitoring.scraper_peers,
        ),
    ];
    if let Some(dns) = &spec.isolation.dns_peers {
        peer_lists.push(("spec.isolation.dnsPeers".into(), dns));
    }
    if let Some(pg) = &spec.database.postgres {
        peer_lists.push(("spec.database.postgres.peers".into(), &pg.peers));
    }
    if let Some(s3) = &spec.blobs.s3 {
        peer_lists.push(("spec.blobs.s3.peers".into(), &s3.peers));
    }
    if let Some(oidc) = &spec.oidc {
        peer_lists.push(("spec.oidc.egressPeers".into(), &oidc.egress_peers));
    }
    if let Some(mtls) = &spec.mtls {
        peer_lists.push(("spec.mtls.sources".into(), &mtls.exposure.sources));
    }
    if let Some(mllp) = &spec.mllp {
        peer_lists.push(("spec.mllp.sources".into(), &mllp.exposure.sources));
    }
    if let Some(dicom) = &spec.dicom {
        peer_lists.push(("spec.dicom.sources".into(), &dicom.exposure.sources));
    }
    for flow in &spec.isolation.flows {
        peer_lists.push((
            format!("spec.isolation.flows[{}].peers", flow.name),
            &flow.peers,
        ));
    }
    for (field, peers) in peer_lists {
        for peer in peers {
            for cidr in peer.cidr.iter().chain(peer.except.iter()) {
                if !is_cidr(cidr) {
                    return Err(SpecError::Cidr {
                        field: field.clone(),
                        value: cidr.clone(),
                    });
                }
            }
        }
    }
    for cidr in &spec.ingress.trusted_proxies {
        if !is_cidr(cidr) {
            return Err(SpecError::Cidr {
                field: "spec.ingress.trustedProxies".into(),
                value: cidr.clone(),
            });
        }
    }
    Ok(())
}

/// Checks a plugin against its CEL rules (as the API server would) and [`check_plugin`].
pub fn validate_plugin(plugin: &Plugin, platform: &str) -> Result<(), SpecError> {
    let name = plugin.metadata.name.clone().unwrap_or_default();
    plugin.validate_cel().map_err(|errors| SpecError::Rule {
        kind: "Plugin",
        name: name.clone(),
        message: errors.to_string(),
    })?;
    check_plugin(plugin, platform)
}

/// The checks the build step needs on every reconcile, in plain Rust: the module is pinned
/// (https URL, 64 lower-case hex digits) and the plugin belongs to `platform`. Evaluating the
/// CEL rules costs milliseconds per object (the schema is regenerated and the rules compiled),
/// so it is done at the edges (`render`, admission by the API server), not in the pure build.
pub fn check_plugin(plugin: &Plugin, platform: &str) -> Result<(), SpecError> {
    let name = plugin.metadata.name.clone().unwrap_or_default();
    let module = &plugin.spec.module;
    let refuse = |message: &str| SpecError::Rule {
        kind: "Plugin",
        name: name.clone(),
        message: message.to_owned(),
    };
    if !module.url.starts_with("https://") {
        return Err(refuse("module url must be https"));
    }
    if module.sha256.len() != 64
        || !module
            .sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(refuse("sha256 must be 64 lower-case hex digits"));
    }
    if plugin.spec.platform_ref != platform {
        return Err(SpecError::ForeignPlugin {
            plugin: name,
            platform_ref: plugin.spec.platform_ref.clone(),
            platform: platform.to_owned(),
        });
    }
    Ok(())
}

fn is_cidr(value: &str) -> bool {
    let Some((address, prefix)) = value.split_once('/') else {
        return false;
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return false;
    };
    let Ok(prefix) = prefix.parse::<u8>() else {
        return false;
    };
    match address {
        IpAddr::V4(_) => prefix <= 32,
        IpAddr::V6(_) => prefix <= 128,
    }
}
