//! Template plugin: a greeting page and per-user notes in the plugin's store.

use megalis_plugin_sdk::{Error, Params, Request, Response, Router, context, log, store};
use serde::{Deserialize, Serialize};

megalis_plugin_sdk::manifest!("../plugin.toml");

#[derive(Serialize, Deserialize)]
struct Note {
    text: String,
}

fn router() -> Router {
    Router::new()
        .get("/", index)
        .get("/notes", list_notes)
        .post("/notes/{id}", save_note)
}

fn index(_: &Request, _: &Params) -> Result<Response, Error> {
    let greeting = context::config("greeting").unwrap_or_else(|| "Demat".into());
    Ok(Response::html(format!("<h1>{}</h1>", escape(&greeting))))
}

/// Notes live under `notes/{subject}/`, so each user sees only their own.
fn prefix() -> Result<String, Error> {
    let me = context::principal();
    if me.subject.is_empty() {
        return Err(Error::Forbidden("sign in first".into()));
    }
    Ok(format!("notes/{}/", me.subject))
}

fn list_notes(_: &Request, _: &Params) -> Result<Response, Error> {
    let notes: Vec<Note> = store::scan(&prefix()?, None, 100)?
        .into_iter()
        .filter_map(|e| serde_json_slice(&e.value))
        .collect();
    Ok(Response::json(&notes))
}

fn save_note(req: &Request, params: &Params) -> Result<Response, Error> {
    let note: Note = req.json()?;
    let id = params.get("id").unwrap_or_default();
    let value = serde_json_vec(&note)?;
    store::put(&format!("{}{id}", prefix()?), &value, None)?;
    log::info("note saved");
    Ok(Response::text("saved").with_status(201))
}

fn serde_json_slice(bytes: &[u8]) -> Option<Note> {
    megalis_plugin_sdk::json::from_slice(bytes).ok()
}

fn serde_json_vec(note: &Note) -> Result<Vec<u8>, Error> {
    megalis_plugin_sdk::json::to_vec(note).map_err(|e| Error::Internal(e.to_string()))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

megalis_plugin_sdk::export_plugin!(router);
