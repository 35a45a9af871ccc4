//! FHIR R4 `Patient` resources of regional patients, in the style of FR Core: identifiers with
//! `urn:oid:` systems (the INS only for a QUAL identity, RNIV), birth name as the `official`
//! name and used name as `usual`, birthplace as the `patient-birthPlace` extension carrying the
//! INSEE code, identity status and attributes in the identity-reliability extension, and a
//! `replaced-by` link for a patient merged into another.

use megalis_identity::{IdentityStatus, Sex};
use serde_json::{Value, json};

use crate::Patient;

/// FR Core extension carrying the identity status (RNIV) of a patient.
pub const IDENTITY_RELIABILITY: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability";
/// Code system of the identity status (TRE_R338, ANS nomenclatures).
pub const IDENTITY_STATUS_SYSTEM: &str = "https://mos.esante.gouv.fr/NOS/TRE_R338-ModaliteIdentitePatient/FHIR/TRE-R338-ModaliteIdentitePatient";
/// FR Core extension carrying the INSEE code inside an address.
pub const INSEE_CODE: &str =
    "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code";
const BIRTH_PLACE: &str = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace";
const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";

/// The resource of `patient`; `regional_system` is the identifier system of regional ids.
pub fn patient_resource(patient: &Patient, regional_system: &str) -> Value {
    let g = &patient.golden;
    let t = &g.demographics.traits;
    let mut identifiers = vec![json!({
        "use": "official",
        "system": regional_system,
        "value": patient.regional_id,
    })];
    if let Some(ins) = g.shareable_ins() {
        let code = if ins.kind() == megalis_identity::InsKind::Nia {
            "INS-NIA"
        } else {
            "INS-NIR"
        };
        identifiers.push(json!({
            "use": "official",
            "type": { "coding": [{ "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": code }] },
            "system": format!("urn:oid:{}", ins.oid()),
            "value": ins.as_str(),
        }));
    }
    for s in &patient.sources {
        identifiers.push(json!({
            "use": "usual",
            "type": { "coding": [{ "system": V2_0203, "code": "PI" }] },
            "system": format!("urn:oid:{}", s.id.authority),
            "value": s.id.local_id,
        }));
    }
    let mut names = vec![json!({
        "use": "official",
        "family": t.birth_name,
        "given": t.birth_first_names,
    })];
    if let Some(used) = &g.demographics.used_name {
        let given: Vec<&String> = g.demographics.used_first_name.iter().collect();
        names.push(json!({ "use": "usual", "family": used, "given": given }));
    }
    let status = match g.status {
        IdentityStatus::Prov => ("PROV", "Identité provisoire"),
        IdentityStatus::Recup => ("RECUP", "Identité récupérée"),
        IdentityStatus::Vali => ("VALI", "Identité validée"),
        IdentityStatus::Qual => ("QUAL", "Identité qualifiée"),
    };
    let mut reliability = vec![json!({
        "url": "identityStatus",
        "valueCoding": { "system": IDENTITY_STATUS_SYSTEM, "code": status.0, "display": status.1 },
    })];
    for (on, code) in [
        (g.attributes.doubtful, "DOUTE"),
        (g.attributes.fictitious, "FICTI"),
        (g.attributes.homonym, "HOMON"),
    ] {
        if on {
            reliability.push(json!({ "url": "identityAttribute", "valueCode": code }));
        }
    }
    let mut extension = vec![json!({ "url": IDENTITY_RELIABILITY, "extension": reliability })];
    if let Some(code) = &t.birthplace {
        extension.push(json!({
            "url": BIRTH_PLACE,
            "valueAddress": {
                "extension": [{ "url": INSEE_CODE, "valueCoding": {
                    "system": "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM",
                    "code": code } }],
            },
        }));
    }
    let mut resource = json!({
        "resourceType": "Patient",
        "id": patient.regional_id,
        "extension": extension,
        "identifier": identifiers,
        "active": patient.merged_into.is_none(),
        "name": names,
        "gender": match t.sex { Sex::Male => "male", Sex::Female => "female", Sex::Unknown => "unknown" },
        "birthDate": t.birth_date.to_string(),
    });
    if let Some(phone) = &g.demographics.telecom {
        resource["telecom"] = json!([{ "system": "phone", "value": phone }]);
    }
    if let Some(into) = &patient.merged_into {
        resource["link"] =
            json!([{ "other": { "reference": format!("Patient/{into}") }, "type": "replaced-by" }]);
    }
    resource
}
