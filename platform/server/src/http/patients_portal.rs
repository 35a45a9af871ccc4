//! The portal's patient identity pages: search, a patient's identity with its hospital records,
//! history and merges, and for identity-vigilance staff the review queue of possible duplicates,
//! merge and unmerge, each behind a confirmation page.
//!
//! Access is the one rule of [`patient_access`]: every page that shows patient data calls
//! `require` (read, or manage for decisions) and then `seen_one`/`seen_many`, which put every
//! patient shown through the access decision and its audit.
//! Decisions are POST forms with the session's CSRF token, reached only from a confirmation
//! page; the index audits the merges, unmerges and review decisions it makes.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use super::routes::Route;
use http::{HeaderMap, StatusCode, header};
use megalis_auth::Principal;
use megalis_identity_index::identity::{
    GoldenRecord, IdentityError, IdentityStatus, Sex, SourceId, SourceRecord,
};
use megalis_identity_index::review::MergeEntry;
use megalis_identity_index::search::{IdentifierQuery, PatientQuery};
use megalis_identity_index::{IndexError, Patient, Resolution};
use megalis_portal::{
    Badge, CompareRow, Comparison, ConfirmPage, ConflictView, Field, Lang, MergeView,
    PatientDetailPage, PatientRow, PatientSearchPage, PatientTexts, ReviewDetailPage,
    ReviewListPage, ReviewRow, SearchForm, SourceView, Texts, VersionView,
};
use serde::Deserialize;

use super::auth_glue::{Audit, actor_of};
use super::patient_access::{self, IdentityUse};
use super::portal::{check_csrf, page, require_session, user_bar};
use super::{ApiError, AppState};

/// Results per page of the search.
const PAGE_SIZE: usize = 20;
/// Review tasks listed at once (oldest first).
const QUEUE_SIZE: i64 = 200;

pub fn routes() -> Vec<Route> {
    use super::routes::{Probe, ProbeAuth::Session};
    vec![
        Route::patient(
            "/patients",
            &["GET"],
            &[Probe::get("/patients?family=LE", Session)],
            get(search),
        ),
        Route::patient(
            "/patients/{regional_id}",
            &["GET"],
            &[Probe::get("/patients/{patient}", Session)],
            get(patient),
        ),
        Route::patient(
            "/patients/{regional_id}/merge",
            &["GET", "POST"],
            &[
                Probe::get("/patients/{patient}/merge?other={patient}", Session),
                Probe::post(
                    "/patients/{patient}/merge",
                    Session,
                    "csrf={csrf}&other={patient}",
                ),
            ],
            get(merge_confirm).post(merge),
        ),
        Route::patient(
            "/identity/reviews",
            &["GET"],
            &[Probe::get("/identity/reviews", Session)],
            get(reviews),
        ),
        Route::patient(
            "/identity/reviews/{id}",
            &["GET", "POST"],
            &[
                Probe::get("/identity/reviews/1", Session),
                Probe::post("/identity/reviews/1", Session, "csrf={csrf}&decision=link"),
            ],
            get(review).post(decide),
        ),
        Route::patient(
            "/identity/reviews/{id}/confirm",
            &["GET"],
            &[Probe::get(
                "/identity/reviews/1/confirm?decision=link",
                Session,
            )],
            get(review_confirm),
        ),
        Route::patient(
            "/identity/merges/{id}/unmerge",
            &["GET", "POST"],
            &[
                Probe::get("/identity/merges/1/unmerge", Session),
                Probe::post("/identity/merges/1/unmerge", Session, "csrf={csrf}"),
            ],
            get(unmerge_confirm).post(unmerge),
        ),
    ]
}

fn texts(lang: Option<&str>, headers: &HeaderMap) -> (&'static Texts, &'static PatientTexts) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Texts::of(Lang::negotiate(lang, accept));
    (t, PatientTexts::of(t))
}

fn csrf_of(p: &Principal) -> String {
    p.session
        .as_ref()
        .map(|s| s.csrf_token.clone())
        .unwrap_or_default()
}

fn is_staff(p: &Principal) -> bool {
    patient_access::refusal(p, IdentityUse::Manage).is_none()
}

