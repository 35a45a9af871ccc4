//! The directory of health professionals of Megalis.
//!
//! * [`model`]: practitioners (RPPS/ADELI, national id `8`+RPPS), organisations (sites: FINESS,
//!   SIRET, address) and activities (practitioner × site × profession × specialty × mode).
//! * [`parse`]: a streaming, pure parser of the public Annuaire Santé extraction
//!   `PS_LibreAcces_Personne_activite_*.txt`, with line numbers and reasons for malformed rows.
//! * [`import`]: loads that file into the database in batches — idempotent (content hashes:
//!   re-importing a file rewrites nothing) and incremental (what a newer file no longer lists is
//!   closed, audited, and loses access at once).
//! * [`access`]: the look-ups authentication uses (is this national id an active practitioner,
//!   with which profession, specialties and roles; what was closed since a time).
//! * [`fhir`]: FHIR R4 `Practitioner`, `PractitionerRole` and `Organization` read and search.
//! * [`generate`]: a deterministic generator of realistic synthetic extractions (Brittany).

pub mod access;
pub mod fhir;
pub mod generate;
pub mod import;
pub mod model;
pub mod parse;
mod sql;

pub use access::{PractitionerAccess, PractitionerStatus, RoleAt};
pub use import::{EntityCounts, ImportOptions, ImportReport, import_file, import_reader};
pub use parse::{Parsed, Reader, RowError};

/// OID of the national practitioner identifier (`8`+RPPS, `0`+ADELI): `IDNPS`.
pub const NATIONAL_ID_OID: &str = "1.2.250.1.71.4.2.1";
/// FHIR system of the national practitioner identifier.
pub const NATIONAL_ID_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.1";
/// FHIR system of the RPPS number alone.
pub const RPPS_SYSTEM: &str = "http://rpps.fr";
/// FHIR system of FINESS numbers (site and legal entity).
pub const FINESS_SYSTEM: &str = "http://finess.sante.gouv.fr";
/// FHIR system of SIRET numbers.
pub const SIRET_SYSTEM: &str = "http://sirene.fr";
/// FHIR system of the national structure technical id (our Organization id).
pub const STRUCTURE_ID_SYSTEM: &str = "urn:oid:1.2.250.1.71.4.2.2";
/// TRE_G15 professions.
pub const PROFESSION_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante";
/// TRE_R38 ordinal specialties.
pub const SPECIALTY_SYSTEM: &str =
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale";

/// The one error type of the directory crate.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The file is not an Annuaire Santé `Personne_activite` extraction (nothing was imported).
    #[error("header: {0}")]
    Header(String),
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    #[error("cannot open {path}: {source}")]
    Open {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// A search the FHIR API does not support or cannot understand (answered with 400).
    #[error("{0}")]
    InvalidSearch(String),
    /// The import would close more than the safety limit allows (nothing was closed).
    #[error(
        "refusing to close {candidates} of {active} active practitioners (more than the limit \
         of {limit}): is the file complete? Re-run with --allow-mass-closure if it is"
    )]
    MassClosure {
        candidates: u64,
        active: u64,
        limit: u64,
    },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Store(#[from] megalis_store::StoreError),
    #[error("audit: {0}")]
    Audit(#[from] megalis_audit::AuditError),
}

impl DirectoryError {
    /// True when the database (or the audit trail's database) could not be reached.
    pub fn is_unavailable(&self) -> bool {
        match self {
            DirectoryError::Database(e) => megalis_store::is_connection_error(e),
            DirectoryError::Store(e) => e.is_unavailable(),
            DirectoryError::Audit(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

pub type Result<T, E = DirectoryError> = std::result::Result<T, E>;
