//! Each route probes one property of the host; the host's tests call them.

use std::sync::atomic::{AtomicU64, Ordering};

use megalis_plugin_sdk::{
    Error, Params, PrincipalKind, Request, Response, Router, context, log, store,
};
use serde_json::json;

megalis_plugin_sdk::manifest!("../plugin.toml");

/// Counts requests served by this instance. The host gives every request a fresh instance, so a
/// request always sees 1.
static SERVED: AtomicU64 = AtomicU64::new(0);

fn router() -> Router {
    SERVED.fetch_add(1, Ordering::SeqCst);
    Router::new()
        .get("/hello", |_, _| Ok(Response::text("hello")))
        .get("/headers", headers)
        .post("/headers", headers)
        .get("/whoami", whoami)
        .get("/loop", |_, _| {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        })
        .get("/alloc/{mib}", alloc)
        .get("/trap", |_, _| {
            // State written before the trap must not be seen by the next request.
            SERVED.fetch_add(1000, Ordering::SeqCst);
            panic!("the probe traps on purpose")
        })
        .get("/sleep/{ms}", |_, p| {
            // Waits on the host's clock (wasi:clocks), holding its instance without using CPU.
            let ms: u64 = p.get("ms").and_then(|m| m.parse().ok()).unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(Response::text("slept"))
        })
        .get("/served", |_, _| {
            Ok(Response::text(SERVED.load(Ordering::SeqCst).to_string()))
        })
        .get("/fs", fs)
        .get("/env", |_, _| {
            Ok(Response::json(&json!({
                "vars": std::env::vars().collect::<Vec<_>>(),
                "args": std::env::args().collect::<Vec<_>>(),
            })))
        })
        .get("/net", net)
        .get("/store/{key}", store_get)
        .put("/store/{key}", store_put)
        .get("/scan/{prefix}", store_scan)
        .get("/log", |_, _| {
            log::info("probe says hello to the host log");
            println!("probe writes to stdout");
            eprintln!("probe writes to stderr");
            Ok(Response::text("logged"))
        })
        .get("/private/hello", |_, _| Ok(Response::text("private")))
        .post("/private/hello", |_, _| Ok(Response::text("private post")))
        .get("/private/whoami", whoami)
        .get("/api/hello", |_, _| Ok(Response::text("api")))
        .get("/api/whoami", whoami)
        .post("/channels/join", channel_join)
        .post("/channels/shout", channel_shout)
}

/// The host asks before admitting a member to a room: rooms named `ok-…` are open, others
/// refused, so the host's tests can tell that the plugin decides. The member's principal is in
/// context; the answer's body is ignored by the host.
fn channel_join(req: &Request, _: &Params) -> Result<Response, Error> {
    let join: serde_json::Value = req.json()?;
    let field = |name: &str| join[name].as_str().unwrap_or_default().to_owned();
    let room = field("room");
    if room.starts_with("ok-") && !field("member").is_empty() {
        log::info(&format!(
            "{} joins {room} on {}",
            context::principal().subject,
            field("channel")
        ));
        Ok(Response::text("welcome"))
    } else {
        Err(Error::Forbidden(format!("room {room} is closed")))
    }
}

/// `deliver = "plugin"`: the room gets the message upper-cased and signed by its sender;
/// `quiet` is swallowed (nothing sent) and `refuse` refused (the sender is told).
fn channel_shout(req: &Request, _: &Params) -> Result<Response, Error> {
    let text = String::from_utf8_lossy(&req.body);
    match &*text {
        "quiet" => Ok(Response::text("")),
        "refuse" => Err(Error::BadRequest("refused".into())),
        _ => Ok(Response::text(format!(
            "{}@{}: {}",
            req.header("x-megalis-member").unwrap_or("?"),
            req.header("x-megalis-room").unwrap_or("?"),
            text.to_uppercase()
        ))),
    }
}

fn headers(req: &Request, _: &Params) -> Result<Response, Error> {
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    Ok(Response::json(&json!({
        "method": req.method,
        "path": req.path,
        "query": req.query,
        "headers": headers,
        "body": String::from_utf8_lossy(&req.body),
    })))
}

fn whoami(_: &Request, _: &Params) -> Result<Response, Error> {
    let p = context::principal();
    Ok(Response::json(&json!({
        "kind": match p.kind {
            PrincipalKind::User => "user",
            PrincipalKind::System => "system",
            PrincipalKind::PatientLink => "patient-link",
            PrincipalKind::Anonymous => "anonymous",
        },
        "subject": p.subject,
        "national_id": p.national_id,
        "profession": p.profession,
        "organisation": p.organisation,
        "roles": p.roles,
        "plugin": context::plugin_id(),
        "request_id": context::request_id(),
        "patient": context::patient(),
        "greeting": context::config("greeting"),
    })))
}

fn alloc(_: &Request, params: &Params) -> Result<Response, Error> {
    let mib: usize = params
        .get("mib")
        .and_then(|m| m.parse().ok())
        .ok_or_else(|| Error::BadRequest("mib must be a number".into()))?;
    let mut blocks = Vec::new();
    for _ in 0..mib {
        // Touch every page so the memory is really used.
        blocks.push(vec![1u8; 1024 * 1024]);
    }
    let total: usize = blocks.iter().map(|b| b.len()).sum();
    Ok(Response::text(format!("allocated {total} bytes")))
}

fn fs(_: &Request, _: &Params) -> Result<Response, Error> {
    let attempts = ["/", "/etc/passwd", ".", "/proc/self/environ"];
    let results: Vec<_> = attempts
        .iter()
        .map(|p| {
            let read = std::fs::read(p).map(|b| b.len());
            let list = std::fs::read_dir(p).map(|d| d.count());
            json!({
                "path": p,
                "read": read.map_err(|e| e.to_string()),
                "list": list.map_err(|e| e.to_string()),
            })
        })
        .collect();
    let write = std::fs::write("/tmp/probe", b"x").map_err(|e| e.to_string());
    Ok(Response::json(
        &json!({ "attempts": results, "write": write }),
    ))
}

fn net(_: &Request, _: &Params) -> Result<Response, Error> {
    let tcp = std::net::TcpStream::connect("127.0.0.1:5432").map(|_| ());
    let dns = std::net::ToSocketAddrs::to_socket_addrs("example.org:80").map(|a| a.count());
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").map(|_| ());
    Ok(Response::json(&json!({
        "tcp": tcp.map_err(|e| e.to_string()),
        "dns": dns.map_err(|e| e.to_string()),
        "udp": udp.map_err(|e| e.to_string()),
    })))
}

fn store_get(req: &Request, params: &Params) -> Result<Response, Error> {
    let key = params.get("key").unwrap_or_default();
    let _ = req;
    match store::get(key)? {
        Some(entry) => Ok(Response::new(200, "application/octet-stream", entry.value)
            .with_header("x-patient", entry.patient.as_deref().unwrap_or(""))),
        None => Err(Error::NotFound),
    }
}

fn store_put(req: &Request, params: &Params) -> Result<Response, Error> {
    let key = params.get("key").unwrap_or_default();
    let patient = req.query_param("patient");
    store::put(key, &req.body, patient.as_deref())?;
    Ok(Response::text("stored").with_status(201))
}

fn store_scan(_: &Request, params: &Params) -> Result<Response, Error> {
    let prefix = params.get("prefix").unwrap_or_default();
    let keys: Vec<String> = store::scan(prefix, None, 100)?
        .into_iter()
        .map(|e| e.key)
        .collect();
    Ok(Response::json(&keys))
}

megalis_plugin_sdk::export_plugin!(router);