fn index_error(e: IndexError) -> ApiError {
    let conflict =
        |fr: String, en: String| ApiError::new(StatusCode::CONFLICT, format!("{fr} / {en}"));
    match e {
        IndexError::Store(ref s) if megalis_store::is_connection_error(s) => ApiError::unavailable(
            "L'index des patients est indisponible ; réessayez. / The patient index is unavailable; try again.",
        ),
        IndexError::UnknownPatient(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Patient inconnu : {id}. / Unknown patient: {id}."),
        ),
        IndexError::UnknownReview(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Tâche inconnue : {id}. / Unknown review task: {id}."),
        ),
        IndexError::UnknownMerge(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Fusion inconnue : {id}. / Unknown merge: {id}."),
        ),
        IndexError::ReviewClosed(id) => conflict(
            format!("La tâche {id} est déjà close"),
            format!("review task {id} is already closed"),
        ),
        IndexError::AlreadyUnmerged(id) => conflict(
            format!("La fusion {id} a déjà été annulée"),
            format!("merge {id} was already undone"),
        ),
        IndexError::PatientMerged(p, into) => conflict(
            format!("Le patient {p} a déjà été fusionné dans {into}"),
            format!("patient {p} was already merged into {into}"),
        ),
        IndexError::SelfMerge => ApiError::bad_request(
            "Un patient ne peut pas être fusionné avec lui-même. / A patient cannot be merged with itself.",
        ),
        IndexError::Identity(IdentityError::FictitiousNotLinkable) => conflict(
            "Une identité fictive (FICTI) n'est jamais fusionnée".into(),
            "a fictitious identity (FICTI) is never merged".into(),
        ),
        e if e.is_bad_input() => ApiError::bad_request(e.to_string()),
        e => {
            tracing::error!(error = %e, "patient index failure");
            ApiError::internal()
        }
    }
}

fn not_found(what: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("Introuvable : {what}. / Not found: {what}."),
    )
}

// ---- display helpers -------------------------------------------------------------------------

fn is_en(pt: &PatientTexts) -> bool {
    pt.lang == "en"
}

fn date_text(pt: &PatientTexts, d: time::Date) -> String {
    if is_en(pt) {
        d.to_string()
    } else {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    }
}

fn time_text(pt: &PatientTexts, us: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000) else {
        return us.to_string();
    };
    format!(
        "{} {:02}:{:02} UTC",
        date_text(pt, t.date()),
        t.hour(),
        t.minute()
    )
}

fn sex_text(pt: &PatientTexts, s: Sex) -> String {
    match s {
        Sex::Male => pt.male,
        Sex::Female => pt.female,
        Sex::Unknown => pt.unknown,
    }
    .to_string()
}

fn status_badge(pt: &PatientTexts, s: IdentityStatus) -> Badge {
    let i = usize::from(s.rank());
    Badge {
        code: s.code(),
        label: pt.statuses[i].0,
        help: pt.statuses[i].1,
    }
}

fn attribute_badges(
    pt: &PatientTexts,
    a: &megalis_identity_index::identity::Attributes,
) -> Vec<Badge> {
    [
        (a.doubtful, "DOUTE"),
        (a.fictitious, "FICTI"),
        (a.homonym, "HOMON"),
    ]
    .into_iter()
    .enumerate()
    .filter(|(_, (on, _))| *on)
    .map(|(i, (_, code))| Badge {
        code,
        label: pt.attribute_labels[i].0,
        help: pt.attribute_labels[i].1,
    })
    .collect()
}

/// The name of an assigning authority when the platform knows it (the demo hospitals), else
/// its OID.
fn authority_text(oid: &str) -> String {
    crate::demo::authority_name(oid).map_or_else(|| oid.to_string(), str::to_string)
}

fn source_text(id: &SourceId) -> String {
    format!("{} {}", authority_text(&id.authority), id.local_id)
}

fn or_dash(v: Option<&str>) -> String {
    v.filter(|s| !s.trim().is_empty())
        .map_or_else(|| "—".to_string(), str::to_string)
}

/// "LE GOFF (MORVAN) Anne Marie, 14/02/1969": enough to recognise someone in a list.
fn identity_line(pt: &PatientTexts, d: &megalis_identity_index::identity::Demographics) -> String {
    let t = &d.traits;
    let used = d
        .used_name
        .as_deref()
        .filter(|u| !u.eq_ignore_ascii_case(&t.birth_name))
        .map(|u| format!(" ({u})"))
        .unwrap_or_default();
    format!(
        "{}{used} {}, {}",
        t.birth_name,
        t.birth_first_names.join(" "),
        date_text(pt, t.birth_date)
    )
}

/// The INS as it may be shown (qualified identity only), or why not.
fn ins_text(pt: &PatientTexts, ins: Option<&str>, status: IdentityStatus) -> String {
    match ins {
        Some(i) if status == IdentityStatus::Qual => i.to_string(),
        Some(_) => pt.ins_withheld.to_string(),
        None => "—".to_string(),
    }
}

fn golden_fields(pt: &PatientTexts, g: &GoldenRecord) -> Vec<Field> {
    let d = &g.demographics;
    let t = &d.traits;
    vec![
        Field {
            label: pt.birth_name,
            value: t.birth_name.clone(),
        },
        Field {
            label: pt.first_names,
            value: t.birth_first_names.join(", "),
        },
        Field {
            label: pt.birth_date,
            value: date_text(pt, t.birth_date),
        },
        Field {
            label: pt.sex,
            value: sex_text(pt, t.sex),
        },
        Field {
            label: pt.birthplace,
            value: or_dash(t.birthplace.as_deref()),
        },
        Field {
            label: pt.used_name,
            value: or_dash(d.used_name.as_deref()),
        },
        Field {
            label: pt.used_first_name,
            value: or_dash(d.used_first_name.as_deref()),
        },
        Field {
            label: pt.address,
            value: or_dash(d.address.as_deref()),
        },
        Field {
            label: pt.telecom,
            value: or_dash(d.telecom.as_deref()),
        },
    ]
}

