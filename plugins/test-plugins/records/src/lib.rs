//! Returns, as JSON, what the platform's capabilities answer the caller: the host's tests and
//! the end-to-end tests read these answers to prove that a plugin reaches patient data under
//! the core's access decision, exactly as the caller would through the core.

use megalis_plugin_sdk::consent::{self, Action};
use megalis_plugin_sdk::{
    Error, Params, Request, Response, Router, blobs, directory, events, identity,
};
use serde_json::json;

megalis_plugin_sdk::manifest!("../plugin.toml");

fn router() -> Router {
    Router::new()
        .get("/patient/{id}", patient)
        .get("/public/patient/{id}", patient)
        .get("/resolve", resolve)
        .get("/practitioner/{id}", practitioner)
        .get("/consent/{id}", check)
        .post("/events/{name}", publish)
        .get("/events", poll)
        .post("/blobs", blob_store)
        .get("/blobs/{id}", blob_read)
        .get("/blobs/{id}/info", blob_info)
        .delete("/blobs/{id}", |_, p| {
            let deleted = blobs::delete(p.get("id").unwrap_or_default())?;
            Ok(Response::json(&json!({ "deleted": deleted })))
        })
        .post("/blobs/abandoned", |req, _| {
            // Written, then dropped without `finish`: nothing may be kept.
            let upload = blobs::create("application/octet-stream", None)?;
            upload.write(&req.body)?;
            drop(upload);
            Ok(Response::text("abandoned"))
        })
        .get("/context", |_, _| {
            Ok(Response::json(
                &json!({ "patient": megalis_plugin_sdk::context::patient() }),
            ))
        })
        .get("/", page)
        .get("/page", page)
        .get("/document", |_, _| {
            Ok(Response::html(
                "<!DOCTYPE html><html lang=\"fr\"><title>Seul</title><p id=\"alone\">Seul</p></html>",
            ))
        })
}

fn patient(_: &Request, p: &Params) -> Result<Response, Error> {
    let id = p.get("id").unwrap_or_default();
    let patient = identity::get(id)?;
    Ok(Response::json(&json!({
        "id": patient.id,
        "family": patient.family,
        "given": patient.given,
        "birthDate": patient.birth_date,
        "gender": patient.gender,
        "ins": patient.ins,
        "identifiers": patient.identifiers.iter()
            .map(|i| json!({"system": i.system, "value": i.value}))
            .collect::<Vec<_>>(),
        "mergedInto": patient.merged_into,
    })))
}

fn resolve(req: &Request, _: &Params) -> Result<Response, Error> {
    let system = req.query_param("system").unwrap_or_default();
    let value = req.query_param("value").unwrap_or_default();
    Ok(Response::json(
        &json!({ "id": identity::resolve(&system, &value)? }),
    ))
}

fn practitioner(_: &Request, p: &Params) -> Result<Response, Error> {
    let id = p.get("id").unwrap_or_default();
    match directory::get(id)? {
        None => Err(Error::NotFound),
        Some(d) => Ok(Response::json(&json!({
            "nationalId": d.national_id,
            "family": d.family,
            "given": d.given,
            "profession": d.profession,
            "professionLabel": d.profession_label,
            "specialties": d.specialties,
            "organisations": d.organisations,
        }))),
    }
}

fn check(req: &Request, p: &Params) -> Result<Response, Error> {
    let id = p.get("id").unwrap_or_default();
    let purpose = req.query_param("purpose").unwrap_or_else(|| "care".into());
    let d = consent::check(id, Action::Read, &purpose);
    Ok(Response::json(
        &json!({ "allowed": d.allowed, "reason": d.reason }),
    ))
}

fn publish(req: &Request, p: &Params) -> Result<Response, Error> {
    let name = p.get("name").unwrap_or_default();
    let payload = String::from_utf8(req.body.clone())
        .map_err(|_| Error::BadRequest("the body is not UTF-8".into()))?;
    let patient = req.query_param("patient");
    let id = events::publish(name, &payload, patient.as_deref())?;
    Ok(Response::json(&json!({ "id": id })).with_status(201))
}

fn poll(req: &Request, _: &Params) -> Result<Response, Error> {
    let topic = req
        .query_param("topic")
        .ok_or_else(|| Error::BadRequest("topic is required".into()))?;
    let after = req.query_param("after").and_then(|a| a.parse().ok());
    let found = events::poll(&topic, after, 100)?;
    Ok(Response::json(
        &found
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "topic": e.topic,
                    "payload": e.payload,
                    "patient": e.patient,
                    "publishedAt": e.published_at,
                })
            })
            .collect::<Vec<_>>(),
    ))
}

fn page(_: &Request, _: &Params) -> Result<Response, Error> {
    Ok(
        Response::html("<h1 id=\"records-title\">Dossiers partagés</h1>")
            .with_title("Dossiers partagés"),
    )
}

fn info_json(i: &blobs::BlobInfo) -> serde_json::Value {
    json!({
        "id": i.id,
        "size": i.size,
        "mediaType": i.media_type,
        "sha256": i.sha256,
        "patient": i.patient,
        "createdAt": i.created_at,
    })
}

/// Stores the body in pieces of `piece` bytes (default 64 KiB), so several writes are made.
fn blob_store(req: &Request, _: &Params) -> Result<Response, Error> {
    let piece: usize = req
        .query_param("piece")
        .and_then(|p| p.parse().ok())
        .unwrap_or(64 * 1024);
    let media_type = req
        .header("content-type")
        .unwrap_or("application/octet-stream")
        .to_string();
    let patient = req.query_param("patient");
    let upload = blobs::create(&media_type, patient.as_deref())?;
    for chunk in req.body.chunks(piece.max(1)) {
        upload.write(chunk)?;
    }
    let info = upload.finish()?;
    Ok(Response::json(&info_json(&info)).with_status(201))
}

fn blob_read(_: &Request, p: &Params) -> Result<Response, Error> {
    let id = p.get("id").unwrap_or_default();
    let info = blobs::stat(id)?;
    let content = blobs::read_all(id)?;
    Ok(Response::new(200, &info.media_type, content))
}

fn blob_info(_: &Request, p: &Params) -> Result<Response, Error> {
    Ok(Response::json(&info_json(&blobs::stat(
        p.get("id").unwrap_or_default(),
    )?)))
}

megalis_plugin_sdk::export_plugin!(router);
