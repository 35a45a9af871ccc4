//! Publications: the public site (`/publications`, an article at `/publications/{slug}`, the
//! Atom feed `/publications/feed.atom`), the professionals' section (`/pro/publications`,
//! signed-in users), and the editors' pages (`/publications/manage`: every article with its
//! status, the article form with a preview, schedule, publish, withdraw, back to draft).
//!
//! The rules are `megalis_publications`'s: who reads what (`Viewer`, `article::visibility`),
//! which step is allowed (`article::transition`), what a scheduled article's date means (the
//! store's queries compare it with the clock). Here: sessions, CSRF on every POST, and one audit
//! record per change (`publication.create`, `.update`, `.schedule`, `.publish`, `.withdraw`,
//! `.draft`) or refused access to the editors' pages (`publication.manage`, denied).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::{Principal, PrincipalKind};
use megalis_portal::{
    ArticleCard, EditForm, EditPage, Lang, ManageListPage, ManageRow, PublicationListPage,
    PublicationPage, PublicationTexts, StepButton, TagLink, Texts,
};
use megalis_publications::article::{transition, visibility};
use megalis_publications::{
    Action, Article, ArticleInput, Audience, ListQuery, PublicationError, Publications, Status,
    Viewer, Visibility, atom, markdown, paris, slug,
};
use serde::Deserialize;

use super::auth_glue::Audit;
use super::portal::{check_csrf, page, user_bar};
use super::problem::keep_as_is;
use super::{ApiError, AppState};

/// Articles per page of the reading lists.
const PAGE_SIZE: usize = 10;
/// Entries of the Atom feed.
const FEED_SIZE: usize = 20;
/// Articles on the editors' list.
const MANAGE_SIZE: usize = 500;
/// Longest search text taken into account.
const MAX_QUERY: usize = 200;

pub fn routes() -> Vec<super::routes::Route> {
    use super::routes::Route;
    // Publications carry no patient data: articles for the public and for professionals.
    vec![
        Route::open("/publications", &["GET"], get(public_list)),
        Route::open("/publications/feed.atom", &["GET"], get(feed)),
        Route::open("/publications/manage", &["GET"], get(manage_list)),
        Route::open(
            "/publications/manage/new",
            &["GET", "POST"],
            get(new_form).post(create),
        ),
        Route::open(
            "/publications/manage/{id}",
            &["GET", "POST"],
            get(edit_form).post(save),
        ),
        Route::open("/publications/manage/{id}/preview", &["GET"], get(preview)),
        Route::open("/publications/manage/{id}/{step}", &["POST"], post(step)),
        Route::open("/publications/{slug}", &["GET"], get(public_article)),
        Route::open("/pro/publications", &["GET"], get(pro_list)),
        Route::open("/pro/publications/{slug}", &["GET"], get(pro_article)),
    ]
}

fn store(state: &AppState) -> Publications {
    Publications::new(state.db.clone())
}

fn now_us() -> i64 {
    megalis_audit::record::now_us()
}

fn texts(lang: Option<&str>, headers: &HeaderMap) -> (&'static Texts, &'static PublicationTexts) {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let t = Texts::of(Lang::negotiate(lang, accept));
    (t, PublicationTexts::of(t))
}

/// Signed-in users (a portal session or a user's token) read the professionals' articles;
/// editors and administrators write.
fn viewer_of(p: &Principal) -> Viewer {
    Viewer::new(p.kind == PrincipalKind::User, &p.roles)
}

fn csrf_of(p: &Principal) -> String {
    p.session
        .as_ref()
        .map(|s| s.csrf_token.clone())
        .unwrap_or_default()
}

fn lang_of(form_lang: Option<&str>) -> &'static str {
    if form_lang == Some("en") { "en" } else { "fr" }
}

fn publication_error(e: PublicationError) -> ApiError {
    match e {
        PublicationError::NotFound(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "Article introuvable. / No such article.",
        ),
        PublicationError::Invalid(m) => ApiError::bad_request(m),
        e @ (PublicationError::Transition { .. } | PublicationError::Conflict(_)) => {
            ApiError::new(StatusCode::CONFLICT, e.to_string())
        }
        PublicationError::Store(ref s) if megalis_store::is_connection_error(s) => {
            ApiError::unavailable(
                "Les publications sont indisponibles ; réessayez. / Publications are unavailable; try again.",
            )
        }
        e => {
            tracing::error!(error = %e, "publications failure");
            ApiError::internal()
        }
    }
}