/// What the comparison pages show of one identity, field by field, in a fixed order; `None`
/// for the matcher's field index when the matcher does not compare the field.
struct Side {
    birth_name: String,
    first_names: String,
    birth_date: String,
    sex: String,
    birthplace: String,
    used_name: String,
    ins: String,
    status: String,
    attributes: String,
    sources: String,
}

fn side_of_record(pt: &PatientTexts, r: &SourceRecord) -> Side {
    let t = &r.demographics.traits;
    Side {
        birth_name: t.birth_name.clone(),
        first_names: t.birth_first_names.join(", "),
        birth_date: date_text(pt, t.birth_date),
        sex: sex_text(pt, t.sex),
        birthplace: or_dash(t.birthplace.as_deref()),
        used_name: or_dash(r.demographics.used_name.as_deref()),
        ins: ins_text(pt, r.ins.as_ref().map(|i| i.as_str()), r.status),
        status: format!("{} ({})", status_badge(pt, r.status).label, r.status.code()),
        attributes: badges_text(pt, &attribute_badges(pt, &r.attributes)),
        sources: source_text(&r.id),
    }
}

fn side_of_golden(pt: &PatientTexts, g: &GoldenRecord) -> Side {
    let t = &g.demographics.traits;
    Side {
        birth_name: t.birth_name.clone(),
        first_names: t.birth_first_names.join(", "),
        birth_date: date_text(pt, t.birth_date),
        sex: sex_text(pt, t.sex),
        birthplace: or_dash(t.birthplace.as_deref()),
        used_name: or_dash(g.demographics.used_name.as_deref()),
        ins: ins_text(pt, g.ins.as_ref().map(|i| i.as_str()), g.status),
        status: format!("{} ({})", status_badge(pt, g.status).label, g.status.code()),
        attributes: badges_text(pt, &attribute_badges(pt, &g.attributes)),
        sources: g
            .sources
            .iter()
            .map(source_text)
            .collect::<Vec<_>>()
            .join(" ; "),
    }
}

