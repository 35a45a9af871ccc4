//! The guest-side SDK for Megalis plugins.
//!
//! A plugin is a WebAssembly component (`cargo build --target wasm32-wasip2 --release`) that
//! exports `wasi:http/incoming-handler`. This crate gives it:
//! - [`Request`] and [`Response`] (text, HTML, JSON) instead of raw `wasi:http` resources,
//! - a small [`Router`] with `{param}` path segments,
//! - typed wrappers over the platform capabilities ([`context`], [`store`], [`consent`],
//!   [`audit`], [`log`], [`identity`], [`directory`], [`events`], [`blobs`]); a plugin only
//!   imports the capabilities it calls,
//! - [`manifest!`] to embed `plugin.toml` in the component, so the manifest is covered by the
//!   module's SHA-256 digest,
//! - [`export_plugin!`] to export a router as the component's HTTP handler.
//!
//! ```ignore
//! use megalis_plugin_sdk::{Request, Response, Router, Error};
//! megalis_plugin_sdk::manifest!("../plugin.toml");
//! fn router() -> Router {
//!     Router::new().get("/", |_req| Ok(Response::html("<p>Degemer mat</p>")))
//! }
//! megalis_plugin_sdk::export_plugin!(router);
//! ```

mod http;
mod router;

pub use http::{Request, Response};
pub use router::{Handler, Params, Router};
/// JSON (de)serialisation, re-exported so plugins need no extra dependency.
pub use serde_json as json;
#[doc(hidden)]
pub use wasip2;

/// Bindings generated from `plugins/wit` (package `megalis:platform@0.1.1`).
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "megalis:platform/imports",
    });
}

pub use bindings::megalis::platform::types::{Principal, PrincipalKind};

/// Errors a handler returns; each becomes an HTTP response with a matching status.
#[derive(Debug)]
pub enum Error {
    /// 400 with the message.
    BadRequest(String),
    /// 403 with the message (for example the platform's access decision refused).
    Forbidden(String),
    /// 404.
    NotFound,
    /// 503: a platform service is down; the client may retry.
    Unavailable,
    /// 413: a size limit of the platform (a value, a blob) was exceeded.
    QuotaExceeded,
    /// 500 with the message (logged by the host, shown in the body).
    Internal(String),
}

impl From<bindings::megalis::platform::types::CapError> for Error {
    fn from(e: bindings::megalis::platform::types::CapError) -> Self {
        use bindings::megalis::platform::types::CapError;
        match e {
            CapError::Denied(why) => Error::Forbidden(why),
            CapError::NotFound => Error::NotFound,
            CapError::Invalid(why) => Error::BadRequest(why),
            CapError::Unavailable => Error::Unavailable,
            CapError::QuotaExceeded => Error::QuotaExceeded,
        }
    }
}

impl Error {
    pub fn into_response(self) -> Response {
        match self {
            Error::BadRequest(m) => Response::text(m).with_status(400),
            Error::Forbidden(m) => Response::text(m).with_status(403),
            Error::NotFound => Response::text("not found").with_status(404),
            Error::Unavailable => Response::text("service unavailable").with_status(503),
            Error::QuotaExceeded => Response::text("size limit exceeded").with_status(413),
            Error::Internal(m) => Response::text(m).with_status(500),
        }
    }
}

/// The current request as the host established it.
pub mod context {
    use crate::bindings::megalis::platform::context as wit;
    pub use crate::{Principal, PrincipalKind};

    /// The caller (`anonymous` on public routes).
    pub fn principal() -> Principal {
        wit::current()
    }
    /// The regional patient id in context, if any.
    pub fn patient() -> Option<String> {
        wit::patient()
    }
    /// The correlation id of this request.
    pub fn request_id() -> String {
        wit::request_id()
    }
    /// This plugin's id.
    pub fn plugin_id() -> String {
        wit::plugin_id()
    }
    /// A value of the operator's `[plugins.config]` table.
    pub fn config(key: &str) -> Option<String> {
        wit::config(key)
    }
}

/// The plugin's private key-value store (namespaced by the host).
pub mod store {
    use crate::Error;
    use crate::bindings::megalis::platform::store as wit;
    pub use wit::Entry;

    pub fn get(key: &str) -> Result<Option<Entry>, Error> {
        Ok(wit::get(key)?)
    }
    /// Stores `value`; `patient` marks the entry as patient data, which the host then protects
    /// with the access decision and the audit trail.
    pub fn put(key: &str, value: &[u8], patient: Option<&str>) -> Result<(), Error> {
        Ok(wit::put(key, value, patient)?)
    }
    pub fn delete(key: &str) -> Result<bool, Error> {
        Ok(wit::delete(key)?)
    }
    pub fn scan(prefix: &str, start_after: Option<&str>, limit: u32) -> Result<Vec<Entry>, Error> {
        Ok(wit::scan(prefix, start_after, limit)?)
    }
}

/// The core's access decision.
pub mod consent {
    use crate::bindings::megalis::platform::consent as wit;
    pub use wit::{Action, Decision};

    pub fn check(patient: &str, action: Action, purpose: &str) -> Decision {
        wit::check(patient, action, purpose)
    }
}

/// Domain events recorded in the core audit trail.
pub mod audit {
    use crate::Error;
    use crate::bindings::megalis::platform::audit as wit;
    pub use wit::Event;

    pub fn emit(event: &Event) -> Result<(), Error> {
        Ok(wit::emit(event)?)
    }
}

/// The regional identity index. Every answer naming a patient went through the core's access
/// decision and is in the patient's access log.
pub mod identity {
    use crate::Error;
    use crate::bindings::megalis::platform::identity as wit;
    pub use wit::{Identifier, Patient};

