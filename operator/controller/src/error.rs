use megalis_operator_build::ManagedKind;

/// Everything that can go wrong in the operator. `reason()` is the label of the failure metric
/// and the reason of the Kubernetes Event, so it stays a short, stable PascalCase word.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid spec: {0}")]
    InvalidSpec(#[from] megalis_operator_api::SpecError),
    #[error("cannot build the desired objects: {0}")]
    Build(#[from] megalis_operator_build::BuildError),
    #[error("cannot apply {kind:?} {name}: {source}")]
    Apply {
        kind: ManagedKind,
        name: String,
        source: kube::Error,
    },
    #[error("cannot delete orphaned {kind:?} {name}: {source}")]
    Sweep {
        kind: ManagedKind,
        name: String,
        source: kube::Error,
    },
    #[error("cannot read {what}: {source}")]
    Read {
        what: &'static str,
        source: kube::Error,
    },
    #[error("cannot write the status: {0}")]
    Status(kube::Error),
    #[error("the resource has no {0}")]
    MissingMetadata(&'static str),
    #[error("leader election: {0}")]
    Lease(kube::Error),
    #[error("cannot read {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Yaml {
        path: String,
        source: serde_yaml::Error,
    },
    #[error("{path}: {message}")]
    Input { path: String, message: String },
    #[error("cannot encode YAML: {0}")]
    Encode(#[from] serde_yaml::Error),
    #[error("kubernetes client: {0}")]
    Client(kube::Error),
    #[error("metrics endpoint: {0}")]
    Serve(std::io::Error),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Build(_) => "BuildFailed",
            Error::Apply { .. } => "ApplyFailed",
            Error::Sweep { .. } => "SweepFailed",
            Error::Read { .. } => "ReadFailed",
            Error::Status(_) => "StatusFailed",
            Error::MissingMetadata(_) => "MissingMetadata",
            Error::Lease(_) => "LeaseFailed",
            Error::File { .. } | Error::Yaml { .. } | Error::Input { .. } | Error::Encode(_) => {
                "InputError"
            }
            Error::Client(_) => "ClientError",
            Error::Serve(_) | Error::Metrics(_) => "MetricsError",
        }
    }
}
