//! Requests and responses as plain values, converted from and to `wasi:http` resources.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

use crate::Error;

/// Largest request body a handler receives whole; larger bodies are refused with 413 rather
/// than filling the plugin's memory.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An HTTP request. `path` is relative to the plugin (the host removes `/apps/{plugin}`).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn from_wasi(request: IncomingRequest) -> Result<Request, Error> {
        let method = match request.method() {
            Method::Get => "GET".to_owned(),
            Method::Head => "HEAD".to_owned(),
            Method::Post => "POST".to_owned(),
            Method::Put => "PUT".to_owned(),
            Method::Delete => "DELETE".to_owned(),
            Method::Connect => "CONNECT".to_owned(),
            Method::Options => "OPTIONS".to_owned(),
            Method::Trace => "TRACE".to_owned(),
            Method::Patch => "PATCH".to_owned(),
            Method::Other(m) => m,
        };
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".to_owned());
        let (path, query) = match path_with_query.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (path_with_query, None),
        };
        let headers = request.headers().entries();
        let body = read_body(&request)?;
        Ok(Request {
            method,
            path,
            query,
            headers,
            body,
        })
    }

    /// The first value of a header, when it is valid UTF-8. Names are case-insensitive.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The first value of a query parameter (no percent-decoding beyond `+` → space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| v.replace('+', " "))
        })
    }

    /// The body parsed as JSON; 400 when it is not.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| Error::BadRequest(e.to_string()))
    }
}

fn read_body(request: &IncomingRequest) -> Result<Vec<u8>, Error> {
    let body = request
        .consume()
        .map_err(|()| Error::Internal("request body already consumed".into()))?;
    let mut bytes = Vec::new();
    {
        let mut stream = body
            .stream()
            .map_err(|()| Error::Internal("request body stream unavailable".into()))?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match std::io::Read::read(&mut stream, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    if bytes.len() + n > MAX_BODY {
                        return Err(Error::BadRequest("request body too large".into()));
                    }
                    bytes.extend_from_slice(&chunk[..n]);
                }
                Err(e) => return Err(Error::BadRequest(format!("reading the body: {e}"))),
            }
        }
    }
    Ok(bytes)
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), content_type.as_bytes().to_vec())],
            body: body.into(),
        }
    }

    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200, "text/plain; charset=utf-8", body.into())
    }

    /// An HTML fragment; the portal renders it inside its shell (header, navigation, language
    /// switch, footer). A body that starts with `<!DOCTYPE` or `<html` is a whole document and
    /// is sent as it is.
    pub fn html(body: impl Into<String>) -> Response {
        Response::new(200, "text/html; charset=utf-8", body.into())
    }

    /// The page title the portal shell shows (`<title>` and tab), for an HTML fragment.
    pub fn with_title(self, title: &str) -> Response {
        self.with_header("x-megalis-title", title)
    }

    pub fn json<T: serde::Serialize>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200, "application/json", body),
            Err(e) => Error::Internal(e.to_string()).into_response(),
        }
    }

    pub fn with_status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    pub(crate) fn send(self, out: ResponseOutparam) {
        let headers = Fields::new();
        for (name, value) in &self.headers {
            // A header the host refuses (forbidden or malformed) is dropped rather than failing
            // the whole response.
            let _ = headers.append(name, value);
        }
        let response = OutgoingResponse::new(headers);
        let _ = response.set_status_code(self.status);
        let Ok(body) = response.body() else {
            return;
        };
        ResponseOutparam::set(out, Ok(response));
        if let Ok(mut stream) = body.write() {
            let _ = stream.write_all(&self.body);
            let _ = stream.flush();
        }
        let _ = OutgoingBody::finish(body, None);
    }
}
