//! A plugin built against `megalis:platform@0.1.0`, as published: it stores and reads back a
//! value and names itself, so the host's test sees its 0.1.0 imports served by a newer host.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wit_bindgen::generate!({
    path: "wit",
    world: "megalis:platform/imports",
});

use megalis::platform::{context, store};

// The manifest in its custom section, as the SDK's `manifest!` does (the SDK itself is not
// used: its bindings are of the current version).
#[used]
#[unsafe(link_section = "megalis-plugin-manifest")]
static MANIFEST: [u8; include_bytes!("../plugin.toml").len()] = *include_bytes!("../plugin.toml");

struct Legacy;

impl wasip2::exports::http::incoming_handler::Guest for Legacy {
    fn handle(_request: IncomingRequest, out: ResponseOutparam) {
        let text = match store::put("greeting", b"kenavo", None).and_then(|()| store::get("greeting")) {
            Ok(Some(entry)) => format!(
                "{} read {}",
                context::plugin_id(),
                String::from_utf8_lossy(&entry.value)
            ),
            Ok(None) => "nothing stored".to_owned(),
            Err(e) => format!("store error: {e:?}"),
        };
        let headers = Fields::from_list(&[(
            "content-type".to_owned(),
            b"text/plain; charset=utf-8".to_vec(),
        )])
        .expect("a valid header");
        let response = OutgoingResponse::new(headers);
        let body = response.body().expect("body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let mut stream = body.write().expect("stream is taken once");
        stream.write_all(text.as_bytes()).expect("write body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finish body");
    }
}

wasip2::http::proxy::export!(Legacy);
