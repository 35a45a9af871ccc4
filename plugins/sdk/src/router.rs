//! A small router: method + path pattern (`/items/{id}`) → handler.

use crate::{Error, Request, Response};

/// Values of the `{name}` segments of the matched pattern.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

pub type Handler = fn(&Request, &Params) -> Result<Response, Error>;

struct Route {
    method: &'static str,
    segments: Vec<&'static str>,
    handler: Handler,
}

#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    pub fn route(mut self, method: &'static str, pattern: &'static str, handler: Handler) -> Self {
        self.routes.push(Route {
            method,
            segments: split(pattern),
            handler,
        });
        self
    }

    pub fn get(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("GET", pattern, handler)
    }

    pub fn post(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("POST", pattern, handler)
    }

    pub fn put(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("PUT", pattern, handler)
    }

    pub fn delete(self, pattern: &'static str, handler: Handler) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Runs the first route matching the request; 404 when no pattern matches the path, 405
    /// when one does for another method.
    pub fn dispatch(&self, request: &Request) -> Response {
        let path = split_owned(&request.path);
        let mut path_matched = false;
        for route in &self.routes {
            let Some(params) = matches(&route.segments, &path) else {
                continue;
            };
            if !route.method.eq_ignore_ascii_case(&request.method) {
                path_matched = true;
                continue;
            }
            return (route.handler)(request, &params).unwrap_or_else(Error::into_response);
        }
        if path_matched {
            Response::text("method not allowed").with_status(405)
        } else {
            Error::NotFound.into_response()
        }
    }
}

fn split(pattern: &'static str) -> Vec<&'static str> {
    pattern.split('/').filter(|s| !s.is_empty()).collect()
}

fn split_owned(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn matches(pattern: &[&str], path: &[String]) -> Option<Params> {
    if pattern.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in pattern.iter().zip(path) {
        match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => params.push((name.to_owned(), s.clone())),
            None if p == s => {}
            None => return None,
        }
    }
    Some(Params(params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            headers: vec![],
            body: vec![],
        }
    }

    fn ok(_: &Request, p: &Params) -> Result<Response, Error> {
        Ok(Response::text(p.get("id").unwrap_or("none")))
    }

    #[test]
    fn dispatch_table() {
        let router = Router::new().get("/", ok).get("/items/{id}", ok);
        let cases = [
            ("GET", "/", 200, "none"),
            ("GET", "/items/42", 200, "42"),
            ("GET", "/items/42/", 200, "42"),
            ("POST", "/items/42", 405, "method not allowed"),
            ("GET", "/items", 404, "not found"),
            ("GET", "/other/1", 404, "not found"),
        ];
        for (method, path, status, body) in cases {
            let r = router.dispatch(&request(method, path));
            assert_eq!(
                (r.status, r.body.as_slice()),
                (status, body.as_bytes()),
                "{method} {path}"
            );
        }
    }
}