/// The redirect of an anonymous visitor to the login page, back to `path` afterwards.
fn to_login(path: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
    Redirect::to(&format!("/login?next={next}")).into_response()
}

/// Editors' pages: a signed-in editor (or administrator), or the login page, or a 403 that is
/// audited.
async fn require_editor(
    state: &AppState,
    audit: &Audit,
    principal: &Principal,
    path: &str,
) -> Result<Option<Response>, ApiError> {
    if principal.kind != PrincipalKind::User || principal.session.is_none() {
        return Ok(Some(to_login(path)));
    }
    if viewer_of(principal).may_author() {
        return Ok(None);
    }
    audit
        .record(
            principal,
            "publication.manage",
            "publication",
            Outcome::Denied,
        )
        .detail(path)
        .send(state)
        .await?;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Réservé à la rédaction (rôle editor) et aux administrateurs. / Editors (role editor) \
         and administrators only.",
    ))
}

// ---- dates -----------------------------------------------------------------------------------

const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "1er mars 2026" / "1 March 2026", Paris time.
fn long_date(pb: &PublicationTexts, us: i64) -> String {
    let t = paris::local(us);
    let month = usize::from(u8::from(t.month())) - 1;
    if pb.lang == "en" {
        format!("{} {} {}", t.day(), MONTHS_EN[month], t.year())
    } else if t.day() == 1 {
        format!("1er {} {}", MONTHS_FR[month], t.year())
    } else {
        format!("{} {} {}", t.day(), MONTHS_FR[month], t.year())
    }
}

/// "01/03/2026 à 09:30" / "2026-03-01 09:30", Paris time.
fn date_time(pb: &PublicationTexts, us: i64) -> String {
    let t = paris::local(us);
    if pb.lang == "en" {
        format!(
            "{}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        format!(
            "{:02}/{:02}/{} à {:02}:{:02}",
            t.day(),
            u8::from(t.month()),
            t.year(),
            t.hour(),
            t.minute()
        )
    }
}

fn iso_date(us: i64) -> String {
    let t = paris::local(us);
    format!("{}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

// ---- reading ---------------------------------------------------------------------------------

/// The two reading sections.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Public,
    Pro,
}

impl Section {
    fn base(self) -> &'static str {
        match self {
            Section::Public => "/publications",
            Section::Pro => "/pro/publications",
        }
    }

    fn audiences(self) -> Vec<Audience> {
        match self {
            Section::Public => vec![Audience::Public],
            Section::Pro => vec![],
        }
    }
}

#[derive(Deserialize, Default)]
struct ListParams {
    lang: Option<String>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    tag: String,
    page: Option<usize>,
}

fn list_url(section: Section, lang: &str, text: &str, tag: &str, page: usize) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !text.is_empty() {
        query.append_pair("q", text);
    }
    if !tag.is_empty() {
        query.append_pair("tag", tag);
    }
    query.append_pair("lang", lang);
    if page > 1 {
        query.append_pair("page", &page.to_string());
    }
    format!("{}?{}", section.base(), query.finish())
}

fn tag_links(section: Section, lang: &str, tags: &[megalis_publications::Tag]) -> Vec<TagLink> {
    tags.iter()
        .map(|t| TagLink {
            label: t.label.clone(),
            url: list_url(section, lang, "", &t.key, 1),
            count: 0,
            current: false,
        })
        .collect()
}

fn card(section: Section, pb: &PublicationTexts, lang: &str, a: &Article) -> ArticleCard {
    let published = a.publish_at_us.unwrap_or(a.updated_at_us);
    ArticleCard {
        title: a.title.clone(),
        url: format!("{}/{}?lang={lang}", section.base(), a.slug),
        summary: a.summary.clone(),
        date: long_date(pb, published),
        date_iso: iso_date(published),
        audience: (a.audience == Audience::Professionals).then_some(pb.professionals_badge),
        tags: tag_links(section, lang, &a.tags),
    }
}

