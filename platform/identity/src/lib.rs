//! Regional patient identity (master patient index) — the pure domain.
//!
//! - [`ins`]: the national health identifier (INS) and its OIDs;
//! - [`regional_id`]: the regional identifier of a golden record, with its check digit;
//! - [`identity`]: strict traits, identity status and attributes, and the RNIV rules on them;
//! - [`golden`]: survivorship (how a golden record is built from its sources) and conflicts;
//! - [`matching`]: French name normalisation, phonetic code, blocking, Fellegi–Sunter decisions;
//! - [`synth`]: a synthetic population of Brittany with duplicates injected at known rates,
//!   and [`evaluate`], which scores matching against the known truth.
//!
//! No I/O here: the store, the MLLP listener and the FHIR API are edges around this crate.

mod error;
pub mod evaluate;
pub mod golden;
pub mod identity;
pub mod ins;
pub mod matching;
pub mod regional_id;
pub mod synth;

pub use error::IdentityError;
pub use golden::{Conflict, GoldenRecord, SourceTrust, survive};
pub use identity::{
    Attributes, Demographics, IdentityStatus, Sex, SourceId, SourceRecord, StrictTraits,
};
pub use ins::{Ins, InsKind};
pub use regional_id::RegionalId;
