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

// ----- input: FHIR Patient resources and search parameters ---------------------------------

use megalis_identity::{
    Attributes, Demographics, IdentityStatus as Status, Ins, SourceId, SourceRecord, StrictTraits,
};

use crate::search::{IdentifierQuery, MatchCandidate, PatientPage, PatientQuery};

/// A `Patient` resource as a feed or a `$match` caller sends it.
#[derive(Debug, Clone)]
pub struct IncomingPatient {
    /// The identity, with an empty source id (the caller picks the local identifier it may feed
    /// among `local_ids`).
    pub record: SourceRecord,
    /// Identifiers under other systems than the INS and the regional identifier: candidates for
    /// the caller's local identifier (IPP).
    pub local_ids: Vec<SourceId>,
}

/// The error of a FHIR input: the message and the FHIRPath of the offending element, for the
/// OperationOutcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub expression: String,
    pub message: String,
}

fn input(expression: &str, message: impl Into<String>) -> InputError {
    InputError {
        expression: expression.to_string(),
        message: message.into(),
    }
}

/// `urn:oid:1.2.3` → `1.2.3`; anything else is not an OID system.
pub fn oid_of(system: &str) -> Option<&str> {
    let oid = system.strip_prefix("urn:oid:")?;
    let ok = !oid.is_empty()
        && oid
            .split('.')
            .all(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    ok.then_some(oid)
}

fn is_ins_oid(oid: &str) -> bool {
    use megalis_identity::ins::{OID_DEMO, OID_NIA, OID_NIR, OID_TEST};
    [OID_NIR, OID_NIA, OID_TEST, OID_DEMO].contains(&oid)
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Reads a FHIR R4 `Patient` (FR Core style) into an identity. `regional_oid` is the OID of
/// regional identifiers (never a local identifier); `test_mode` accepts test INS OIDs.
pub fn incoming_patient(
    resource: &Value,
    regional_oid: &str,
    test_mode: bool,
) -> Result<IncomingPatient, InputError> {
    match str_at(resource, "resourceType") {
        Some("Patient") => {}
        Some(other) => {
            return Err(input(
                "resourceType",
                format!("the body is a {other}, not a Patient"),
            ));
        }
        None => return Err(input("resourceType", "the body is not a FHIR resource")),
    }
    let mut ins = None;
    let mut local_ids = Vec::new();
    for (i, id) in resource
        .get("identifier")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let path = format!("Patient.identifier[{i}]");
        let (Some(system), Some(value)) = (str_at(id, "system"), str_at(id, "value")) else {
            return Err(input(&path, "an identifier needs a system and a value"));
        };
        let Some(oid) = oid_of(system) else {
            return Err(input(
                &format!("{path}.system"),
                format!("identifier systems are urn:oid:…, not {system:?}"),
            ));
        };
        if is_ins_oid(oid) {
            ins = Some(
                Ins::parse(value, oid, test_mode)
                    .map_err(|e| input(&format!("{path}.value"), e.to_string()))?,
            );
        } else if oid != regional_oid {
            if value.is_empty() || value.len() > 64 {
                return Err(input(
                    &format!("{path}.value"),
                    "a local identifier has 1 to 64 characters",
                ));
            }
            local_ids.push(SourceId {
                authority: oid.to_string(),
                local_id: value.to_string(),
            });
        }
    }
    let names = resource
        .get("name")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let official = names
        .iter()
        .find(|n| str_at(n, "use") == Some("official"))
        .or_else(|| names.iter().find(|n| n.get("use").is_none()))
        .ok_or_else(|| {
            input(
                "Patient.name",
                "the birth name is required (a name with use \"official\")",
            )
        })?;
    let birth_name = str_at(official, "family")
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| input("Patient.name.family", "the birth name (family) is required"))?
        .to_string();
    let given: Vec<String> = official
        .get("given")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if given.is_empty() {
        return Err(input(
            "Patient.name.given",
            "the birth first names (given) are required",
        ));
    }
    let usual = names.iter().find(|n| str_at(n, "use") == Some("usual"));
    let used_name = usual
        .and_then(|n| str_at(n, "family"))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let used_first_name = usual
        .and_then(|n| n.get("given"))
        .and_then(Value::as_array)
        .and_then(|g| g.first())
        .and_then(Value::as_str)
        .map(str::to_string);
    let birth_date = str_at(resource, "birthDate")
        .ok_or_else(|| input("Patient.birthDate", "the birth date is required"))?;
    let birth_date = parse_full_date(birth_date).ok_or_else(|| {
        input(
            "Patient.birthDate",
            format!("{birth_date:?} is not a full date (YYYY-MM-DD)"),
        )
    })?;
    let sex = match str_at(resource, "gender") {
        Some("male") => Sex::Male,
        Some("female") => Sex::Female,
        Some("other") | Some("unknown") | None => Sex::Unknown,
        Some(g) => {
            return Err(input(
                "Patient.gender",
                format!("{g:?} is not a FHIR gender"),
            ));
        }
    };
    let mut birthplace = None;
    let mut status = Status::Prov;
    let mut attributes = Attributes::default();
    for ext in resource
        .get("extension")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        match str_at(ext, "url") {
            Some(BIRTH_PLACE) => {
                birthplace = ext
                    .pointer("/valueAddress/extension")
                    .and_then(Value::as_array)
                    .and_then(|e| e.iter().find(|x| str_at(x, "url") == Some(INSEE_CODE)))
                    .and_then(|x| x.pointer("/valueCoding/code"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            Some(IDENTITY_RELIABILITY) => {
                for part in ext
                    .get("extension")
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    match str_at(part, "url") {
                        Some("identityStatus") => {
                            let code = part
                                .pointer("/valueCoding/code")
                                .and_then(Value::as_str)
                                .unwrap_or_default();
                            status = Status::parse(code).map_err(|_| {
                                input(
                                    "Patient.extension('identity-reliability').identityStatus",
                                    format!("unknown identity status {code:?}"),
                                )
                            })?;
                        }
                        Some("identityAttribute") => match str_at(part, "valueCode") {
                            Some("DOUTE") => attributes.doubtful = true,
                            Some("FICTI") => attributes.fictitious = true,
                            Some("HOMON") => attributes.homonym = true,
                            other => {
                                return Err(input(
                                    "Patient.extension('identity-reliability').identityAttribute",
                                    format!("unknown identity attribute {other:?}"),
                                ));
                            }
                        },
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let telecom = resource
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| t.iter().find(|c| str_at(c, "system") == Some("phone")))
        .and_then(|c| str_at(c, "value"))
        .map(str::to_string);
    let address = resource
        .get("address")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .map(|a| {
            let mut parts: Vec<String> = a
                .get("line")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            for k in ["postalCode", "city"] {
                if let Some(v) = str_at(a, k) {
                    parts.push(v.to_string());
                }
            }
            parts.join(", ")
        })
        .filter(|s| !s.is_empty());
    Ok(IncomingPatient {
        record: SourceRecord {
            id: SourceId {
                authority: String::new(),
                local_id: String::new(),
            },
            ins,
            demographics: Demographics {
                traits: StrictTraits {
                    birth_name,
                    birth_first_names: given,
                    birth_date,
                    sex,
                    birthplace,
                },
                used_name,
                used_first_name,
                address,
                telecom,
            },
            status,
            attributes,
            updated_us: megalis_audit::record::now_us(),
        },
        local_ids,
    })
}

fn parse_full_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    (s.len() == 10)
        .then(|| time::Date::parse(s, &format).ok())
        .flatten()
}

/// `[from, to)` of a FHIR `date` search value at its precision (`1985`, `1985-05`,
/// `1985-05-12`) with its prefix (`eq` by default, `ge`, `gt`, `le`, `lt`).
fn birth_date_bounds(value: &str) -> Option<(Option<String>, Option<String>)> {
    let (prefix, date) = match value.get(..2) {
        Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let num = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    let year = num(parts.first()?, 4)?;
    let (lo, hi) = match parts.len() {
        1 => (format!("{year:04}-01-01"), format!("{:04}-01-01", year + 1)),
        2 => {
            let m = num(parts[1], 2).filter(|m| (1..=12).contains(m))?;
            let (ny, nm) = if m == 12 {
                (year + 1, 1)
            } else {
                (year, m + 1)
            };
            (
                format!("{year:04}-{m:02}-01"),
                format!("{ny:04}-{nm:02}-01"),
            )
        }
        3 => {
            let d = parse_full_date(date)?;
            (d.to_string(), d.next_day()?.to_string())
        }
        _ => return None,
    };
    Some(match prefix {
        "eq" => (Some(lo), Some(hi)),
        "ge" => (Some(lo), None),
        "gt" => (Some(hi), None),
        "lt" => (None, Some(lo)),
        _ => (None, Some(hi)), // le
    })
}

/// Largest page of a search.
pub const MAX_COUNT: usize = 100;
/// Page size when `_count` is absent.
pub const DEFAULT_COUNT: usize = 20;

/// An identifier search value: `system|value`, `|value` or `value`.
pub fn identifier_query(raw: &str, regional_oid: &str) -> Result<IdentifierQuery, InputError> {
    let (system, value) = match raw.split_once('|') {
        Some((s, v)) => (Some(s), v),
        None => (None, raw),
    };
    if value.is_empty() {
        return Err(input("identifier", "the identifier has no value"));
    }
    Ok(match system {
        None | Some("") => IdentifierQuery::Any(value.to_string()),
        Some(system) => {
            let oid = oid_of(system).ok_or_else(|| {
                input(
                    "identifier",
                    format!("identifier systems are urn:oid:…, not {system:?}"),
                )
            })?;
            if oid == regional_oid {
                IdentifierQuery::Regional(value.to_string())
            } else if is_ins_oid(oid) {
                IdentifierQuery::Ins(value.to_string())
            } else {
                IdentifierQuery::Source(SourceId {
                    authority: oid.to_string(),
                    local_id: value.to_string(),
                })
            }
        }
    })
}

/// Parses the parameters of `GET /fhir/Patient`; returns the query and the accepted
/// parameters (echoed in the paging links).
pub fn search_query(
    params: &[(String, String)],
    regional_oid: &str,
) -> Result<(PatientQuery, Vec<(String, String)>), InputError> {
    let mut q = PatientQuery {
        count: DEFAULT_COUNT,
        ..Default::default()
    };
    let mut echo = Vec::new();
    for (name, value) in params {
        let bad = |m: String| input(name, m);
        match name.as_str() {
            "_count" | "_offset" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| bad(format!("{name} must be a non-negative integer")))?;
                if name == "_count" {
                    q.count = n.min(MAX_COUNT);
                } else {
                    q.offset = n;
                }
                continue;
            }
            "_format" if value.contains("json") => continue,
            _ if value.is_empty() => return Err(bad(format!("{name} has no value"))),
            _ if value.len() > 200 => return Err(bad(format!("{name} is too long"))),
            "identifier" => q.identifiers.push(identifier_query(value, regional_oid)?),
            "_id" => q.identifiers.push(IdentifierQuery::Regional(value.clone())),
            "family" | "family:exact" => {
                if !value.chars().any(char::is_alphabetic) {
                    return Err(bad("a name search needs letters".into()));
                }
                q.family = Some(value.clone());
                q.family_exact = name == "family:exact";
            }
            "given" => {
                if !value.chars().any(char::is_alphabetic) {
                    return Err(bad("a name search needs letters".into()));
                }
                q.given = Some(value.clone());
            }
            "birthdate" => {
                let (from, to) = birth_date_bounds(value).ok_or_else(|| {
                    bad(format!(
                        "{value:?} is not a date (YYYY, YYYY-MM or YYYY-MM-DD, with an optional \
                         eq/ge/gt/le/lt prefix)"
                    ))
                })?;
                // Several birthdate parameters intersect.
                if let Some(f) = from {
                    q.birth_date_from = Some(q.birth_date_from.map_or(f.clone(), |o| o.max(f)));
                }
                if let Some(t) = to {
                    q.birth_date_to = Some(q.birth_date_to.map_or(t.clone(), |o| o.min(t)));
                }
            }
            "gender" => {
                q.gender = Some(match value.as_str() {
                    "male" => "male",
                    "female" => "female",
                    "unknown" | "other" => "unknown",
                    _ => return Err(bad(format!("{value:?} is not a FHIR gender"))),
                });
            }
            "active" => {
                q.active = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad("active is true or false".into())),
                });
            }
            other => {
                return Err(input(
                    other,
                    format!(
                        "search parameter {other:?} is not supported on Patient (see /fhir/metadata)"
                    ),
                ));
            }
        }
        echo.push((name.clone(), value.clone()));
    }
    Ok((q, echo))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn page_url(base: &str, echo: &[(String, String)], count: usize, offset: usize) -> String {
    let mut url = format!("{base}/Patient?");
    for (k, v) in echo {
        url.push_str(&format!("{}={}&", encode(k), encode(v)));
    }
    url.push_str(&format!("_count={count}&_offset={offset}"));
    url
}

/// The `searchset` Bundle of a Patient search; `base` is the public URL of `/fhir`.
pub fn search_bundle(
    page: &PatientPage,
    q: &PatientQuery,
    echo: &[(String, String)],
    base: &str,
    regional_system: &str,
) -> Value {
    let (count, offset) = (q.count, q.offset);
    let mut links = vec![
        json!({"relation": "self", "url": page_url(base, echo, count, offset)}),
        json!({"relation": "first", "url": page_url(base, echo, count, 0)}),
    ];
    if offset > 0 && count > 0 {
        links.push(json!({"relation": "previous",
            "url": page_url(base, echo, count, offset.saturating_sub(count))}));
    }
    if count > 0 && offset + count < page.total {
        links.push(json!({"relation": "next", "url": page_url(base, echo, count, offset + count)}));
    }
    let entries: Vec<Value> = page
        .patients
        .iter()
        .map(|p| {
            json!({
                "fullUrl": format!("{base}/Patient/{}", p.regional_id),
                "resource": patient_resource(p, regional_system),
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The IHE PDQm match-grade extension.
const MATCH_GRADE: &str = "http://hl7.org/fhir/StructureDefinition/match-grade";

/// The Bundle of a `$match` (ITI-119): best first, each entry with its score and grade.
pub fn match_bundle(candidates: &[MatchCandidate], base: &str, regional_system: &str) -> Value {
    let entries: Vec<Value> = candidates
        .iter()
        .map(|c| {
            json!({
                "fullUrl": format!("{base}/Patient/{}", c.patient.regional_id),
                "resource": patient_resource(&c.patient, regional_system),
                "search": {
                    "extension": [{"url": MATCH_GRADE, "valueCode": c.grade.code()}],
                    "mode": "match",
                    "score": (c.score * 10_000.0).round() / 10_000.0,
                },
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": candidates.len(),
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The `Parameters` of a `$ihe-pix` (ITI-83) answer: every identifier of the patient in the
/// target systems asked (all when none), and the patient's reference. The INS is given only for
/// a qualified identity, as in the resource.
pub fn pix_parameters(
    patient: &Patient,
    target_systems: &[String],
    base: &str,
    regional_system: &str,
) -> Value {
    let resource = patient_resource(patient, regional_system);
    let mut parameters = Vec::new();
    for id in resource["identifier"].as_array().into_iter().flatten() {
        let system = id["system"].as_str().unwrap_or_default();
        if target_systems.is_empty() || target_systems.iter().any(|t| t == system) {
            parameters.push(json!({
                "name": "targetIdentifier",
                "valueIdentifier": {"system": system, "value": id["value"]},
            }));
        }
    }
    parameters.push(json!({
        "name": "targetId",
        "valueReference": {"reference": format!("{base}/Patient/{}", patient.regional_id)},
    }));
    json!({"resourceType": "Parameters", "parameter": parameters})
}

/// The CapabilityStatement `rest.resource` entry of Patient, with its operations.
pub fn capability_resources() -> Vec<Value> {
    let param = |name: &str, kind: &str, doc: &str| json!({"name": name, "type": kind, "documentation": doc});
    vec![json!({
        "type": "Patient",
        "profile": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient",
        "interaction": [
            {"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "update"}
        ],
        "conditionalUpdate": true,
        "searchParam": [
            param("identifier", "token", "system|value: the regional id, an INS (urn:oid:1.2.250.1.213.1.4.8) or a local identifier under its assigning authority's OID"),
            param("_id", "token", "the regional identifier"),
            param("family", "string", "birth or used name, starts with, ignoring case, accents, spaces and hyphens"),
            param("given", "string", "a first name, starts with"),
            param("birthdate", "date", "YYYY, YYYY-MM or YYYY-MM-DD with eq/ge/gt/le/lt"),
            param("gender", "token", "male | female | unknown"),
            param("active", "token", "false finds patients merged into another"),
            param("_count", "number", "page size, at most 100"),
            param("_offset", "number", "start of the page"),
        ],
        "operation": [
            {"name": "match", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match"},
            {"name": "ihe-pix", "definition": "https://profiles.ihe.net/ITI/PIXm/OperationDefinition/IHE.PIXm.pix"},
        ],
    })]
}

#[cfg(test)]
mod input_tests {
    use super::*;

    const REGIONAL: &str = "2.25.1";

    fn patient() -> Value {
        json!({
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": megalis_identity::ins::with_key("2850535238123").unwrap()},
                {"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP42"},
                {"system": "urn:oid:2.25.1", "value": "BZH00000000013"},
            ],
            "name": [
                {"use": "official", "family": "Le Goff", "given": ["Anne-Marie", "Soizic"]},
                {"use": "usual", "family": "Kerjean", "given": ["Annie"]},
            ],
            "gender": "female",
            "birthDate": "1985-05-12",
            "extension": [{
                "url": IDENTITY_RELIABILITY,
                "extension": [
                    {"url": "identityStatus", "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": "VALI"}},
                    {"url": "identityAttribute", "valueCode": "HOMON"},
                ],
            }, {
                "url": BIRTH_PLACE,
                "valueAddress": {"extension": [{"url": INSEE_CODE, "valueCoding": {"code": "29019"}}]},
            }],
        })
    }

    #[test]
    fn reads_an_fr_core_patient() {
        let p = incoming_patient(&patient(), REGIONAL, false).unwrap();
        let t = &p.record.demographics.traits;
        assert_eq!(t.birth_name, "Le Goff");
        assert_eq!(t.birth_first_names, ["Anne-Marie", "Soizic"]);
        assert_eq!(t.birthplace.as_deref(), Some("29019"));
        assert_eq!(p.record.demographics.used_name.as_deref(), Some("Kerjean"));
        assert_eq!(p.record.status, Status::Vali);
        assert!(p.record.attributes.homonym);
        assert!(p.record.ins.is_some());
        // The regional identifier is not a local one.
        assert_eq!(p.local_ids.len(), 1);
        assert_eq!(p.local_ids[0].local_id, "IPP42");
    }

    #[test]
    fn refuses_bad_patients_with_the_element_named() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"resourceType": "Observation"}), "resourceType"),
            (
                {
                    let mut p = patient();
                    p["birthDate"] = json!("1985-13-40");
                    p
                },
                "Patient.birthDate",
            ),
            (
                {
                    let mut p = patient();
                    p["birthDate"] = json!("1985");
                    p
                },
                "Patient.birthDate",
            ),
            (
                {
                    let mut p = patient();
                    p.as_object_mut().unwrap().remove("birthDate");
                    p
                },
                "Patient.birthDate",
            ),
            (
                {
                    let mut p = patient();
                    p["name"] = json!([{"use": "usual", "family": "X", "given": ["Y"]}]);
                    p
                },
                "Patient.name",
            ),
            (
                {
                    let mut p = patient();
                    p["name"][0]["given"] = json!([]);
                    p
                },
                "Patient.name.given",
            ),
            (
                {
                    let mut p = patient();
                    p["identifier"][0]["value"] = json!("285053523812399");
                    p
                },
                "Patient.identifier[0].value",
            ),
            (
                {
                    let mut p = patient();
                    p["identifier"][1]["system"] = json!("http://hospital/ipp");
                    p
                },
                "Patient.identifier[1].system",
            ),
            (
                {
                    let mut p = patient();
                    p["gender"] = json!("f");
                    p
                },
                "Patient.gender",
            ),
        ];
        for (body, expression) in cases {
            let e = incoming_patient(&body, REGIONAL, false).unwrap_err();
            assert_eq!(e.expression, expression, "{body}: {}", e.message);
        }
        // A test INS is refused outside test mode, accepted in it.
        let mut p = patient();
        p["identifier"][0]["system"] = json!("urn:oid:1.2.250.1.213.1.4.10");
        assert!(incoming_patient(&p, REGIONAL, false).is_err());
        assert!(incoming_patient(&p, REGIONAL, true).is_ok());
    }

    #[test]
    fn search_parameters() {
        let p = |pairs: &[(&str, &str)]| {
            search_query(
                &pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect::<Vec<_>>(),
                REGIONAL,
            )
        };
        let (q, _) = p(&[("birthdate", "1985-05"), ("birthdate", "le1985-05-20")]).unwrap();
        assert_eq!(q.birth_date_from.as_deref(), Some("1985-05-01"));
        assert_eq!(q.birth_date_to.as_deref(), Some("1985-05-21"));
        let (q, _) = p(&[("identifier", "urn:oid:2.25.1|BZH1")]).unwrap();
        assert_eq!(q.identifiers, [IdentifierQuery::Regional("BZH1".into())]);
        let (q, _) = p(&[("identifier", "urn:oid:1.2.250.1.213.1.4.8|1")]).unwrap();
        assert_eq!(q.identifiers, [IdentifierQuery::Ins("1".into())]);
        let (q, _) = p(&[("_count", "5000")]).unwrap();
        assert_eq!(q.count, MAX_COUNT);
        for bad in [
            ("birthdate", "12/05/1985"),
            ("birthdate", "1985-02-30"),
            ("gender", "F"),
            ("identifier", "http://x|1"),
            ("family", "1234"),
            ("name", "x"),
            ("_count", "-1"),
        ] {
            assert!(p(&[bad]).is_err(), "{bad:?}");
        }
    }

    /// Every value a JSON body may put anywhere in a Patient.
    fn any_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::from),
            "[0-9]{13,16}".prop_map(Value::from),
            "urn:oid:[0-9.]{0,30}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        /// The parser of FHIR inputs never panics: any element of a valid Patient replaced by
        /// any JSON value gives a Patient or an error naming an element.
        #[test]
        fn arbitrary_patients_never_panic(
            key in proptest::sample::select(vec![
                "identifier", "name", "birthDate", "gender", "extension", "telecom", "address",
                "resourceType",
            ]),
            inner in 0usize..3,
            value in any_json(),
        ) {
            let mut p = patient();
            match p.get_mut(key) {
                Some(Value::Array(items)) if !items.is_empty() => {
                    let i = inner % items.len();
                    items[i] = value;
                }
                _ => p[key] = value,
            }
            if let Err(e) = incoming_patient(&p, REGIONAL, false) {
                proptest::prop_assert!(!e.expression.is_empty() && !e.message.is_empty());
            }
            let params: Vec<(String, String)> = vec![
                ("family".into(), p.to_string().chars().take(50).collect()),
                ("birthdate".into(), p["birthDate"].to_string()),
            ];
            let _ = search_query(&params, REGIONAL);
        }
    }
}
