//! The portal's pages: login (password + second factor), logout, launcher, profile (TOTP
//! enrolment), administration of accounts and grants, and the static assets. Rendering is in
//! `megalis-portal`; here are the form handlers, CSRF checks and audit records.
//!
//! CSRF: every state-changing form carries the session's synchroniser token; the login form,
//! which has no session yet, uses a double-submit token bound to a short-lived cookie.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use super::routes::Route;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::grants::{GrantKind, GrantRule};
use megalis_auth::service::LoginOutcome;
use megalis_auth::{AccountKind, NewAccount, Principal, PrincipalKind, account, session};
use megalis_portal::{
    AccountRow, AdminAccountsPage, AdminGrantsPage, GrantRow, HomePage, Lang, LoginPage,
    ProfilePage, Texts, Tile, UserBar,
};
use serde::Deserialize;

use super::auth_glue::{Audit, auth_error};
use super::{ApiError, AppState};

const LOGIN_CSRF_COOKIE: &str = "__Host-megalis-login-csrf";

pub fn routes() -> Vec<Route> {
    vec![
        Route::open("/", &["GET"], get(home)),
        Route::open("/login", &["GET", "POST"], get(login_page).post(login)),
        Route::open("/logout", &["POST"], post(logout)),
        Route::open("/profile", &["GET"], get(profile)),
        Route::open("/profile/totp", &["POST"], post(totp_begin)),
        Route::open("/profile/totp/confirm", &["POST"], post(totp_confirm)),
        Route::open(
            "/admin/accounts",
            &["GET", "POST"],
            get(admin_accounts).post(admin_add_account),
        ),
        Route::open(
            "/admin/accounts/status",
            &["POST"],
            post(admin_account_status),
        ),
        Route::open(
            "/admin/grants",
            &["GET", "POST"],
            get(admin_grants).post(admin_add_grant),
        ),
        Route::open("/admin/grants/remove", &["POST"], post(admin_remove_grant)),
        Route::open("/apps/{application}/", &["GET"], get(application)),
        Route::open("/static/portal.css", &["GET"], get(css)),
        Route::open("/static/portal.js", &["GET"], get(js)),
    ]
}

#[derive(Deserialize, Default)]
struct LangQuery {
    lang: Option<String>,
    next: Option<String>,
}

fn texts(q: &LangQuery, headers: &HeaderMap) -> &'static Texts {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    Texts::of(Lang::negotiate(q.lang.as_deref(), accept))
}

