//! The patient's own space (issue 5): an account created with a one-time code that a
//! professional of the care team issues once the identity is checked; then, signed in, the
//! patient sees who accessed their record, when and why (article L.1111-19 of the Code de la
//! santé publique), manages their choices (objection to sharing, objection to emergency access,
//! consent to a professional, block of a professional) and masks their documents.
//!
//! Every page goes through the one access decision (a patient reads their own record) and is
//! audited like any other access.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::Principal;
use megalis_auth::account::{AccountKind, NewAccount};
use megalis_documents::Status;
use megalis_portal::{
    AccessLogRow, ActivatePage, Lang, MyChoiceRow, MyDocumentRow, MyRecordPage, PatientSpaceTexts,
    Texts,
};
use megalis_sharing::store::is_national_id;
use megalis_sharing::{Action, DirectiveKind, NewDirective, Purpose, Reason, Resource};
use megalis_store::with_pool;
use serde::Deserialize;

use super::access::{self, Ask, PATIENT_ROLE, patient_ids};
use super::auth_glue::{Audit, auth_error};
use super::documents_fhir::{document_error, service};
use super::portal::{check_csrf, page, require_session, user_bar};
use super::routes::{Probe, ProbeAuth::Session, Route};
use super::{ApiError, AppState};

const ACTIVATION_COOKIE: &str = "__Host-megalis-activate-csrf";

pub fn routes() -> Vec<Route> {
    vec![
        Route::patient(
            "/mon-dossier",
            &["GET"],
            &[Probe::get("/mon-dossier", Session)],
            get(my_record),
        ),
        Route::patient(
            "/mon-dossier/choices",
            &["POST"],
            &[Probe::post(
                "/mon-dossier/choices",
                Session,
                "csrf={csrf}&action=object",
            )],
            post(my_choices),
        ),
        Route::patient(
            "/mon-dossier/documents/{id}/{step}",
            &["POST"],
            &[Probe::post(
                "/mon-dossier/documents/walk/mask",
                Session,
                "csrf={csrf}",
            )],
            post(my_document_mask),
        ),
        Route::patient(
            "/patients/{regional_id}/patient-access",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/patient-access",
                Session,
                "csrf={csrf}",
            )],
            post(issue_code),
        ),
        // Public: the code is the credential (with the birth date), CSRF by double submit.
        Route::open(
            "/patient/activate",
            &["GET", "POST"],
            get(activate_form).post(activate),
        ),
    ]
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
    notice: Option<String>,
}

fn texts(lang: Option<&str>, headers: &HeaderMap) -> (&'static Texts, &'static PatientSpaceTexts) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Texts::of(Lang::negotiate(lang, accept));
    (t, PatientSpaceTexts::of(t))
}

fn when(us: i64, en: bool) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000) else {
        return us.to_string();
    };
    let d = t.date();
    if en {
        format!("{d} {:02}:{:02} UTC", t.hour(), t.minute())
    } else {
        format!(
            "{:02}/{:02}/{} {:02}:{:02} UTC",
            d.day(),
            u8::from(d.month()),
            d.year(),
            t.hour(),
            t.minute()
        )
    }
}

/// The patient this account holds, or the refusal (audited by the decision).
async fn own_patient(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    resource: Resource,
    action: Action,
    audit_action: &str,
) -> Result<String, ApiError> {
    let Some(id) = patient_ids(p)
        .into_iter()
        .next()
        .filter(|_| p.has_role(PATIENT_ROLE))
    else {
        // Not a patient account: the decision refuses and audits it.
        access::precheck(state, audit, p, &resource, action, audit_action, "Patient").await?;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            Reason::NotAPatientOfThisAccount.text(),
        ));
    };
    access::decide(
        state,
        audit,
        p,
        Ask {
            regional_id: &id,
            resource,
            action,
            purpose: Purpose::Care,
            audit_action,
            object_type: "Patient",
            object_id: Some(&id),
            detail: "patient's space",
            is_custodian: false,
        },
    )
    .await?;
    Ok(id)
}

