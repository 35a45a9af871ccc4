use kube::core::{ApiResource, GroupVersionKind};

/// Kinds of object the operator owns. The controller applies and sweeps exactly these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ManagedKind {
    ConfigMap,
    Deployment,
    Service,
    Ingress,
    PodDisruptionBudget,
    HorizontalPodAutoscaler,
    PersistentVolumeClaim,
    ServiceMonitor,
    NetworkPolicy,
}

impl ManagedKind {
    pub const ALL: [ManagedKind; 9] = [
        ManagedKind::ConfigMap,
        ManagedKind::Deployment,
        ManagedKind::Service,
        ManagedKind::Ingress,
        ManagedKind::PodDisruptionBudget,
        ManagedKind::HorizontalPodAutoscaler,
        ManagedKind::PersistentVolumeClaim,
        ManagedKind::ServiceMonitor,
        ManagedKind::NetworkPolicy,
    ];

    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.gvk().kind == kind)
    }

    pub fn gvk(self) -> GroupVersionKind {
        let (group, version, kind) = match self {
            ManagedKind::ConfigMap => ("", "v1", "ConfigMap"),
            ManagedKind::Deployment => ("apps", "v1", "Deployment"),
            ManagedKind::Service => ("", "v1", "Service"),
            ManagedKind::Ingress => ("networking.k8s.io", "v1", "Ingress"),
            ManagedKind::PodDisruptionBudget => ("policy", "v1", "PodDisruptionBudget"),
            ManagedKind::HorizontalPodAutoscaler => {
                ("autoscaling", "v2", "HorizontalPodAutoscaler")
            }
            ManagedKind::PersistentVolumeClaim => ("", "v1", "PersistentVolumeClaim"),
            ManagedKind::ServiceMonitor => ("monitoring.coreos.com", "v1", "ServiceMonitor"),
            ManagedKind::NetworkPolicy => ("networking.k8s.io", "v1", "NetworkPolicy"),
        };
        GroupVersionKind::gvk(group, version, kind)
    }

    pub fn api_resource(self) -> ApiResource {
        let plural = match self {
            ManagedKind::ConfigMap => "configmaps",
            ManagedKind::Deployment => "deployments",
            ManagedKind::Service => "services",
            ManagedKind::Ingress => "ingresses",
            ManagedKind::PodDisruptionBudget => "poddisruptionbudgets",
            ManagedKind::HorizontalPodAutoscaler => "horizontalpodautoscalers",
            ManagedKind::PersistentVolumeClaim => "persistentvolumeclaims",
            ManagedKind::ServiceMonitor => "servicemonitors",
            ManagedKind::NetworkPolicy => "networkpolicies",
        };
        ApiResource::from_gvk_with_plural(&self.gvk(), plural)
    }

    /// Whether an object of this kind left over by an earlier spec is deleted. Volumes hold
    /// health data: they are never deleted by the operator, only by a person.
    pub fn swept(self) -> bool {
        self != ManagedKind::PersistentVolumeClaim
    }

    /// Kinds that need a CRD which may be absent from the cluster (prometheus-operator).
    pub fn optional_api(self) -> bool {
        self == ManagedKind::ServiceMonitor
    }
}