pub(crate) fn page(t: impl Template) -> Result<Response, ApiError> {
    let body = t.render().map_err(|e| {
        tracing::error!(error = %e, "template");
        ApiError::internal()
    })?;
    let mut r = Html(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

pub(crate) fn user_bar(p: &Principal) -> Option<UserBar> {
    let s = p.session.as_ref()?;
    // The patient pages are offered to those the access rule lets in once they use a second
    // factor; the pages themselves explain how to add one.
    let with_second_factor = Principal {
        second_factor: true,
        ..p.clone()
    };
    use super::patient_access::{IdentityUse, refusal};
    Some(UserBar {
        display_name: p.display_name.clone().unwrap_or_else(|| p.subject.clone()),
        is_admin: p.is_admin(),
        patients: refusal(&with_second_factor, IdentityUse::Read).is_none(),
        identity_staff: refusal(&with_second_factor, IdentityUse::Manage).is_none(),
        csrf: s.csrf_token.clone(),
    })
}

/// Only local paths: an attacker must not turn the login page into an open redirect.
pub(super) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// The session of a signed-in user, or the redirect to the login page.
pub(super) fn require_session(
    p: &Principal,
) -> Result<&megalis_auth::principal::SessionRef, Box<Response>> {
    match (&p.kind, &p.session) {
        (PrincipalKind::User, Some(s)) => Ok(s),
        _ => Err(Box::new(Redirect::to("/login").into_response())),
    }
}

pub(super) fn check_csrf(p: &Principal, submitted: &str) -> Result<(), ApiError> {
    let ok = p.session.as_ref().is_some_and(|s| {
        !submitted.is_empty()
            && megalis_auth::session::Session::csrf_matches(&s.csrf_token, submitted)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Jeton anti-CSRF absent ou invalide ; rechargez la page. / Missing or invalid CSRF token; reload the page.",
        ))
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub(super) fn set_cookie(r: &mut Response, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

async fn home(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    if principal.has_role(super::access::PATIENT_ROLE) {
        // A patient's home is their record.
        return Ok(Redirect::to("/mon-dossier").into_response());
    }
    let t = texts(&q, &headers);
    let apps = state.auth.launcher(&principal).await.map_err(auth_error)?;
    let tiles = apps
        .into_iter()
        .filter_map(|a| {
            Some(Tile {
                url: a.launch_url?,
                id: a.id,
                name: a.name,
            })
        })
        .collect();
    page(HomePage {
        t,
        user: user_bar(&principal),
        tiles,
        second_factor: principal.second_factor,
    })
}

fn login_form(
    state: &AppState,
    t: &'static Texts,
    next: String,
    username: String,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let token = megalis_auth::session::new_csrf_token();
    let mut r = page(LoginPage {
        t,
        user: None,
        csrf: token.clone(),
        next,
        username,
        error,
        card_login: state.card_trust.is_some(),
        federated_login: state.upstream_oidc.is_some(),
    })?;
    set_cookie(
        &mut r,
        &format!(
            "{LOGIN_CSRF_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=3600"
        ),
    );
    Ok(r)
}

async fn login_page(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    let next = safe_next(q.next.as_deref());
    if principal.session.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    login_form(&state, texts(&q, &headers), next, String::new(), None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    otp: Option<String>,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ApiError> {
    let t = texts(&q, &headers);
    let cookie = cookie_value(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie.is_empty() || !megalis_auth::session::Session::csrf_matches(cookie, &form.csrf) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Jeton anti-CSRF absent ou invalide ; rechargez la page. / Missing or invalid CSRF token; reload the page.",
        ));
    }
    let next = safe_next(form.next.as_deref());
    let otp = form.otp.as_deref().filter(|s| !s.trim().is_empty());
    let outcome = state
        .auth
        .password_login(&form.username, &form.password, otp)
        .await
        .map_err(auth_error)?;
    let tried = account::normalise_username(&form.username);
    match outcome {
        LoginOutcome::Success {
            account,
            second_factor,
            amr,
        } => {
            let (raw, _) = state
                .auth
                .open_session(&account, &amr, second_factor)
                .await
                .map_err(auth_error)?;
            let amr_s: Vec<String> = amr.iter().map(|s| s.to_string()).collect();
            let principal = state
                .auth
                .principal_for(&account, &amr_s, None)
                .await
                .map_err(auth_error)?
                .unwrap_or_else(Principal::anonymous);
            audit
                .record(&principal, "login", "session", Outcome::Success)
                .detail(&format!("password; amr={}", amr.join(" ")))
                .send(&state)
                .await?;
            let mut r = Redirect::to(&next).into_response();
            set_cookie(
                &mut r,
                &session::set_cookie(&raw, state.auth.settings.session_absolute_timeout),
            );
            set_cookie(
                &mut r,
                &format!(
                    "{LOGIN_CSRF_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
                ),
            );
            Ok(r)
        }
        LoginOutcome::Refused(reason) => {
            audit
                .record(&Principal::anonymous(), "login", "session", Outcome::Denied)
                .subject(&tried)
                .detail(reason.as_str())
                .send(&state)
                .await?;
            login_form(&state, t, next, form.username, Some(t.login_failed.into()))
        }
        LoginOutcome::Locked { .. } => {
            audit
                .record(&Principal::anonymous(), "login", "session", Outcome::Denied)
                .subject(&tried)
                .detail("locked")
                .send(&state)
                .await?;
            login_form(&state, t, next, form.username, Some(t.locked.into()))
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    let s = match require_session(&principal) {
        Ok(s) => s.clone(),
        Err(r) => return Ok(*r),
    };
    check_csrf(&principal, &form.csrf)?;
    session::delete_by_hash(&state.auth.db, &s.id_hash)
        .await
        .map_err(auth_error)?;
    audit
        .record(&principal, "logout", "session", Outcome::Success)
        .send(&state)
        .await?;
    let mut r = Redirect::to("/login").into_response();
    set_cookie(&mut r, &session::clear_cookie());
    Ok(r)
}

async fn profile_page(
    state: &AppState,
    principal: &Principal,
    t: &'static Texts,
    enrolment: Option<(String, String)>,
    recovery_codes: Vec<String>,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let account = account::by_id(&state.auth.db, &principal.subject)
        .await
        .map_err(auth_error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ""))?;
    page(ProfilePage {
        t,
        user: user_bar(principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        username: account.username,
        national_id: account.national_id,
        organisation: principal.organisation.clone(),
        totp_enabled: account.totp_enabled,
        enrolment,
        recovery_codes,
        message,
        error,
    })
}

async fn profile(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    profile_page(
        &state,
        &principal,
        texts(&q, &headers),
        None,
        vec![],
        None,
        None,
    )
    .await
}

async fn totp_begin(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    check_csrf(&principal, &form.csrf)?;
    let account = account::by_id(&state.auth.db, &principal.subject)
        .await
        .map_err(auth_error)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ""))?;
    if account.totp_enabled && !principal.second_factor {
        // Replacing an enrolled factor needs the factor itself (sign in with it first).
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "second factor required",
        ));
    }
    let enrolment = state
        .auth
        .begin_totp_enrolment(&account)
        .await
        .map_err(auth_error)?;
    profile_page(
        &state,
        &principal,
        texts(&q, &headers),
        Some(enrolment),
        vec![],
        None,
        None,
    )
    .await
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

async fn totp_confirm(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<CodeForm>,
) -> Result<Response, ApiError> {
    let s = match require_session(&principal) {
        Ok(s) => s.clone(),
        Err(r) => return Ok(*r),
    };
    check_csrf(&principal, &form.csrf)?;
    let t = texts(&q, &headers);
    match state
        .auth
        .confirm_totp_enrolment(&principal.subject, &form.code)
        .await
        .map_err(auth_error)?
    {
        Some(codes) => {
            session::mark_second_factor(&state.auth.db, &s.id_hash)
                .await
                .map_err(auth_error)?;
            audit
                .record(&principal, "totp.enrol", "account", Outcome::Success)
                .object(&principal.subject)
                .send(&state)
                .await?;
            profile_page(
                &state,
                &principal,
                t,
                None,
                codes,
                Some(t.totp_on.into()),
                None,
            )
            .await
        }
        None => {
            audit
                .record(&principal, "totp.enrol", "account", Outcome::Failure)
                .object(&principal.subject)
                .send(&state)
                .await?;
            profile_page(
                &state,
                &principal,
                t,
                None,
                vec![],
                None,
                Some(t.login_failed.into()),
            )
            .await
        }
    }
}

/// Administrators change who may use what: the pages need a session opened with a second
/// factor (TOTP, CPS card, Pro Santé Connect), like patient data. The command line
/// (`megalis admin`) is for those with access to the servers themselves.
fn require_admin(p: &Principal) -> Result<(), ApiError> {
    if !(p.is_admin() && p.session.is_some()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Réservé aux administrateurs. / Administrators only.",
        ));
    }
    if !p.second_factor {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "L'administration demande une connexion avec un second facteur : activez-le sur \
             votre page Profil (/profile), puis reconnectez-vous. / Administration requires a \
             sign-in with a second factor: enrol one on your Profile page (/profile), then sign \
             in again.",
        ));
    }
    Ok(())
}

