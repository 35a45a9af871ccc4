//! NetworkPolicies: deny everything to and from the platform pods, then allow each declared flow.
//!
//! A flow whose peer list is empty renders no policy at all. This matters: a NetworkPolicy rule
//! with an empty `from`/`to` means "every peer", so an empty list must never reach a rule.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use megalis_operator_api::{FlowDirection, FlowPeer, FlowPort, PlatformPort, Protocol};

use crate::Ctx;
use crate::labels::platform_selector;

/// Every policy of the platform; the default deny comes first.
pub fn network_policies(ctx: &Ctx<'_>) -> Vec<NetworkPolicy> {
    let spec = ctx.spec();
    let mut policies = vec![default_deny(ctx)];
    let named = |port: &str| NetworkPolicyPort {
        port: Some(IntOrString::String(port.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let number = |port: i32, protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.into()),
        ..Default::default()
    };

    let mut ingress_ports = vec![named("http")];
    if spec.server_tls_secret.is_some() {
        ingress_ports.push(named("https"));
    }
    policies.extend(allow(
        ctx,
        "ingress-controller",
        FlowDirection::Ingress,
        &spec.ingress.controller_peers,
        ingress_ports,
    ));
    if let Some(mtls) = &spec.mtls {
        policies.extend(allow(
            ctx,
            "mtls",
            FlowDirection::Ingress,
            &mtls.exposure.sources,
            vec![named("mtls")],
        ));
    }
    if let Some(mllp) = &spec.mllp {
        policies.extend(allow(
            ctx,
            "mllp",
            FlowDirection::Ingress,
            &mllp.exposure.sources,
            vec![named("mllp")],
        ));
    }
    if let Some(dicom) = &spec.dicom {
        policies.extend(allow(
            ctx,
            "dicom",
            FlowDirection::Ingress,
            &dicom.exposure.sources,
            vec![named("dicom")],
        ));
    }
    policies.extend(allow(
        ctx,
        "metrics-scrape",
        FlowDirection::Ingress,
        &spec.monitoring.scraper_peers,
        vec![named("http")],
    ));

    let dns = spec.isolation.dns_peers.clone().unwrap_or_else(kube_dns);
    policies.extend(allow(
        ctx,
        "dns",
        FlowDirection::Egress,
        &dns,
        vec![number(53, "UDP"), number(53, "TCP")],
    ));
    if let Some(pg) = &spec.database.postgres {
        policies.extend(allow(
            ctx,
            "database",
            FlowDirection::Egress,
            &pg.peers,
            vec![number(pg.port, "TCP")],
        ));
    }
    if let Some(s3) = &spec.blobs.s3 {
        policies.extend(allow(
            ctx,
            "object-storage",
            FlowDirection::Egress,
            &s3.peers,
            vec![number(s3.port, "TCP")],
        ));
    }
    if let Some(oidc) = &spec.oidc {
        policies.extend(allow(
            ctx,
            "oidc-upstream",
            FlowDirection::Egress,
            &oidc.egress_peers,
            vec![number(443, "TCP")],
        ));
    }
    if !spec.plugins.is_empty() {
        policies.extend(allow(
            ctx,
            "plugin-sources",
            FlowDirection::Egress,
            &spec.isolation.plugin_source_peers,
            vec![number(443, "TCP")],
        ));
    }
    for flow in &spec.isolation.flows {
        // A port without name or number is refused by validation; if one slips through, the
        // flow is dropped rather than rendered without ports (which would open every port).
        if let Some(ports) = flow.ports.iter().map(flow_port).collect::<Option<Vec<_>>>() {
            policies.extend(allow(
                ctx,
                &format!("flow-{}", flow.name),
                flow.direction,
                &flow.peers,
                ports,
            ));
        }
    }
    policies
}

fn pod_selector(ctx: &Ctx<'_>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(platform_selector(ctx.name)),
        ..Default::default()
    }
}

fn default_deny(ctx: &Ctx<'_>) -> NetworkPolicy {
    NetworkPolicy {
        metadata: ctx.meta(format!("{}-default-deny", ctx.name), "isolation"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector(ctx)),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ..Default::default()
        }),
    }
}

fn allow(
    ctx: &Ctx<'_>,
    flow: &str,
    direction: FlowDirection,
    peers: &[FlowPeer],
    ports: Vec<NetworkPolicyPort>,
) -> Option<NetworkPolicy> {
    if peers.is_empty() || ports.is_empty() {
        return None;
    }
    let peers: Vec<NetworkPolicyPeer> = peers.iter().map(policy_peer).collect();
    let mut spec = NetworkPolicySpec {
        pod_selector: Some(pod_selector(ctx)),
        ..Default::default()
    };
    match direction {
        FlowDirection::Ingress => {
            spec.policy_types = Some(vec!["Ingress".into()]);
            spec.ingress = Some(vec![NetworkPolicyIngressRule {
                from: Some(peers),
                ports: Some(ports),
            }]);
        }
        FlowDirection::Egress => {
            spec.policy_types = Some(vec!["Egress".into()]);
            spec.egress = Some(vec![NetworkPolicyEgressRule {
                to: Some(peers),
                ports: Some(ports),
            }]);
        }
    }
    let mut metadata = ctx.meta(format!("{}-allow-{flow}", ctx.name), "isolation");
    metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("megalis.bzh/flow".into(), flow.into());
    Some(NetworkPolicy {
        metadata,
        spec: Some(spec),
    })
}

fn policy_peer(peer: &FlowPeer) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: peer.cidr.as_ref().map(|cidr| IPBlock {
            cidr: cidr.clone(),
            except: (!peer.except.is_empty()).then(|| peer.except.clone()),
        }),
        namespace_selector: peer.namespace_selector.clone(),
        pod_selector: peer.pod_selector.clone(),
    }
}

fn flow_port(port: &FlowPort) -> Option<NetworkPolicyPort> {
    let protocol = match port.protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
    };
    let target = match (port.name, port.port) {
        (Some(name), _) => IntOrString::String(platform_port_name(name).into()),
        (None, Some(number)) => IntOrString::Int(number),
        (None, None) => return None,
    };
    Some(NetworkPolicyPort {
        port: Some(target),
        protocol: Some(protocol.into()),
        ..Default::default()
    })
}

fn platform_port_name(port: PlatformPort) -> &'static str {
    match port {
        PlatformPort::Http => "http",
        PlatformPort::Https => "https",
        PlatformPort::Mtls => "mtls",
        PlatformPort::Mllp => "mllp",
        PlatformPort::Dicom => "dicom",
    }
}

/// The cluster DNS of a standard Kubernetes distribution.
fn kube_dns() -> Vec<FlowPeer> {
    let labels = |k: &str, v: &str| LabelSelector {
        match_labels: Some(BTreeMap::from([(k.to_owned(), v.to_owned())])),
        ..Default::default()
    };
    vec![FlowPeer {
        namespace_selector: Some(labels("kubernetes.io/metadata.name", "kube-system")),
        pod_selector: Some(labels("k8s-app", "kube-dns")),
        ..Default::default()
    }]
}
