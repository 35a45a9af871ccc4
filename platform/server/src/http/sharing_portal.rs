//! The portal's sharing pages: a patient's care team, choices and emergency accesses, with the
//! signed-in professional's access decision and its reason in words; the forms to declare a
//! care relationship, refer a colleague, open an emergency access ("bris de glace") or record a
//! choice the patient expressed; and the privacy officer's review of emergency accesses.
//!
//! Every page and form goes through `http/access.rs` (decision and audit); every change is an
//! audit record in the patient's log (`care-link.declare`, `emergency.declare`…).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::Principal;
use megalis_portal::{
    DirectiveRow, EmergencyReviewPage, EmergencyRow, Lang, SharingPage, SharingTexts, TeamRow,
    Texts,
};
use megalis_sharing::store::is_national_id;
use megalis_sharing::{
    Action, CareLinkSource, Directive, DirectiveKind, EmergencyEntry, NewCareLink, NewDirective,
    Purpose, Reason, Requester, Resource,
};
use serde::Deserialize;

use super::access::{self, Ask};
use super::auth_glue::Audit;
use super::portal::{check_csrf, page, require_session, user_bar};
use super::routes::{Probe, ProbeAuth::Session, Route};
use super::{ApiError, AppState};

/// The role of the designated officer who reviews emergency accesses (the data protection
/// officer of the regional platform).
pub const OFFICER_ROLE: &str = "privacy-officer";

const HOUR: i64 = 3_600_000_000;

pub fn routes() -> Vec<Route> {
    vec![
        Route::patient(
            "/patients/{regional_id}/sharing",
            &["GET"],
            &[Probe::get("/patients/{patient}/sharing", Session)],
            get(sharing_page),
        ),
        Route::patient(
            "/patients/{regional_id}/care-links",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/care-links",
                Session,
                "csrf={csrf}&justification=M%C3%A9decin+traitant+d%C3%A9clar%C3%A9",
            )],
            post(declare),
        ),
        Route::patient(
            "/patients/{regional_id}/care-links/{id}/end",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/care-links/1/end",
                Session,
                "csrf={csrf}",
            )],
            post(end_link),
        ),
        Route::patient(
            "/patients/{regional_id}/referrals",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/referrals",
                Session,
                "csrf={csrf}&colleague=810009876543&justification=Avis+n%C3%A9phrologique",
            )],
            post(refer),
        ),
        Route::patient(
            "/patients/{regional_id}/emergency",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/emergency",
                Session,
                "csrf={csrf}&reason=Patient+inconscient+aux+urgences&hours=4",
            )],
            post(emergency),
        ),
        Route::patient(
            "/patients/{regional_id}/directives",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/directives",
                Session,
                "csrf={csrf}&kind=objection",
            )],
            post(record),
        ),
        Route::patient(
            "/patients/{regional_id}/directives/{id}/revoke",
            &["POST"],
            &[Probe::post(
                "/patients/{patient}/directives/1/revoke",
                Session,
                "csrf={csrf}",
            )],
            post(revoke),
        ),
        Route::patient(
            "/sharing/emergencies",
            &["GET"],
            &[Probe::get("/sharing/emergencies", Session)],
            get(officer_queue),
        ),
        Route::patient(
            "/sharing/emergencies/{id}/review",
            &["POST"],
            &[Probe::post(
                "/sharing/emergencies/1/review",
                Session,
                "csrf={csrf}&note=Justifi%C3%A9",
            )],
            post(officer_review),
        ),
    ]
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
    notice: Option<String>,
}

fn texts(lang: Option<&str>, headers: &HeaderMap) -> (&'static Texts, &'static SharingTexts) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Texts::of(Lang::negotiate(lang, accept));
    (t, SharingTexts::of(t))
}

fn is_en(st: &SharingTexts) -> bool {
    st.lang == "en"
}