/// Words for an audit action, in the patient's log.
fn action_text(action: &str, en: bool) -> String {
    let (fr, e) = match action {
        "patient.read" | "patient.search" | "patient.match" => {
            ("Consultation de votre identité", "Your identity was read")
        }
        "document.read" | "document.retrieve" => {
            ("Consultation d'un document", "A document was read")
        }
        "document.search" => ("Recherche de vos documents", "Your documents were searched"),
        "document.create" | "document.supersede" => {
            ("Dépôt d'un document", "A document was deposited")
        }
        "document.entered-in-error" => ("Retrait d'un document", "A document was withdrawn"),
        "consent.read" => ("Consultation de vos choix", "Your choices were read"),
        "consent.record" | "consent.revoke" | "consent.access" => {
            ("Enregistrement d'un choix", "A choice was recorded")
        }
        "care-link.declare" | "care-link.refer" => (
            "Inscription dans votre équipe de soins",
            "Entry in your care team",
        ),
        "care-link.end" => ("Fin d'une relation de soins", "A care relationship ended"),
        "emergency.declare" => (
            "Accès d'urgence (bris de glace)",
            "Emergency access (break the glass)",
        ),
        "emergency.review" | "emergency.list" => (
            "Revue d'un accès d'urgence",
            "Review of an emergency access",
        ),
        "patient.encounter" => ("Séjour hospitalier", "Hospital stay"),
        a if a.starts_with("patient.") => {
            ("Mise à jour de votre identité", "Your identity was updated")
        }
        a => return a.to_string(),
    };
    if en { e } else { fr }.to_string()
}

/// The "why" of an audit record: the decision's reason in words, else the detail.
fn why_text(detail: &str) -> String {
    detail
        .strip_prefix("reason=")
        .and_then(|rest| rest.split([' ', ';']).next())
        .and_then(Reason::from_code)
        .map(|r| r.text().to_string())
        .unwrap_or_else(|| detail.chars().take(200).collect())
}

type AuditRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
);

async fn my_record(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let en = t.lang == "en";
    let patient = own_patient(
        &state,
        &audit,
        &principal,
        Resource::AccessLog,
        Action::Read,
        "access-log.read",
    )
    .await?;
    let ids = state
        .sharing
        .lineage(&patient)
        .await
        .map_err(access::sharing_error)?;
    let list = (1..=ids.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT recorded_at_us, actor_subject, actor_national_id, actor_organisation, action, \
         outcome, detail FROM audit_record WHERE patient_id IN ({list}) \
         ORDER BY seq DESC LIMIT 200"
    );
    let rows: Vec<AuditRow> = with_pool!(&state.db, pool => {
        let mut q = megalis_store::sqlx::query_as(megalis_store::sqlx::AssertSqlSafe(sql.clone()));
        for id in &ids {
            q = q.bind(id.clone());
        }
        q.fetch_all(pool).await
    })
    .map_err(|e| {
        tracing::error!(error = %e, "access log");
        ApiError::unavailable("Le journal est indisponible. / The log is unavailable.")
    })?;
    let log = rows
        .into_iter()
        .map(
            |(at, subject, national_id, organisation, action, outcome, detail)| {
                let who = match (&national_id, &organisation) {
                    (Some(n), Some(o)) => format!("{} {n} ({o})", pt.professional),
                    (Some(n), None) => format!("{} {n}", pt.professional),
                    (None, Some(o)) => format!("{subject} ({o})"),
                    (None, None) if subject == principal.subject => pt.you.to_string(),
                    (None, None) => subject,
                };
                AccessLogRow {
                    when: when(at, en),
                    who,
                    what: action_text(&action, en),
                    why: why_text(detail.as_deref().unwrap_or("")),
                    refused: outcome == "denied",
                }
            },
        )
        .collect();
    let now = megalis_auth::now_us();
    let directives = state
        .sharing
        .directives(&patient, false)
        .await
        .map_err(access::sharing_error)?;
    let has = |k: DirectiveKind| directives.iter().any(|d| d.kind == k && d.is_active(now));
    let choices = directives
        .iter()
        .filter(|d| matches!(d.kind, DirectiveKind::Consent | DirectiveKind::Block))
        .map(|d| MyChoiceRow {
            id: d.id,
            kind: if d.kind == DirectiveKind::Consent {
                pt.consent_label
            } else {
                pt.block_label
            },
            practitioner: d.practitioner.clone().unwrap_or_default(),
            since: when(d.recorded_at, en),
        })
        .collect();
    let masked: Vec<String> = directives
        .iter()
        .filter(|d| d.kind == DirectiveKind::Mask)
        .filter_map(|d| d.document_id.clone())
        .collect();
    let mut query = megalis_documents::DocumentQuery::patient(patient.clone());
    query.count = 100;
    let found = service(&state).find(&query).await.map_err(document_error)?;
    let documents = found
        .entries
        .iter()
        .filter(|d| d.status == Status::Current)
        .map(|d| MyDocumentRow {
            id: d.id.clone(),
            title: d
                .metadata
                .content
                .title
                .clone()
                .unwrap_or_else(|| d.metadata.doc_type.code.clone()),
            date: d.metadata.date.as_str().to_string(),
            masked: masked.contains(&d.id),
        })
        .collect();
    page(MyRecordPage {
        t,
        pt,
        user: user_bar(&principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        regional_id: patient,
        notice: q.notice.is_some().then(|| pt.saved.to_string()),
        log,
        objects: has(DirectiveKind::Objection),
        objects_emergency: has(DirectiveKind::EmergencyObjection),
        choices,
        documents,
    })
}

#[derive(Deserialize)]
struct ChoiceForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    practitioner: String,
    #[serde(default)]
    id: String,
    lang: Option<String>,
}

