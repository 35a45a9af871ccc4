//! The OpenID Provider's HTTP endpoints: discovery, JWKS, authorization, token, userinfo,
//! introspection (RFC 7662), revocation (RFC 7009) and RP-initiated logout. Protocol logic is in
//! `megalis_auth::Auth`; this module parses requests, authenticates clients, audits and maps
//! errors (`/oauth2/…` errors are rendered as RFC 6749 bodies by the error mapper).

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};

use super::routes::Route;
use base64::Engine;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use megalis_audit::Outcome;
use megalis_auth::oidc::Client;
use megalis_auth::principal::PresentedCertificate;
use megalis_auth::service::{AuthorizeError, AuthorizeRequest, TokenRequest};
use megalis_auth::{AuthError, Principal};
use serde::Deserialize;

use super::auth_glue::{Audit, auth_error};
use super::{ApiError, AppState};

pub fn routes() -> Vec<Route> {
    vec![
        Route::open(
            "/.well-known/openid-configuration",
            &["GET"],
            get(discovery),
        ),
        Route::open(
            "/.well-known/oauth-authorization-server",
            &["GET"],
            get(discovery),
        ),
        Route::open("/oauth2/jwks", &["GET"], get(jwks)),
        Route::open("/oauth2/authorize", &["GET"], get(authorize)),
        Route::open("/oauth2/token", &["POST"], post(token)),
        Route::open(
            "/oauth2/userinfo",
            &["GET", "POST"],
            get(userinfo).post(userinfo),
        ),
        Route::open("/oauth2/introspect", &["POST"], post(introspect)),
        Route::open("/oauth2/revoke", &["POST"], post(revoke)),
        Route::open("/oauth2/logout", &["GET"], get(logout)),
    ]
}

/// The endpoints of the mutual-TLS listener (RFC 8705 `mtls_endpoint_aliases`): clients
/// authenticate with their certificate and get, and use, tokens bound to it.
pub fn mtls_routes() -> Router<AppState> {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/userinfo", get(userinfo).post(userinfo))
        .route("/oauth2/introspect", post(introspect))
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn discovery(State(state): State<AppState>) -> Response {
    Json(state.auth.discovery()).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut r = Json(state.auth.jwks()).into_response();
    // Short caching: a rotated key must reach relying parties quickly.
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `/oauth2/authorize`: needs a portal session; without one the browser goes to the login page
/// and comes back here.
async fn authorize(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    uri: http::Uri,
    Query(req): Query<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    if !principal.is_authenticated() || principal.session.is_none() {
        let next = uri
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("/oauth2/authorize");
        let target = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("next", next)
            .finish();
        return Ok(Redirect::to(&format!("/login?{target}")).into_response());
    }
    let client_id = req.client_id.clone().unwrap_or_default();
    match state.auth.authorize(&req, &principal).await {
        Ok(location) => {
            audit
                .record(&principal, "sso.authorize", "application", Outcome::Success)
                .object(&client_id)
                .send(&state)
                .await?;
            Ok(Redirect::to(&location).into_response())
        }
        Err(AuthorizeError::Page(detail)) => {
            audit
                .record(&principal, "sso.authorize", "application", Outcome::Failure)
                .object(&client_id)
                .detail(&detail)
                .send(&state)
                .await?;
            Err(ApiError::bad_request(detail))
        }
        Err(AuthorizeError::Redirect { location, code }) => {
            let outcome = if code == "access_denied" {
                Outcome::Denied
            } else {
                Outcome::Failure
            };
            audit
                .record(&principal, "sso.authorize", "application", outcome)
                .object(&client_id)
                .detail(code)
                .send(&state)
                .await?;
            Ok(Redirect::to(&location).into_response())
        }
        Err(AuthorizeError::Internal(e)) => Err(auth_error(e)),
    }
}

#[derive(Deserialize, Default)]
struct ClientForm {
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Client authentication: HTTP Basic (RFC 6749 §2.3.1, each part form-urlencoded) or the
/// `client_id`/`client_secret` form fields.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &ClientForm,
    presented: Option<&PresentedCertificate>,
) -> Result<Client, ApiError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let decode = |x: &str| {
                url::form_urlencoded::parse(format!("x={x}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    let (id, secret) = match (basic, &form.client_id, &form.client_secret) {
        (Some(pair), _, _) => pair,
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        // RFC 8705 self_signed_tls_client_auth: the client id, and the certificate of the
        // mutual-TLS connection as the credential.
        (None, Some(id), None) if presented.is_some() => {
            let thumbprint = &presented.expect("checked").0;
            return state
                .auth
                .authenticate_client_by_certificate(id, thumbprint)
                .await
                .map_err(auth_error);
        }
        _ => {
            let mut e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "client authentication is required",
            );
            e.oauth_error = Some("invalid_client");
            return Err(e);
        }
    };
    state
        .auth
        .authenticate_client(&id, &secret)
        .await
        .map_err(auth_error)
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    refresh_token: Option<String>,
    scope: Option<String>,
    #[serde(flatten)]
    client: ClientForm,
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    audit: Audit,
    presented: Option<Extension<PresentedCertificate>>,
    Form(form): Form<TokenForm>,
) -> Result<Response, ApiError> {
    let presented = presented.map(|Extension(p)| p);
    let client = authenticate_client(&state, &headers, &form.client, presented.as_ref()).await?;
    let req = TokenRequest {
        grant_type: form.grant_type.unwrap_or_default(),
        code: form.code,
        redirect_uri: form.redirect_uri,
        code_verifier: form.code_verifier,
        refresh_token: form.refresh_token,
        scope: form.scope,
    };
    let thumbprint = presented.as_ref().map(|p| p.0.as_str());
    match state.auth.token_presented(&client, &req, thumbprint).await {
        Ok(t) => Ok(no_store(Json(t).into_response())),
        Err(e) => {
            // Replays and reuse are security events worth a record; other errors are noise.
            if let AuthError::OAuth {
                code: "invalid_grant",
                description,
            } = &e
            {
                audit
                    .record(
                        &Principal::anonymous(),
                        "oauth.token",
                        "client",
                        Outcome::Failure,
                    )
                    .subject(&client.id)
                    .object(&client.id)
                    .detail(description)
                    .send(&state)
                    .await?;
            }
            Err(auth_error(e))
        }
    }
}

async fn userinfo(
    principal: Principal,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    // Only bearer tokens with the openid scope (a portal session is not an OAuth client).
    if principal.client_id.is_none() || !principal.scopes.iter().any(|s| s == "openid") {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a bearer token with the openid scope is required",
        )
        .into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
        return Ok(r);
    }
    Ok(no_store(
        Json(state.auth.user_claims(&principal)).into_response(),
    ))
}

#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
    #[serde(flatten)]
    client: ClientForm,
}