fn date_text(st: &SharingTexts, us: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000) else {
        return us.to_string();
    };
    let d = t.date();
    let day = if is_en(st) {
        d.to_string()
    } else {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    };
    format!("{day} {:02}:{:02} UTC", t.hour(), t.minute())
}

fn period_text(st: &SharingTexts, start: i64, end: Option<i64>) -> String {
    match end {
        Some(e) => format!(
            "{} {} {} {}",
            st.since,
            date_text(st, start),
            st.until,
            date_text(st, e)
        ),
        None => format!("{} {}", st.since, date_text(st, start)),
    }
}

fn kind_text(st: &SharingTexts, k: DirectiveKind) -> &'static str {
    match k {
        DirectiveKind::Objection => st.kind_objection,
        DirectiveKind::EmergencyObjection => st.kind_emergency_objection,
        DirectiveKind::Consent => st.kind_consent,
        DirectiveKind::Block => st.kind_block,
        DirectiveKind::Mask => st.kind_mask,
    }
}

fn source_text(st: &SharingTexts, s: CareLinkSource) -> &'static str {
    match s {
        CareLinkSource::Encounter => st.source_encounter,
        CareLinkSource::Declaration => st.source_declaration,
        CareLinkSource::Referral => st.source_referral,
    }
}

/// The patient's regional id after merges (what the sharing records hang on), or 404.
async fn active_patient(state: &AppState, id: &str) -> Result<(String, String), ApiError> {
    let mut current = id.to_string();
    for _ in 0..64 {
        let p = state
            .identity
            .patient(&current)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "patient index");
                ApiError::unavailable(
                    "L'index des patients est indisponible ; réessayez. / The patient index is unavailable; try again.",
                )
            })?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("Patient inconnu : {id}. / Unknown patient: {id}."),
                )
            })?;
        match p.merged_into {
            Some(next) => current = next,
            None => {
                let t = &p.golden.demographics.traits;
                let name = format!(
                    "{} {}",
                    t.birth_name.to_uppercase(),
                    t.birth_first_names.join(" ")
                );
                return Ok((p.regional_id, name));
            }
        }
    }
    Err(ApiError::internal())
}

fn ask<'a>(
    regional_id: &'a str,
    resource: Resource,
    action: Action,
    audit_action: &'a str,
    detail: &'a str,
) -> Ask<'a> {
    Ask {
        regional_id,
        resource,
        action,
        purpose: Purpose::Care,
        audit_action,
        object_type: "Patient",
        object_id: Some(regional_id),
        detail,
        is_custodian: false,
    }
}

/// The signed-in professional's national id, or the refusal (audited): only health
/// professionals declare relationships and emergencies.
async fn professional(
    state: &AppState,
    audit: &Audit,
    p: &Principal,
    regional_id: &str,
    audit_action: &str,
) -> Result<String, ApiError> {
    // The identity gate is the right one for declarations: a professional may find the
    // patient unless the patient blocked them; anyone else is refused.
    let detail = format!("portal: sharing ({audit_action})");
    access::decide(
        state,
        audit,
        p,
        ask(
            regional_id,
            Resource::Identity,
            Action::Read,
            "patient.read",
            &detail,
        ),
    )
    .await?;
    match access::requester(state, p, &Resource::Identity, Action::Read, false).await? {
        Requester::Professional { national_id, .. } => Ok(national_id),
        _ => {
            let reason = Reason::NotAHealthProfessional;
            audit
                .record(p, audit_action, "Patient", Outcome::Denied)
                .patient(regional_id)
                .detail(&format!("reason={}", reason.code()))
                .send(state)
                .await?;
            Err(ApiError::new(access::status_of(reason), reason.text()))
        }
    }
}

fn back(regional_id: &str, lang: Option<&str>, notice: &str) -> Response {
    let lang = lang.filter(|l| *l == "en").unwrap_or("fr");
    Redirect::to(&format!(
        "/patients/{regional_id}/sharing?lang={lang}&notice={notice}"
    ))
    .into_response()
}