    /// The patient with this regional id (`Error::NotFound` when the index has none,
    /// `Error::Forbidden` when the caller may not see them).
    pub fn get(id: &str) -> Result<Patient, Error> {
        Ok(wit::get(id)?)
    }
    /// The regional id of a hospital's local identifier (`system`: its assigning authority OID).
    pub fn resolve(system: &str, value: &str) -> Result<Option<String>, Error> {
        Ok(wit::resolve(system, value)?)
    }
}

/// The directory of health professionals (RPPS): active professionals only.
pub mod directory {
    use crate::Error;
    use crate::bindings::megalis::platform::directory as wit;
    pub use wit::Practitioner;

    pub fn get(national_id: &str) -> Result<Option<Practitioner>, Error> {
        Ok(wit::get(national_id)?)
    }
}

/// The platform's event log: the core's events the manifest subscribes to, and this plugin's.
pub mod events {
    use crate::Error;
    use crate::bindings::megalis::platform::events as wit;
    pub use wit::Event;

    /// A document was shared (payload: `document`, `type`, `replaces`).
    pub const DOCUMENT_SHARED: &str = "core.document.shared";
    /// Two patients were merged (payload: `merge`, `survivor`, `merged`).
    pub const PATIENT_MERGED: &str = "core.patient.merged";
    /// A merge was undone (payload: `merge`, `survivor`, `restored`).
    pub const PATIENT_UNMERGED: &str = "core.patient.unmerged";

    /// Publishes JSON `payload` on this plugin's topic `name` (seen as `plugin.<id>.<name>`).
    pub fn publish(name: &str, payload: &str, patient: Option<&str>) -> Result<u64, Error> {
        Ok(wit::publish(name, payload, patient)?)
    }
    /// Events of `topic` after the id `after`, oldest first.
    pub fn poll(topic: &str, after: Option<u64>, limit: u32) -> Result<Vec<Event>, Error> {
        Ok(wit::poll(topic, after, limit)?)
    }
}

/// Large content private to the plugin, written and read in pieces.
pub mod blobs {
    use crate::Error;
    use crate::bindings::megalis::platform::blobs as wit;
    pub use wit::{BlobInfo, Download, Upload};

    /// The largest piece the host accepts or returns at once.
    pub const PIECE: usize = 1 << 20;

    /// Starts a blob; write pieces with [`Upload::write`], then [`Upload::finish`]. Dropping it
    /// before `finish` keeps nothing.
    pub fn create(media_type: &str, patient: Option<&str>) -> Result<Upload, Error> {
        Ok(wit::create(media_type, patient)?)
    }
    /// Stores `content` (in pieces of [`PIECE`]).
    pub fn store(media_type: &str, content: &[u8], patient: Option<&str>) -> Result<BlobInfo, Error> {
        let upload = create(media_type, patient)?;
        for piece in content.chunks(PIECE) {
            upload.write(piece)?;
        }
        Ok(upload.finish()?)
    }
    pub fn stat(id: &str) -> Result<BlobInfo, Error> {
        Ok(wit::stat(id)?)
    }
    /// Reads from the start; call [`Download::read`] until it returns an empty piece.
    pub fn open(id: &str) -> Result<Download, Error> {
        Ok(wit::open(id)?)
    }
    /// The whole content (mind the plugin's memory limit for large blobs: prefer [`open`]).
    pub fn read_all(id: &str) -> Result<Vec<u8>, Error> {
        let download = open(id)?;
        let mut content = Vec::new();
        loop {
            let piece = download.read(PIECE as u32)?;
            if piece.is_empty() {
                return Ok(content);
            }
            content.extend_from_slice(&piece);
        }
    }
    pub fn delete(id: &str) -> Result<bool, Error> {
        Ok(wit::delete(id)?)
    }
}

/// Logging into the host's log, tagged with the plugin and request ids.
pub mod log {
    use crate::bindings::megalis::platform::logging::{Level, log};

    pub fn debug(message: &str) {
        log(Level::Debug, message)
    }
    pub fn info(message: &str) {
        log(Level::Info, message)
    }
    pub fn warn(message: &str) {
        log(Level::Warn, message)
    }
    pub fn error(message: &str) {
        log(Level::Error, message)
    }
}

/// Embeds the plugin manifest (`plugin.toml`) in a custom section of the component, where the
/// host and `megalis plugin check` read it. The path is relative to the calling source file.
#[macro_export]
macro_rules! manifest {
    ($path:literal) => {
        #[used]
        #[unsafe(link_section = "megalis-plugin-manifest")]
        static __MEGALIS_PLUGIN_MANIFEST: [u8; include_bytes!($path).len()] =
            *include_bytes!($path);
    };
}

/// Exports `$router` (a `fn() -> Router`) as the component's `wasi:http/incoming-handler`.
#[macro_export]
macro_rules! export_plugin {
    ($router:path) => {
        struct __MegalisPlugin;
        impl $crate::wasip2::exports::http::incoming_handler::Guest for __MegalisPlugin {
            fn handle(
                request: $crate::wasip2::http::types::IncomingRequest,
                out: $crate::wasip2::http::types::ResponseOutparam,
            ) {
                $crate::__serve(&$router(), request, out)
            }
        }
        $crate::wasip2::http::proxy::export!(__MegalisPlugin);
    };
}

#[doc(hidden)]
pub fn __serve(
    router: &Router,
    request: wasip2::http::types::IncomingRequest,
    out: wasip2::http::types::ResponseOutparam,
) {
    let response = match Request::from_wasi(request) {
        Ok(request) => router.dispatch(&request),
        Err(e) => e.into_response(),
    };
    response.send(out);
}