async fn list_page(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    section: Section,
    p: ListParams,
) -> Result<Response, ApiError> {
    let (t, pb) = texts(p.lang.as_deref(), headers);
    let viewer = viewer_of(principal);
    let text: String = p.q.trim().chars().take(MAX_QUERY).collect();
    let tag = if slug::is_slug(p.tag.trim()) {
        p.tag.trim().to_string()
    } else {
        String::new()
    };
    let page_number = p.page.unwrap_or(1).clamp(1, 10_000);
    let now = now_us();
    let store = store(state);
    let found = store
        .list(&ListQuery {
            viewer,
            audiences: section.audiences(),
            now_us: now,
            text: text.clone(),
            tag: (!tag.is_empty()).then(|| tag.clone()),
            offset: (page_number - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
        })
        .await
        .map_err(publication_error)?;
    let tags = store
        .tags(viewer, &section.audiences(), now)
        .await
        .map_err(publication_error)?
        .into_iter()
        .map(|(g, count)| TagLink {
            url: list_url(section, t.lang, &text, &g.key, 1),
            current: g.key == tag,
            label: g.label,
            count,
        })
        .collect();
    let first = (page_number - 1) * PAGE_SIZE + 1;
    let last = first + found.articles.len().saturating_sub(1);
    let (title, intro, other) = match section {
        Section::Public => (
            pb.public_title,
            pb.public_intro,
            (format!("/pro/publications?lang={}", t.lang), pb.pro_link),
        ),
        Section::Pro => (
            pb.pro_title,
            pb.pro_intro,
            (format!("/publications?lang={}", t.lang), pb.public_link),
        ),
    };
    page(PublicationListPage {
        t,
        pb,
        user: user_bar(principal),
        title,
        intro,
        action: section.base().to_string(),
        cards: found
            .articles
            .iter()
            .map(|a| card(section, pb, t.lang, a))
            .collect(),
        filtered: !text.is_empty() || !tag.is_empty(),
        range: pb.range(first, last, found.total),
        prev: (page_number > 1).then(|| list_url(section, t.lang, &text, &tag, page_number - 1)),
        next: (last < found.total).then(|| list_url(section, t.lang, &text, &tag, page_number + 1)),
        all_url: list_url(section, t.lang, &text, "", 1),
        text,
        tag,
        tags,
        feed: section == Section::Public,
        other_section: Some(other),
        editor: viewer.may_author(),
    })
}

async fn public_list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    list_page(&state, &principal, &headers, Section::Public, p).await
}

async fn pro_list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(p): Query<ListParams>,
) -> Result<Response, ApiError> {
    if !viewer_of(&principal).signed_in {
        return Ok(to_login("/pro/publications"));
    }
    list_page(&state, &principal, &headers, Section::Pro, p).await
}

#[derive(Deserialize, Default)]
struct LangParam {
    lang: Option<String>,
    done: Option<String>,
}

fn article_page(
    t: &'static Texts,
    pb: &'static PublicationTexts,
    principal: &Principal,
    section: Section,
    a: &Article,
    preview: bool,
) -> Result<Response, ApiError> {
    let published = a.publish_at_us.unwrap_or(a.updated_at_us);
    // An edit more than a minute after the publication is worth telling.
    let updated =
        (a.updated_at_us > published + 60_000_000).then(|| long_date(pb, a.updated_at_us));
    page(PublicationPage {
        t,
        pb,
        user: user_bar(principal),
        title: a.title.clone(),
        body_html: markdown::render(&a.body),
        author: a.author_name.clone(),
        date: long_date(pb, published),
        date_iso: iso_date(published),
        updated,
        tags: tag_links(section, t.lang, &a.tags),
        audience: (a.audience == Audience::Professionals).then_some(pb.professionals_notice),
        back: format!("{}?lang={}", section.base(), t.lang),
        preview: preview.then(|| pb.preview_banner.to_string()),
        editor_link: viewer_of(principal)
            .may_author()
            .then(|| format!("/publications/manage/{}?lang={}", a.id, t.lang)),
    })
}

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "Cet article n'existe pas. / This article does not exist.",
    )
}

fn gone() -> ApiError {
    ApiError::new(
        StatusCode::GONE,
        "Cet article a été retiré. / This article was withdrawn.",
    )
}

async fn read_article(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    section: Section,
    slug_text: &str,
    lang: Option<&str>,
) -> Result<Response, ApiError> {
    if !slug::is_slug(slug_text) {
        return Err(not_found());
    }
    let a = store(state)
        .by_slug(slug_text)
        .await
        .map_err(publication_error)?
        .ok_or_else(not_found)?;
    let viewer = viewer_of(principal);
    match visibility(&a, viewer, now_us()) {
        Visibility::Hidden => Err(not_found()),
        Visibility::Gone => Err(gone()),
        // A professionals' article lives in their section (its links lead there).
        Visibility::Visible
            if section == Section::Public && a.audience == Audience::Professionals =>
        {
            Ok(Redirect::to(&format!(
                "/pro/publications/{}?lang={}",
                a.slug,
                lang_of(lang)
            ))
            .into_response())
        }
        Visibility::Visible => {
            let (t, pb) = texts(lang, headers);
            article_page(t, pb, principal, section, &a, false)
        }
    }
}