fn notice_text(st: &SharingTexts, code: &str) -> Option<String> {
    let fr = !is_en(st);
    Some(
        match code {
            "declared" if fr => "Relation de soins déclarée.",
            "declared" => "Care relationship declared.",
            "ended" if fr => "Relation de soins terminée.",
            "ended" => "Care relationship ended.",
            "referred" if fr => "Confrère inscrit dans l'équipe de soins.",
            "referred" => "Colleague entered in the care team.",
            "emergency" if fr => {
                "Accès d'urgence ouvert. Il est tracé, signalé au patient et sera revu."
            }
            "emergency" => {
                "Emergency access open. It is traced, shown to the patient and will be reviewed."
            }
            "recorded" if fr => "Choix du patient enregistré.",
            "recorded" => "The patient's choice was recorded.",
            "revoked" if fr => "Choix révoqué.",
            "revoked" => "Choice revoked.",
            "reviewed" if fr => "Revue enregistrée.",
            "reviewed" => "Review recorded.",
            _ => return None,
        }
        .to_string(),
    )
}

async fn sharing_page(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(regional_id): Path<String>,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    let (t, st) = texts(q.lang.as_deref(), &headers);
    let (regional_id, name) = active_patient(&state, &regional_id).await?;
    let me = professional(&state, &audit, &principal, &regional_id, "sharing.read").await?;
    // What this professional may see of the patient's sharing records: the decision on
    // `Consent`, audited; a refusal is shown with its reason, with the ways forward.
    let decision = access::decide_quietly(
        &state,
        &audit,
        &principal,
        &ask(
            &regional_id,
            Resource::Consent,
            Action::Read,
            "consent.read",
            "portal: sharing page",
        ),
    )
    .await?;
    let now = megalis_auth::now_us();
    let facts = access::facts(&state, &regional_id).await?;
    let in_team = facts
        .care_links
        .iter()
        .any(|l| l.practitioner == me && l.is_active(now));
    let (mut team, mut directives, mut emergencies) = (Vec::new(), Vec::new(), Vec::new());
    if decision.allowed {
        for l in state
            .sharing
            .care_team(&regional_id)
            .await
            .map_err(access::sharing_error)?
        {
            let active = l.start <= now && l.end.is_none_or(|e| now < e);
            team.push(TeamRow {
                end_id: l.id.filter(|_| l.practitioner == me && active),
                practitioner: l.practitioner,
                source: source_text(st, l.source),
                detail: l.detail,
                period: period_text(st, l.start, l.end),
                active,
            });
        }
        for d in state
            .sharing
            .directives(&regional_id, true)
            .await
            .map_err(access::sharing_error)?
        {
            directives.push(directive_row(st, &d, now));
        }
        for e in state
            .sharing
            .emergencies_of(&regional_id)
            .await
            .map_err(access::sharing_error)?
        {
            emergencies.push(emergency_row(st, e));
        }
    }
    let emergency_refusal =
        megalis_sharing::decision::may_declare_emergency(&me, &facts.choices).err();
    page(SharingPage {
        t,
        st,
        user: user_bar(&principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        regional_id,
        patient_name: name,
        notice: q.notice.as_deref().and_then(|c| notice_text(st, c)),
        allowed: decision.allowed,
        reason: decision.reason.text().to_string(),
        team,
        directives,
        emergencies,
        may_declare: !in_team,
        may_refer: in_team,
        may_emergency: emergency_refusal.is_none() && !decision.allowed,
        emergency_refusal: emergency_refusal.map(|r| r.text().to_string()),
        may_record: in_team && decision.allowed,
    })
}

fn directive_row(st: &SharingTexts, d: &Directive, now: i64) -> DirectiveRow {
    DirectiveRow {
        id: d.id,
        kind: kind_text(st, d.kind),
        subject: d
            .practitioner
            .clone()
            .or_else(|| d.document_id.clone())
            .unwrap_or_else(|| "—".into()),
        period: period_text(
            st,
            d.start,
            match (d.end, d.revoked_at) {
                (Some(e), Some(r)) => Some(e.min(r)),
                (e, r) => e.or(r),
            },
        ),
        recorded: format!("{} ({})", date_text(st, d.recorded_at), d.recorded_by),
        active: d.is_active(now),
        note: d.note.clone(),
    }
}

fn emergency_row(st: &SharingTexts, e: EmergencyEntry) -> EmergencyRow {
    EmergencyRow {
        id: e.id,
        review: match (&e.reviewed_by, e.reviewed_at) {
            (Some(by), Some(at)) => format!(
                "{} ({by}, {})",
                e.review_note.clone().unwrap_or_default(),
                date_text(st, at)
            ),
            _ => st.not_reviewed.to_string(),
        },
        patient: e.regional_id,
        practitioner: e.practitioner,
        reason: e.reason,
        period: period_text(st, e.start, Some(e.end)),
    }
}

#[derive(Deserialize)]
struct DeclareForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    justification: String,
    lang: Option<String>,
}

