//! Plugins' HTML fragments rendered inside the portal shell, so an application looks and
//! navigates like the rest of the portal (header, language switch, skip link, footer) without
//! each plugin copying the portal's markup.
//!
//! A `text/html` answer that is not a whole document (it does not start with `<!DOCTYPE` or
//! `<html`) is a fragment; a plugin that wants its own document writes one. The plugin may name
//! the page with the `x-megalis-title` header, which the host removes.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, header};
use http_body_util::{BodyExt, Limited};
use megalis_portal::{AppPage, Lang, Texts};

use crate::http::AppState;

/// The header a plugin names its page with.
pub const TITLE_HEADER: &str = "x-megalis-title";
/// Fragments larger than this are sent as they are (a plugin page is small; a large HTML
/// answer is a report or an export the browser shows on its own).
const MAX_FRAGMENT: usize = 4 << 20;

/// What the shell needs of the original request, kept before the request goes to the plugin.
pub struct ShellRequest {
    cookie: Option<String>,
    accept_language: Option<String>,
    lang: Option<String>,
}

impl ShellRequest {
    pub fn of(headers: &HeaderMap, query: Option<&str>) -> ShellRequest {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        ShellRequest {
            cookie: text(header::COOKIE),
            accept_language: text(header::ACCEPT_LANGUAGE),
            lang: query.and_then(|q| {
                q.split('&')
                    .find_map(|p| p.strip_prefix("lang=").map(str::to_owned))
            }),
        }
    }
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        })
}

fn is_whole_document(body: &[u8]) -> bool {
    let start: Vec<u8> = body
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take(9)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    start.starts_with(b"<!doctype") || start.starts_with(b"<html")
}

/// The plugin's answer (already marked as the plugin's own, not to be mapped to the platform's
/// error format), with an HTML fragment put inside the portal shell.
pub async fn render(
    state: &AppState,
    plugin: &str,
    shell: ShellRequest,
    response: Response,
) -> Response {
    // UTF-8 (titles are French), which `to_str` would refuse as non-ASCII.
    let title = response
        .headers()
        .get(TITLE_HEADER)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .map(str::to_owned);
    if !is_html(&response) {
        return without_title(response);
    }
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(TITLE_HEADER);
    let bytes = match Limited::new(body, MAX_FRAGMENT).collect().await {
        Ok(b) => b.to_bytes(),
        // Too large or cut short: the body is gone, so say so rather than send half a page.
        Err(e) => {
            tracing::warn!(plugin, error = %e, "plugin HTML answer not wrapped");
            return crate::http::ApiError::new(
                http::StatusCode::BAD_GATEWAY,
                "The application's page could not be read.",
            )
            .into_response();
        }
    };
    if is_whole_document(&bytes) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let principal = match &shell.cookie {
        Some(cookie) => match megalis_auth::session::from_cookie_header(cookie) {
            Some(raw) => state.auth.principal_from_session(raw).await.ok().flatten(),
            None => None,
        },
        None => None,
    };
    let t: &Texts = Texts::of(Lang::negotiate(
        shell.lang.as_deref(),
        shell.accept_language.as_deref(),
    ));
    let page = AppPage {
        t,
        user: principal.as_ref().and_then(crate::http::portal::user_bar),
        app: plugin.to_owned(),
        title: title.unwrap_or_else(|| plugin.to_owned()),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    match crate::http::portal::page(page) {
        Ok(mut wrapped) => {
            // The plugin's status and its own headers stay (a 404 page is still a 404); the
            // length and type are the shell's.
            *wrapped.status_mut() = parts.status;
            for (name, value) in parts.headers.iter() {
                if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
                    wrapped.headers_mut().insert(name.clone(), value.clone());
                }
            }
            // The plugin's page, error statuses included, is not the platform's error.
            crate::http::problem::keep_as_is(&mut wrapped);
            wrapped
        }
        Err(e) => e.into_response(),
    }
}

fn without_title(mut response: Response) -> Response {
    response.headers_mut().remove(TITLE_HEADER);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_documents_are_told_from_fragments() {
        assert!(is_whole_document(b"<!DOCTYPE html><html>"));
        assert!(is_whole_document(b"\n  <!doctype html>"));
        assert!(is_whole_document(b"<HTML lang=fr>"));
        assert!(!is_whole_document(b"<h1>Dialyse</h1>"));
        assert!(!is_whole_document(b""));
        assert!(!is_whole_document(b"<p>html</p>"));
    }

    #[test]
    fn the_language_comes_from_the_query_or_the_browser() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("en-GB"));
        headers.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        let s = ShellRequest::of(&headers, Some("x=1&lang=fr"));
        assert_eq!(s.lang.as_deref(), Some("fr"));
        assert_eq!(s.accept_language.as_deref(), Some("en-GB"));
        assert_eq!(s.cookie.as_deref(), Some("a=b"));
        assert_eq!(ShellRequest::of(&HeaderMap::new(), None).lang, None);
    }
}