async fn public_article(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(slug_text): Path<String>,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    read_article(
        &state,
        &principal,
        &headers,
        Section::Public,
        &slug_text,
        q.lang.as_deref(),
    )
    .await
}

async fn pro_article(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path(slug_text): Path<String>,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    if !viewer_of(&principal).signed_in {
        if !slug::is_slug(&slug_text) {
            return Err(not_found());
        }
        return Ok(to_login(&format!("/pro/publications/{slug_text}")));
    }
    read_article(
        &state,
        &principal,
        &headers,
        Section::Pro,
        &slug_text,
        q.lang.as_deref(),
    )
    .await
}

// ---- the Atom feed ---------------------------------------------------------------------------

/// The host of the public URL, for the feed's `tag:` id.
fn public_host(public_url: &str) -> String {
    url::Url::parse(public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into())
}

/// The public articles live now, as Atom (French: the feed is one document for everyone).
/// Professionals' articles are not selected by the query, whoever asks.
async fn feed(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = now_us();
    let pb = &megalis_portal::PUBLICATIONS_FR;
    let articles = store(&state)
        .feed(now, FEED_SIZE)
        .await
        .map_err(publication_error)?;
    let base = state.settings.public_url.trim_end_matches('/');
    let document = atom::write(&atom::Feed {
        id: atom::feed_id(&public_host(&state.settings.public_url)),
        title: pb.feed_title.into(),
        subtitle: Some(pb.feed_subtitle.into()),
        lang: "fr".into(),
        updated_us: articles
            .iter()
            .map(Article::last_change_us)
            .max()
            .unwrap_or(now),
        self_url: format!("{base}/publications/feed.atom"),
        alternate_url: format!("{base}/publications"),
        entries: articles
            .iter()
            .map(|a| atom::Entry {
                id: atom::entry_id(&a.id),
                title: a.title.clone(),
                url: format!("{base}/publications/{}", a.slug),
                published_us: a.publish_at_us.unwrap_or(a.updated_at_us),
                updated_us: a.last_change_us(),
                author: a.author_name.clone(),
                summary: a.summary.clone(),
                content_html: markdown::render(&a.body),
                categories: a
                    .tags
                    .iter()
                    .map(|g| (g.key.clone(), g.label.clone()))
                    .collect(),
            })
            .collect(),
    });
    let mut r = document.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/atom+xml; charset=utf-8"),
    );
    // Short: a scheduled article must show up soon after its date.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(r)
}

// ---- editors' pages --------------------------------------------------------------------------

async fn manage_list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage").await? {
        return Ok(r);
    }
    let (t, pb) = texts(q.lang.as_deref(), &headers);
    let now = now_us();
    let articles = store(&state)
        .all(MANAGE_SIZE)
        .await
        .map_err(publication_error)?;
    let rows = articles
        .iter()
        .map(|a| {
            let status = a.effective_status(now);
            ManageRow {
                id: a.id.clone(),
                title: a.title.clone(),
                edit_url: format!("/publications/manage/{}?lang={}", a.id, t.lang),
                status_code: status.as_str(),
                status: pb.status(status.as_str()),
                audience: pb.audience(a.audience.as_str()),
                when: a
                    .publish_at_us
                    .map(|us| date_time(pb, us))
                    .unwrap_or_else(|| "—".into()),
                updated: date_time(pb, a.updated_at_us),
                author: a.author_name.clone(),
            }
        })
        .collect();
    page(ManageListPage {
        t,
        pb,
        user: user_bar(&principal),
        rows,
        notice: None,
    })
}

fn done_text(pb: &PublicationTexts, done: Option<&str>) -> Option<String> {
    Some(
        match done? {
            "created" => pb.done_created,
            "saved" => pb.done_saved,
            "scheduled" => pb.done_scheduled,
            "published" => pb.done_published,
            "withdrawn" => pb.done_withdrawn,
            "draft" => pb.done_draft,
            _ => return None,
        }
        .to_string(),
    )
}

