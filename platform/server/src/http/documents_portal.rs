//! The portal's document pages: a patient's shared documents with filters (each document put
//! through the access decision; the reason shown when none may be seen), one document with its
//! metadata, a PDF shown inline, and an ECG/EEG recording plotted as a waveform, read as a
//! stream for the requested time window only (a 200 MB EEG is never held in memory).

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::Principal;
use megalis_documents::{DocumentEntry, DocumentQuery, Status};
use megalis_portal::{
    DocumentFilters, DocumentListPage, DocumentPage, DocumentRow, DocumentTexts, Lang, Texts,
    Viewer,
};
use megalis_sharing::{AccessRequest, Action, Purpose, Reason, Resource};
use serde::Deserialize;

use super::access;
use super::auth_glue::Audit;
use super::documents_fhir::{any_document, document_error, facts_of, service};
use super::portal::{check_csrf, page, require_session, user_bar};
use super::routes::{Probe, ProbeAuth::Session, Route};
use super::{ApiError, AppState};

pub fn routes() -> Vec<Route> {
    vec![
        Route::patient(
            "/patients/{regional_id}/documents",
            &["GET"],
            &[Probe::get("/patients/{patient}/documents", Session)],
            get(list),
        ),
        Route::patient(
            "/patients/{regional_id}/documents/upload",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/documents/upload",
                Session,
                "csrf={csrf}",
            )],
            axum::routing::post(upload),
        )
        .streamed(),
        Route::patient(
            "/patients/{regional_id}/documents/{id}",
            &["GET"],
            &[Probe::get("/patients/{patient}/documents/walk", Session)],
            get(view),
        ),
        Route::patient(
            "/patients/{regional_id}/documents/{id}/content",
            &["GET"],
            &[Probe::get(
                "/patients/{patient}/documents/walk/content",
                Session,
            )],
            get(content),
        ),
    ]
}

#[derive(Deserialize, Default)]
struct ListQuery {
    lang: Option<String>,
    #[serde(default, rename = "type")]
    doc_type: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    withdrawn: String,
}

#[derive(Deserialize, Default)]
struct ViewQuery {
    lang: Option<String>,
    start: Option<f64>,
    duration: Option<f64>,
}

fn texts(lang: Option<&str>, headers: &HeaderMap) -> (&'static Texts, &'static DocumentTexts) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Texts::of(Lang::negotiate(lang, accept));
    (t, DocumentTexts::of(t))
}

fn row(dt: &DocumentTexts, doc: &DocumentEntry) -> DocumentRow {
    let m = &doc.metadata;
    let coding = |c: &megalis_documents::model::Coding| {
        format!(
            "{} ({})",
            c.display.clone().unwrap_or_else(|| c.code.clone()),
            c.code
        )
    };
    DocumentRow {
        id: doc.id.clone(),
        title: m
            .content
            .title
            .clone()
            .or_else(|| m.description.clone())
            .unwrap_or_else(|| coding(&m.doc_type)),
        doc_type: coding(&m.doc_type),
        date: m.date.as_str().to_string(),
        author: m
            .author
            .as_ref()
            .map_or_else(|| "—".to_string(), |a| a.national_id.clone()),
        confidentiality: format!(
            "{} ({})",
            m.confidentiality.display(),
            m.confidentiality.code()
        ),
        status: match doc.status {
            Status::Current => {
                if dt.lang == "en" {
                    "current"
                } else {
                    "en vigueur"
                }
            }
            Status::Superseded => {
                if dt.lang == "en" {
                    "replaced"
                } else {
                    "remplacé"
                }
            }
            Status::EnteredInError => {
                if dt.lang == "en" {
                    "withdrawn"
                } else {
                    "retiré"
                }
            }
        }
        .to_string(),
        format: format!(
            "{}, {} kB",
            m.content.content_type,
            m.content.size.div_ceil(1000)
        ),
    }
}

