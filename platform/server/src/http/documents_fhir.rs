//! Shared documents over FHIR R4, IHE MHD: provide (ITI-65, a transaction Bundle posted to
//! `/fhir`), streamed `Binary` upload for large contents (`POST /fhir/Binary`, e.g. a 200 MB
//! EEG), find (ITI-67, `GET /fhir/DocumentReference`), read, retrieve (ITI-68,
//! `GET /fhir/Binary/{id}`), and withdrawal (`DELETE /fhir/DocumentReference/{id}`: the status
//! becomes `entered-in-error`, nothing is removed).
//!
//! Every access goes through the one decision (`http/access.rs`): who may deposit for this
//! patient, which documents of the patient this caller may see (the patient's masks, very
//! restricted documents, the author's own documents), and each is audited in the patient's log.
//! Callers without any right are refused before an id is looked up.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::TryStreamExt;
use http::{StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::Principal;
use megalis_documents::{
    DeclaredHash, DocumentEntry, DocumentError, Documents, Subject, fhir as dfhir,
};
use megalis_identity_index::search::IdentifierQuery;
use megalis_sharing::{
    AccessRequest, Action, Confidentiality, DocumentFacts, Purpose, Reason, Resource,
};
use serde_json::Value;

use super::access::{self, Ask};
use super::auth_glue::Audit;
use super::routes::{Probe, ProbeAuth::Bearer, Route};
use super::{ApiError, AppState};

const BUNDLE: &str = r#"{"resourceType":"Bundle","type":"transaction","entry":[]}"#;
const REFERENCE: &str = r#"{"resourceType":"DocumentReference","status":"current"}"#;

pub fn routes() -> Vec<Route> {
    vec![
        Route::patient(
            "/fhir",
            &["POST"],
            &[Probe::post("/fhir", Bearer, BUNDLE)],
            post(provide),
        ),
        Route::patient(
            "/fhir/Binary",
            &["POST"],
            &[Probe::post("/fhir/Binary", Bearer, "%PDF-1.4 walk")],
            post(upload),
        )
        .streamed(),
        Route::patient(
            "/fhir/Binary/{id}",
            &["GET"],
            &[Probe::get("/fhir/Binary/walk", Bearer)],
            get(retrieve),
        ),
        Route::patient(
            "/fhir/DocumentReference",
            &["GET", "POST"],
            &[
                Probe::get("/fhir/DocumentReference?patient={patient}", Bearer),
                Probe::post("/fhir/DocumentReference", Bearer, REFERENCE),
            ],
            get(find).post(provide_one),
        ),
        Route::patient(
            "/fhir/DocumentReference/{id}",
            &["GET", "DELETE"],
            &[
                Probe::get("/fhir/DocumentReference/walk", Bearer),
                Probe::delete("/fhir/DocumentReference/walk", Bearer),
            ],
            get(read).delete(withdraw),
        ),
    ]
}

/// The documents service of this server.
pub fn service(state: &AppState) -> Documents {
    Documents::new(
        state.db.clone(),
        Arc::clone(&state.blobs),
        megalis_documents::Limits {
            max_binary_size: state.settings.documents_max_size,
            max_inline_size: state.settings.http_body_limit,
        },
    )
}

use super::fhir::fhir_response as fhir_json;

use super::fhir::base_url;

/// Maps the documents crate's error once: input errors name the element at fault.
pub fn document_error(e: DocumentError) -> ApiError {
    if let Some(input) = e.input_error() {
        let status = match e {
            DocumentError::Conflict(_) => StatusCode::CONFLICT,
            DocumentError::UnknownPatient(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut err = ApiError::new(status, format!("{}: {}", input.expression, input.message));
        err.expression = Some(input.expression.clone());
        return err;
    }
    match e {
        DocumentError::TooLarge { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the content is larger than the limit of {limit} bytes; nothing was stored"),
        ),
        DocumentError::NotFound(what) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("{what} is not known"))
        }
        DocumentError::Store(ref s) if megalis_store::is_connection_error(s) => {
            ApiError::unavailable("The document store is unavailable; try again.")
        }
        e => {
            tracing::error!(error = %e, "documents");
            ApiError::internal()
        }
    }
}

/// The regional patient a document subject names, through the identity index (merges
/// followed); `None` when no patient has it.
async fn resolve(state: &AppState, subject: &Subject) -> Result<Option<String>, String> {
    let query = match subject {
        Subject::Patient(id) => IdentifierQuery::Regional(id.clone()),
        Subject::Identifier(i) => megalis_identity_index::fhir::identifier_query(
            &format!("{}|{}", i.system, i.value),
            &state.settings.identity_regional_oid,
        )
        .map_err(|e| e.message)?,
    };
    let found = state
        .identity
        .resolve(&query)
        .await
        .map_err(|e| e.to_string())?;
    Ok(found.map(|p| p.merged_into.unwrap_or(p.regional_id)))
}

/// What the documents service's patient resolver returns.
type ResolveFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<Option<String>, megalis_documents::ResolveError>>
            + Send,
    >,
>;

pub(crate) fn resolver(state: &AppState) -> impl Fn(&Subject) -> ResolveFuture + Send + Sync {
    let state = state.clone();
    move |subject: &Subject| {
        let state = state.clone();
        let subject = subject.clone();
        Box::pin(async move {
            resolve(&state, &subject)
                .await
                .map_err(|e| -> megalis_documents::ResolveError { e.into() })
        })
    }
}

/// A document not yet known (a deposit, a search): what the decision and the SMART scope
/// (`DocumentReference`) are about before a particular document is.
pub(crate) fn any_document() -> Resource {
    Resource::Document(DocumentFacts {
        id: String::new(),
        author: None,
        confidentiality: Confidentiality::Normal,
    })
}

pub(crate) fn facts_of(doc: &DocumentEntry) -> DocumentFacts {
    DocumentFacts {
        id: doc.id.clone(),
        author: doc.metadata.author.as_ref().map(|a| a.national_id.clone()),
        confidentiality: Confidentiality::from_code(doc.metadata.confidentiality.code())
            .unwrap_or(Confidentiality::VeryRestricted),
    }
}

fn document_ask<'a>(
    doc: &'a DocumentEntry,
    principal: &Principal,
    action: Action,
    audit_action: &'a str,
    detail: &'a str,
) -> Ask<'a> {
    Ask {
        regional_id: &doc.patient_id,
        resource: Resource::Document(facts_of(doc)),
        action,
        purpose: Purpose::Care,
        audit_action,
        object_type: "DocumentReference",
        object_id: Some(&doc.id),
        detail,
        // A hospital system reads back and withdraws what it deposited itself.
        is_custodian: principal.client_id.as_deref() == Some(doc.created_by.as_str())
            && principal.kind == megalis_auth::PrincipalKind::System,
    }
}

