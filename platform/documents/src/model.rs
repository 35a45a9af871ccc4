//! The shared-document domain: what a document entry is and the rules on its values, with no
//! I/O. The FHIR mapping ([`crate::fhir`]) reads resources into these types and the database
//! layer stores them.

use megalis_blobs::Sha256Digest;
use serde::{Deserialize, Serialize};

use crate::datetime::FhirDateTime;

/// Code system of document types.
pub const LOINC: &str = "http://loinc.org";
/// HL7 v3 Confidentiality, the code system of `DocumentReference.securityLabel` in MHD.
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// OID of the national identifier of health professionals (`8`+RPPS, `0`+ADELI).
pub const NATIONAL_ID_OID: &str = "1.2.250.1.71.4.2.1";
/// OID of the INS-NIR.
pub const INS_NIR_OID: &str = "1.2.250.1.213.1.4.8";

/// Status of a document entry (FHIR `DocumentReferenceStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Current,
    /// Replaced by a newer version, which is kept alongside it.
    Superseded,
    /// Withdrawn: the document must not be used. This is how documents are "deleted".
    EnteredInError,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Superseded => "superseded",
            Status::EnteredInError => "entered-in-error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "current" => Some(Status::Current),
            "superseded" => Some(Status::Superseded),
            "entered-in-error" => Some(Status::EnteredInError),
            _ => None,
        }
    }
}

/// Status of the document itself (`DocumentReference.docStatus`, FHIR `CompositionStatus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocStatus {
    Preliminary,
    Final,
    Amended,
    EnteredInError,
}

impl DocStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DocStatus::Preliminary => "preliminary",
            DocStatus::Final => "final",
            DocStatus::Amended => "amended",
            DocStatus::EnteredInError => "entered-in-error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "preliminary" => Some(DocStatus::Preliminary),
            "final" => Some(DocStatus::Final),
            "amended" => Some(DocStatus::Amended),
            "entered-in-error" => Some(DocStatus::EnteredInError),
            _ => None,
        }
    }
}

/// HL7 v3 Confidentiality, from least to most restricted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Confidentiality {
    /// Unrestricted.
    U,
    /// Low.
    L,
    /// Moderate.
    M,
    /// Normal: the default of health data.
    N,
    /// Restricted.
    R,
    /// Very restricted.
    V,
}

impl Confidentiality {
    pub fn code(self) -> &'static str {
        match self {
            Confidentiality::U => "U",
            Confidentiality::L => "L",
            Confidentiality::M => "M",
            Confidentiality::N => "N",
            Confidentiality::R => "R",
            Confidentiality::V => "V",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Confidentiality::U => "unrestricted",
            Confidentiality::L => "low",
            Confidentiality::M => "moderate",
            Confidentiality::N => "normal",
            Confidentiality::R => "restricted",
            Confidentiality::V => "very restricted",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "U" => Some(Confidentiality::U),
            "L" => Some(Confidentiality::L),
            "M" => Some(Confidentiality::M),
            "N" => Some(Confidentiality::N),
            "R" => Some(Confidentiality::R),
            "V" => Some(Confidentiality::V),
            _ => None,
        }
    }
}

/// A coded value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

/// A business identifier (`system` is a URI, `urn:oid:…` for French identifiers).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

/// The author of a document: a health professional, optionally acting for an organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    /// `8`+RPPS or `0`+ADELI.
    pub national_id: String,
    /// The literal reference the sender gave (`Practitioner/…` or `PractitionerRole/…`), kept
    /// to be written back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<Identifier>,
}

/// The document's content as stored: one Binary, its hashes and how to present it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub binary_id: String,
    pub content_type: String,
    pub size: u64,
    /// The blob store's address of the content.
    pub sha256: Sha256Digest,
    /// FHIR R4 `Attachment.hash`, lower-case hex here (base64 in FHIR).
    pub sha1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation: Option<FhirDateTime>,
    /// `content.format` (MHD formatCode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Coding>,
}

/// The immutable metadata of a document entry as it was provided. The status, which changes,
/// is kept beside it in [`DocumentEntry`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// `urn:oid:…` or `urn:uuid:…`, unique across the region.
    pub master_identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_status: Option<DocStatus>,
    /// LOINC document type.
    pub doc_type: Coding,
    /// Class of document (MHD `category`, the XDS classCode; the French class codes of the
    /// CI-SIS are one such system).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Coding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<Identifier>,
    pub confidentiality: Confidentiality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_start: Option<FhirDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_end: Option<FhirDateTime>,
    /// `context.facilityType` (XDS healthcareFacilityTypeCode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_type: Option<Coding>,
    /// `context.practiceSetting` (XDS practiceSettingCode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice_setting: Option<Coding>,
    /// When the reference was made (`DocumentReference.date`, an instant); the submission time
    /// when the sender gave none.
    pub date: FhirDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The id of the document this one replaces (`relatesTo` with code `replaces`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    pub content: Content,
}

/// A stored document entry (one `DocumentReference`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentEntry {
    /// Opaque regional id (the FHIR resource id).
    pub id: String,
    /// Regional patient id.
    pub patient_id: String,
    pub status: Status,
    pub metadata: Metadata,
    /// The principal that provided it.
    pub created_by: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// An uploaded content (one FHIR `Binary`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Binary {
    pub id: String,
    pub sha256: Sha256Digest,
    /// Lower-case hex SHA-1.
    pub sha1: String,
    pub size: u64,
    /// The declared content type, normalised (lower-case essence, checked against the content).
    pub content_type: String,
    pub uploaded_by: String,
    pub created_at_us: i64,
}

