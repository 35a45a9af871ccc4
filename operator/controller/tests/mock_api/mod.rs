//! `MockApiServer`: an in-memory stand-in for the Kubernetes API server, plugged into a real
//! `kube::Client` through `tower_test::mock::pair` (kube's documented testing approach). It keeps
//! objects per collection and answers the calls the operator makes: get, list with equality
//! label selectors, create, replace with resourceVersion checks, server-side apply, merge
//! patches of status, delete. Faults can be injected per method and path, and whole API groups
//! can be made absent (a cluster without prometheus-operator).

#![allow(dead_code)] // each test binary uses a different subset of the mock

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: String,
}

#[derive(Default)]
struct State {
    /// (collection path, name) → object.
    objects: BTreeMap<(String, String), Value>,
    calls: Vec<Call>,
    faults: Vec<(Method, String, u16)>,
    absent_groups: Vec<String>,
    resource_version: u64,
}

#[derive(Clone, Default)]
pub struct MockApiServer {
    state: Arc<Mutex<State>>,
}

/// Where an object of `api_version` lives: `/api/v1/namespaces/ns/pods` style collection path.
pub fn collection(api_version: &str, namespace: &str, plural: &str) -> String {
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!("{prefix}/namespaces/{namespace}/{plural}")
}

impl MockApiServer {
    /// Starts the mock and returns a client talking to it.
    pub fn start() -> (kube::Client, MockApiServer) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = MockApiServer::default();
        let serving = server.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                let response = serving.answer(request).await;
                respond.send_response(response);
            }
        });
        (kube::Client::new(service, "default"), server)
    }

    pub fn insert(&self, collection: &str, object: Value) {
        let mut state = self.state.lock().unwrap();
        state.resource_version += 1;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(state.resource_version.to_string());
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        state.objects.insert((collection.to_owned(), name), object);
    }

    pub fn get(&self, collection: &str, name: &str) -> Option<Value> {
        self.state
            .lock()
            .unwrap()
            .objects
            .get(&(collection.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn names(&self, collection: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .keys()
            .filter(|(c, _)| c == collection)
            .map(|(_, n)| n.clone())
            .collect()
    }

    pub fn edit(&self, collection: &str, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut state = self.state.lock().unwrap();
        let object = state
            .objects
            .get_mut(&(collection.to_owned(), name.to_owned()))
            .expect("object to edit");
        edit(object);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Answers `status` to every `method` request whose path contains `path`.
    pub fn fail(&self, method: Method, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((method, path.to_owned(), status));
    }

    pub fn heal(&self) {
        self.state.lock().unwrap().faults.clear();
    }

    /// Every path under `/apis/<group>/` answers 404, as when a CRD is not installed.
    pub fn without_group(&self, group: &str) {
        self.state
            .lock()
            .unwrap()
            .absent_groups
            .push(format!("/apis/{group}/"));
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().unwrap_or_default().to_owned();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut state = self.state.lock().unwrap();
        state.calls.push(Call {
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
        });
        if let Some((_, _, code)) = state
            .faults
            .iter()
            .find(|(m, p, _)| *m == parts.method && path.contains(p.as_str()))
        {
            return status(*code, "injected fault");
        }
        if state
            .absent_groups
            .iter()
            .any(|g| path.starts_with(g.as_str()))
        {
            return status(404, "the server could not find the requested resource");
        }
        let Some((collection, name, subresource)) = split(&path) else {
            return status(404, "unsupported path");
        };
        let key = (collection.clone(), name.clone().unwrap_or_default());
        match (parts.method, name) {
            (Method::GET, Some(_)) => match state.objects.get(&key) {
                Some(object) => ok(object.clone()),
                None => status(404, "not found"),
            },
            (Method::GET, None) => {
                let selector = label_selector(&query);
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|((c, _), o)| *c == collection && matches(o, &selector))
                    .map(|(_, o)| o.clone())
                    .collect();
                ok(
                    json!({ "apiVersion": "v1", "kind": "List", "metadata": { "resourceVersion": state.resource_version.to_string() }, "items": items }),
                )
            }
            (Method::POST, None) => {
                let name = body["metadata"]["name"]
                    .as_str()
                    .map(str::to_owned)
                    .or_else(|| {
                        body["metadata"]["generateName"]
                            .as_str()
                            .map(|g| format!("{g}{}", state.resource_version))
                    })
                    .unwrap_or_default();
                let key = (collection, name.clone());
                if state.objects.contains_key(&key) {
                    return status(409, "already exists");
                }
                let mut object = body;
                object["metadata"]["name"] = json!(name);
                let stored = state.store(key, object, None);
                created(stored)
            }
            (Method::PUT, Some(_)) => {
                let Some(current) = state.objects.get(&key) else {
                    return status(404, "not found");
                };
                if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                    return status(409, "the object has been modified");
                }
                let stored = state.store(key, body, None);
                ok(stored)
            }
            (Method::PATCH, Some(_)) if subresource.as_deref() == Some("status") => {
                let Some(current) = state.objects.get(&key).cloned() else {
                    return status(404, "not found");
                };
                let mut object = current;
                merge(&mut object, &body);
                let stored = state.store(key, object, None);
                ok(stored)
            }
            (Method::PATCH, Some(_)) if content_type.starts_with("application/apply-patch") => {
                // Server-side apply by the single field manager: the applied configuration is the
                // whole object; status and server-set metadata are kept.
                let previous = state.objects.get(&key).cloned();
                let stored = state.store(key, body, previous);
                ok(stored)
            }
            (Method::PATCH, Some(_)) => {
                let Some(mut object) = state.objects.get(&key).cloned() else {
                    return status(404, "not found");
                };
                merge(&mut object, &body);
                let stored = state.store(key, object, None);
                ok(stored)
            }
            (Method::DELETE, Some(_)) => match state.objects.remove(&key) {
                Some(object) => ok(object),
                None => status(404, "not found"),
            },
            _ => status(405, "method not allowed"),
        }
    }
}

impl State {
    fn store(
        &mut self,
        key: (String, String),
        mut object: Value,
        previous: Option<Value>,
    ) -> Value {
        self.resource_version += 1;
        let metadata = object["metadata"].as_object_mut().expect("metadata");
        metadata.insert(
            "resourceVersion".into(),
            json!(self.resource_version.to_string()),
        );
        if let Some(previous) = &previous {
            for kept in ["uid", "creationTimestamp"] {
                if let Some(value) = previous["metadata"].get(kept) {
                    metadata.insert(kept.into(), value.clone());
                }
            }
            if let Some(status) = previous.get("status") {
                object["status"] = status.clone();
            }
            let generation = previous["metadata"]["generation"].as_i64().unwrap_or(1);
            let changed = previous.get("spec") != object.get("spec");
            object["metadata"]["generation"] =
                json!(if changed { generation + 1 } else { generation });
        } else if object["metadata"].get("generation").is_none() {
            object["metadata"]["generation"] = json!(1);
        }
        self.objects.insert(key, object.clone());
        object
    }
}

/// `/api/v1/namespaces/ns/plural[/name[/sub]]` → (collection, name, subresource).
fn split(path: &str) -> Option<(String, Option<String>, Option<String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let at = segments.iter().position(|s| *s == "namespaces")?;
    let plural = segments.get(at + 2)?;
    let collection = format!("/{}/{plural}", segments[..at + 2].join("/"));
    Some((
        collection,
        segments.get(at + 3).map(|s| s.to_string()),
        segments.get(at + 4).map(|s| s.to_string()),
    ))
}

fn label_selector(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("labelSelector="))
        .flat_map(|selector| {
            let decoded = selector
                .replace("%3D", "=")
                .replace("%2C", ",")
                .replace("%2F", "/");
            decoded
                .split(',')
                .filter_map(|term| {
                    term.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn matches(object: &Value, selector: &[(String, String)]) -> bool {
    selector
        .iter()
        .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v.as_str()))
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = json!({});
            }
            let map = target.as_object_mut().unwrap();
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(key);
                } else {
                    merge(map.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap()
}

fn ok(body: Value) -> Response<Body> {
    respond(StatusCode::OK, body)
}

fn created(body: Value) -> Response<Body> {
    respond(StatusCode::CREATED, body)
}

fn status(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        404 => "NotFound",
        409 => "Conflict",
        500 => "InternalError",
        _ => "Unknown",
    };
    respond(
        StatusCode::from_u16(code).unwrap(),
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code }),
    )
}
