//! FHIR R4 `Patient` of the regional patient index at `/fhir/Patient`: read and search (IHE
//! PDQm ITI-78), create and update for hospital feeds, `$match` (PDQm ITI-119) and `$ihe-pix`
//! (PIXm ITI-83).
//!
//! Every route checks [`patient_access`] first and audits each patient it shows; a feed may
//! only write source records under an assigning authority its client is bound to
//! (`megalis admin client authority add`). The resource mapping and the parsing of inputs are
//! the index crate's (`megalis_identity_index::fhir`); this module is the HTTP edge.

use super::routes::Route;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use megalis_auth::Principal;
use megalis_identity_index::fhir::{self as pfhir, InputError};
use megalis_identity_index::search::IdentifierQuery;
use megalis_identity_index::{Applied, Change, IndexError};
use serde_json::Value;

use super::auth_glue::{Audit, actor_of};
use super::patient_access::{self, IdentityUse};
use super::{ApiError, AppState};

pub fn routes() -> Vec<Route> {
    use super::routes::{Probe, ProbeAuth::Bearer};
    const PATIENT: &str = r#"{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.250.1.71.4.2.2.290000017","value":"WALK-1"}]}"#;
    const MATCH: &str = r#"{"resourceType":"Parameters","parameter":[{"name":"resource","resource":{"resourceType":"Patient","name":[{"family":"LE GOFF"}]}}]}"#;
    vec![
        Route::patient(
            "/fhir/Patient",
            &["GET", "POST", "PUT"],
            &[
                Probe::get("/fhir/Patient?family=LE", Bearer),
                Probe::post("/fhir/Patient", Bearer, PATIENT),
                Probe::put(
                    "/fhir/Patient?identifier=urn:oid:1.2.250.1.71.4.2.2.290000017|WALK-1",
                    Bearer,
                    PATIENT,
                ),
            ],
            get(search).post(create).put(conditional_update),
        ),
        Route::patient(
            "/fhir/Patient/{id}",
            &["GET", "PUT"],
            &[
                Probe::get("/fhir/Patient/{patient}", Bearer),
                Probe::put("/fhir/Patient/{patient}", Bearer, PATIENT),
            ],
            get(read).put(update),
        ),
        Route::patient(
            "/fhir/Patient/$match",
            &["POST"],
            &[Probe::post("/fhir/Patient/$match", Bearer, MATCH)],
            post(match_patients),
        ),
        Route::patient(
            "/fhir/Patient/$ihe-pix",
            &["GET"],
            &[Probe::get(
                "/fhir/Patient/$ihe-pix?sourceIdentifier=urn:oid:1.2.250.1.71.4.2.2.290000017|WALK-1",
                Bearer,
            )],
            get(pix),
        ),
    ]
}

fn regional_oid(state: &AppState) -> &str {
    &state.settings.identity_regional_oid
}

fn regional_system(state: &AppState) -> String {
    format!("urn:oid:{}", regional_oid(state))
}

use super::fhir::base_url;

use super::fhir::fhir_response as fhir_json;

fn input_error(e: InputError) -> ApiError {
    let mut err = ApiError::bad_request(format!("{}: {}", e.expression, e.message));
    err.expression = Some(e.expression);
    err
}

fn index_error(e: IndexError) -> ApiError {
    match e {
        IndexError::Store(ref s) if megalis_store::is_connection_error(s) => {
            ApiError::unavailable("The patient index is unavailable; try again.")
        }
        IndexError::UnknownPatient(id) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("Patient/{id} is not known"))
        }
        IndexError::Ambiguous(_) | IndexError::SourceExists(_) | IndexError::PatientMerged(..) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        e if e.is_bad_input() => ApiError::bad_request(e.to_string()),
        e => {
            tracing::error!(error = %e, "patient index failure");
            ApiError::internal()
        }
    }
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let mut err = ApiError::bad_request(format!("the body is not JSON: {e}"));
        err.expression = Some("Patient".into());
        err
    })
}

fn require_json_body(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = ct.split(';').next().unwrap_or_default().trim();
    if matches!(mime, "application/fhir+json" | "application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send application/fhir+json, not {ct:?}"),
        ))
    }
}

async fn read(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    let patient = state
        .identity
        .patient(&id)
        .await
        .map_err(index_error)?
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("Patient/{id} is not known"))
        })?;
    patient_access::seen_one(
        &state,
        &audit,
        &principal,
        "patient.read",
        &patient.regional_id,
        "FHIR read",
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &pfhir::patient_resource(&patient, &regional_system(&state)),
    ))
}

