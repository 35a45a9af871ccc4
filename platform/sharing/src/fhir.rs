//! The patient's directives as FHIR R4 `Consent` resources (read-only: directives are
//! recorded through the portal by the patient or by a professional on the patient's behalf).
//!
//! Mapping, one directive → one `Consent`, scope `patient-privacy`, category LOINC 59284-0:
//! - objection to sharing: `policyRule` OPTOUT, `provision.type` deny;
//! - objection to emergency access: OPTOUT, deny, `provision.purpose` ETREAT;
//! - consent to a professional: OPTIN, permit, `provision.actor` the professional;
//! - block of a professional: OPTOUT, deny, `provision.actor`;
//! - mask of a document: OPTOUT, deny, `provision.data` the DocumentReference.
//!
//! Revoked and expired directives are `inactive`, so the history stays readable.

use serde_json::{Value, json};

use crate::decision::Micros;
use crate::store::{Directive, DirectiveKind};

/// OID of the national identifiers of health professionals (`8` + RPPS).
pub const OID_NATIONAL_ID: &str = "1.2.250.1.71.4.2.1";

fn instant(us: Micros) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// One directive as a `Consent`.
pub fn consent(d: &Directive, now: Micros) -> Value {
    let (rule, provision_type) = match d.kind {
        DirectiveKind::Consent => ("OPTIN", "permit"),
        _ => ("OPTOUT", "deny"),
    };
    let mut period = serde_json::Map::new();
    period.insert("start".into(), json!(instant(d.start)));
    let end = match (d.end, d.revoked_at) {
        (Some(e), Some(r)) => Some(e.min(r)),
        (e, r) => e.or(r),
    };
    if let Some(end) = end {
        period.insert("end".into(), json!(instant(end)));
    }
    let mut provision = json!({ "type": provision_type, "period": period });
    if let Some(p) = &d.practitioner {
        provision["actor"] = json!([{
            "role": { "coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "PRCP",
                "display": "primary information recipient"
            }]},
            "reference": { "identifier": {
                "system": format!("urn:oid:{OID_NATIONAL_ID}"),
                "value": p
            }}
        }]);
    }
    if d.kind == DirectiveKind::EmergencyObjection {
        provision["purpose"] = json!([{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
            "code": "ETREAT",
            "display": "Emergency Treatment"
        }]);
    }
    if let Some(doc) = &d.document_id {
        provision["data"] = json!([{
            "meaning": "instance",
            "reference": { "reference": format!("DocumentReference/{doc}") }
        }]);
    }
    let mut resource = json!({
        "resourceType": "Consent",
        "id": d.id.to_string(),
        "meta": { "lastUpdated": instant(d.revoked_at.unwrap_or(d.recorded_at)) },
        "status": if d.is_active(now) { "active" } else { "inactive" },
        "scope": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy"
        }]},
        "category": [{ "coding": [{
            "system": "http://loinc.org",
            "code": "59284-0",
            "display": "Patient Consent"
        }]}],
        "patient": { "reference": format!("Patient/{}", d.regional_id) },
        "dateTime": instant(d.recorded_at),
        "policyRule": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": rule
        }]},
        "provision": provision
    });
    if !d.note.is_empty() {
        resource["extension"] = json!([{
            "url": "https://megalis.bzh/fhir/StructureDefinition/consent-note",
            "valueString": d.note
        }]);
    }
    resource
}

/// A searchset Bundle of the patient's directives.
pub fn consent_bundle(directives: &[Directive], base_url: &str, now: Micros) -> Value {
    let base = base_url.trim_end_matches('/');
    let entries: Vec<Value> = directives
        .iter()
        .map(|d| {
            json!({
                "fullUrl": format!("{base}/Consent/{}", d.id),
                "resource": consent(d, now),
                "search": { "mode": "match" }
            })
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "entry": entries
    })
}

/// The CapabilityStatement `rest.resource` entry of `Consent`.
pub fn capability_resources() -> Vec<Value> {
    vec![json!({
        "type": "Consent",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "searchParam": [{
            "name": "patient",
            "type": "reference",
            "documentation": "Patient/{regional id} (required): the patient's directives, revoked ones included (status inactive)"
        }],
    })]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directive(kind: DirectiveKind) -> Directive {
        Directive {
            id: 7,
            regional_id: "BZH1234567".into(),
            kind,
            practitioner: None,
            document_id: None,
            start: 1_700_000_000_000_000,
            end: None,
            note: String::new(),
            recorded_by: "patient".into(),
            recorded_at: 1_700_000_000_000_000,
            revoked_by: None,
            revoked_at: None,
        }
    }

    #[test]
    fn each_kind_maps_to_its_provision() {
        let now = 1_800_000_000_000_000;
        let objection = consent(&directive(DirectiveKind::Objection), now);
        assert_eq!(objection["status"], "active");
        assert_eq!(objection["provision"]["type"], "deny");
        assert_eq!(objection["policyRule"]["coding"][0]["code"], "OPTOUT");
        assert_eq!(objection["patient"]["reference"], "Patient/BZH1234567");
        assert_eq!(
            objection["provision"]["period"]["start"],
            "2023-11-14T22:13:20Z"
        );

        let mut c = directive(DirectiveKind::Consent);
        c.practitioner = Some("810001234567".into());
        let c = consent(&c, now);
        assert_eq!(c["provision"]["type"], "permit");
        assert_eq!(c["policyRule"]["coding"][0]["code"], "OPTIN");
        assert_eq!(
            c["provision"]["actor"][0]["reference"]["identifier"]["value"],
            "810001234567"
        );

        let e = consent(&directive(DirectiveKind::EmergencyObjection), now);
        assert_eq!(e["provision"]["purpose"][0]["code"], "ETREAT");

        let mut m = directive(DirectiveKind::Mask);
        m.document_id = Some("doc-9".into());
        m.revoked_at = Some(1_750_000_000_000_000);
        let m = consent(&m, now);
        assert_eq!(m["status"], "inactive");
        assert_eq!(
            m["provision"]["data"][0]["reference"]["reference"],
            "DocumentReference/doc-9"
        );
        assert!(m["provision"]["period"]["end"].is_string());

        let bundle = consent_bundle(
            &[directive(DirectiveKind::Objection)],
            "https://x/fhir/",
            now,
        );
        assert_eq!(bundle["total"], 1);
        assert_eq!(bundle["entry"][0]["fullUrl"], "https://x/fhir/Consent/7");
    }
}