fn back(lang: Option<&str>) -> Response {
    let lang = lang.filter(|l| *l == "en").unwrap_or("fr");
    Redirect::to(&format!("/mon-dossier?lang={lang}&notice=saved")).into_response()
}

async fn my_choices(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Form(form): Form<ChoiceForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let patient = own_patient(
        &state,
        &audit,
        &principal,
        Resource::Consent,
        Action::Write,
        "consent.access",
    )
    .await?;
    let now = megalis_auth::now_us();
    let directive = |kind, practitioner: Option<String>| NewDirective {
        regional_id: patient.clone(),
        kind,
        practitioner,
        document_id: None,
        start: now,
        end: None,
        note: String::new(),
        recorded_by: principal.subject.clone(),
    };
    let practitioner = form.practitioner.trim().to_string();
    let (what, id) = match form.action.as_str() {
        "object" => ("objection", Some(directive(DirectiveKind::Objection, None))),
        "object-emergency" => (
            "emergency-objection",
            Some(directive(DirectiveKind::EmergencyObjection, None)),
        ),
        "consent" | "block" if !is_national_id(&practitioner) => {
            return Err(ApiError::bad_request(
                "Identifiant national invalide (8 + RPPS, 12 chiffres). / Invalid national id (8 + RPPS, 12 digits).",
            ));
        }
        "consent" => (
            "consent",
            Some(directive(
                DirectiveKind::Consent,
                Some(practitioner.clone()),
            )),
        ),
        "block" => (
            "block",
            Some(directive(DirectiveKind::Block, Some(practitioner.clone()))),
        ),
        "withdraw-objection" | "withdraw-emergency-objection" => {
            let kind = if form.action == "withdraw-objection" {
                DirectiveKind::Objection
            } else {
                DirectiveKind::EmergencyObjection
            };
            for d in state
                .sharing
                .directives(&patient, false)
                .await
                .map_err(access::sharing_error)?
                .into_iter()
                .filter(|d| d.kind == kind)
            {
                state
                    .sharing
                    .revoke_directive(&patient, d.id, &principal.subject, now)
                    .await
                    .map_err(access::sharing_error)?;
            }
            (kind.as_str(), None)
        }
        "revoke" => {
            let id: i64 = form
                .id
                .parse()
                .map_err(|_| ApiError::bad_request("Choix inconnu. / Unknown choice."))?;
            let d = state
                .sharing
                .revoke_directive(&patient, id, &principal.subject, now)
                .await
                .map_err(access::sharing_error)?;
            (d.kind.as_str(), None)
        }
        _ => return Err(ApiError::bad_request("Action inconnue. / Unknown action.")),
    };
    let action = if let Some(d) = id {
        state
            .sharing
            .record_directive(&d, now)
            .await
            .map_err(access::sharing_error)?;
        "consent.record"
    } else {
        "consent.revoke"
    };
    audit
        .record(&principal, action, "Consent", Outcome::Success)
        .patient(&patient)
        .detail(&format!(
            "by the patient: {what}{}",
            if practitioner.is_empty() {
                String::new()
            } else {
                format!(" {practitioner}")
            }
        ))
        .send(&state)
        .await?;
    Ok(back(form.lang.as_deref()))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

async fn my_document_mask(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let patient = own_patient(
        &state,
        &audit,
        &principal,
        Resource::Consent,
        Action::Write,
        "consent.access",
    )
    .await?;
    let doc = service(&state)
        .document(&id)
        .await
        .map_err(document_error)?;
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
    let now = megalis_auth::now_us();
    match step.as_str() {
        "mask" => {
            state
                .sharing
                .record_directive(
                    &NewDirective {
                        regional_id: patient.clone(),
                        kind: DirectiveKind::Mask,
                        practitioner: None,
                        document_id: Some(id.clone()),
                        start: now,
                        end: None,
                        note: String::new(),
                        recorded_by: principal.subject.clone(),
                    },
                    now,
                )
                .await
                .map_err(access::sharing_error)?;
        }
        "unmask" => {
            for d in state
                .sharing
                .directives(&patient, false)
                .await
                .map_err(access::sharing_error)?
                .into_iter()
                .filter(|d| d.kind == DirectiveKind::Mask && d.document_id.as_deref() == Some(&id))
            {
                state
                    .sharing
                    .revoke_directive(&patient, d.id, &principal.subject, now)
                    .await
                    .map_err(access::sharing_error)?;
            }
        }
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, "")),
    }
    audit
        .record(
            &principal,
            if step == "mask" {
                "consent.record"
            } else {
                "consent.revoke"
            },
            "Consent",
            Outcome::Success,
        )
        .object(&id)
        .patient(&patient)
        .detail(&format!("by the patient: {step} DocumentReference/{id}"))
        .send(&state)
        .await?;
    Ok(back(form.lang.as_deref()))
}