async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    presented: Option<Extension<PresentedCertificate>>,
    Form(form): Form<TokenParam>,
) -> Result<Response, ApiError> {
    let presented = presented.map(|Extension(p)| p);
    let client = authenticate_client(&state, &headers, &form.client, presented.as_ref()).await?;
    let token = form
        .token
        .ok_or_else(|| ApiError::bad_request("token is missing"))?;
    let body = state
        .auth
        .introspect(&client, &token)
        .await
        .map_err(auth_error)?;
    Ok(no_store(Json(body).into_response()))
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    audit: Audit,
    Form(form): Form<TokenParam>,
) -> Result<Response, ApiError> {
    let client = authenticate_client(&state, &headers, &form.client, None).await?;
    let token = form
        .token
        .ok_or_else(|| ApiError::bad_request("token is missing"))?;
    state
        .auth
        .revoke_token(&client, &token)
        .await
        .map_err(auth_error)?;
    audit
        .record(
            &Principal::anonymous(),
            "oauth.revoke",
            "token",
            Outcome::Success,
        )
        .subject(&client.id)
        .send(&state)
        .await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// RP-initiated logout: ends the portal session, then returns to the application if its
/// `post_logout_redirect_uri` is registered (exact match), else to the login page.
async fn logout(
    State(state): State<AppState>,
    principal: Principal,
    audit: Audit,
    Query(params): Query<LogoutParams>,
) -> Result<Response, ApiError> {
    if let Some(s) = &principal.session {
        megalis_auth::session::delete_by_hash(&state.auth.db, &s.id_hash)
            .await
            .map_err(auth_error)?;
        audit
            .record(&principal, "logout", "session", Outcome::Success)
            .detail("rp-initiated")
            .send(&state)
            .await?;
    }
    let target = state
        .auth
        .logout_redirect(
            params.id_token_hint.as_deref(),
            params.post_logout_redirect_uri.as_deref(),
            params.state.as_deref(),
        )
        .await
        .unwrap_or(None)
        .unwrap_or_else(|| "/login".to_string());
    let mut r = Redirect::to(&target).into_response();
    if let Ok(v) = HeaderValue::from_str(&megalis_auth::session::clear_cookie()) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}