fn badges_text(pt: &PatientTexts, badges: &[Badge]) -> String {
    if badges.is_empty() {
        pt.none.to_string()
    } else {
        badges
            .iter()
            .map(|b| b.label)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn normalised(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_uppercase)
        .collect()
}

/// Side-by-side rows; `levels` are the matcher's agreement levels when the pair was scored.
fn compare_rows(
    pt: &PatientTexts,
    left: &Side,
    right: &Side,
    levels: Option<&[u8]>,
) -> Vec<CompareRow> {
    let rows: [(&'static str, &String, &String, Option<usize>); 10] = [
        (pt.birth_name, &left.birth_name, &right.birth_name, Some(0)),
        (
            pt.first_names,
            &left.first_names,
            &right.first_names,
            Some(1),
        ),
        (pt.birth_date, &left.birth_date, &right.birth_date, Some(2)),
        (pt.sex, &left.sex, &right.sex, Some(3)),
        (pt.birthplace, &left.birthplace, &right.birthplace, Some(4)),
        (pt.used_name, &left.used_name, &right.used_name, None),
        (pt.ins, &left.ins, &right.ins, Some(5)),
        (pt.status, &left.status, &right.status, None),
        (pt.attributes, &left.attributes, &right.attributes, None),
        (pt.sources_title, &left.sources, &right.sources, None),
    ];
    rows.into_iter()
        .map(|(label, l, r, field)| {
            let level = field.and_then(|f| levels.and_then(|ls| ls.get(f)).copied());
            let differs = match level {
                // The matcher's verdict on the field, when there is one.
                Some(lv) => {
                    lv != 0 && lv != megalis_identity_index::identity::matching::model::MISSING
                }
                None => label != pt.sources_title && normalised(l) != normalised(r),
            };
            CompareRow {
                label,
                left: l.clone(),
                right: r.clone(),
                differs,
                comparison: level
                    .map(|lv| pt.level(field.unwrap_or(0), lv).to_string())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// `"[0, 0, 2, 0, 0, 6]"` → levels.
fn parse_levels(s: &str) -> Option<Vec<u8>> {
    s.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|x| x.trim().parse().ok())
        .collect()
}

fn reason_text(pt: &PatientTexts, reason: &str) -> String {
    match reason {
        "possible match" => pt.reason_possible.to_string(),
        "several patients match" => pt.reason_several.to_string(),
        other => other.to_string(),
    }
}

fn score_text(pt: &PatientTexts, score: f64) -> String {
    let s = format!("{score:.1}");
    if is_en(pt) { s } else { s.replace('.', ",") }
}

fn patient_link(pt: &PatientTexts, id: &str) -> String {
    format!("/patients/{id}?lang={}", pt.lang)
}

async fn load_patient(state: &AppState, id: &str) -> Result<Patient, ApiError> {
    state
        .identity
        .patient(id)
        .await
        .map_err(index_error)?
        .ok_or_else(|| index_error(IndexError::UnknownPatient(id.to_string())))
}

/// The active patient a merged one ended in (what decisions act on).
async fn active_patient(state: &AppState, id: &str) -> Result<Patient, ApiError> {
    let mut p = load_patient(state, id).await?;
    for _ in 0..64 {
        match p.merged_into.clone() {
            None => return Ok(p),
            Some(next) => p = load_patient(state, &next).await?,
        }
    }
    Err(ApiError::internal())
}

// ---- search ----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct SearchQuery {
    lang: Option<String>,
    #[serde(default)]
    family: String,
    #[serde(default)]
    given: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    sex: String,
    #[serde(default)]
    identifier: String,
    page: Option<usize>,
}

/// A birth date as typed: `YYYY-MM-DD` (the date field) or `JJ/MM/AAAA`.
fn parse_date(s: &str) -> Option<time::Date> {
    let iso = time::macros::format_description!("[year]-[month]-[day]");
    let fr = time::macros::format_description!("[day]/[month]/[year]");
    time::Date::parse(s, iso)
        .or_else(|_| time::Date::parse(s, fr))
        .ok()
}

/// An identifier as typed: an INS loses its spaces, a regional id its case.
fn identifier_query(v: &str) -> IdentifierQuery {
    let compact: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let upper = compact.to_ascii_uppercase();
    let is_ins = upper.len() == 15
        && upper
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'A' || b == b'B');
    if is_ins || upper.starts_with("BZH") {
        IdentifierQuery::Any(upper)
    } else {
        IdentifierQuery::Any(v.trim().to_string())
    }
}

fn search_url(form: &SearchForm, lang: &str, page: usize) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("family", &form.family),
        ("given", &form.given),
        ("birth_date", &form.birth_date),
        ("sex", &form.sex),
        ("identifier", &form.identifier),
    ] {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    q.append_pair("lang", lang);
    q.append_pair("page", &page.to_string());
    format!("/patients?{}", q.finish())
}

async fn search(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let form = SearchForm {
        family: q.family.trim().to_string(),
        given: q.given.trim().to_string(),
        birth_date: q.birth_date.trim().to_string(),
        sex: q.sex.trim().to_string(),
        identifier: q.identifier.trim().to_string(),
    };
    let mut result = PatientSearchPage {
        t,
        pt,
        user: user_bar(&principal),
        searched: false,
        range: String::new(),
        rows: vec![],
        prev: None,
        next: None,
        error: None,
        form,
    };
    let form = &result.form;
    let searched = [
        &form.family,
        &form.given,
        &form.birth_date,
        &form.sex,
        &form.identifier,
    ]
    .iter()
    .any(|v| !v.is_empty());
    if !searched {
        return page(result);
    }
    let mut query = PatientQuery {
        family: Some(form.family.clone()).filter(|s| !s.is_empty()),
        given: Some(form.given.clone()).filter(|s| !s.is_empty()),
        gender: match form.sex.as_str() {
            "male" => Some("male"),
            "female" => Some("female"),
            "unknown" => Some("unknown"),
            _ => None,
        },
        count: PAGE_SIZE,
        ..Default::default()
    };
    if !form.identifier.is_empty() {
        query.identifiers.push(identifier_query(&form.identifier));
    }
    if !form.birth_date.is_empty() {
        match parse_date(&form.birth_date) {
            Some(d) => {
                query.birth_date_from = Some(d.to_string());
                query.birth_date_to = d.next_day().map(|n| n.to_string());
            }
            None => {
                result.error = Some(format!("{} : {}", pt.birth_date, form.birth_date));
                return page(result);
            }
        }
    }
    let page_no = q.page.unwrap_or(1).clamp(1, 10_000);
    query.offset = (page_no - 1) * PAGE_SIZE;
    let mut found = state.identity.search(&query).await.map_err(index_error)?;
    let ids: Vec<&str> = found
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
        "portal: patient search",
    )
    .await?;
    // A patient who blocked the caller is left out, and not counted.
    let before = found.patients.len();
    found.patients.retain(|p| visible.contains(&p.regional_id));
    found.total = found.total.saturating_sub(before - found.patients.len());
    let lang = t.lang;
    if !found.patients.is_empty() {
        result.range = pt.range(
            query.offset + 1,
            query.offset + found.patients.len(),
            found.total,
        );
    }
    if page_no > 1 {
        result.prev = Some(search_url(&result.form, lang, page_no - 1));
    }
    if query.offset + found.patients.len() < found.total {
        result.next = Some(search_url(&result.form, lang, page_no + 1));
    }
    result.rows = found
        .patients
        .iter()
        .map(|p| {
            let d = &p.golden.demographics;
            let mut attributes = attribute_badges(pt, &p.golden.attributes);
            if p.merged_into.is_some() {
                attributes.push(Badge {
                    code: "MERGED",
                    label: pt.to_merge,
                    help: pt.merged_notice,
                });
            }
            PatientRow {
                regional_id: p.regional_id.clone(),
                birth_name: d.traits.birth_name.clone(),
                used_name: d.used_name.clone().unwrap_or_default(),
                first_names: d.traits.birth_first_names.join(", "),
                birth_date: date_text(pt, d.traits.birth_date),
                sex: sex_text(pt, d.traits.sex),
                status: status_badge(pt, p.golden.status),
                attributes,
            }
        })
        .collect();
    result.searched = true;
    page(result)
}

// ---- one patient -----------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct PageQuery {
    lang: Option<String>,
    done: Option<String>,
}