/// A professional of the care team issues the patient's activation code, once the identity is
/// checked (VALI or QUAL: an identity document was seen).
async fn issue_code(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (t, pt) = texts(form.lang.as_deref(), &headers);
    access::decide(
        &state,
        &audit,
        &principal,
        Ask {
            regional_id: &regional_id,
            resource: Resource::Consent,
            action: Action::Write,
            purpose: Purpose::Care,
            audit_action: "patient-account.issue",
            object_type: "Patient",
            object_id: Some(&regional_id),
            detail: "portal: activation code",
            is_custodian: false,
        },
    )
    .await?;
    let patient = state
        .identity
        .patient(&regional_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "patient index");
            ApiError::unavailable(
                "L'index des patients est indisponible. / The patient index is unavailable.",
            )
        })?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ""))?;
    let status = patient.golden.status.code();
    if !matches!(status, "VALI" | "QUAL") {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "L'identité doit être vérifiée sur pièce d'identité (statut VALI ou QUAL) avant de \
             créer l'accès du patient. / The identity must be checked against an identity \
             document (status VALI or QUAL) before the patient's access is created.",
        ));
    }
    let now = megalis_auth::now_us();
    let code = state
        .sharing
        .issue_activation(&regional_id, &principal.subject, now)
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(
            &principal,
            "patient-account.issue",
            "Patient",
            Outcome::Success,
        )
        .patient(&regional_id)
        .detail("one-time activation code issued")
        .send(&state)
        .await?;
    page(megalis_portal::ActivationCodePage {
        t,
        pt,
        user: user_bar(&principal),
        regional_id,
        code,
    })
}