/// The patient (after merges) and a display name, or 404.
async fn patient_of(state: &AppState, id: &str) -> Result<(String, String), ApiError> {
    let found = state
        .identity
        .resolve(&megalis_identity_index::search::IdentifierQuery::Regional(
            id.to_string(),
        ))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "patient index");
            ApiError::unavailable(
                "L'index des patients est indisponible. / The patient index is unavailable.",
            )
        })?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("Patient inconnu : {id}. / Unknown patient: {id}."),
            )
        })?;
    let t = &found.golden.demographics.traits;
    let name = format!(
        "{} {}",
        t.birth_name.to_uppercase(),
        t.birth_first_names.join(" ")
    );
    Ok((found.merged_into.unwrap_or(found.regional_id), name))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(regional_id): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let (t, dt) = texts(q.lang.as_deref(), &headers);
    let any = any_document();
    access::precheck(
        &state,
        &audit,
        &principal,
        &any,
        Action::Read,
        "document.search",
        "DocumentReference",
    )
    .await?;
    let (patient, name) = patient_of(&state, &regional_id).await?;
    let mut params: Vec<(String, String)> = vec![("patient".into(), format!("Patient/{patient}"))];
    if !q.doc_type.trim().is_empty() {
        params.push((
            "type".into(),
            format!("http://loinc.org|{}", q.doc_type.trim()),
        ));
    }
    if !q.from.is_empty() {
        params.push(("date".into(), format!("ge{}", q.from)));
    }
    if !q.to.is_empty() {
        params.push(("date".into(), format!("le{}", q.to)));
    }
    if q.withdrawn.is_empty() {
        params.push(("status".into(), "current".into()));
    }
    params.push(("_count".into(), "100".into()));
    let request = megalis_documents::fhir::search_request(&params).map_err(|e| {
        let mut err = ApiError::bad_request(format!("{}: {}", e.expression, e.message));
        err.expression = Some(e.expression);
        err
    })?;
    let query: DocumentQuery = request.into_query(patient.clone());
    let page_of = service(&state).find(&query).await.map_err(document_error)?;
    let facts = access::facts(&state, &patient).await?;
    let requester = access::requester(&state, &principal, &any, Action::Read, false).await?;
    let now = megalis_auth::now_us();
    let patient_level = megalis_sharing::decide(&AccessRequest {
        requester: &requester,
        resource: &any,
        action: Action::Read,
        purpose: Purpose::Care,
        facts: &facts,
        now,
    });
    let mut rows = Vec::new();
    let mut withheld = 0;
    for doc in &page_of.entries {
        let d = megalis_sharing::decide(&AccessRequest {
            requester: &requester,
            resource: &Resource::Document(facts_of(doc)),
            action: Action::Read,
            purpose: Purpose::Care,
            facts: &facts,
            now,
        });
        if d.allowed {
            rows.push(row(dt, doc));
        } else {
            withheld += 1;
        }
    }
    let refused = rows.is_empty() && !patient_level.allowed;
    audit
        .record(
            &principal,
            "document.search",
            "DocumentReference",
            if refused {
                Outcome::Denied
            } else {
                Outcome::Success
            },
        )
        .patient(&patient)
        .detail(&format!(
            "reason={} purpose=care; portal: {} shown, {withheld} withheld",
            patient_level.reason.code(),
            rows.len()
        ))
        .send(&state)
        .await?;
    let filters = DocumentFilters {
        doc_type: q.doc_type.clone(),
        from: q.from.clone(),
        to: q.to.clone(),
        include_withdrawn: !q.withdrawn.is_empty(),
    };
    let body = page(DocumentListPage {
        t,
        dt,
        user: user_bar(&principal),
        regional_id: patient,
        patient_name: name,
        filters,
        rows: if refused { Vec::new() } else { rows },
        withheld: if refused { 0 } else { withheld },
        refusal: refused.then(|| patient_level.reason.text().to_string()),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        may_upload: patient_level.allowed
            && matches!(requester, megalis_sharing::Requester::Professional { .. }),
        types: UPLOAD_TYPES
            .iter()
            .map(|(code, fr, en)| (*code, if t.lang == "en" { *en } else { *fr }))
            .collect(),
    })?;
    if refused {
        // The page explains the refusal and the way forward; the status says it too.
        let (mut parts, b) = body.into_parts();
        parts.status = access::status_of(patient_level.reason);
        let mut response = Response::from_parts(parts, b);
        super::problem::keep_as_is(&mut response);
        return Ok(response);
    }
    Ok(body)
}

