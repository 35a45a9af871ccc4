//! The MLLP listener of the identity feed: `<VT> message <FS><CR>` frames over TCP, one
//! acknowledgement per frame, connections served concurrently.
//!
//! An acknowledgement `AA` is sent only after the message was validated and applied in the
//! transaction that also stored the acknowledgement (a redelivered MSH-10 gets the stored one
//! back, nothing applied twice). Content errors get `AE`, unparsable or unsupported messages
//! `AR`, both with an ERR segment; bytes outside a frame and oversized frames are answered with
//! `AR` too, and the connection stays usable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use megalis_audit::Actor;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::hl7::{self, Hl7Error, Message, SenderBindings};
use crate::{Applied, MessageKey, PatientIndex};

const VT: u8 = 0x0b;
const FS: u8 = 0x1c;
const CR: u8 = 0x0d;

/// Settings of the listener.
#[derive(Debug, Clone, Default)]
pub struct MllpSettings {
    /// Sender (`MSH-3|MSH-4`) → assigning authorities it may feed.
    pub bindings: SenderBindings,
    /// Accept INS with the test and demonstration OIDs.
    pub test_mode: bool,
}

impl MllpSettings {
    /// Reads the sender bindings: a TOML table `"<MSH-3>|<MSH-4>" = ["<OID>", …]`. An absent
    /// file means no sender is bound (every message is refused with `AR`).
    pub fn load(path: &std::path::Path, test_mode: bool) -> Result<Self, crate::IndexError> {
        let bindings = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<SenderBindings>(&text)
                .map_err(|e| crate::IndexError::Bindings(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), "no MLLP sender bindings: every HL7 sender will be refused");
                SenderBindings::new()
            }
            Err(e) => {
                return Err(crate::IndexError::Bindings(format!(
                    "{}: {e}",
                    path.display()
                )));
            }
        };
        Ok(MllpSettings {
            bindings,
            test_mode,
        })
    }
}

/// The assigning authorities an authenticated client is bound to, asked by client id.
pub type AuthoritiesOf = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// Who is at the other end of a connection, which decides the assigning authorities whose
/// identifiers it may feed.
#[derive(Clone)]
pub enum Feeder {
    /// Plain TCP, on a loopback listener only (an interface engine on the same host, tests):
    /// the sender bindings file decides by `MSH-3|MSH-4`.
    Bindings,
    /// A TLS client authenticated by the certificate registered to its OAuth client: the
    /// assigning authorities that client is bound to, asked again for every message so that an
    /// unbinding applies at once.
    Client {
        client_id: String,
        authorities: AuthoritiesOf,
    },
    /// A TLS client whose certificate is registered to no (active) client: every message is
    /// refused with this reason.
    Refused(String),
}

impl std::fmt::Debug for Feeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Feeder::Bindings => f.write_str("Bindings"),
            Feeder::Client { client_id, .. } => write!(f, "Client({client_id})"),
            Feeder::Refused(r) => write!(f, "Refused({r})"),
        }
    }
}

static ACK_SEQ: AtomicU64 = AtomicU64::new(1);

fn ack_id() -> String {
    format!(
        "MEG{}-{}",
        std::process::id(),
        ACK_SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Accepts connections until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    index: PatientIndex,
    settings: Arc<MllpSettings>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (index, settings) = (index.clone(), settings.clone());
                    tokio::spawn(async move {
                        let _ = stream.set_nodelay(true);
                        if let Err(e) = connection(stream, index, settings, Feeder::Bindings).await {
                            tracing::debug!(%peer, error = %e, "MLLP connection ended");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "MLLP accept failed"),
            }
        }
    }
}

fn frame(ack: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(ack.len() + 3);
    out.push(VT);
    out.extend_from_slice(ack.as_bytes());
    out.extend_from_slice(&[FS, CR]);
    out
}

fn framing_error(reason: &str) -> String {
    hl7::ack(
        None,
        "AR",
        Some(&Hl7Error {
            code: 100,
            location: "MSH".into(),
            reason: reason.into(),
        }),
        &ack_id(),
    )
}

