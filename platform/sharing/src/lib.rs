//! Sharing with consent: who may see a patient's data, and why.
//!
//! - [`decision`]: the one pure access decision ([`decide`]) every route touching patient data
//!   calls, with the reason it gives (audited, and shown to the person refused);
//! - [`store`]: the records the decision reads, on the database: care relationships (declared,
//!   referred, and from hospital encounters), the patient's directives (objection, consent,
//!   block, mask, objection to emergency access) and emergency accesses;
//! - [`fhir`]: the patient's directives as FHIR R4 `Consent` resources.

pub mod activation;
pub mod decision;
pub mod fhir;
pub mod store;

pub use decision::{
    AccessRequest, Action, CareLink, CareLinkSource, Confidentiality, Decision, DocumentFacts,
    EmergencyAccess, Micros, PatientChoices, Purpose, Reason, Requester, Resource, SharingFacts,
    decide, refusal_about_the_caller,
};
pub use store::{
    CareLinkEntry, Directive, DirectiveKind, EmergencyEntry, NewCareLink, NewDirective,
    SharingSettings, SharingStore,
};

/// What can go wrong with sharing records.
#[derive(Debug, thiserror::Error)]
pub enum SharingError {
    /// The request is malformed (a missing justification, a bad national id…).
    #[error("{0}")]
    Invalid(String),
    /// The rules refuse it (an emergency access after an objection, a referral from outside
    /// the care team).
    #[error("{}", .0.text())]
    Refused(Reason),
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored value this code does not know: a schema and code out of step.
    #[error("corrupt sharing record: {0}")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl SharingError {
    /// Whether the caller's input is at fault (4xx), as opposed to the platform (5xx).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            SharingError::Invalid(_) | SharingError::Refused(_) | SharingError::NotFound(_)
        )
    }
}

pub type Result<T> = std::result::Result<T, SharingError>;
