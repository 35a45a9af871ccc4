use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of one regional deployment of the Megalis platform.
// kube's repeated `printcolumn(type_ = ..)` arguments look like duplicated attributes to clippy.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "megalis.bzh",
    version = "v1alpha1",
    kind = "RegionalPlatform",
    namespaced,
    status = "RegionalPlatformStatus",
    shortname = "rp",
    category = "megalis",
    // Helm must never delete a CRD on uninstall: that would delete every region with it.
    annotation("helm.sh/resource-policy", "keep"),
    derive = "PartialEq",
    cel,
    doc = "A regional deployment of the Megalis e-health platform",
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Plugins", type_ = "string", json_path = ".status.pluginsReady", description = "Plugins ready / enabled"),
    printcolumn(name = "Isolation", type_ = "string", json_path = ".status.isolation"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(
    validation = Rule::new("!has(self.database.sqlite) || self.replicas == 1")
        .message("embedded SQLite is a file on one volume: replicas must be 1"),
    validation = Rule::new("!has(self.dataVolume) || self.dataVolume.accessMode != 'ReadWriteOnce' || self.replicas == 1")
        .message("a ReadWriteOnce data volume can be mounted by one pod only: replicas must be 1"),
    validation = Rule::new("(!has(self.database.sqlite) && !has(self.blobs.volume)) || has(self.dataVolume)")
        .message("embedded SQLite and volume blob storage need spec.dataVolume"),
    validation = Rule::new("!has(self.autoscaling) || (!has(self.database.sqlite) && (!has(self.dataVolume) || self.dataVolume.accessMode == 'ReadWriteMany'))")
        .message("autoscaling needs PostgreSQL and shared (or no) storage"),
    validation = Rule::new("!has(self.mtls) || has(self.serverTlsSecret)")
        .message("the mutual-TLS listener needs spec.serverTlsSecret"),
    validation = Rule::new("has(self.database.sqlite) == has(oldSelf.database.sqlite)")
        .message("the database engine is immutable: migrate the data to a new platform instead"),
)]
#[serde(rename_all = "camelCase")]
pub struct RegionalPlatformSpec {
    /// Container image of the `megalis` server (pin it by digest in production).
    #[x_kube(validation = Rule::new("self.size() > 0").message("image is required"))]
    pub image: String,
    /// Names of Secrets used to pull the images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,
    /// Number of platform pods (ignored while autoscaling is set).
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 50))]
    pub replicas: i32,
    /// `production` refuses test and demo identities; `test` and `demo` are for non-clinical regions.
    #[serde(default)]
    pub mode: PlatformMode,
    /// External host name of the platform (the ingress host and the source of every absolute URL).
    #[schemars(regex(
        pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$"
    ))]
    pub public_host: String,
    pub ingress: IngressSpec,
    pub database: DatabaseSpec,
    pub blobs: BlobStorageSpec,
    pub audit: AuditSpec,
    /// Persistent volume mounted as the data directory (/var/lib/megalis). Required by SQLite and
    /// volume blobs; without it the data directory is an emptyDir (plugin modules only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_volume: Option<DataVolumeSpec>,
    /// `kubernetes.io/tls` Secret of the server's own HTTPS and mutual-TLS listeners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_tls_secret: Option<String>,
    /// Mutual-TLS listener for CPS smart cards and system clients (TLS passthrough LoadBalancer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MtlsSpec>,
    /// Upstream OpenID Provider (e.g. Pro Santé Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSpec>,
    /// The platform's own OpenID Provider: how it signs access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthSpec>,
    /// HL7 v2 over MLLP listener for hospital information systems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mllp: Option<ListenerSpec>,
    /// DICOM DIMSE listener for modalities and PACS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dicom: Option<ListenerSpec>,
    /// Network isolation: DNS, plugin sources and any extra flow, on top of the flows implied by
    /// the sections above.
    #[serde(default)]
    pub isolation: IsolationSpec,
    /// Compute resources of the platform container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Names of the `Plugin` resources (same namespace) this platform loads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub plugins: Vec<String>,
    /// Image of the init container that downloads plugin modules and checks their SHA-256
    /// (needs `sh`, `wget` and `sha256sum`).
    #[serde(default = "default_fetcher_image")]
    pub plugin_fetcher_image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,
    #[serde(default)]
    pub monitoring: MonitoringSpec,
    #[serde(default)]
    pub log: LogSpec,
    /// Time the server has to drain connections after SIGTERM.
    #[serde(default = "default_grace_period")]
    #[schemars(range(min = 1, max = 600))]
    pub shutdown_grace_period_seconds: i32,
    /// Extra placement and metadata of the platform pods.
    #[serde(default)]
    pub pod: PodSettings,
}