fn done_text(pt: &PatientTexts, done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "merged" => pt.done_merged,
            "unmerged" => pt.done_unmerged,
            "same" => pt.done_same,
            "distinct" => pt.done_distinct,
            _ => return None,
        }
        .to_string(),
    )
}

fn source_fields(pt: &PatientTexts, r: &SourceRecord) -> Vec<Field> {
    let s = side_of_record(pt, r);
    vec![
        Field {
            label: pt.birth_name,
            value: s.birth_name,
        },
        Field {
            label: pt.first_names,
            value: s.first_names,
        },
        Field {
            label: pt.birth_date,
            value: s.birth_date,
        },
        Field {
            label: pt.sex,
            value: s.sex,
        },
        Field {
            label: pt.birthplace,
            value: s.birthplace,
        },
        Field {
            label: pt.used_name,
            value: s.used_name,
        },
        Field {
            label: pt.ins,
            value: s.ins,
        },
    ]
}

fn merge_view(pt: &PatientTexts, m: &MergeEntry) -> MergeView {
    MergeView {
        id: m.id,
        survivor: m.survivor.clone(),
        merged: m.merged.clone(),
        moved: m
            .moved
            .iter()
            .map(source_text)
            .collect::<Vec<_>>()
            .join(" ; "),
        when: time_text(pt, m.merged_at_us),
        by: m.merged_by.clone(),
        undone: m.unmerged_at_us.map(|u| time_text(pt, u)),
    }
}

async fn patient(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(regional_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Read).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let p = load_patient(&state, &regional_id).await?;
    patient_access::seen_one(
        &state,
        &audit,
        &principal,
        "patient.read",
        &p.regional_id,
        "portal: patient page",
    )
    .await?;
    let g = &p.golden;
    let conflicts = g
        .conflicts
        .iter()
        .map(|c| ConflictView {
            field: pt.field_name(c.field),
            values: c
                .values
                .iter()
                .map(|(v, ids)| {
                    (
                        v.clone(),
                        ids.iter().map(source_text).collect::<Vec<_>>().join(", "),
                    )
                })
                .collect(),
        })
        .collect();
    // The hospitals' records in survivorship order (the first gives the reference traits).
    let mut ordered: Vec<&SourceRecord> = g
        .sources
        .iter()
        .filter_map(|id| p.sources.iter().find(|s| &s.id == id))
        .collect();
    for s in &p.sources {
        if !ordered.iter().any(|o| o.id == s.id) {
            ordered.push(s);
        }
    }
    let mut sources = Vec::new();
    for r in ordered {
        let versions = state
            .identity
            .source_versions(&r.id)
            .await
            .map_err(index_error)?
            .into_iter()
            .map(|v| VersionView {
                version: v.version,
                change: pt.change(&v.change),
                changed_at: time_text(pt, v.changed_at_us),
                regional_id: v.regional_id,
                summary: identity_line(pt, &v.record.demographics),
                status: v.record.status.code(),
            })
            .collect();
        sources.push(SourceView {
            authority: authority_text(&r.id.authority),
            authority_oid: r.id.authority.clone(),
            local_id: r.id.local_id.clone(),
            status: status_badge(pt, r.status),
            attributes: attribute_badges(pt, &r.attributes),
            updated: time_text(pt, r.updated_us),
            fields: source_fields(pt, r),
            versions,
        });
    }
    let merges = state
        .identity
        .merges_of(&p.regional_id)
        .await
        .map_err(index_error)?
        .iter()
        .map(|m| merge_view(pt, m))
        .collect();
    let apps = patient_apps(&state, &principal, &p.regional_id).await;
    page(PatientDetailPage {
        t,
        pt,
        user: user_bar(&principal),
        csrf: csrf_of(&principal),
        regional_id: p.regional_id.clone(),
        merged_into: p.merged_into.clone(),
        fields: golden_fields(pt, g),
        status: status_badge(pt, g.status),
        attributes: attribute_badges(pt, &g.attributes),
        ins: g.shareable_ins().map(|i| i.as_str().to_string()),
        ins_withheld: g.ins.is_some() && g.shareable_ins().is_none(),
        conflicts,
        sources,
        merges,
        staff: is_staff(&principal),
        notice: done_text(pt, q.done.as_deref()),
        apps,
    })
}