async fn declare(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<DeclareForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    let me = professional(
        &state,
        &audit,
        &principal,
        &regional_id,
        "care-link.declare",
    )
    .await?;
    let now = megalis_auth::now_us();
    let id = state
        .sharing
        .add_care_link(
            &NewCareLink {
                regional_id: regional_id.clone(),
                practitioner: me.clone(),
                source: CareLinkSource::Declaration,
                justification: form.justification.clone(),
                referred_by: None,
                start: now,
                end: None,
                created_by: principal.subject.clone(),
            },
            now,
        )
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(
            &principal,
            "care-link.declare",
            "CareTeam",
            Outcome::Success,
        )
        .object(&id.to_string())
        .patient(&regional_id)
        .detail(&format!("{me}: {}", form.justification.trim()))
        .send(&state)
        .await?;
    Ok(back(&regional_id, form.lang.as_deref(), "declared"))
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

async fn end_link(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path((regional_id, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    let me = professional(&state, &audit, &principal, &regional_id, "care-link.end").await?;
    // A professional ends their own declared relationships (leaving the team).
    let own = state
        .sharing
        .care_team(&regional_id)
        .await
        .map_err(access::sharing_error)?
        .into_iter()
        .any(|l| l.id == Some(id) && l.practitioner == me);
    if !own {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Relation de soins introuvable : {id}. / Care relationship not found: {id}."),
        ));
    }
    let now = megalis_auth::now_us();
    state
        .sharing
        .end_care_link(&regional_id, id, &principal.subject, now)
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(&principal, "care-link.end", "CareTeam", Outcome::Success)
        .object(&id.to_string())
        .patient(&regional_id)
        .send(&state)
        .await?;
    Ok(back(&regional_id, form.lang.as_deref(), "ended"))
}

#[derive(Deserialize)]
struct ReferForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    colleague: String,
    #[serde(default)]
    justification: String,
    lang: Option<String>,
}

async fn refer(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<ReferForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    let me = professional(&state, &audit, &principal, &regional_id, "care-link.refer").await?;
    let colleague = form.colleague.trim().to_string();
    let now = megalis_auth::now_us();
    let result = state
        .sharing
        .add_care_link(
            &NewCareLink {
                regional_id: regional_id.clone(),
                practitioner: colleague.clone(),
                source: CareLinkSource::Referral,
                justification: form.justification.clone(),
                referred_by: Some(me.clone()),
                start: now,
                end: None,
                created_by: principal.subject.clone(),
            },
            now,
        )
        .await;
    let id = match result {
        Ok(id) => id,
        Err(e) => {
            if let megalis_sharing::SharingError::Refused(reason) = &e {
                audit
                    .record(&principal, "care-link.refer", "CareTeam", Outcome::Denied)
                    .patient(&regional_id)
                    .detail(&format!("reason={}", reason.code()))
                    .send(&state)
                    .await?;
            }
            return Err(access::sharing_error(e));
        }
    };
    audit
        .record(&principal, "care-link.refer", "CareTeam", Outcome::Success)
        .object(&id.to_string())
        .patient(&regional_id)
        .detail(&format!(
            "{me} → {colleague}: {}",
            form.justification.trim()
        ))
        .send(&state)
        .await?;
    Ok(back(&regional_id, form.lang.as_deref(), "referred"))
}