/// Audits the effects of a write, one record per change, in the patients' logs.
async fn audit_effects(
    state: &AppState,
    audit: &Audit,
    principal: &Principal,
    effects: &[megalis_documents::Effect],
) -> Result<(), ApiError> {
    for e in effects {
        let (object_type, object_id) = e.resource.split_once('/').unwrap_or(("", &e.resource));
        let mut record = audit
            .record(principal, e.action, object_type, Outcome::Success)
            .object(object_id)
            .detail(&e.detail);
        if let Some(p) = &e.patient_id {
            record = record.patient(p);
        }
        record.send(state).await?;
    }
    Ok(())
}

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let mut err = ApiError::bad_request(format!("the body is not JSON: {e}"));
        err.expression = Some("Bundle".into());
        err
    })
}

/// ITI-65: a transaction Bundle of DocumentReferences and their Binaries, for one patient.
async fn provide(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Write,
        "document.provide",
        "Bundle",
    )
    .await?;
    let bundle = parse_json(&body)?;
    let documents = service(&state);
    let checked = documents
        .check_bundle(&bundle, &resolver(&state), &principal.subject)
        .await
        .map_err(document_error)?;
    let patient = checked.patient_id().to_string();
    access::decide(
        &state,
        &audit,
        &principal,
        Ask {
            regional_id: &patient,
            resource: any_document(),
            action: Action::Write,
            purpose: Purpose::Care,
            audit_action: "document.provide",
            object_type: "Bundle",
            object_id: None,
            detail: "FHIR ITI-65",
            is_custodian: false,
        },
    )
    .await?;
    let provided = documents
        .provide_checked(checked, &principal.subject)
        .await
        .map_err(document_error)?;
    audit_effects(&state, &audit, &principal, &provided.effects).await?;
    Ok(fhir_json(StatusCode::OK, &provided.response))
}