/// Loads a document of this patient and decides on it (audited); a refusal is the error.
async fn decided_document(
    state: &AppState,
    audit: &Audit,
    principal: &Principal,
    regional_id: &str,
    id: &str,
    audit_action: &str,
) -> Result<DocumentEntry, ApiError> {
    let any = any_document();
    access::precheck(
        state,
        audit,
        principal,
        &any,
        Action::Read,
        audit_action,
        "DocumentReference",
    )
    .await?;
    let (patient, _) = patient_of(state, regional_id).await?;
    let doc = service(state).document(id).await.map_err(document_error)?;
    let lineage = state
        .sharing
        .lineage(&patient)
        .await
        .map_err(access::sharing_error)?;
    if !lineage.contains(&doc.patient_id) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Document introuvable : {id}. / Document not found: {id}."),
        ));
    }
    access::decide(
        state,
        audit,
        principal,
        access::Ask {
            regional_id: &doc.patient_id,
            resource: Resource::Document(facts_of(&doc)),
            action: Action::Read,
            purpose: Purpose::Care,
            audit_action,
            object_type: "DocumentReference",
            object_id: Some(&doc.id),
            detail: "portal",
            is_custodian: false,
        },
    )
    .await?;
    Ok(doc)
}

/// A blocking `Read` over an async blob stream, so that the (synchronous, streaming) waveform
/// readers run on a blocking thread while the content arrives chunk by chunk; dropping it
/// stops the transfer.
struct StreamReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

async fn stream_reader(state: &AppState, doc: &DocumentEntry) -> Result<StreamReader, ApiError> {
    let documents = service(state);
    let access = documents
        .binary_access(&doc.metadata.content.binary_id)
        .await
        .map_err(document_error)?;
    let mut stream = documents
        .open_binary(&access.binary)
        .await
        .map_err(document_error)?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(std::io::Error::other);
            if tx.send(item).await.is_err() {
                break; // the reader has what it needs
            }
        }
    });
    Ok(StreamReader {
        rx,
        current: Bytes::new(),
    })
}

const WAVEFORM_TYPES: &[&str] = &[
    "application/edf",
    "application/x-edf",
    "application/hl7-v3+xml",
    "text/xml",
    "application/xml",
];

/// Reads the window of a recording and renders it, on a blocking thread.
async fn waveform(
    state: &AppState,
    doc: &DocumentEntry,
    start: f64,
    duration: f64,
    lang: &str,
) -> Result<Result<(String, String), String>, ApiError> {
    let reader = stream_reader(state, doc).await?;
    let lang = lang.to_string();
    let rendered = tokio::task::spawn_blocking(move || -> Result<(String, String), String> {
        use megalis_waveforms::{
            AnnotationScan, Format, RenderOptions, TimeWindow, aecg, edf::EdfReader, render_svg,
        };
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
        let head = {
            use std::io::BufRead;
            reader.fill_buf().map_err(|e| e.to_string())?.to_vec()
        };
        let window = TimeWindow::new(start, duration).map_err(|e| e.to_string())?;
        let (window, summary) = match megalis_waveforms::sniff_format(&head) {
            Some(Format::Aecg) => {
                let ecg = aecg::parse(reader).map_err(|e| e.to_string())?;
                let summary = ecg.summary();
                (ecg.window(window).map_err(|e| e.to_string())?, summary)
            }
            Some(_) => {
                let edf = EdfReader::open(reader).map_err(|e| e.to_string())?;
                let summary = edf.summary();
                (
                    edf.read_window(window, AnnotationScan::UpToWindowEnd)
                        .map_err(|e| e.to_string())?,
                    summary,
                )
            }
            None => return Err("format not recognised (EDF/EDF+ or HL7 aECG)".into()),
        };
        let text = if lang == "en" {
            format!(
                "{} channel(s), {:.0} s recorded",
                summary.channels.len(),
                summary.duration
            )
        } else {
            format!(
                "{} voie(s), {:.0} s enregistrées",
                summary.channels.len(),
                summary.duration
            )
        };
        Ok((render_svg(&window, &RenderOptions::default()), text))
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "waveform rendering");
        ApiError::internal()
    })?;
    Ok(rendered)
}

