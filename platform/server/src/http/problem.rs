//! The one error mapper: every error response of the platform, whoever produced it (a handler,
//! the router's 404/405, a body-limit or timeout layer, an extractor rejection), is rendered here
//! in the format of its route family:
//! - `/fhir/…`: a FHIR R4 `OperationOutcome` (`application/fhir+json`);
//! - `/oauth2/…`: an RFC 6749 error body (`error`, `error_description`);
//! - a browser (`Accept: text/html`) elsewhere: an HTML page, French first;
//! - everything else: RFC 9457 `application/problem+json`.
//!
//! Each carries the correlation (request) id, also sent as the `x-request-id` header.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::json;

/// An error a handler returns. Rendering is deferred to [`render`], which knows the route family.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Human-readable explanation of this occurrence (never internal details or secrets).
    pub detail: String,
    /// RFC 6749 error code, when the handler knows a more precise one than the status implies.
    pub oauth_error: Option<&'static str>,
    /// FHIRPath of the element at fault (FHIR `OperationOutcome.issue.expression`).
    pub expression: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            oauth_error: None,
            expression: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred; it has been logged with the request id.",
        )
    }
}

/// Marker put on responses that are already in their family's format.
#[derive(Clone, Copy)]
struct Rendered;

/// Marks a response whose error body must reach the client as it is: a plugin's own error
/// (a DICOMweb or FHIR plugin answers errors in its protocol's format, an HTML plugin with its
/// page), which the platform's mapper must not rewrite.
pub fn keep_as_is(response: &mut Response) {
    response.extensions_mut().insert(Rendered);
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Route families, each with its own error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Fhir,
    OAuth,
    Html,
    Problem,
}

impl Family {
    pub fn of(path: &str, headers: &HeaderMap) -> Family {
        let under = |prefix: &str| {
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        if under("/fhir") {
            Family::Fhir
        } else if under("/oauth2") {
            Family::OAuth
        } else if accepts_html(headers) {
            Family::Html
        } else {
            Family::Problem
        }
    }
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn prefers_english(headers: &HeaderMap) -> bool {
    // French first: English only when the browser's first choice is English.
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| first.trim().to_ascii_lowercase().starts_with("en"))
}

/// What the mapper needs to know of the request.
/// Kept for every request but only read for errors, so it must be cheap to build: no copies of
/// the path or headers, only what the error formats need.
pub struct RequestFacts {
    pub family: Family,
    pub english: bool,
    pub uri: http::Uri,
    pub request_id: std::sync::Arc<str>,
}

impl RequestFacts {
    pub fn new(uri: &http::Uri, headers: &HeaderMap, request_id: std::sync::Arc<str>) -> Self {
        RequestFacts {
            family: Family::of(uri.path(), headers),
            english: prefers_english(headers),
            uri: uri.clone(),
            request_id,
        }
    }
}

/// Re-renders an error response in its family's format. Successful responses and responses
/// already rendered pass through untouched.
pub async fn render(facts: &RequestFacts, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<Rendered>().is_some()
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let error = match parts.extensions.get::<ApiError>() {
        Some(e) => e.clone(),
        None => {
            // Produced by a layer or an extractor: keep its short plain-text explanation, if any.
            let is_text = parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/plain"));
            let detail = if is_text {
                match http_body_util::Limited::new(body, 4096).collect().await {
                    Ok(bytes) => String::from_utf8_lossy(&bytes.to_bytes()).into_owned(),
                    Err(_) => String::new(),
                }
            } else {
                String::new()
            };
            ApiError::new(status, detail)
        }
    };
    let mut out = build(facts, &error);
    // Keep headers that matter to the client (Allow on 405, Retry-After on 503…).
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

fn default_detail(status: StatusCode, english: bool) -> String {
    let fr = match status.as_u16() {
        400 => "La requête est invalide.",
        401 => "Une authentification est nécessaire.",
        403 => "Accès refusé.",
        404 => "Cette ressource n'existe pas.",
        405 => "Cette méthode n'est pas autorisée sur cette ressource.",
        408 => "La requête a pris trop de temps.",
        413 => "Le contenu envoyé est trop volumineux.",
        415 => "Ce type de contenu n'est pas accepté.",
        429 => "Trop de requêtes ; réessayez plus tard.",
        503 => "Le service est momentanément indisponible ; réessayez plus tard.",
        504 => "Le traitement a dépassé le délai autorisé.",
        s if s >= 500 => "Une erreur interne est survenue.",
        _ => "La requête n'a pas pu aboutir.",
    };
    let en = match status.as_u16() {
        400 => "The request is invalid.",
        401 => "Authentication is required.",
        403 => "Access denied.",
        404 => "This resource does not exist.",
        405 => "This method is not allowed on this resource.",
        408 => "The request took too long.",
        413 => "The request body is too large.",
        415 => "This content type is not accepted.",
        429 => "Too many requests; try again later.",
        503 => "The service is temporarily unavailable; try again later.",
        504 => "Processing exceeded the allowed time.",
        s if s >= 500 => "An internal error occurred.",
        _ => "The request could not be completed.",
    };
    if english { en } else { fr }.to_string()
}

fn fhir_issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 | 410 => "not-found",
        405 | 415 => "not-supported",
        408 | 504 => "timeout",
        409 | 412 => "conflict",
        413 => "too-costly",
        422 => "processing",
        429 => "throttled",
        503 => "transient",
        _ => "exception",
    }
}

