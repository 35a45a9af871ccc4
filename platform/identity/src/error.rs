//! The one error type of the identity context.

/// Why an identity input was refused. Each variant names the field at fault so that the HL7
/// listener can put it in an ERR segment and the FHIR API in an OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("INS {field}: {reason}")]
    InvalidIns { field: &'static str, reason: String },
    #[error("INS OID {0} is a test or demonstration OID, refused outside test mode")]
    TestOidRefused(String),
    #[error("unknown INS OID {0}")]
    UnknownInsOid(String),
    #[error("invalid regional identifier {0:?}")]
    InvalidRegionalId(String),
    #[error("missing strict trait: {0}")]
    MissingTrait(&'static str),
    #[error("invalid {field}: {reason}")]
    InvalidTrait { field: &'static str, reason: String },
    #[error("invalid identity status {0:?}")]
    InvalidStatus(String),
    #[error("a fictitious identity is never linked or merged")]
    FictitiousNotLinkable,
    #[error("invalid matching configuration: {0}")]
    InvalidConfig(String),
}