fn default_replicas() -> i32 {
    2
}
fn default_grace_period() -> i32 {
    20
}
fn default_fetcher_image() -> String {
    "docker.io/library/busybox:1.37".to_owned()
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PlatformMode {
    #[default]
    Production,
    Test,
    Demo,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// IngressClass (omit to use the cluster default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// `kubernetes.io/tls` Secret holding the public certificate of `publicHost`.
    pub tls_secret: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Pods of the ingress controller, allowed to reach the HTTP listener. Empty: nothing can.
    #[serde(default)]
    pub controller_peers: Vec<FlowPeer>,
    /// CIDRs of the ingress controller pods, whose X-Forwarded-* headers the server trusts.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.postgres) != has(self.sqlite)").message("set exactly one of postgres or sqlite"))]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqlite: Option<SqliteSpec>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostgresSpec {
    /// Secret key holding the `postgres://` URL; it is mounted as a file, never put in the ConfigMap.
    pub url_secret: SecretKeyRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_connections: Option<u32>,
    /// Where the database runs (CIDRs or selectors): the only egress allowed on `port`.
    #[serde(default)]
    pub peers: Vec<FlowPeer>,
    #[serde(default = "default_postgres_port")]
    pub port: i32,
}

fn default_postgres_port() -> i32 {
    5432
}

/// Embedded SQLite in `<dataDir>/megalis.db`; nothing to configure.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SqliteSpec {}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.volume) != has(self.s3)").message("set exactly one of volume or s3"))]
#[serde(rename_all = "camelCase")]
pub struct BlobStorageSpec {
    /// Blobs under `<dataDir>/blobs` on the data volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeBlobsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Spec>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeBlobsSpec {}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct S3Spec {
    pub bucket: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    pub region: String,
    /// Secret with keys `accessKeyId` and `secretAccessKey`.
    pub credentials_secret: String,
    /// Where the object store answers (CIDRs or selectors): the only egress allowed on `port`.
    #[serde(default)]
    pub peers: Vec<FlowPeer>,
    #[serde(default = "default_https_port")]
    pub port: i32,
}

fn default_https_port() -> i32 {
    443
}

/// Tamper-evident audit trail: the checkpoint signing key stays on a Secret, outside the database.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditSpec {
    /// Secret with the key `signing.key` (PEM).
    pub signing_key_secret: String,
    /// How often a signed checkpoint is written, e.g. `10s`.
    #[serde(default = "default_checkpoint_interval")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub checkpoint_interval: String,
}