async fn search(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    let (q, echo) = pfhir::search_query(&params, regional_oid(&state)).map_err(input_error)?;
    if q.identifiers.is_empty() && q.family.is_none() && q.given.is_none() {
        // A search without a name or an identifier would list the region's patients.
        return Err(ApiError::bad_request(
            "a Patient search needs an identifier, a family or a given name",
        ));
    }
    let mut page = state.identity.search(&q).await.map_err(index_error)?;
    let criteria: Vec<&str> = echo.iter().map(|(k, _)| k.as_str()).collect();
    let ids: Vec<&str> = page
        .patients
        .iter()
        .map(|p| p.regional_id.as_str())
        .collect();
    let visible = patient_access::seen_many(
        &state,
        &audit,
        &principal,
        "patient.search",
        &ids,
        &format!("FHIR search by {}", criteria.join(", ")),
    )
    .await?;
    // A patient who blocked the caller is left out, and not counted.
    let before = page.patients.len();
    page.patients.retain(|p| visible.contains(&p.regional_id));
    page.total = page.total.saturating_sub(before - page.patients.len());
    Ok(fhir_json(
        StatusCode::OK,
        &pfhir::search_bundle(
            &page,
            &q,
            &echo,
            &base_url(&state),
            &regional_system(&state),
        ),
    ))
}

/// The source record a feed writes: the body's local identifier under an assigning authority
/// the caller is bound to; `wanted` (conditional update) must be that identifier.
fn feed_record(
    state: &AppState,
    principal: &Principal,
    body: &Bytes,
    wanted: Option<&megalis_identity_index::identity::SourceId>,
) -> Result<megalis_identity_index::identity::SourceRecord, ApiError> {
    let resource = parse_json(body)?;
    let incoming = pfhir::incoming_patient(
        &resource,
        regional_oid(state),
        state.settings.identity_test_ins,
    )
    .map_err(input_error)?;
    let feedable: Vec<&megalis_identity_index::identity::SourceId> = incoming
        .local_ids
        .iter()
        .filter(|id| state.auth.may_feed(principal, &id.authority))
        .collect();
    let chosen = match (feedable.as_slice(), incoming.local_ids.first()) {
        ([one], _) => (*one).clone(),
        ([], Some(other)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this client may not feed identifiers of urn:oid:{} (see megalis admin client \
                     authority list)",
                    other.authority
                ),
            ));
        }
        ([], None) => {
            let mut err = ApiError::bad_request(
                "Patient.identifier: the local identifier (IPP) under your assigning authority's \
                 OID (urn:oid:…) is required",
            );
            err.expression = Some("Patient.identifier".into());
            return Err(err);
        }
        (_, _) => {
            return Err(ApiError::bad_request(
                "Patient.identifier: several local identifiers under your assigning authorities; \
                 send one per resource",
            ));
        }
    };
    if let Some(w) = wanted
        && *w != chosen
    {
        return Err(ApiError::bad_request(format!(
            "the search identifier {}|{} is not the resource's local identifier {}|{}",
            w.authority, w.local_id, chosen.authority, chosen.local_id
        )));
    }
    let mut record = incoming.record;
    record.id = chosen;
    Ok(record)
}

/// Applies a feed's record and answers with the regional patient it is linked to.
async fn apply_feed(
    state: &AppState,
    principal: &Principal,
    record: megalis_identity_index::identity::SourceRecord,
    existing_patient: Option<&str>,
) -> Result<Response, ApiError> {
    let known = state
        .identity
        .patient_of(&record.id)
        .await
        .map_err(index_error)?;
    if let (Some(expected), Some(actual)) = (existing_patient, known.as_deref())
        && expected != actual
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "the local identifier {}|{} belongs to Patient/{actual}, not Patient/{expected}",
                record.id.authority, record.id.local_id
            ),
        ));
    }
    if existing_patient.is_some() && known.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this local identifier is not known yet: create it with POST /fhir/Patient",
        ));
    }
    let applied = state
        .identity
        .apply(&actor_of(principal), &[Change::Upsert(record)], None)
        .await
        .map_err(index_error)?;
    let Applied::Done(effects) = applied else {
        return Err(ApiError::internal());
    };
    let regional_id = effects
        .first()
        .map(|e| e.regional_id.clone())
        .ok_or_else(ApiError::internal)?;
    let patient = state
        .identity
        .patient(&regional_id)
        .await
        .map_err(index_error)?
        .ok_or_else(ApiError::internal)?;
    let status = if known.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = fhir_json(
        status,
        &pfhir::patient_resource(&patient, &regional_system(state)),
    );
    if let Ok(v) = format!("{}/Patient/{regional_id}", base_url(state)).parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

async fn create(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Feed).await?;
    require_json_body(&headers)?;
    let record = feed_record(&state, &principal, &body, None)?;
    apply_feed(&state, &principal, record, None).await
}

/// `PUT /fhir/Patient?identifier=urn:oid:…|IPP`: create or update the source record.
async fn conditional_update(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    headers: HeaderMap,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Feed).await?;
    require_json_body(&headers)?;
    let wanted = match params.as_slice() {
        [(name, value)] if name == "identifier" => {
            match pfhir::identifier_query(value, regional_oid(&state)).map_err(input_error)? {
                IdentifierQuery::Source(s) => s,
                _ => {
                    return Err(ApiError::bad_request(
                        "a conditional update names the local identifier: \
                         identifier=urn:oid:<assigning authority>|<IPP>",
                    ));
                }
            }
        }
        _ => {
            return Err(ApiError::bad_request(
                "PUT /fhir/Patient needs exactly one search parameter: identifier=urn:oid:…|IPP",
            ));
        }
    };
    let record = feed_record(&state, &principal, &body, Some(&wanted))?;
    apply_feed(&state, &principal, record, None).await
}