impl Binary {
    /// FHIR `Attachment.hash`: the SHA-1 in base64.
    pub fn sha1_base64(&self) -> String {
        sha1_base64(&self.sha1)
    }
}

/// Hex SHA-1 → base64, the form of FHIR `Attachment.hash`.
pub(crate) fn sha1_base64(hex_sha1: &str) -> String {
    use base64::Engine;
    let bytes = hex::decode(hex_sha1).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Whether `code` has the shape of a LOINC code: 1 to 7 digits, a hyphen, and the check digit
/// of the LOINC "mod 10" algorithm (a Luhn check: every other digit from the right doubled, the
/// digits summed), so a mistyped code is caught rather than stored.
pub fn is_loinc_code(code: &str) -> bool {
    let Some((number, check)) = code.split_once('-') else {
        return false;
    };
    if number.is_empty()
        || number.len() > 7
        || check.len() != 1
        || !number.bytes().all(|b| b.is_ascii_digit())
        || !check.bytes().all(|b| b.is_ascii_digit())
    {
        return false;
    }
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let twice = d * 2;
                twice / 10 + twice % 10
            } else {
                d
            }
        })
        .sum();
    let expected = (10 - sum % 10) % 10;
    u32::from(check.as_bytes()[0] - b'0') == expected
}

/// Whether `value` is a master identifier MHD accepts: `urn:oid:` with an OID, or `urn:uuid:`
/// with a UUID in its canonical 8-4-4-4-12 hexadecimal form.
pub fn is_master_identifier(value: &str) -> bool {
    if let Some(oid) = value.strip_prefix("urn:oid:") {
        return is_oid(oid);
    }
    if let Some(uuid) = value.strip_prefix("urn:uuid:") {
        return is_uuid(uuid);
    }
    false
}

/// `1.2.250…`: dot-separated numbers without leading zeros (ISO/IEC 8824), first arc 0, 1 or 2.
pub fn is_oid(oid: &str) -> bool {
    let arcs: Vec<&str> = oid.split('.').collect();
    arcs.len() >= 2
        && matches!(arcs[0], "0" | "1" | "2")
        && arcs.iter().all(|a| {
            !a.is_empty()
                && a.bytes().all(|b| b.is_ascii_digit())
                && (a.len() == 1 || !a.starts_with('0'))
        })
}

pub(crate) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// National id of a health professional: `8` + 11-digit RPPS, or `0` + 9-character ADELI.
pub fn is_national_id(id: &str) -> bool {
    let b = id.as_bytes();
    match b.first() {
        Some(b'8') => b.len() == 12 && b[1..].iter().all(u8::is_ascii_digit),
        Some(b'0') => b.len() == 10 && b[1..].iter().all(u8::is_ascii_alphanumeric),
        _ => false,
    }
}

/// Whether `id` is a valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A fresh opaque id: 128 random bits in hexadecimal. Random rather than sequential so that an
/// id reveals neither how many documents the region holds nor when one was made.
pub fn new_id() -> String {
    use rand::Rng;
    format!("{:032x}", rand::rng().random::<u128>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_codes_carry_their_check_digit() {
        for code in [
            "34133-9", "11488-4", "60591-5", "18748-4", "11524-6", "18842-5", "0-0",
        ] {
            assert!(is_loinc_code(code), "{code}");
        }
        for code in [
            "34133-8",
            "34133",
            "34133-",
            "-9",
            "12345678-0",
            "3413a-9",
            "34133-10",
            "LP1234-5",
            "",
        ] {
            assert!(!is_loinc_code(code), "{code}");
        }
    }

    #[test]
    fn identifiers_shapes() {
        assert!(is_master_identifier("urn:oid:1.2.250.1.999.1.2"));
        assert!(is_master_identifier(
            "urn:uuid:0c287d32-01e3-4d87-9953-9fcc9404eb21"
        ));
        for bad in [
            "1.2.3",
            "urn:oid:1..2",
            "urn:oid:3.1",
            "urn:oid:1.02",
            "urn:uuid:xyz",
            "urn:uuid:0c287d32-01e3-4d87-9953-9fcc9404eb2",
            "urn:ietf:rfc:3986",
        ] {
            assert!(!is_master_identifier(bad), "{bad}");
        }
        assert!(is_national_id("810001234567"));
        assert!(is_national_id("0751234567"));
        for bad in [
            "81000123456",
            "8100012345678",
            "910001234567",
            "81000123456a",
            "",
        ] {
            assert!(!is_national_id(bad), "{bad}");
        }
        assert!(is_fhir_id(&new_id()) && new_id().len() == 32 && new_id() != new_id());
        assert!(!is_fhir_id("a/b") && !is_fhir_id("") && !is_fhir_id(&"a".repeat(65)));
    }

    #[test]
    fn codes_round_trip() {
        for s in [Status::Current, Status::Superseded, Status::EnteredInError] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        for c in ["U", "L", "M", "N", "R", "V"] {
            assert_eq!(Confidentiality::parse(c).unwrap().code(), c);
        }
        assert_eq!(Confidentiality::parse("n"), None);
        assert!(Confidentiality::N < Confidentiality::R);
        for d in ["preliminary", "final", "amended", "entered-in-error"] {
            assert_eq!(DocStatus::parse(d).unwrap().as_str(), d);
        }
        assert_eq!(
            sha1_base64("da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
        );
    }
}