/// The form page of an existing article (its stored values unless `form` is given back).
#[allow(clippy::too_many_arguments)]
fn edit_page(
    t: &'static Texts,
    pb: &'static PublicationTexts,
    principal: &Principal,
    a: &Article,
    form: Option<EditForm>,
    preview_html: Option<String>,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, ApiError> {
    let now = now_us();
    let status = a.effective_status(now);
    let status_detail = match (status, a.publish_at_us, a.withdrawn_at_us) {
        (Status::Scheduled, Some(at), _) => {
            format!("{} {}", pb.detail_scheduled, date_time(pb, at))
        }
        (Status::Published, Some(at), _) => {
            format!("{} {}", pb.detail_published, date_time(pb, at))
        }
        (Status::Withdrawn, _, Some(at)) => {
            format!("{} {}", pb.detail_withdrawn, date_time(pb, at))
        }
        _ => pb.detail_draft.to_string(),
    };
    let allowed = |action| transition(a, action, now).is_ok();
    let steps = [
        (
            Action::Publish,
            "publish",
            pb.publish_button,
            pb.publish_help,
        ),
        (
            Action::Withdraw,
            "withdraw",
            pb.withdraw_button,
            pb.withdraw_help,
        ),
        (Action::ToDraft, "draft", pb.draft_button, pb.draft_help),
    ]
    .into_iter()
    .filter(|(action, ..)| allowed(*action))
    .map(|(_, step, label, help)| StepButton { step, label, help })
    .collect();
    let hour = 3_600_000_000;
    // Proposed date: the current schedule, or tomorrow at the next full hour.
    let proposed = match (status, a.publish_at_us) {
        (Status::Scheduled, Some(at)) => at,
        _ => (now / hour + 25) * hour,
    };
    let schedule =
        allowed(Action::Schedule { at_us: now + hour }).then(|| paris::input_value(proposed));
    let view_url = Some(match (status, a.audience) {
        (Status::Published, Audience::Public) => {
            format!("/publications/{}?lang={}", a.slug, t.lang)
        }
        (Status::Published, Audience::Professionals) => {
            format!("/pro/publications/{}?lang={}", a.slug, t.lang)
        }
        _ => format!("/publications/manage/{}/preview?lang={}", a.id, t.lang),
    });
    let form = form.unwrap_or_else(|| EditForm {
        title: a.title.clone(),
        body: a.body.clone(),
        audience: a.audience.as_str().into(),
        tags: ArticleInput::tags_text(&a.tags),
        version: a.version,
    });
    let preview_html = preview_html.or_else(|| Some(markdown::render(&a.body)));
    page(EditPage {
        t,
        pb,
        user: user_bar(principal),
        csrf: csrf_of(principal),
        id: Some(a.id.clone()),
        action: format!("/publications/manage/{}", a.id),
        form,
        preview_html,
        error,
        notice,
        status_code: status.as_str(),
        status: pb.status(status.as_str()),
        status_detail,
        view_url,
        steps,
        schedule,
    })
}

/// A page shown back with an error status (the error mapper keeps it: it is the form).
fn with_status(r: Result<Response, ApiError>, status: StatusCode) -> Result<Response, ApiError> {
    let mut r = r?;
    *r.status_mut() = status;
    keep_as_is(&mut r);
    Ok(r)
}

async fn new_form(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage/new").await? {
        return Ok(r);
    }
    let (t, pb) = texts(q.lang.as_deref(), &headers);
    new_page(t, pb, &principal, EditForm::default(), None, None)
}

fn new_page(
    t: &'static Texts,
    pb: &'static PublicationTexts,
    principal: &Principal,
    form: EditForm,
    preview_html: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    page(EditPage {
        t,
        pb,
        user: user_bar(principal),
        csrf: csrf_of(principal),
        id: None,
        action: "/publications/manage/new".into(),
        form: EditForm {
            audience: if form.audience.is_empty() {
                "public".into()
            } else {
                form.audience.clone()
            },
            ..form
        },
        preview_html,
        error,
        notice: None,
        status_code: Status::Draft.as_str(),
        status: pb.status("draft"),
        status_detail: pb.detail_draft.into(),
        view_url: None,
        steps: vec![],
        schedule: None,
    })
}

#[derive(Deserialize)]
struct ArticleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    op: String,
    lang: Option<String>,
}

