//! The workload: ConfigMaps, Deployment, Services, Ingress, PodDisruptionBudget, autoscaler,
//! data volume and ServiceMonitor.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, ConfigMapProjection, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, KeyToPath, LocalObjectReference, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecretKeySelector, SecretVolumeSource, SecurityContext, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount, VolumeProjection, VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{ApiResource, DynamicObject};
use megalis_operator_api::{ExposureSpec, VolumeAccessMode};
use serde_json::json;

use crate::labels::platform_selector;
use crate::layout::*;
use crate::plugins::{LoadedPlugin, fetcher};
use crate::{Ctx, ManagedKind};

pub const CONFIG_CHECKSUM_ANNOTATION: &str = "megalis.bzh/config-checksum";

pub fn config_map_name(platform: &str) -> String {
    format!("{platform}-config")
}
pub fn plugins_config_map_name(platform: &str) -> String {
    format!("{platform}-plugins")
}

pub fn config_map(ctx: &Ctx<'_>, megalis_toml: &str) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(config_map_name(ctx.name), "config"),
        data: Some(BTreeMap::from([(
            "megalis.toml".into(),
            megalis_toml.to_owned(),
        )])),
        ..Default::default()
    }
}

pub fn plugins_config_map(ctx: &Ctx<'_>, plugins_toml: &str) -> ConfigMap {
    ConfigMap {
        metadata: ctx.meta(plugins_config_map_name(ctx.name), "plugins"),
        data: Some(BTreeMap::from([(
            "plugins.toml".into(),
            plugins_toml.to_owned(),
        )])),
        ..Default::default()
    }
}