async fn accounts_page(
    state: &AppState,
    principal: &Principal,
    t: &'static Texts,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let accounts = account::list(&state.auth.db).await.map_err(auth_error)?;
    page(AdminAccountsPage {
        t,
        user: user_bar(principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        accounts: accounts
            .into_iter()
            .map(|a| AccountRow {
                username: a.username,
                kind: a.kind.as_str().into(),
                display_name: a.display_name,
                national_id: a.national_id.unwrap_or_default(),
                organisation: a.organisation.unwrap_or_default(),
                roles: a.roles.join(" "),
                totp: a.totp_enabled,
                disabled: a.disabled,
            })
            .collect(),
        message,
        error,
    })
}

async fn admin_accounts(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    require_admin(&principal)?;
    accounts_page(&state, &principal, texts(&q, &headers), None, None).await
}

#[derive(Deserialize)]
struct NewAccountForm {
    #[serde(default)]
    csrf: String,
    username: String,
    kind: String,
    display_name: String,
    national_id: Option<String>,
    organisation: Option<String>,
    roles: Option<String>,
    password: String,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

async fn admin_add_account(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<NewAccountForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    require_admin(&principal)?;
    check_csrf(&principal, &form.csrf)?;
    let t = texts(&q, &headers);
    let kind = AccountKind::parse(&form.kind)
        .ok_or_else(|| ApiError::bad_request("kind: professional, staff or admin"))?;
    let new = NewAccount {
        username: form.username.clone(),
        kind,
        national_id: non_empty(form.national_id),
        organisation: non_empty(form.organisation),
        display_name: form.display_name,
        roles: form
            .roles
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        password: Some(form.password),
    };
    match account::create(&state.auth.db, &new).await {
        Ok(a) => {
            audit
                .record(&principal, "account.create", "account", Outcome::Success)
                .object(&a.username)
                .send(&state)
                .await?;
            accounts_page(
                &state,
                &principal,
                t,
                Some(format!("{} : OK", a.username)),
                None,
            )
            .await
        }
        Err(
            e @ (megalis_auth::AuthError::WeakPassword(_)
            | megalis_auth::AuthError::Invalid(_)
            | megalis_auth::AuthError::Conflict(_)),
        ) => accounts_page(&state, &principal, t, None, Some(e.to_string())).await,
        Err(e) => Err(auth_error(e)),
    }
}

#[derive(Deserialize)]
struct StatusForm {
    #[serde(default)]
    csrf: String,
    username: String,
    disabled: bool,
}

async fn admin_account_status(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<StatusForm>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    require_admin(&principal)?;
    check_csrf(&principal, &form.csrf)?;
    let a = state
        .auth
        .set_account_disabled(&form.username, form.disabled)
        .await
        .map_err(auth_error)?;
    audit
        .record(
            &principal,
            if form.disabled {
                "account.disable"
            } else {
                "account.enable"
            },
            "account",
            Outcome::Success,
        )
        .object(&a.username)
        .send(&state)
        .await?;
    accounts_page(
        &state,
        &principal,
        texts(&q, &headers),
        Some(format!("{} : OK", a.username)),
        None,
    )
    .await
}

async fn grants_page(
    state: &AppState,
    principal: &Principal,
    t: &'static Texts,
    message: Option<String>,
    error: Option<String>,
) -> Result<Response, ApiError> {
    let apps = megalis_auth::grants::applications(&state.auth.db)
        .await
        .map_err(auth_error)?;
    page(AdminGrantsPage {
        t,
        user: user_bar(principal),
        csrf: principal
            .session
            .as_ref()
            .map(|s| s.csrf_token.clone())
            .unwrap_or_default(),
        grants: state
            .auth
            .all_grants()
            .into_iter()
            .map(|g| GrantRow {
                application: g.application,
                kind: g.kind.as_str().into(),
                value: g.value,
            })
            .collect(),
        applications: apps.into_iter().map(|a| a.id).collect(),
        kinds: GrantKind::ALL.iter().map(|k| k.as_str()).collect(),
        message,
        error,
    })
}

async fn admin_grants(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<LangQuery>,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    require_admin(&principal)?;
    grants_page(&state, &principal, texts(&q, &headers), None, None).await
}

#[derive(Deserialize)]
struct GrantForm {
    #[serde(default)]
    csrf: String,
    application: String,
    kind: String,
    #[serde(default)]
    value: String,
}

async fn change_grant(
    state: AppState,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    q: LangQuery,
    form: GrantForm,
    add: bool,
) -> Result<Response, ApiError> {
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    require_admin(&principal)?;
    check_csrf(&principal, &form.csrf)?;
    let t = texts(&q, &headers);
    let kind =
        GrantKind::parse(&form.kind).ok_or_else(|| ApiError::bad_request("unknown rule kind"))?;
    let rule = GrantRule {
        application: form.application.trim().to_string(),
        kind,
        value: form.value.trim().to_string(),
    };
    let rule = state.auth.resolve_grant(&rule).await.map_err(auth_error)?;
    let result = if add {
        state.auth.add_grant(&rule).await
    } else {
        state.auth.remove_grant(&rule).await
    };
    match result {
        Ok(_) => {
            audit
                .record(
                    &principal,
                    if add { "grant.add" } else { "grant.remove" },
                    "application",
                    Outcome::Success,
                )
                .object(&rule.application)
                .detail(&format!("{}={}", rule.kind.as_str(), rule.value))
                .send(&state)
                .await?;
            let done = format!(
                "OK : {} {}={}",
                rule.application,
                rule.kind.as_str(),
                rule.value
            );
            grants_page(&state, &principal, t, Some(done), None).await
        }
        Err(megalis_auth::AuthError::Invalid(m)) => {
            grants_page(&state, &principal, t, None, Some(m)).await
        }
        Err(e) => Err(auth_error(e)),
    }
}

async fn admin_add_grant(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<GrantForm>,
) -> Result<Response, ApiError> {
    change_grant(state, principal, headers, audit, q, form, true).await
}

async fn admin_remove_grant(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    audit: Audit,
    Query(q): Query<LangQuery>,
    Form(form): Form<GrantForm>,
) -> Result<Response, ApiError> {
    change_grant(state, principal, headers, audit, q, form, false).await
}

/// The entry point of an application: the per-application check runs here on every request.
/// Applications are served by the plugin host or live elsewhere (OIDC clients); an allowed user
/// whose application is not deployed on this platform gets a 404.
async fn application(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    axum::extract::Path(application): axum::extract::Path<String>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    // An installed plugin serves its own root, as it serves the rest of its paths: its
    // manifest's routes say who may (the launcher's tiles point here).
    if state
        .plugins
        .as_ref()
        .is_some_and(|host| host.get(&application).is_some())
    {
        return Ok(crate::plugins::serve_plugin(State(state), request).await);
    }
    if let Err(r) = require_session(&principal) {
        return Ok(*r);
    }
    super::auth_glue::require_application(&state, &audit, &principal, &application).await?;
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "L'application {application} n'est pas déployée sur cette plateforme. / The application {application} is not deployed on this platform."
        ),
    ))
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

async fn css() -> Response {
    asset(megalis_portal::CSS, "text/css; charset=utf-8")
}

async fn js() -> Response {
    asset(megalis_portal::JS, "text/javascript; charset=utf-8")
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_local_only() {
        assert_eq!(
            safe_next(Some("/oauth2/authorize?x=1")),
            "/oauth2/authorize?x=1"
        );
        for bad in [
            "https://evil.test/",
            "//evil.test/",
            "/\\evil.test",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