impl ArticleForm {
    fn edit_form(&self) -> EditForm {
        EditForm {
            title: self.title.clone(),
            body: self.body.clone(),
            audience: self.audience.clone(),
            tags: self.tags.clone(),
            version: self.version,
        }
    }

    fn input(&self) -> Result<ArticleInput, PublicationError> {
        ArticleInput::parse(&self.title, &self.body, &self.audience, &self.tags)
    }
}

/// The error of a form, in the page's language: the crate's messages are English, so French
/// pages add their French summary.
fn form_error(pb: &PublicationTexts, e: &PublicationError) -> String {
    if pb.lang == "en" {
        e.to_string()
    } else {
        let fr = match e {
            PublicationError::Conflict(_) => {
                "L'article a été modifié entre-temps par quelqu'un d'autre ; rechargez la page \
                 (vos modifications sont ci-dessous)."
            }
            _ => "Le formulaire contient une erreur",
        };
        format!("{fr} ({e})")
    }
}

async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Form(form): Form<ArticleForm>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage/new").await? {
        return Ok(r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (t, pb) = texts(form.lang.as_deref(), &headers);
    let input = match form.input() {
        Ok(i) => i,
        Err(e) if e.is_bad_input() => {
            let error = Some(form_error(pb, &e));
            return with_status(
                new_page(t, pb, &principal, form.edit_form(), None, error),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(e) => return Err(publication_error(e)),
    };
    if form.op == "preview" {
        let html = Some(markdown::render(&input.body));
        return new_page(t, pb, &principal, form.edit_form(), html, None);
    }
    let author = principal
        .display_name
        .clone()
        .unwrap_or_else(|| principal.subject.clone());
    let a = store(&state)
        .create(&input, &principal.subject, &author, now_us())
        .await
        .map_err(publication_error)?;
    audit
        .record(
            &principal,
            "publication.create",
            "publication",
            Outcome::Success,
        )
        .object(&a.id)
        .detail(&format!("{} ({})", a.slug, a.audience.as_str()))
        .send(&state)
        .await?;
    Ok(Redirect::to(&format!(
        "/publications/manage/{}?done=created&lang={}",
        a.id,
        lang_of(form.lang.as_deref())
    ))
    .into_response())
}

async fn load(state: &AppState, id: &str) -> Result<Article, ApiError> {
    store(state)
        .get(id)
        .await
        .map_err(publication_error)?
        .ok_or_else(not_found)
}

async fn edit_form(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<String>,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage").await? {
        return Ok(r);
    }
    let (t, pb) = texts(q.lang.as_deref(), &headers);
    let a = load(&state, &id).await?;
    let notice = done_text(pb, q.done.as_deref());
    edit_page(t, pb, &principal, &a, None, None, None, notice)
}

async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<String>,
    Query(q): Query<LangParam>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage").await? {
        return Ok(r);
    }
    let (t, pb) = texts(q.lang.as_deref(), &headers);
    let a = load(&state, &id).await?;
    let section = match a.audience {
        Audience::Public => Section::Public,
        Audience::Professionals => Section::Pro,
    };
    article_page(t, pb, &principal, section, &a, !a.is_live(now_us()))
}