/// `PUT /fhir/Patient/{regional id}`: the feed updates its source record linked to that patient.
async fn update(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Feed).await?;
    require_json_body(&headers)?;
    let record = feed_record(&state, &principal, &body, None)?;
    apply_feed(&state, &principal, record, Some(&id)).await
}

/// `POST /fhir/Patient/$match` with a `Parameters` body (`resource`, `onlyCertainMatches`,
/// `count`), or a bare `Patient`.
async fn match_patients(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    require_json_body(&headers)?;
    let body = parse_json(&body)?;
    let (resource, only_certain, count) = match body.get("resourceType").and_then(Value::as_str) {
        Some("Parameters") => {
            let params = body
                .get("parameter")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let find = |n: &str| params.iter().find(|p| p["name"] == n).cloned();
            let resource = find("resource")
                .and_then(|p| p.get("resource").cloned())
                .ok_or_else(|| {
                    let mut e = ApiError::bad_request(
                        "Parameters.parameter: a 'resource' parameter with the Patient is required",
                    );
                    e.expression = Some("Parameters.parameter".into());
                    e
                })?;
            let only_certain = find("onlyCertainMatches")
                .and_then(|p| p["valueBoolean"].as_bool())
                .unwrap_or(false);
            let count = match find("count") {
                None => 10,
                Some(p) => p["valueInteger"]
                    .as_u64()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| ApiError::bad_request("count is an integer from 1 to 100"))?
                    as usize,
            };
            (resource, only_certain, count)
        }
        _ => (body, false, 10),
    };
    let incoming = pfhir::incoming_patient(
        &resource,
        regional_oid(&state),
        state.settings.identity_test_ins,
    )
    .map_err(input_error)?;
    let matches = state
        .identity
        .find_matches(&incoming.record, count, only_certain)
        .await
        .map_err(index_error)?;
    let ids: Vec<&str> = matches
        .iter()
        .map(|m| m.patient.regional_id.as_str())
        .collect();
    let visible = patient_access::seen_many(
        &state,
        &audit,
        &principal,
        "patient.match",
        &ids,
        "FHIR $match",
    )
    .await?;
    let mut matches = matches;
    matches.retain(|m| visible.contains(&m.patient.regional_id));
    Ok(fhir_json(
        StatusCode::OK,
        &pfhir::match_bundle(&matches, &base_url(&state), &regional_system(&state)),
    ))
}

/// `GET /fhir/Patient/$ihe-pix?sourceIdentifier=system|value[&targetSystem=…]`.
async fn pix(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    let mut source = None;
    let mut targets = Vec::new();
    for (name, value) in &params {
        match name.as_str() {
            "sourceIdentifier" if source.is_none() => source = Some(value.as_str()),
            "targetSystem" => targets.push(value.clone()),
            "_format" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "$ihe-pix takes sourceIdentifier (once) and targetSystem, not {other:?}"
                )));
            }
        }
    }
    let source = source.ok_or_else(|| {
        ApiError::bad_request("sourceIdentifier=urn:oid:<domain>|<value> is required")
    })?;
    if !source.contains('|') {
        return Err(ApiError::bad_request(
            "sourceIdentifier names its domain: urn:oid:<domain>|<value>",
        ));
    }
    let query = pfhir::identifier_query(source, regional_oid(&state)).map_err(input_error)?;
    if let IdentifierQuery::Source(s) = &query
        && !state
            .identity
            .knows_authority(&s.authority)
            .await
            .map_err(index_error)?
    {
        // ITI-83: an unknown source domain is a 400 (code-invalid).
        let mut e = ApiError::bad_request(format!(
            "sourceIdentifier: urn:oid:{} is not a patient identifier domain of this region",
            s.authority
        ));
        e.expression = Some("sourceIdentifier".into());
        return Err(e);
    }
    for t in &targets {
        let known = match pfhir::oid_of(t) {
            Some(oid) if oid == regional_oid(&state) => true,
            Some(oid)
                if megalis_identity_index::identity::ins::InsKind::from_oid(oid, true).is_ok() =>
            {
                true
            }
            Some(oid) => state
                .identity
                .knows_authority(oid)
                .await
                .map_err(index_error)?,
            None => false,
        };
        if !known {
            // ITI-83: a target domain the manager does not know is a 403.
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("targetSystem {t:?} is not a patient identifier domain of this region"),
            ));
        }
    }
    let patient = state
        .identity
        .resolve(&query)
        .await
        .map_err(index_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("no patient carries the identifier {source}"),
            )
        })?;
    patient_access::seen_one(
        &state,
        &audit,
        &principal,
        "patient.read",
        &patient.regional_id,
        "FHIR $ihe-pix",
    )
    .await?;
    Ok(fhir_json(
        StatusCode::OK,
        &pfhir::pix_parameters(
            &patient,
            &targets,
            &base_url(&state),
            &regional_system(&state),
        ),
    ))
}