#[derive(Deserialize, Default)]
struct ActivateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    lang: Option<String>,
}

fn activate_page(
    t: &'static Texts,
    pt: &'static PatientSpaceTexts,
    form: &ActivateForm,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let token = megalis_auth::session::new_csrf_token();
    let mut r = page(ActivatePage {
        t,
        pt,
        user: None,
        csrf: token.clone(),
        code: form.code.clone(),
        username: form.username.clone(),
        error,
    })?;
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{ACTIVATION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    if status != StatusCode::OK {
        super::problem::keep_as_is(&mut r);
    }
    Ok(r)
}

async fn activate_form(
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    activate_page(t, pt, &ActivateForm::default(), None, StatusCode::OK)
}

async fn activate(
    State(state): State<AppState>,
    headers: HeaderMap,
    audit: Audit,
    Form(form): Form<ActivateForm>,
) -> Result<Response, ApiError> {
    let (t, pt) = texts(form.lang.as_deref(), &headers);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(&format!("{ACTIVATION_COOKIE}=")))
        .next()
        .unwrap_or("")
        .to_string();
    if cookie.is_empty() || !megalis_auth::session::Session::csrf_matches(&cookie, &form.csrf) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Jeton anti-CSRF absent ou invalide ; rechargez la page. / Missing or invalid CSRF token; reload the page.",
        ));
    }
    let now = megalis_auth::now_us();
    let refuse =
        |why: &str| activate_page(t, pt, &form, Some(why.to_string()), StatusCode::BAD_REQUEST);
    let Ok(patient_id) = state.sharing.activation_patient(&form.code, now).await else {
        audit
            .record(
                &Principal::anonymous(),
                "patient-account.activate",
                "Patient",
                Outcome::Denied,
            )
            .detail("unknown, expired or used code")
            .send(&state)
            .await?;
        return refuse(pt.bad_code);
    };
    let patient = state
        .identity
        .patient(&patient_id)
        .await
        .map_err(|_| {
            ApiError::unavailable(
                "L'index des patients est indisponible. / The patient index is unavailable.",
            )
        })?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ""))?;
    let traits = &patient.golden.demographics.traits;
    if form.birth_date.trim() != traits.birth_date.to_string() {
        audit
            .record(
                &Principal::anonymous(),
                "patient-account.activate",
                "Patient",
                Outcome::Denied,
            )
            .patient(&patient_id)
            .detail("birth date does not match")
            .send(&state)
            .await?;
        return refuse(pt.bad_code);
    }
    let account = megalis_auth::account::create(
        &state.db,
        &NewAccount {
            username: form.username.clone(),
            kind: AccountKind::Patient,
            national_id: None,
            organisation: None,
            display_name: format!(
                "{} {}",
                traits
                    .birth_first_names
                    .first()
                    .cloned()
                    .unwrap_or_default(),
                traits.birth_name
            ),
            roles: vec![PATIENT_ROLE.to_string(), format!("patient:{patient_id}")],
            password: Some(form.password.clone()),
        },
    )
    .await;
    let account = match account {
        Ok(a) => a,
        Err(e) => {
            let message = auth_error(e).detail;
            return refuse(&message);
        }
    };
    state
        .sharing
        .redeem_activation(&form.code, &account.id, now)
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(
            &Principal::anonymous(),
            "patient-account.activate",
            "Patient",
            Outcome::Success,
        )
        .object(&account.id)
        .patient(&patient_id)
        .detail(&format!(
            "account {} created by the patient",
            account.username
        ))
        .send(&state)
        .await?;
    let lang = form.lang.as_deref().filter(|l| *l == "en").unwrap_or("fr");
    Ok(Redirect::to(&format!("/login?lang={lang}")).into_response())
}