async fn save(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Path(id): Path<String>,
    Form(form): Form<ArticleForm>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage").await? {
        return Ok(r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (t, pb) = texts(form.lang.as_deref(), &headers);
    let a = load(&state, &id).await?;
    let input = match form.input() {
        Ok(i) => i,
        Err(e) => {
            let error = Some(form_error(pb, &e));
            return with_status(
                edit_page(
                    t,
                    pb,
                    &principal,
                    &a,
                    Some(form.edit_form()),
                    None,
                    error,
                    None,
                ),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    if form.op == "preview" {
        let html = Some(markdown::render(&input.body));
        return edit_page(
            t,
            pb,
            &principal,
            &a,
            Some(form.edit_form()),
            html,
            None,
            None,
        );
    }
    match store(&state)
        .update(&id, form.version, &input, now_us())
        .await
    {
        Ok(saved) => {
            audit
                .record(
                    &principal,
                    "publication.update",
                    "publication",
                    Outcome::Success,
                )
                .object(&saved.id)
                .detail(&format!("{} v{}", saved.slug, saved.version))
                .send(&state)
                .await?;
            Ok(Redirect::to(&format!(
                "/publications/manage/{id}?done=saved&lang={}",
                t.lang
            ))
            .into_response())
        }
        // Someone saved meanwhile: the editor keeps the text typed, with the explanation.
        Err(e @ PublicationError::Conflict(_)) => {
            let error = Some(form_error(pb, &e));
            with_status(
                edit_page(
                    t,
                    pb,
                    &principal,
                    &a,
                    Some(form.edit_form()),
                    None,
                    error,
                    None,
                ),
                StatusCode::CONFLICT,
            )
        }
        Err(e) => Err(publication_error(e)),
    }
}

#[derive(Deserialize)]
struct StepForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: i64,
    #[serde(default)]
    publish_at: String,
    lang: Option<String>,
}

async fn step(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Path((id, step)): Path<(String, String)>,
    Form(form): Form<StepForm>,
) -> Result<Response, ApiError> {
    if let Some(r) = require_editor(&state, &audit, &principal, "/publications/manage").await? {
        return Ok(r);
    }
    check_csrf(&principal, &form.csrf)?;
    let (action, done) = match step.as_str() {
        "publish" => (Action::Publish, "published"),
        "withdraw" => (Action::Withdraw, "withdrawn"),
        "draft" => (Action::ToDraft, "draft"),
        "schedule" => {
            let at_us = paris::input_to_us(&form.publish_at).ok_or_else(|| {
                ApiError::bad_request(
                    "Date de parution attendue (AAAA-MM-JJTHH:MM, heure de Paris). / Expected a \
                     publication date (YYYY-MM-DDTHH:MM, Paris time).",
                )
            })?;
            (Action::Schedule { at_us }, "scheduled")
        }
        _ => return Err(not_found()),
    };
    let a = store(&state)
        .apply(&id, form.version, action, now_us())
        .await
        .map_err(publication_error)?;
    let detail = match (action, a.publish_at_us) {
        (Action::Schedule { .. }, Some(at)) => format!("{} at {}", a.slug, atom::rfc3339(at)),
        _ => a.slug.clone(),
    };
    audit
        .record(
            &principal,
            action.audit_name(),
            "publication",
            Outcome::Success,
        )
        .object(&a.id)
        .detail(&detail)
        .send(&state)
        .await?;
    Ok(Redirect::to(&format!(
        "/publications/manage/{id}?done={done}&lang={}",
        lang_of(form.lang.as_deref())
    ))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_paris_time() {
        // 2026-03-01 08:00 UTC = 09:00 in Paris (winter); 2026-07-14 08:00 UTC = 10:00 (summer).
        let winter = 1_772_352_000_000_000;
        let summer = 1_784_016_000_000_000;
        let fr = &megalis_portal::PUBLICATIONS_FR;
        let en = &megalis_portal::PUBLICATIONS_EN;
        assert_eq!(long_date(fr, winter), "1er mars 2026");
        assert_eq!(long_date(en, winter), "1 March 2026");
        assert_eq!(date_time(fr, winter), "01/03/2026 à 09:00");
        assert_eq!(date_time(en, summer), "2026-07-14 10:00");
        assert_eq!(long_date(fr, summer), "14 juillet 2026");
        assert_eq!(iso_date(summer), "2026-07-14");
    }

    #[test]
    fn list_urls_keep_the_filters_encoded() {
        assert_eq!(
            list_url(Section::Public, "fr", "rénale & co", "nephrologie", 2),
            "/publications?q=r%C3%A9nale+%26+co&tag=nephrologie&lang=fr&page=2"
        );
        assert_eq!(
            list_url(Section::Pro, "en", "", "", 1),
            "/pro/publications?lang=en"
        );
    }

    #[test]
    fn viewers_from_principals() {
        let anonymous = Principal::anonymous();
        assert_eq!(viewer_of(&anonymous), Viewer::ANONYMOUS);
        let editor = Principal {
            kind: PrincipalKind::User,
            roles: vec![megalis_publications::EDITOR_ROLE.into()],
            ..Principal::anonymous()
        };
        assert!(viewer_of(&editor).may_author());
        let system = Principal {
            kind: PrincipalKind::System,
            roles: vec!["editor".into()],
            ..Principal::anonymous()
        };
        assert!(
            !viewer_of(&system).signed_in,
            "a system client is nobody's reader"
        );
        assert_eq!(public_host("https://sante.bzh:8443/"), "sante.bzh");
        assert_eq!(public_host("not a url"), "localhost");
        assert_eq!(
            to_login("/pro/publications/a-b").headers()["location"],
            "/login?next=%2Fpro%2Fpublications%2Fa-b"
        );
    }
}