/// A DocumentReference alone, whose content is a Binary the same caller uploaded before.
async fn provide_one(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Write,
        "document.provide",
        "DocumentReference",
    )
    .await?;
    let resource = parse_json(&body)?;
    // The subject first, so the decision is made before anything is written.
    let subject = dfhir::subject(&resource["subject"], "DocumentReference.subject")
        .map_err(|e| document_error(DocumentError::Invalid(e)))?;
    let patient = megalis_documents::resolve_subject(
        &resolver(&state),
        &subject,
        "DocumentReference.subject",
    )
    .await
    .map_err(document_error)?;
    access::decide(
        &state,
        &audit,
        &principal,
        Ask {
            regional_id: &patient,
            resource: any_document(),
            action: Action::Write,
            purpose: Purpose::Care,
            audit_action: "document.provide",
            object_type: "DocumentReference",
            object_id: None,
            detail: "FHIR create",
            is_custodian: false,
        },
    )
    .await?;
    let provided = service(&state)
        .provide_document(&resource, &resolver(&state), &principal.subject)
        .await
        .map_err(document_error)?;
    audit_effects(&state, &audit, &principal, &provided.effects).await?;
    let created = provided
        .documents
        .first()
        .map(dfhir::document_reference)
        .unwrap_or(Value::Null);
    let mut response = fhir_json(StatusCode::CREATED, &created);
    if let Some(d) = provided.documents.first()
        && let Ok(v) = format!("{}/DocumentReference/{}", base_url(&state), d.id).parse()
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// Streamed upload of a content (the route has no body limit of its own: the documents
/// service counts and refuses past `documents.max_size` while it streams).
async fn upload(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    request: Request,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Write,
        "binary.create",
        "Binary",
    )
    .await?;
    let headers = request.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // The uploader may declare the content's hash (SHA-256 hex or SHA-1 base64), checked once
    // the content is complete.
    let declared = headers
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(DeclaredHash::parse)
        .transpose()
        .map_err(|e| document_error(DocumentError::Invalid(e)))?;
    let stream = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let (binary, effect) = service(&state)
        .store_binary(
            Box::pin(stream),
            &content_type,
            declared,
            &principal.subject,
        )
        .await
        .map_err(document_error)?;
    audit_effects(&state, &audit, &principal, &[effect]).await?;
    let mut response = fhir_json(StatusCode::CREATED, &dfhir::binary_resource(&binary));
    if let Ok(v) = format!("{}/Binary/{}", base_url(&state), binary.id).parse() {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}

/// ITI-68: the content, streamed and checked against its SHA-256 on the way (a corrupt blob
/// aborts the response before its end).
async fn retrieve(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Read,
        "document.retrieve",
        "Binary",
    )
    .await?;
    let documents = service(&state);
    let found = documents.binary_access(&id).await.map_err(document_error)?;
    let allowed = if found.documents.is_empty() {
        // Not attached yet: its uploader's only.
        found.binary.uploaded_by == principal.subject
    } else {
        let mut allowed = false;
        for (document_id, _) in &found.documents {
            let doc = documents
                .document(document_id)
                .await
                .map_err(document_error)?;
            let decision = access::decide_quietly(
                &state,
                &audit,
                &principal,
                &document_ask(
                    &doc,
                    &principal,
                    Action::Read,
                    "document.retrieve",
                    "FHIR ITI-68",
                ),
            )
            .await?;
            if decision.allowed {
                allowed = true;
                break;
            }
        }
        allowed
    };
    if !allowed {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Vous n'avez pas accès à ce contenu. / You may not read this content.",
        ));
    }
    let stream = documents
        .open_binary(&found.binary)
        .await
        .map_err(document_error)?;
    let body = Body::from_stream(stream.map_err(std::io::Error::other));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    if let Ok(v) = found.binary.content_type.parse() {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, found.binary.size.into());
    if let Ok(v) = format!("\"{}\"", found.binary.sha256).parse() {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// ITI-67: one patient's documents, those this caller may see.
async fn find(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Read,
        "document.search",
        "DocumentReference",
    )
    .await?;
    let request =
        dfhir::search_request(&params).map_err(|e| document_error(DocumentError::Invalid(e)))?;
    let patient = megalis_documents::resolve_subject(
        &resolver(&state),
        &request.subject,
        "DocumentReference.subject",
    )
    .await
    .map_err(document_error)?;
    let echo = request.echo.clone();
    let mut page = service(&state)
        .find(&request.into_query(patient.clone()))
        .await
        .map_err(document_error)?;
    // One set of facts and one requester for the whole page; each document decided.
    let facts = access::facts(&state, &patient).await?;
    let requester =
        access::requester(&state, &principal, &any_document(), Action::Read, false).await?;
    let now = megalis_auth::now_us();
    let patient_level = megalis_sharing::decide(&AccessRequest {
        requester: &requester,
        resource: &any_document(),
        action: Action::Read,
        purpose: Purpose::Care,
        facts: &facts,
        now,
    });
    let before = page.entries.len();
    let mut withheld: Vec<&'static str> = Vec::new();
    page.entries.retain(|doc| {
        let custodian = principal.kind == megalis_auth::PrincipalKind::System
            && principal.client_id.as_deref() == Some(doc.created_by.as_str());
        let requester = match &requester {
            megalis_sharing::Requester::System {
                client_id,
                scope_granted,
                ..
            } => megalis_sharing::Requester::System {
                client_id: client_id.clone(),
                scope_granted: *scope_granted,
                is_custodian: custodian,
            },
            other => other.clone(),
        };
        let d = megalis_sharing::decide(&AccessRequest {
            requester: &requester,
            resource: &Resource::Document(facts_of(doc)),
            action: Action::Read,
            purpose: Purpose::Care,
            facts: &facts,
            now,
        });
        if !d.allowed {
            withheld.push(d.reason.code());
        }
        d.allowed
    });
    let shown = page.entries.len();
    let withheld_count = before - shown;
    page.total = page.total.saturating_sub(withheld_count as u64);
    let refused = shown == 0 && !patient_level.allowed;
    let outcome = if refused {
        Outcome::Denied
    } else {
        Outcome::Success
    };
    withheld.sort_unstable();
    withheld.dedup();
    audit
        .record(&principal, "document.search", "DocumentReference", outcome)
        .patient(&patient)
        .detail(&format!(
            "reason={} purpose=care; FHIR ITI-67: {shown} shown, {withheld_count} withheld{}",
            patient_level.reason.code(),
            if withheld.is_empty() {
                String::new()
            } else {
                format!(" ({})", withheld.join(", "))
            }
        ))
        .send(&state)
        .await?;
    state
        .metrics
        .access_decisions
        .with_label_values(&[
            if refused { "deny" } else { "allow" },
            patient_level.reason.code(),
        ])
        .inc();
    if refused {
        return Err(ApiError::new(
            access::status_of(patient_level.reason),
            patient_level.reason.text(),
        ));
    }
    Ok(fhir_json(
        StatusCode::OK,
        &dfhir::search_bundle(&page, &base_url(&state), &echo),
    ))
}