/// The applications the user may use that run as plugins here, opened for this patient (the
/// plugin receives the patient in context). Other applications (external OIDC clients) have
/// their own way of choosing a patient and are not listed. A failure to read the grants only
/// hides the list.
async fn patient_apps(
    state: &AppState,
    principal: &Principal,
    regional_id: &str,
) -> Vec<megalis_portal::Tile> {
    let Some(host) = state.plugins.as_ref() else {
        return Vec::new();
    };
    let apps = state.auth.launcher(principal).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "applications for the patient page");
        Vec::new()
    });
    apps.into_iter()
        .filter(|a| host.get(&a.id).is_some())
        .map(|a| megalis_portal::Tile {
            url: format!("/apps/{}/?patient={regional_id}", a.id),
            id: a.id,
            name: a.name,
        })
        .collect()
}

// ---- merge -----------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct MergeQuery {
    lang: Option<String>,
    #[serde(default)]
    other: String,
}

async fn merge_confirm(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(regional_id): Path<String>,
    Query(q): Query<MergeQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let other = q.other.trim().to_ascii_uppercase();
    if other == regional_id {
        return Err(index_error(IndexError::SelfMerge));
    }
    let survivor = load_patient(&state, &regional_id).await?;
    let merged = load_patient(&state, &other).await?;
    for p in [&survivor, &merged] {
        if let Some(into) = &p.merged_into {
            return Err(index_error(IndexError::PatientMerged(
                p.regional_id.clone(),
                into.clone(),
            )));
        }
    }
    for id in [&survivor.regional_id, &merged.regional_id] {
        patient_access::seen_one(
            &state,
            &audit,
            &principal,
            "patient.read",
            id,
            "portal: merge confirmation",
        )
        .await?;
    }
    let rows = compare_rows(
        pt,
        &side_of_golden(pt, &survivor.golden),
        &side_of_golden(pt, &merged.golden),
        None,
    );
    page(ConfirmPage {
        t,
        pt,
        user: user_bar(&principal),
        csrf: csrf_of(&principal),
        title: pt.confirm_merge_title,
        intro: pt.confirm_merge_intro,
        comparison: Comparison {
            caption: pt.confirm_merge_title.to_string(),
            left_title: format!("{} : {}", pt.kept, survivor.regional_id),
            left_link: patient_link(pt, &survivor.regional_id),
            right_title: format!("{} : {}", pt.to_merge, merged.regional_id),
            right_link: patient_link(pt, &merged.regional_id),
            rows,
        },
        extra: vec![],
        action: format!("/patients/{}/merge", survivor.regional_id),
        hidden: vec![
            ("other", merged.regional_id.clone()),
            ("lang", t.lang.to_string()),
        ],
        button: pt.confirm_merge_button,
        cancel: patient_link(pt, &survivor.regional_id),
        alternative: Some((
            format!(
                "/patients/{}/merge?other={}&lang={}",
                merged.regional_id, survivor.regional_id, t.lang
            ),
            pt.swap,
        )),
    })
}

#[derive(Deserialize)]
struct MergeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    other: String,
    lang: Option<String>,
}

async fn merge(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(regional_id): Path<String>,
    Form(form): Form<MergeForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    check_csrf(&principal, &form.csrf)?;
    let other = form.other.trim().to_ascii_uppercase();
    state
        .identity
        .merge(&actor_of(&principal), &regional_id, &other)
        .await
        .map_err(index_error)?;
    let lang = if form.lang.as_deref() == Some("en") {
        "en"
    } else {
        "fr"
    };
    Ok(Redirect::to(&format!("/patients/{regional_id}?done=merged&lang={lang}")).into_response())
}

// ---- unmerge ---------------------------------------------------------------------------------

async fn open_merge(state: &AppState, id: i64) -> Result<MergeEntry, ApiError> {
    let m = state
        .identity
        .merge_entry(id)
        .await
        .map_err(index_error)?
        .ok_or_else(|| index_error(IndexError::UnknownMerge(id)))?;
    if m.is_undone() {
        return Err(index_error(IndexError::AlreadyUnmerged(id)));
    }
    Ok(m)
}