async fn view(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path((regional_id, id)): Path<(String, String)>,
    Query(q): Query<ViewQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let (t, dt) = texts(q.lang.as_deref(), &headers);
    let doc = decided_document(
        &state,
        &audit,
        &principal,
        &regional_id,
        &id,
        "document.read",
    )
    .await?;
    let base = format!("/patients/{}/documents/{}", doc.patient_id, doc.id);
    let content_url = format!("{base}/content");
    let content_type = doc.metadata.content.content_type.as_str();
    let viewer = if content_type == "application/pdf" {
        Viewer::Pdf { url: content_url }
    } else if WAVEFORM_TYPES.contains(&content_type) {
        let start = q.start.unwrap_or(0.0).max(0.0);
        let duration = q.duration.unwrap_or(10.0).clamp(1.0, 600.0);
        match waveform(&state, &doc, start, duration, t.lang).await? {
            Ok((svg, summary)) => {
                let link = |s: f64| format!("{base}?lang={}&start={s}&duration={duration}", t.lang);
                Viewer::Waveform {
                    svg,
                    summary,
                    start: start.to_string(),
                    duration: duration.to_string(),
                    prev: (start > 0.0).then(|| link((start - duration).max(0.0))),
                    next: Some(link(start + duration)),
                }
            }
            Err(reason) => Viewer::Unreadable {
                reason,
                url: content_url,
            },
        }
    } else {
        Viewer::Download { url: content_url }
    };
    let m = &doc.metadata;
    let mut fields = Vec::new();
    if let Some(c) = &m.category {
        fields.push((
            if dt.lang == "en" {
                "Category"
            } else {
                "Catégorie"
            },
            c.display.clone().unwrap_or_else(|| c.code.clone()),
        ));
    }
    fields.push(("SHA-256", m.content.sha256.to_hex()));
    if let Some(r) = &m.replaces {
        fields.push((
            if dt.lang == "en" {
                "Replaces"
            } else {
                "Remplace"
            },
            r.clone(),
        ));
    }
    page(DocumentPage {
        t,
        dt,
        user: user_bar(&principal),
        regional_id: doc.patient_id.clone(),
        row: row(dt, &doc),
        fields,
        viewer,
    })
}

/// The content itself, for the inline PDF frame and downloads: streamed, checked against its
/// SHA-256 on the way, framable by the portal's own pages only.
async fn content(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path((regional_id, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let doc = decided_document(
        &state,
        &audit,
        &principal,
        &regional_id,
        &id,
        "document.retrieve",
    )
    .await?;
    let documents = service(&state);
    let found = documents
        .binary_access(&doc.metadata.content.binary_id)
        .await
        .map_err(document_error)?;
    let stream = documents
        .open_binary(&found.binary)
        .await
        .map_err(document_error)?;
    let mut response = Response::new(Body::from_stream(stream.map_err(std::io::Error::other)));
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&found.binary.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, found.binary.size.into());
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline"),
    );
    // Framed by the document page (same origin) only; the security headers keep a handler's
    // own policy.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'self'"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response.into_response())
}

/// Document types offered in the upload form: LOINC code and French/English names.
const UPLOAD_TYPES: &[(&str, &str, &str)] = &[
    (
        "11488-4",
        "Compte rendu de consultation",
        "Consultation note",
    ),
    ("11506-3", "Note d'évolution", "Progress note"),
    ("18842-5", "Compte rendu de sortie", "Discharge summary"),
    ("11502-2", "Compte rendu de biologie", "Laboratory report"),
    (
        "18748-4",
        "Compte rendu d'imagerie",
        "Diagnostic imaging study",
    ),
    ("11524-6", "Électrocardiogramme (ECG)", "EKG study"),
    ("11523-8", "Électroencéphalogramme (EEG)", "EEG study"),
];

/// The media type of an uploaded file: the browser's, unless it only says "bytes" (an EDF or
/// aECG file usually gets `application/octet-stream`): then by extension. The documents
/// service checks the content against it either way.
fn upload_media_type(declared: Option<&str>, file_name: Option<&str>) -> String {
    let by_name = file_name.map(str::to_ascii_lowercase).and_then(|n| {
        let ext = n.rsplit('.').next()?.to_string();
        Some(match ext.as_str() {
            "pdf" => "application/pdf",
            "edf" => "application/edf",
            "xml" => "text/xml",
            "jpg" | "jpeg" => "image/jpeg",
            "png" => "image/png",
            "dcm" => "application/dicom",
            _ => return None,
        })
    });
    match declared {
        Some(d) if !d.is_empty() && d != "application/octet-stream" => d.to_string(),
        _ => by_name.unwrap_or("application/octet-stream").to_string(),
    }
}