#[derive(Deserialize)]
struct EmergencyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    hours: String,
    lang: Option<String>,
}

async fn emergency(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<EmergencyForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    let me = professional(
        &state,
        &audit,
        &principal,
        &regional_id,
        "emergency.declare",
    )
    .await?;
    let hours: i64 = form.hours.trim().parse().map_err(|_| {
        ApiError::bad_request(
            "La durée est un nombre d'heures entre 1 et 24. / The duration is a number of hours between 1 and 24.",
        )
    })?;
    let now = megalis_auth::now_us();
    let declared = state
        .sharing
        .declare_emergency(
            &regional_id,
            &me,
            &form.reason,
            Some(hours.saturating_mul(HOUR)),
            &principal.subject,
            now,
        )
        .await;
    let entry = match declared {
        Ok(e) => e,
        Err(e) => {
            if let megalis_sharing::SharingError::Refused(reason) = &e {
                audit
                    .record(&principal, "emergency.declare", "Patient", Outcome::Denied)
                    .patient(&regional_id)
                    .detail(&format!("reason={}", reason.code()))
                    .send(&state)
                    .await?;
            }
            return Err(access::sharing_error(e));
        }
    };
    // The patient's log shows it (this record carries the patient); the officer's queue lists
    // it until reviewed; operators see it in the logs and metrics.
    audit
        .record(&principal, "emergency.declare", "Patient", Outcome::Success)
        .object(&entry.id.to_string())
        .patient(&regional_id)
        .detail(&format!(
            "{me} for {} h: {}",
            (entry.end - entry.start) / HOUR,
            entry.reason
        ))
        .send(&state)
        .await?;
    tracing::warn!(patient = %regional_id, practitioner = %me, id = entry.id,
        "emergency access declared (bris de glace): awaiting the privacy officer's review");
    state
        .metrics
        .access_decisions
        .with_label_values(&["declare", "emergency"])
        .inc();
    Ok(back(&regional_id, form.lang.as_deref(), "emergency"))
}

#[derive(Deserialize)]
struct RecordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    practitioner: String,
    #[serde(default)]
    note: String,
    lang: Option<String>,
}

async fn record(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<RecordForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    access::decide(
        &state,
        &audit,
        &principal,
        ask(
            &regional_id,
            Resource::Consent,
            Action::Write,
            "consent.access",
            "portal: patient's choice recorded by a professional",
        ),
    )
    .await?;
    let kind = DirectiveKind::parse(&form.kind)
        .filter(|k| *k != DirectiveKind::Mask)
        .ok_or_else(|| ApiError::bad_request("Choix inconnu. / Unknown choice."))?;
    let practitioner = Some(form.practitioner.trim().to_string()).filter(|p| !p.is_empty());
    if let Some(p) = &practitioner
        && !is_national_id(p)
    {
        return Err(ApiError::bad_request(
            "Identifiant national invalide (8 + RPPS). / Invalid national id (8 + RPPS).",
        ));
    }
    let now = megalis_auth::now_us();
    let id = state
        .sharing
        .record_directive(
            &NewDirective {
                regional_id: regional_id.clone(),
                kind,
                practitioner: practitioner.clone(),
                document_id: None,
                start: now,
                end: None,
                note: form.note.trim().to_string(),
                recorded_by: principal.subject.clone(),
            },
            now,
        )
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(&principal, "consent.record", "Consent", Outcome::Success)
        .object(&id.to_string())
        .patient(&regional_id)
        .detail(&format!(
            "{}{}",
            kind.as_str(),
            practitioner.map(|p| format!(" {p}")).unwrap_or_default()
        ))
        .send(&state)
        .await?;
    Ok(back(&regional_id, form.lang.as_deref(), "recorded"))
}