fn oauth_error_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "invalid_client",
        403 => "access_denied",
        503 => "temporarily_unavailable",
        s if s >= 500 => "server_error",
        _ => "invalid_request",
    }
}

fn build(facts: &RequestFacts, error: &ApiError) -> Response {
    let status = error.status;
    // Server-side details of a 5xx never reach the client; the request id links to the log.
    let detail = if error.detail.trim().is_empty() {
        default_detail(status, facts.english)
    } else {
        error.detail.trim().to_string()
    };
    let (content_type, body) = match facts.family {
        Family::Fhir => {
            let mut issue = json!({
                "severity": if status.is_server_error() { "fatal" } else { "error" },
                "code": fhir_issue_code(status),
                "diagnostics": format!("{detail} (request id {})", facts.request_id),
            });
            if let Some(e) = &error.expression {
                issue["expression"] = json!([e]);
            }
            (
                "application/fhir+json",
                json!({"resourceType": "OperationOutcome", "issue": [issue]}).to_string(),
            )
        }
        Family::OAuth => (
            "application/json",
            json!({
                "error": error.oauth_error.unwrap_or_else(|| oauth_error_code(status)),
                "error_description": detail,
                "request_id": &*facts.request_id,
            })
            .to_string(),
        ),
        Family::Html => (
            "text/html; charset=utf-8",
            html_page(status, &detail, &facts.request_id, facts.english),
        ),
        Family::Problem => (
            "application/problem+json",
            json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(),
                "detail": detail,
                "instance": facts.uri.path(),
                "request_id": &*facts.request_id,
            })
            .to_string(),
        ),
    };
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.extensions_mut().insert(Rendered);
    response
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(status: StatusCode, detail: &str, request_id: &str, english: bool) -> String {
    let (lang, title, id_label, home) = if english {
        ("en", "Error", "Correlation id", "Back to the home page")
    } else {
        (
            "fr",
            "Erreur",
            "Identifiant de corrélation",
            "Retour à l'accueil",
        )
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} {code} — Megalis</title></head>\n<body>\n<main>\n\
         <h1>{title} {code}</h1>\n<p>{detail}</p>\n\
         <p>{id_label} : <code>{rid}</code></p>\n<p><a href=\"/\">{home}</a></p>\n\
         </main>\n</body>\n</html>\n",
        code = status.as_u16(),
        detail = escape_html(detail),
        rid = escape_html(request_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        h
    }

    #[test]
    fn families_follow_path_then_accept() {
        let cases = [
            ("/fhir/Patient/1", "text/html", Family::Fhir),
            ("/fhir", "*/*", Family::Fhir),
            ("/fhirish", "*/*", Family::Problem),
            ("/oauth2/token", "text/html", Family::OAuth),
            ("/portal", "text/html,application/xhtml+xml", Family::Html),
            ("/api/x", "application/json", Family::Problem),
        ];
        for (path, accept, expected) in cases {
            assert_eq!(
                Family::of(path, &headers(accept)),
                expected,
                "{path} {accept}"
            );
        }
    }

    async fn body_json(r: Response) -> serde_json::Value {
        let bytes = r.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn each_family_gets_its_format_and_the_request_id() {
        let err = || ApiError::new(StatusCode::NOT_FOUND, "").into_response();

        let facts = RequestFacts::new(
            &"/fhir/Patient/x".parse().unwrap(),
            &headers("*/*"),
            "rid-1".into(),
        );
        let r = render(&facts, err()).await;
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/fhir+json");
        let v = body_json(r).await;
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["code"], "not-found");
        assert!(
            v["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .contains("rid-1")
        );

        let facts = RequestFacts::new(
            &"/oauth2/token".parse().unwrap(),
            &headers("*/*"),
            "rid-2".into(),
        );
        let v = body_json(render(&facts, err()).await).await;
        assert_eq!(v["error"], "invalid_request");
        assert_eq!(v["request_id"], "rid-2");

        let facts = RequestFacts::new(
            &"/nowhere".parse().unwrap(),
            &headers("application/json"),
            "rid-3".into(),
        );
        let r = render(&facts, err()).await;
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let v = body_json(r).await;
        assert_eq!(v["status"], 404);
        assert_eq!(v["instance"], "/nowhere");
        assert_eq!(v["request_id"], "rid-3");

        let facts = RequestFacts::new(
            &"/nowhere".parse().unwrap(),
            &headers("text/html"),
            "<rid-4>".into(),
        );
        let r = render(&facts, err()).await;
        let html =
            String::from_utf8(r.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        assert!(
            html.contains("lang=\"fr\"") && html.contains("Erreur 404"),
            "{html}"
        );
        assert!(
            html.contains("&lt;rid-4&gt;"),
            "request id is escaped: {html}"
        );
    }

    #[tokio::test]
    async fn plain_text_rejections_keep_their_explanation() {
        let mut r = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded").into_response();
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        let facts = RequestFacts::new(&"/x".parse().unwrap(), &HeaderMap::new(), "rid".into());
        let r = render(&facts, r).await;
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::ALLOW], "GET");
        let v = body_json(r).await;
        assert_eq!(v["detail"], "length limit exceeded");
    }

    #[tokio::test]
    async fn successes_pass_through() {
        let r = (StatusCode::OK, "fine").into_response();
        let facts = RequestFacts::new(&"/fhir/x".parse().unwrap(), &HeaderMap::new(), "rid".into());
        let r = render(&facts, r).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers().get(header::CACHE_CONTROL).is_none());
    }
}