async fn unmerge_confirm(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let m = open_merge(&state, id).await?;
    let survivor = load_patient(&state, &m.survivor).await?;
    let merged = load_patient(&state, &m.merged).await?;
    for id in [&m.survivor, &m.merged] {
        patient_access::seen_one(
            &state,
            &audit,
            &principal,
            "patient.read",
            id,
            "portal: unmerge confirmation",
        )
        .await?;
    }
    let view = merge_view(pt, &m);
    let rows = compare_rows(
        pt,
        &side_of_golden(pt, &survivor.golden),
        &side_of_golden(pt, &merged.golden),
        None,
    );
    page(ConfirmPage {
        t,
        pt,
        user: user_bar(&principal),
        csrf: csrf_of(&principal),
        title: pt.confirm_unmerge_title,
        intro: pt.confirm_unmerge_intro,
        comparison: Comparison {
            caption: format!("{} {}", pt.merge_number, m.id),
            left_title: format!("{} : {}", pt.survivor, m.survivor),
            left_link: patient_link(pt, &m.survivor),
            right_title: format!("{} : {}", pt.merged, m.merged),
            right_link: patient_link(pt, &m.merged),
            rows,
        },
        extra: vec![
            Field {
                label: pt.merge_number,
                value: format!("{} — {} ({} {})", view.id, view.when, pt.by, view.by),
            },
            Field {
                label: pt.moved,
                value: view.moved,
            },
        ],
        action: format!("/identity/merges/{id}/unmerge"),
        hidden: vec![("lang", t.lang.to_string())],
        button: pt.confirm_unmerge_button,
        cancel: patient_link(pt, &m.merged),
        alternative: None,
    })
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    lang: Option<String>,
}

async fn unmerge(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    check_csrf(&principal, &form.csrf)?;
    let m = open_merge(&state, id).await?;
    state
        .identity
        .unmerge(&actor_of(&principal), id)
        .await
        .map_err(index_error)?;
    let lang = if form.lang.as_deref() == Some("en") {
        "en"
    } else {
        "fr"
    };
    Ok(Redirect::to(&format!("/patients/{}?done=unmerged&lang={lang}", m.merged)).into_response())
}

// ---- review queue ----------------------------------------------------------------------------

/// A review task's two sides: the incoming source record (with the patient it is linked to)
/// and the candidate patient, followed to the patient it was merged into since.
struct ReviewSides {
    task: megalis_identity_index::ReviewTask,
    record: SourceRecord,
    record_patient: String,
    candidate: Patient,
}

async fn review_sides(state: &AppState, id: i64) -> Result<ReviewSides, ApiError> {
    let task = state
        .identity
        .review_task(id)
        .await
        .map_err(index_error)?
        .ok_or_else(|| index_error(IndexError::UnknownReview(id)))?;
    let holder = state
        .identity
        .patient_of(&task.source)
        .await
        .map_err(index_error)?
        .ok_or_else(|| not_found(&source_text(&task.source)))?;
    let holder_patient = load_patient(state, &holder).await?;
    let record = holder_patient
        .sources
        .into_iter()
        .find(|s| s.id == task.source)
        .ok_or_else(|| not_found(&source_text(&task.source)))?;
    let candidate = active_patient(state, &task.candidate).await?;
    Ok(ReviewSides {
        task,
        record,
        record_patient: holder,
        candidate,
    })
}

fn review_comparison(pt: &PatientTexts, s: &ReviewSides) -> Comparison {
    let levels = parse_levels(&s.task.levels);
    Comparison {
        caption: format!("{} {}", pt.review, s.task.id),
        left_title: format!(
            "{} : {} ({})",
            pt.source_record,
            source_text(&s.task.source),
            s.record_patient
        ),
        left_link: patient_link(pt, &s.record_patient),
        right_title: format!("{} : {}", pt.candidate, s.candidate.regional_id),
        right_link: patient_link(pt, &s.candidate.regional_id),
        rows: compare_rows(
            pt,
            &side_of_record(pt, &s.record),
            &side_of_golden(pt, &s.candidate.golden),
            levels.as_deref(),
        ),
    }
}

async fn reviews(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let tasks = state
        .identity
        .open_reviews(QUEUE_SIZE)
        .await
        .map_err(index_error)?;
    let open_count = state
        .identity
        .open_review_count()
        .await
        .map_err(index_error)?;
    let mut rows = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for task in tasks {
        let Some(sides) = review_sides(&state, task.id).await.ok() else {
            continue;
        };
        seen.insert(sides.record_patient.clone());
        seen.insert(sides.candidate.regional_id.clone());
        rows.push(ReviewRow {
            id: task.id,
            source: source_text(&task.source),
            source_identity: identity_line(pt, &sides.record.demographics),
            candidate: sides.candidate.regional_id.clone(),
            candidate_identity: identity_line(pt, &sides.candidate.golden.demographics),
            score: score_text(pt, task.score),
            reason: reason_text(pt, &task.reason),
        });
    }
    // Identity-vigilance staff see every patient of the queue; each is decided and audited.
    patient_access::seen_many(
        &state,
        &audit,
        &principal,
        "patient.search",
        &seen.iter().map(String::as_str).collect::<Vec<_>>(),
        "portal: review queue",
    )
    .await?;
    page(ReviewListPage {
        t,
        pt,
        user: user_bar(&principal),
        rows,
        open_count,
        notice: done_text(pt, q.done.as_deref()),
    })
}