/// Upload from the portal: the form's fields first (CSRF token, title, type, confidentiality),
/// the file last, streamed to the blob store; then the DocumentReference, authored by the
/// signed-in professional, for a patient whose care team they are in.
async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let any = any_document();
    access::precheck(
        &state,
        &audit,
        &principal,
        &any,
        Action::Write,
        "document.provide",
        "DocumentReference",
    )
    .await?;
    let (patient, _) = patient_of(&state, &regional_id).await?;
    // Read as multipart only once the caller may deposit at all (the check above is audited).
    let mut multipart = <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("formulaire attendu en multipart/form-data / a multipart/form-data form is expected: {e}")))?;
    let bad = |m: &str| ApiError::bad_request(m.to_string());
    let mut fields: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut binary = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(&format!("formulaire illisible / unreadable form: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" {
            let value = field
                .text()
                .await
                .map_err(|e| bad(&format!("formulaire illisible / unreadable form: {e}")))?;
            if value.len() > 2000 {
                return Err(bad("champ trop long / field too long"));
            }
            fields.insert(name, value);
            continue;
        }
        // The fields before the file decide whether it is read at all.
        check_csrf(&principal, fields.get("csrf").map_or("", String::as_str))?;
        let me = match access::requester(&state, &principal, &any, Action::Write, false).await? {
            megalis_sharing::Requester::Professional { national_id, .. } => national_id,
            _ => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    Reason::NotAHealthProfessional.text(),
                ));
            }
        };
        access::decide(
            &state,
            &audit,
            &principal,
            access::Ask {
                regional_id: &patient,
                resource: any.clone(),
                action: Action::Write,
                purpose: Purpose::Care,
                audit_action: "document.provide",
                object_type: "DocumentReference",
                object_id: None,
                detail: "portal upload",
                is_custodian: false,
            },
        )
        .await?;
        let media = upload_media_type(field.content_type(), field.file_name());
        // The field borrows the request; the blob store wants an owned stream: a small
        // channel carries the chunks while both run in this task (back-pressure kept).
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let put: megalis_blobs::PutStream =
            Box::pin(futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            }));
        let pump = async move {
            let mut field = field;
            loop {
                let item = match field.chunk().await {
                    Ok(Some(chunk)) => Ok(chunk),
                    Ok(None) => break,
                    Err(e) => Err(std::io::Error::other(e)),
                };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    break; // the store stopped reading (limit, wrong type) or the upload broke
                }
            }
        };
        let documents = service(&state);
        let (stored, ()) = tokio::join!(
            documents.store_binary(put, &media, None, &principal.subject),
            pump
        );
        let (stored, effect) = stored.map_err(document_error)?;
        binary = Some((stored, effect, me));
        break;
    }
    let Some((stored, effect, me)) = binary else {
        return Err(bad("aucun fichier / no file"));
    };
    let title = fields
        .get("title")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("le titre est requis / the title is required"))?;
    let code = fields.get("type").map(String::as_str).unwrap_or("");
    let Some((code, fr, en)) = UPLOAD_TYPES.iter().find(|(c, _, _)| *c == code) else {
        return Err(bad("type de document inconnu / unknown document type"));
    };
    let confidentiality = match fields.get("confidentiality").map(String::as_str) {
        Some("R") => "R",
        Some("V") => "V",
        _ => "N",
    };
    let reference = serde_json::json!({
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid_v4())},
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": en}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": megalis_documents::datetime::FhirDateTime::now().as_str(),
        "author": [{"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": me}}],
        "description": fr,
        "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": confidentiality}]}],
        "content": [{"attachment": {
            "contentType": stored.content_type,
            "url": format!("Binary/{}", stored.id),
            "size": stored.size,
            "hash": stored.sha1_base64(),
            "title": title
        }}]
    });
    let provided = service(&state)
        .provide_document(
            &reference,
            &super::documents_fhir::resolver(&state),
            &principal.subject,
        )
        .await
        .map_err(document_error)?;
    let mut effects = vec![effect];
    effects.extend(provided.effects);
    for e in &effects {
        let (object_type, object_id) = e.resource.split_once('/').unwrap_or(("", &e.resource));
        let mut record = audit
            .record(&principal, e.action, object_type, Outcome::Success)
            .object(object_id)
            .detail(&format!("portal upload: {}", e.detail));
        if let Some(p) = &e.patient_id {
            record = record.patient(p);
        }
        record.send(&state).await?;
    }
    let lang = fields
        .get("lang")
        .map(String::as_str)
        .filter(|l| *l == "en")
        .unwrap_or("fr");
    Ok(
        axum::response::Redirect::to(&format!("/patients/{patient}/documents?lang={lang}"))
            .into_response(),
    )
}

/// A random UUID (version 4) for the master identifier of a document uploaded in the portal.
fn uuid_v4() -> String {
    use rand::Rng;
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