/// Serves one connection (plain or TLS) until the peer closes it.
pub async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    index: PatientIndex,
    settings: Arc<MllpSettings>,
    feeder: Feeder,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    // Whether we are skipping the rest of a refused (oversized) frame up to its end.
    let mut discarding = false;
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            if discarding {
                match buf.windows(2).position(|w| w == [FS, CR]) {
                    Some(end) => {
                        buf.drain(..end + 2);
                        discarding = false;
                    }
                    None => {
                        let keep = buf.len().min(1);
                        buf.drain(..buf.len() - keep);
                        break;
                    }
                }
            }
            // Bytes before a start block: answered once, then dropped.
            match buf.iter().position(|&b| b == VT) {
                Some(0) => {}
                Some(start) => {
                    let junk: Vec<u8> = buf.drain(..start).collect();
                    if junk.iter().any(|b| !b.is_ascii_whitespace()) {
                        stream
                            .write_all(&frame(&framing_error("bytes outside an MLLP frame")))
                            .await?;
                    }
                }
                None => {
                    // No frame starts in what we have: it is all outside a frame. Answer now
                    // (the peer may be waiting for a reply) and drop it.
                    if buf.iter().any(|b| !b.is_ascii_whitespace()) {
                        stream
                            .write_all(&frame(&framing_error("bytes outside an MLLP frame")))
                            .await?;
                    }
                    buf.clear();
                    break;
                }
            }
            match buf.windows(2).position(|w| w == [FS, CR]) {
                Some(end) => {
                    let body: Vec<u8> = buf[1..end].to_vec();
                    buf.drain(..end + 2);
                    let reply = handle(&body, &index, &settings, &feeder).await;
                    stream.write_all(&frame(&reply)).await?;
                    stream.flush().await?;
                }
                None if buf.len() > hl7::MAX_MESSAGE + 3 => {
                    buf.clear();
                    discarding = true;
                    stream
                        .write_all(&frame(&framing_error(
                            "frame over the maximum message size",
                        )))
                        .await?;
                    break;
                }
                None => break,
            }
        }
    }
}

/// Processes one framed message and returns the acknowledgement to send.
pub async fn handle(
    body: &[u8],
    index: &PatientIndex,
    settings: &MllpSettings,
    feeder: &Feeder,
) -> String {
    let Ok(text) = std::str::from_utf8(body) else {
        return framing_error("the message is not valid UTF-8");
    };
    let message = match Message::parse(text) {
        Ok(m) => m,
        Err(e) => return hl7::ack(None, "AR", Some(&e), &ack_id()),
    };
    let m = &message;
    let reject = |code: &str, e: Hl7Error| hl7::ack(Some(m), code, Some(&e), &ack_id());
    if m.control_id().is_empty() {
        return reject(
            "AR",
            Hl7Error {
                code: 101,
                location: "MSH-10".into(),
                reason: "missing message control id".into(),
            },
        );
    }
    let refuse = |reason: String| {
        reject(
            "AR",
            Hl7Error {
                code: 204,
                location: "MSH-3".into(),
                reason,
            },
        )
    };
    let sender = m.sender();
    // The redelivery key and the audit actor name the authenticated client when there is one.
    let (allowed, key_sender, actor) = match feeder {
        Feeder::Bindings => match settings.bindings.get(&sender) {
            Some(a) => (
                a.clone(),
                sender.clone(),
                Actor::new(format!("hl7:{sender}")),
            ),
            None => return refuse(format!("unknown sender {sender}")),
        },
        Feeder::Client {
            client_id,
            authorities,
        } => {
            let a = authorities(client_id);
            if a.is_empty() {
                return refuse(format!(
                    "client {client_id} is bound to no assigning authority"
                ));
            }
            (
                a,
                format!("{client_id}|{sender}"),
                Actor::new(client_id.clone()),
            )
        }
        Feeder::Refused(reason) => return refuse(reason.clone()),
    };
    let changes = match hl7::changes(m, &allowed, settings.test_mode) {
        Ok(c) => c,
        Err(e) => {
            let code = if matches!(e.code, 100 | 200 | 201) {
                "AR"
            } else {
                "AE"
            };
            return reject(code, e);
        }
    };
    let aa = hl7::ack(Some(m), "AA", None, &ack_id());
    let control_id = m.control_id();
    let key = MessageKey {
        sender: &key_sender,
        control_id: &control_id,
        ack: &aa,
    };
    match index.apply(&actor, &changes, Some(key)).await {
        Ok(Applied::Done(_)) => aa,
        Ok(Applied::Duplicate(stored)) => stored,
        Err(e) => {
            if !e.is_bad_input() {
                tracing::error!(error = %e, "identity feed: message not applied");
            }
            reject("AE", hl7::index_error(&e))
        }
    }
}