async fn review(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let sides = review_sides(&state, id).await?;
    for patient in [&sides.record_patient, &sides.candidate.regional_id] {
        patient_access::seen_one(
            &state,
            &audit,
            &principal,
            "patient.read",
            patient,
            &format!("portal: review {id}"),
        )
        .await?;
    }
    let note = (sides.candidate.regional_id != sides.task.candidate).then(|| {
        format!(
            "{} {} : {}",
            pt.candidate_merged, sides.candidate.regional_id, sides.task.candidate
        )
    });
    page(ReviewDetailPage {
        t,
        pt,
        user: user_bar(&principal),
        id,
        open: sides.task.state == "open",
        state: match sides.task.state.as_str() {
            "same" => pt.state_same.to_string(),
            "distinct" => pt.state_distinct.to_string(),
            other => other.to_string(),
        },
        score: score_text(pt, sides.task.score),
        reason: reason_text(pt, &sides.task.reason),
        comparison: review_comparison(pt, &sides),
        note,
    })
}

#[derive(Deserialize, Default)]
struct DecisionQuery {
    lang: Option<String>,
    #[serde(default)]
    decision: String,
}

fn resolution(decision: &str) -> Result<Resolution, ApiError> {
    match decision {
        "same" => Ok(Resolution::SamePatient),
        "distinct" => Ok(Resolution::Distinct),
        _ => Err(ApiError::bad_request(
            "Décision attendue : same ou distinct. / Expected decision: same or distinct.",
        )),
    }
}

async fn review_confirm(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<i64>,
    Query(q): Query<DecisionQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    let (t, pt) = texts(q.lang.as_deref(), &headers);
    let resolution = resolution(&q.decision)?;
    let sides = review_sides(&state, id).await?;
    if sides.task.state != "open" {
        return Err(index_error(IndexError::ReviewClosed(id)));
    }
    for patient in [&sides.record_patient, &sides.candidate.regional_id] {
        patient_access::seen_one(
            &state,
            &audit,
            &principal,
            "patient.read",
            patient,
            &format!("portal: review {id} confirmation"),
        )
        .await?;
    }
    let (title, intro) = match resolution {
        Resolution::SamePatient => (pt.confirm_same_title, pt.confirm_same_intro),
        Resolution::Distinct => (pt.confirm_distinct_title, pt.confirm_distinct_intro),
    };
    page(ConfirmPage {
        t,
        pt,
        user: user_bar(&principal),
        csrf: csrf_of(&principal),
        title,
        intro,
        comparison: review_comparison(pt, &sides),
        extra: vec![
            Field {
                label: pt.score,
                value: score_text(pt, sides.task.score),
            },
            Field {
                label: pt.reason,
                value: reason_text(pt, &sides.task.reason),
            },
        ],
        action: format!("/identity/reviews/{id}"),
        hidden: vec![
            ("decision", q.decision.clone()),
            ("lang", t.lang.to_string()),
        ],
        button: pt.confirm_button,
        cancel: format!("/identity/reviews/{id}?lang={}", t.lang),
        alternative: None,
    })
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    lang: Option<String>,
}

async fn decide(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path(id): Path<i64>,
    Form(form): Form<DecisionForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    patient_access::require(&state, &audit, &principal, IdentityUse::Manage).await?;
    check_csrf(&principal, &form.csrf)?;
    let resolution = resolution(&form.decision)?;
    state
        .identity
        .resolve_review(&actor_of(&principal), id, resolution)
        .await
        .map_err(index_error)?;
    let lang = if form.lang.as_deref() == Some("en") {
        "en"
    } else {
        "fr"
    };
    Ok(Redirect::to(&format!(
        "/identity/reviews?done={}&lang={lang}",
        form.decision
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_as_typed() {
        assert_eq!(
            identifier_query(" bzh0000000042x "),
            IdentifierQuery::Any("BZH0000000042X".into())
        );
        assert_eq!(
            identifier_query("1 69 02 29 019 123 45"),
            IdentifierQuery::Any("169022901912345".into())
        );
        assert_eq!(
            identifier_query(" ipp-00123 "),
            IdentifierQuery::Any("ipp-00123".into())
        );
    }

    #[test]
    fn dates_and_levels() {
        assert_eq!(
            parse_date("14/02/1969"),
            Some(time::macros::date!(1969 - 02 - 14))
        );
        assert_eq!(
            parse_date("1969-02-14"),
            Some(time::macros::date!(1969 - 02 - 14))
        );
        assert_eq!(parse_date("14 février"), None);
        assert_eq!(
            parse_levels("[0, 0, 2, 0, 0, 6]"),
            Some(vec![0, 0, 2, 0, 0, 6])
        );
        assert_eq!(parse_levels("junk"), None);
    }

    #[test]
    fn search_urls_keep_the_criteria() {
        let form = SearchForm {
            family: "Le Goff".into(),
            sex: "female".into(),
            ..Default::default()
        };
        assert_eq!(
            search_url(&form, "fr", 2),
            "/patients?family=Le+Goff&sex=female&lang=fr&page=2"
        );
    }
}