/// Restricted Pod Security Standard: non-root, no privilege escalation, no capability,
/// read-only root filesystem, RuntimeDefault seccomp.
fn restricted_container() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".into()]),
            ..Default::default()
        }),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str, items: &[(&str, &str)]) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            items: Some(
                items
                    .iter()
                    .map(|(key, path)| KeyToPath {
                        key: (*key).into(),
                        path: (*path).into(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_from_secret(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                optional: Some(false),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

pub fn deployment(ctx: &Ctx<'_>, plugins: &[LoadedPlugin], checksum: &str) -> Deployment {
    let spec = ctx.spec();
    let mut env_vars = vec![];
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            // A projected volume, not subPath mounts: the kubelet refreshes it in place, which is
            // how plugins.toml changes reach the running server without a restart.
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: config_map_name(ctx.name),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: plugins_config_map_name(ctx.name),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
        secret_volume(
            "audit-key",
            &spec.audit.signing_key_secret,
            &[("signing.key", "signing.key")],
        ),
    ];
    let mut mounts = vec![
        mount("config", CONFIG_DIR),
        mount("audit-key", AUDIT_DIR),
        VolumeMount {
            name: "tmp".into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    mounts.push(VolumeMount {
        name: "data".into(),
        mount_path: DATA_DIR.into(),
        ..Default::default()
    });
    volumes.push(match &spec.data_volume {
        Some(_) => Volume {
            name: "data".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: data_claim_name(ctx.name),
                ..Default::default()
            }),
            ..Default::default()
        },
        None => Volume {
            name: "data".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        },
    });

    match (&spec.database.postgres, &spec.database.sqlite) {
        (Some(pg), _) => {
            volumes.push(secret_volume(
                "database",
                &pg.url_secret.name,
                &[(&pg.url_secret.key, "url")],
            ));
            mounts.push(mount("database", &format!("{SECRETS_DIR}/database")));
            env_vars.push(env(
                "MEGALIS_DATABASE_URL_FILE",
                format!("{SECRETS_DIR}/database/url"),
            ));
        }
        // The SQLite URL holds no secret, but database URLs never go through the ConfigMap.
        _ => env_vars.push(env(
            "MEGALIS_DATABASE_URL",
            format!("sqlite://{DATA_DIR}/megalis.db"),
        )),
    }
    if let Some(s3) = &spec.blobs.s3 {
        env_vars.push(env_from_secret(
            "MEGALIS_BLOBS_S3_ACCESS_KEY_ID",
            &s3.credentials_secret,
            "accessKeyId",
        ));
        volumes.push(secret_volume(
            "s3",
            &s3.credentials_secret,
            &[("secretAccessKey", "secret-access-key")],
        ));
        mounts.push(mount("s3", &format!("{SECRETS_DIR}/s3")));
        env_vars.push(env(
            "MEGALIS_BLOBS_S3_SECRET_ACCESS_KEY_FILE",
            format!("{SECRETS_DIR}/s3/secret-access-key"),
        ));
    }
    if let Some(oidc) = &spec.oidc {
        let secret = &oidc.upstream_client_secret;
        volumes.push(secret_volume(
            "oidc",
            &secret.name,
            &[(&secret.key, "client-secret")],
        ));
        mounts.push(mount("oidc", &format!("{SECRETS_DIR}/oidc")));
        env_vars.push(env(
            "MEGALIS_OIDC_UPSTREAM_CLIENT_SECRET_FILE",
            format!("{SECRETS_DIR}/oidc/client-secret"),
        ));
    }
    if let Some(secret) = &spec.server_tls_secret {
        volumes.push(secret_volume(
            "tls",
            secret,
            &[("tls.crt", "tls.crt"), ("tls.key", "tls.key")],
        ));
        mounts.push(mount("tls", TLS_DIR));
    }
    let mut ports = vec![container_port("http", HTTP_PORT)];
    if spec.server_tls_secret.is_some() {
        ports.push(container_port("https", HTTPS_PORT));
    }
    if let Some(mtls) = &spec.mtls {
        let mut items = vec![("ca.crt", "ca.crt")];
        if mtls.crl {
            items.push(("crl.pem", "crl.pem"));
        }
        volumes.push(secret_volume("cps", &mtls.cps_trust_bundle_secret, &items));
        mounts.push(mount("cps", CPS_DIR));
        ports.push(container_port("mtls", mtls.port));
    }
    if let Some(mllp) = &spec.mllp {
        ports.push(container_port("mllp", mllp.port.unwrap_or(MLLP_PORT)));
    }
    if let Some(dicom) = &spec.dicom {
        ports.push(container_port("dicom", dicom.port.unwrap_or(DICOM_PORT)));
    }

    let server = Container {
        name: "megalis".into(),
        image: Some(spec.image.clone()),
        args: Some(vec!["--config".into(), CONFIG_FILE.into(), "serve".into()]),
        env: Some(env_vars),
        ports: Some(ports),
        volume_mounts: Some(mounts),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(restricted_container()),
        startup_probe: Some(http_probe("/healthz", 2, 60)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        ..Default::default()
    };

    let mut annotations = spec.pod.annotations.clone();
    annotations.insert(CONFIG_CHECKSUM_ANNOTATION.into(), checksum.to_owned());
    let mut pod_labels = platform_selector(ctx.name);
    pod_labels.insert(crate::labels::COMPONENT.into(), "server".into());

    Deployment {
        metadata: ctx.meta(ctx.name, "server"),
        spec: Some(DeploymentSpec {
            // Left out under autoscaling, so that server-side apply does not fight the HPA.
            replicas: spec.autoscaling.is_none().then_some(spec.replicas),
            selector: LabelSelector {
                match_labels: Some(platform_selector(ctx.name)),
                ..Default::default()
            },
            strategy: Some(if single_writer(ctx) {
                // One pod holds the SQLite file or a ReadWriteOnce volume: stop it before the next starts.
                DeploymentStrategy {
                    type_: Some("Recreate".into()),
                    ..Default::default()
                }
            } else {
                DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    ..Default::default()
                }
            }),
            template: PodTemplateSpec {
                metadata: Some(kube::core::ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(PodSecurityContext {
                        run_as_non_root: Some(true),
                        run_as_user: Some(RUN_AS),
                        run_as_group: Some(RUN_AS),
                        fs_group: Some(RUN_AS),
                        seccomp_profile: Some(SeccompProfile {
                            type_: "RuntimeDefault".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    termination_grace_period_seconds: Some(
                        i64::from(spec.shutdown_grace_period_seconds) + 10,
                    ),
                    init_containers: fetcher(
                        &spec.plugin_fetcher_image,
                        plugins,
                        restricted_container(),
                    )
                    .map(|c| vec![c]),
                    containers: vec![server],
                    volumes: Some(volumes),
                    image_pull_secrets: (!spec.image_pull_secrets.is_empty()).then(|| {
                        spec.image_pull_secrets
                            .iter()
                            .map(|name| LocalObjectReference { name: name.clone() })
                            .collect()
                    }),
                    node_selector: (!spec.pod.node_selector.is_empty())
                        .then(|| spec.pod.node_selector.clone()),
                    priority_class_name: spec.pod.priority_class_name.clone(),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn single_writer(ctx: &Ctx<'_>) -> bool {
    let spec = ctx.spec();
    spec.database.sqlite.is_some()
        || spec
            .data_volume
            .as_ref()
            .is_some_and(|v| v.access_mode == VolumeAccessMode::ReadWriteOnce)
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".into(), Quantity("250m".into())),
            ("memory".into(), Quantity("256Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".into(), Quantity("1Gi".into()))])),
        ..Default::default()
    }
}

fn service_port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// The in-cluster Service (behind the ingress), then one LoadBalancer per external listener.
pub fn services(ctx: &Ctx<'_>) -> Vec<Service> {
    let spec = ctx.spec();
    let mut ports = vec![service_port("http", HTTP_PORT)];
    if spec.server_tls_secret.is_some() {
        ports.push(service_port("https", HTTPS_PORT));
    }
    let mut services = vec![Service {
        metadata: ctx.meta(ctx.name, "server"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(platform_selector(ctx.name)),
            ports: Some(ports),
            ..Default::default()
        }),
        ..Default::default()
    }];
    if let Some(mtls) = &spec.mtls {
        services.push(external_service(ctx, "mtls", mtls.port, &mtls.exposure));
    }
    if let Some(mllp) = &spec.mllp {
        services.push(external_service(
            ctx,
            "mllp",
            mllp.port.unwrap_or(MLLP_PORT),
            &mllp.exposure,
        ));
    }
    if let Some(dicom) = &spec.dicom {
        services.push(external_service(
            ctx,
            "dicom",
            dicom.port.unwrap_or(DICOM_PORT),
            &dicom.exposure,
        ));
    }
    services
}

/// A TCP LoadBalancer: TLS passes through untouched (the server checks the CPS certificate
/// itself) and `externalTrafficPolicy: Local` keeps the hospital's source address, which the
/// NetworkPolicy of the listener filters on.
fn external_service(ctx: &Ctx<'_>, listener: &str, port: i32, exposure: &ExposureSpec) -> Service {
    let mut metadata = ctx.meta(format!("{}-{listener}", ctx.name), listener);
    if !exposure.service_annotations.is_empty() {
        metadata.annotations = Some(exposure.service_annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("LoadBalancer".into()),
            external_traffic_policy: Some("Local".into()),
            selector: Some(platform_selector(ctx.name)),
            ports: Some(vec![service_port(listener, port)]),
            load_balancer_source_ranges: (!exposure.load_balancer_source_ranges.is_empty())
                .then(|| exposure.load_balancer_source_ranges.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn ingress(ctx: &Ctx<'_>) -> Ingress {
    let spec = ctx.spec();
    let mut metadata = ctx.meta(ctx.name, "server");
    if !spec.ingress.annotations.is_empty() {
        metadata.annotations = Some(spec.ingress.annotations.clone());
    }
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: spec.ingress.class_name.clone(),
            tls: Some(vec![IngressTLS {
                hosts: Some(vec![spec.public_host.clone()]),
                secret_name: Some(spec.ingress.tls_secret.clone()),
            }]),
            rules: Some(vec![IngressRule {
                host: Some(spec.public_host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: ctx.name.to_owned(),
                                port: Some(ServiceBackendPort {
                                    name: Some("http".into()),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// At most one pod down during voluntary disruptions; with one replica this still lets a node
/// drain (the platform is then briefly unavailable, which a single-replica region accepts).
pub fn pod_disruption_budget(ctx: &Ctx<'_>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: ctx.meta(ctx.name, "server"),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(platform_selector(ctx.name)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn autoscaler(ctx: &Ctx<'_>) -> Option<HorizontalPodAutoscaler> {
    let scaling = ctx.spec().autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: ctx.meta(ctx.name, "server"),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".into()),
                kind: "Deployment".into(),
                name: ctx.name.to_owned(),
            },
            min_replicas: Some(scaling.min_replicas),
            max_replicas: scaling.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(scaling.target_cpu_utilization_percentage),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

pub fn data_claim_name(platform: &str) -> String {
    format!("{platform}-data")
}

/// The data volume claim has no owner reference: deleting the RegionalPlatform must not delete
/// health data. It is also never swept (see `ManagedKind::swept`).
pub fn data_volume_claim(ctx: &Ctx<'_>) -> Option<PersistentVolumeClaim> {
    let volume = ctx.spec().data_volume.as_ref()?;
    let mut metadata = ctx.meta(data_claim_name(ctx.name), "data");
    metadata.owner_references = None;
    let access_mode = match volume.access_mode {
        VolumeAccessMode::ReadWriteOnce => "ReadWriteOnce",
        VolumeAccessMode::ReadWriteMany => "ReadWriteMany",
    };
    Some(PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![access_mode.into()]),
            storage_class_name: volume.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".into(),
                    Quantity(volume.size.clone()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// prometheus-operator's ServiceMonitor has no k8s-openapi type: it is built as a dynamic object.
pub fn service_monitor(ctx: &Ctx<'_>) -> Option<DynamicObject> {
    let monitoring = &ctx.spec().monitoring;
    if !monitoring.service_monitor {
        return None;
    }
    let mut endpoint = json!({ "port": "http", "path": "/metrics", "scheme": "http" });
    if let Some(interval) = &monitoring.interval {
        endpoint["interval"] = json!(interval);
    }
    let resource =
        ApiResource::from_gvk_with_plural(&ManagedKind::ServiceMonitor.gvk(), "servicemonitors");
    let mut monitor = DynamicObject::new(ctx.name, &resource).data(json!({
        "spec": {
            "selector": { "matchLabels": crate::labels::object_labels(ctx.name, "server") },
            "endpoints": [endpoint],
        }
    }));
    monitor.metadata = ctx.meta(ctx.name, "server");
    Some(monitor)
}