async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path((regional_id, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (regional_id, _) = active_patient(&state, &regional_id).await?;
    access::decide(
        &state,
        &audit,
        &principal,
        ask(
            &regional_id,
            Resource::Consent,
            Action::Write,
            "consent.access",
            "portal: choice revoked by a professional",
        ),
    )
    .await?;
    let now = megalis_auth::now_us();
    let d = state
        .sharing
        .revoke_directive(&regional_id, id, &principal.subject, now)
        .await
        .map_err(access::sharing_error)?;
    audit
        .record(&principal, "consent.revoke", "Consent", Outcome::Success)
        .object(&id.to_string())
        .patient(&regional_id)
        .detail(d.kind.as_str())
        .send(&state)
        .await?;
    Ok(back(&regional_id, form.lang.as_deref(), "revoked"))
}

/// The officer's gate: role and second factor, or an audited refusal.
async fn officer(state: &AppState, audit: &Audit, p: &Principal) -> Result<(), ApiError> {
    if p.has_role(OFFICER_ROLE) && p.second_factor {
        return Ok(());
    }
    let reason = if p.has_role(OFFICER_ROLE) {
        Reason::SecondFactorRequired
    } else {
        Reason::NotAHealthProfessional
    };
    audit
        .record(p, "emergency.review", "EmergencyAccess", Outcome::Denied)
        .detail(&format!("reason={}", reason.code()))
        .send(state)
        .await?;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Réservé au délégué à la protection des données. / Reserved for the data protection officer.",
    ))
}

async fn officer_queue(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    officer(&state, &audit, &principal).await?;
    let (t, st) = texts(q.lang.as_deref(), &headers);
    let entries = state
        .sharing
        .emergencies_to_review()
        .await
        .map_err(access::sharing_error)?;
    for e in &entries {
        audit
            .record(
                &principal,
                "emergency.list",
                "EmergencyAccess",
                Outcome::Success,
            )
            .object(&e.id.to_string())
            .patient(&e.regional_id)
            .detail("portal: review queue")
            .send(&state)
            .await?;
    }
    page(EmergencyReviewPage {
        t,
        st,
        user: user_bar(&principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        rows: entries.into_iter().map(|e| emergency_row(st, e)).collect(),
        notice: q.notice.as_deref().and_then(|c| notice_text(st, c)),
    })
}

#[derive(Deserialize)]
struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: String,
    lang: Option<String>,
}

async fn officer_review(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(id): Path<i64>,
    Form(form): Form<ReviewForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    officer(&state, &audit, &principal).await?;
    if form.note.trim().is_empty() {
        return Err(ApiError::bad_request(
            "La conclusion de la revue est requise. / The review's conclusion is required.",
        ));
    }
    let entry = state
        .sharing
        .emergencies_to_review()
        .await
        .map_err(access::sharing_error)?
        .into_iter()
        .find(|e| e.id == id);
    let now = megalis_auth::now_us();
    state
        .sharing
        .review_emergency(id, &principal.subject, &form.note, now)
        .await
        .map_err(access::sharing_error)?;
    let mut record = audit
        .record(
            &principal,
            "emergency.review",
            "EmergencyAccess",
            Outcome::Success,
        )
        .object(&id.to_string())
        .detail(form.note.trim());
    if let Some(e) = &entry {
        record = record.patient(&e.regional_id);
    }
    record.send(&state).await?;
    let lang = form.lang.as_deref().filter(|l| *l == "en").unwrap_or("fr");
    Ok(Redirect::to(&format!("/sharing/emergencies?lang={lang}&notice=reviewed")).into_response())
}