async fn read(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Read,
        "document.read",
        "DocumentReference",
    )
    .await?;
    let doc = service(&state)
        .document(&id)
        .await
        .map_err(document_error)?;
    access::decide(
        &state,
        &audit,
        &principal,
        document_ask(&doc, &principal, Action::Read, "document.read", "FHIR read"),
    )
    .await?;
    Ok(fhir_json(StatusCode::OK, &dfhir::document_reference(&doc)))
}

/// Withdrawal: the document becomes `entered-in-error` (kept, audited); its author or the
/// system that deposited it may do so.
async fn withdraw(
    State(state): State<AppState>,
    audit: Audit,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    access::precheck(
        &state,
        &audit,
        &principal,
        &any_document(),
        Action::Write,
        "document.withdraw",
        "DocumentReference",
    )
    .await?;
    let documents = service(&state);
    let doc = documents.document(&id).await.map_err(document_error)?;
    let decision = access::decide(
        &state,
        &audit,
        &principal,
        document_ask(
            &doc,
            &principal,
            Action::Write,
            "document.withdraw",
            "FHIR delete",
        ),
    )
    .await?;
    let custodian = principal.kind == megalis_auth::PrincipalKind::System
        && principal.client_id.as_deref() == Some(doc.created_by.as_str());
    if !(decision.reason == Reason::Author || decision.reason == Reason::SystemScope && custodian) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Seul l'auteur du document ou le système qui l'a déposé peut le retirer. / Only the \
             document's author or the system that deposited it may withdraw it.",
        ));
    }
    let effect = documents
        .mark_entered_in_error(&id, &principal.subject)
        .await
        .map_err(document_error)?;
    audit_effects(&state, &audit, &principal, &[effect]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The CapabilityStatement `rest.resource` entries of MHD: DocumentReference and Binary.
pub fn capability_resources() -> Vec<Value> {
    let param = |name: &str, kind: &str, doc: &str| serde_json::json!({"name": name, "type": kind, "documentation": doc});
    vec![
        serde_json::json!({
            "type": "DocumentReference",
            "supportedProfile": ["https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.DocumentReference"],
            "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}, {"code": "delete"}],
            "searchParam": [
                param("patient", "reference", "Patient/{regional id} (or patient.identifier): required"),
                param("status", "token", "current | superseded | entered-in-error"),
                param("type", "token", "LOINC document type"),
                param("category", "token", "class of document"),
                param("date", "date", "when the reference was made, with eq/ge/gt/le/lt"),
                param("author.identifier", "token", "the author's national id"),
                param("period", "date", "the period of care documented"),
            ],
        }),
        serde_json::json!({
            "type": "Binary",
            "interaction": [{"code": "read"}, {"code": "create"}],
        }),
    ]
}