fn default_checkpoint_interval() -> String {
    "10s".to_owned()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataVolumeSpec {
    /// Requested size, e.g. `50Gi`.
    #[schemars(regex(pattern = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$"))]
    pub size: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self == oldSelf").message("storageClassName is immutable"))]
    pub storage_class_name: Option<String>,
    #[serde(default)]
    pub access_mode: VolumeAccessMode,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VolumeAccessMode {
    #[default]
    ReadWriteOnce,
    ReadWriteMany,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MtlsSpec {
    /// Secret with `ca.crt` (IGC-Santé trust bundle) and optionally `crl.pem`.
    pub cps_trust_bundle_secret: String,
    /// Whether the Secret holds a `crl.pem` the server must check.
    #[serde(default)]
    pub crl: bool,
    #[serde(default = "default_mtls_port")]
    pub port: i32,
    /// DNS name of the mutual-TLS LoadBalancer (e.g. `cps.sante.example.org`), where the login
    /// page sends card users; `serverTlsSecret` must name it too. Default: the public host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(flatten)]
    pub exposure: ExposureSpec,
}

fn default_mtls_port() -> i32 {
    8444
}

/// How a TCP listener is exposed outside the cluster and who may reach it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExposureSpec {
    /// Who may connect (hospital networks as CIDRs, or in-cluster selectors). Empty: nobody.
    #[serde(default)]
    pub sources: Vec<FlowPeer>,
    /// Passed to the LoadBalancer Service (filtering at the cloud load balancer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancer_source_ranges: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub service_annotations: BTreeMap<String, String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSpec {
    /// Container and Service port (MLLP 2575, DICOM 4242 when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    #[serde(flatten)]
    pub exposure: ExposureSpec,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("self.upstreamIssuer.startsWith('https://')").message("upstreamIssuer must be an https URL"))]
#[serde(rename_all = "camelCase")]
pub struct OidcSpec {
    pub upstream_issuer: String,
    pub upstream_client_id: String,
    pub upstream_client_secret: SecretKeyRef,
    /// Addresses of the upstream provider (CIDRs): the only HTTPS egress allowed for it.
    #[serde(default)]
    pub egress_peers: Vec<FlowPeer>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(
    validation = Rule::new("self.flows.all(f, self.flows.exists_one(g, g.name == f.name))").message("flow names must be unique"),
)]
#[serde(rename_all = "camelCase")]
pub struct IsolationSpec {
    /// DNS servers the pods may query; defaults to kube-dns in kube-system.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_peers: Option<Vec<FlowPeer>>,
    /// Where the plugin fetcher downloads modules from (HTTPS). Empty: no download is possible.
    #[serde(default)]
    pub plugin_source_peers: Vec<FlowPeer>,
    /// Additional flows, each rendered as one NetworkPolicy.
    #[serde(default)]
    #[schemars(length(max = 64))]
    pub flows: Vec<IsolationFlow>,
}

/// One allowed flow between the platform pods and named peers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(
    validation = Rule::new("self.direction == 'Egress' || self.ports.all(p, has(p.name))")
        .message("an Ingress flow targets named platform ports"),
    validation = Rule::new("self.direction == 'Ingress' || self.ports.all(p, has(p.port))")
        .message("an Egress flow targets port numbers"),
)]
#[serde(rename_all = "camelCase")]
pub struct IsolationFlow {
    /// DNS label, part of the NetworkPolicy name.
    #[schemars(regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"), length(max = 40))]
    pub name: String,
    pub direction: FlowDirection,
    /// Peers of the flow. Empty: the flow allows nothing.
    #[schemars(length(max = 64))]
    pub peers: Vec<FlowPeer>,
    #[schemars(length(min = 1, max = 16))]
    pub ports: Vec<FlowPort>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowDirection {
    /// From the peers to the platform pods.
    Ingress,
    /// From the platform pods to the peers.
    Egress,
}

/// A peer of a flow: a CIDR, or namespace and/or pod selectors. Host names and URLs cannot be
/// expressed by a NetworkPolicy and are rejected.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.cidr) != (has(self.namespaceSelector) || has(self.podSelector))")
    .message("a peer is either a cidr or namespace/pod selectors (NetworkPolicies cannot express host names or URLs)"))]
#[serde(rename_all = "camelCase")]
pub struct FlowPeer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FlowPort {
    /// Named platform port (Ingress flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<PlatformPort>,
    /// Port number on the peer (Egress flows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    #[serde(default)]
    pub protocol: Protocol,
}

/// Ports of a platform pod that a flow can open.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "lowercase")]
pub enum PlatformPort {
    Http,
    Https,
    Mtls,
    Mllp,
    Dicom,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("minReplicas must not exceed maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    #[schemars(range(min = 1, max = 50))]
    pub max_replicas: i32,
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 10, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

fn default_cpu_target() -> i32 {
    70
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// Create a prometheus-operator ServiceMonitor (needs its CRD in the cluster).
    #[serde(default)]
    pub service_monitor: bool,
    /// Scrape interval, e.g. `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Prometheus pods, allowed to scrape `/metrics` on the HTTP listener.
    #[serde(default)]
    pub scraper_peers: Vec<FlowPeer>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogSpec {
    #[serde(default = "default_log_format")]
    pub format: LogFormat,
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> LogFormat {
    LogFormat::Json
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// Token signing of the platform's OpenID Provider (server keys `auth.*`).
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AuthSpec {
    /// Signature of access tokens: `ES256` (cheap to issue; the default) or `RS256` (cheap to
    /// verify, for resource servers validating many distinct tokens). ID tokens are RS256.
    #[serde(default = "default_token_algorithm")]
    pub access_token_algorithm: TokenAlgorithm,
}

fn default_token_algorithm() -> TokenAlgorithm {
    TokenAlgorithm::ES256
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAlgorithm {
    ES256,
    RS256,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodSettings {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// Observed state, written by the operator only.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegionalPlatformStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PlatformPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// `ready/enabled` plugins, e.g. `3/4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins_ready: Option<String>,
    /// `Isolated` once the default-deny and every flow policy are applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Checksum of the rendered configuration the pods run with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_checksum: Option<String>,
}

#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformPhase {
    Pending,
    Progressing,
    Ready,
    Degraded,
    Invalid,
}
