//! One admitted member's connection to a channel, independent of the WebSocket library: the
//! server reads frames from its socket into [`ChannelSession::incoming`] and writes what
//! [`ChannelSession::outgoing`] yields.

use std::sync::Arc;

use http::Method;
use prometheus::IntGauge;
use serde_json::json;

use super::{Event, Membership, Payload, ReceiveError};
use crate::access::Principal;
use crate::host::{InternalCall, PluginHost, RequestMeta, hook_headers};
use crate::manifest::{Channel, Deliver};
use crate::plugin::LoadedPlugin;

/// How the host ends a connection: a WebSocket close code and a reason (≤ 123 bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelClose {
    pub code: u16,
    pub reason: String,
}

impl ChannelClose {
    fn new(code: u16, reason: &str) -> ChannelClose {
        ChannelClose {
            code,
            reason: reason.to_owned(),
        }
    }
}

/// RFC 6455 close codes the host uses.
pub mod close {
    /// The plugin was reloaded or removed: rejoin (the join is asked again).
    pub const SERVICE_RESTART: u16 = 1012;
    /// A message over the channel's `max-message-bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// The member fell too far behind its room.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// Counts the connection in the per-plugin gauge while it lives.
struct Connected(IntGauge);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub struct ChannelSession {
    host: Arc<PluginHost>,
    /// The plugin version that admitted the member; when another serves, the session ends.
    plugin: Arc<LoadedPlugin>,
    channel: Channel,
    principal: Principal,
    meta: RequestMeta,
    membership: Membership,
    reloads: tokio::sync::watch::Receiver<u64>,
    welcomed: bool,
    sent: u64,
    _connected: Connected,
}

impl ChannelSession {
    pub(crate) fn new(
        host: Arc<PluginHost>,
        plugin: Arc<LoadedPlugin>,
        channel: Channel,
        principal: Principal,
        meta: RequestMeta,
        membership: Membership,
    ) -> ChannelSession {
        let gauge = host
            .metrics()
            .channel_connections
            .with_label_values(&[&plugin.id]);
        gauge.inc();
        let reloads = host.reloads();
        ChannelSession {
            host,
            plugin,
            channel,
            principal,
            meta,
            membership,
            reloads,
            welcomed: false,
            sent: 0,
            _connected: Connected(gauge),
        }
    }

    pub fn member(&self) -> &str {
        self.membership.member()
    }

    pub fn room(&self) -> &str {
        &self.membership.key().room
    }

    pub fn plugin(&self) -> &str {
        &self.plugin.id
    }

    /// The largest message a member may send (the WebSocket layer should refuse longer ones
    /// before they are buffered whole).
    pub fn max_message_bytes(&self) -> usize {
        self.channel.max_message_bytes
    }

    fn still_served(&self) -> bool {
        self.host
            .get(&self.plugin.id)
            .is_some_and(|p| Arc::ptr_eq(&p, &self.plugin))
    }

    /// The next frame for this member: first the host's welcome, then what the other members
    /// send and their comings and goings. An error ends the connection with that close.
    pub async fn outgoing(&mut self) -> Result<Payload, ChannelClose> {
        if !self.welcomed {
            self.welcomed = true;
            return Ok(host_frame(json!({
                "megalis": "welcome",
                "member": self.member(),
                "room": self.room(),
                "channel": self.channel.path,
            })));
        }
        loop {
            tokio::select! {
                frame = self.membership.recv() => {
                    return match frame {
                        Ok(frame) => Ok(match &frame.event {
                            Event::Message(p) => p.clone(),
                            Event::Joined => host_frame(json!({"megalis": "joined", "member": &*frame.from})),
                            Event::Left => host_frame(json!({"megalis": "left", "member": &*frame.from})),
                        }),
                        Err(ReceiveError::Lagged(n)) => {
                            tracing::info!(plugin = %self.plugin.id, member = %self.member(), missed = n, "channel member too slow; closed");
                            Err(ChannelClose::new(close::TRY_AGAIN_LATER, "too slow: messages were missed"))
                        }
                        Err(ReceiveError::Closed) => Err(ChannelClose::new(close::INTERNAL_ERROR, "room closed")),
                    };
                }
                changed = self.reloads.changed() => {
                    if changed.is_err() || !self.still_served() {
                        return Err(ChannelClose::new(close::SERVICE_RESTART, "the application was reloaded: join again"));
                    }
                }
            }
        }
    }

    /// A message from this member. Relayed to the room, or handed to the plugin first
    /// (`deliver = "plugin"`). `Ok(Some(frame))` is a host frame for the sender alone (a
    /// refusal); an error ends the connection.
    pub async fn incoming(&mut self, payload: Payload) -> Result<Option<Payload>, ChannelClose> {
        if payload.len() > self.channel.max_message_bytes {
            return Err(ChannelClose::new(close::TOO_BIG, "message too big"));
        }
        if !self.still_served() {
            return Err(ChannelClose::new(
                close::SERVICE_RESTART,
                "the application was reloaded: join again",
            ));
        }
        if looks_like_host_frame(&payload) {
            return Ok(Some(refusal(
                "messages may not carry a top-level \"megalis\" member: it marks the host's frames",
            )));
        }
        let out = match self.channel.deliver {
            Deliver::Relay => payload,
            Deliver::Plugin => match self.ask_plugin(payload).await {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                Err(frame) => return Ok(Some(frame)),
            },
        };
        self.host
            .metrics()
            .channel_messages
            .with_label_values(&[&self.plugin.id])
            .inc();
        match self.membership.send(out).await {
            Ok(()) => Ok(None),
            Err(e) => {
                tracing::warn!(plugin = %self.plugin.id, error = %e, "channel message not sent to the other replicas");
                Ok(Some(host_frame(json!({
                    "megalis": "error",
                    "reason": "the message reached this server's members only",
                }))))
            }
        }
    }

    /// `deliver = "plugin"`: the plugin's 2xx answer, when not empty, is what the room gets,
    /// as text when the message was text.
    async fn ask_plugin(&mut self, payload: Payload) -> Result<Option<Payload>, Payload> {
        let path = self
            .channel
            .on_message
            .clone()
            .expect("validated: deliver = plugin names on-message");
        let (content_type, body, text) = match payload {
            Payload::Text(t) => ("text/plain; charset=utf-8", t.into_bytes().into(), true),
            Payload::Binary(b) => ("application/octet-stream", b, false),
        };
        self.sent += 1;
        let call = InternalCall {
            method: Method::POST,
            path,
            headers: hook_headers(
                content_type,
                &self.channel.path,
                &self.membership.key().room,
                self.membership.member(),
            ),
            body,
            principal: self.principal.clone(),
            meta: RequestMeta {
                request_id: format!("{}:{}", self.meta.request_id, self.sent),
                ..self.meta.clone()
            },
            max_response_bytes: self.channel.max_message_bytes,
        };
        let answer = match self.host.invoke_internal(&self.plugin.id, call).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(plugin = %self.plugin.id, error = %e, "channel message: the plugin failed");
                return Err(refusal_status(e.status().as_u16()));
            }
        };
        if !answer.status.is_success() {
            return Err(refusal_status(answer.status.as_u16()));
        }
        if answer.body.is_empty() {
            return Ok(None);
        }
        let out = if text {
            match String::from_utf8(answer.body.to_vec()) {
                Ok(t) => Payload::Text(t),
                Err(_) => {
                    tracing::warn!(plugin = %self.plugin.id, "channel message: the plugin answered a text message with non-UTF-8 bytes");
                    return Err(refusal_status(500));
                }
            }
        } else {
            Payload::Binary(answer.body)
        };
        if looks_like_host_frame(&out) {
            tracing::warn!(plugin = %self.plugin.id, "channel message: the plugin's answer imitates a host frame; dropped");
            return Err(refusal_status(500));
        }
        Ok(Some(out))
    }
}

fn host_frame(value: serde_json::Value) -> Payload {
    Payload::Text(value.to_string())
}

fn refusal(reason: &str) -> Payload {
    host_frame(json!({"megalis": "refused", "reason": reason}))
}

fn refusal_status(status: u16) -> Payload {
    host_frame(json!({"megalis": "refused", "status": status}))
}

/// Host frames are JSON objects with a top-level `megalis` member; a member's text that parses
/// as one would let it impersonate the host (fake presence) to the others. The whole object is
/// parsed, since JSON may spell the key with escapes.
pub fn looks_like_host_frame(payload: &Payload) -> bool {
    let Payload::Text(text) = payload else {
        return false;
    };
    if !text.trim_start().starts_with('{') {
        return false;
    }
    serde_json::from_str::<std::collections::HashMap<String, serde::de::IgnoredAny>>(text)
        .is_ok_and(|object| object.contains_key("megalis"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_frames_cannot_be_imitated() {
        for (text, host) in [
            (r#"{"megalis":"joined","member":"x"}"#, true),
            (r#"  {"type":"offer","megalis":1}"#, true),
            (r#"{"\u006degalis":"left"}"#, true),
            (r#"{"type":"offer","sdp":"v=0"}"#, false),
            (r#"["megalis"]"#, false),
            ("megalis", false),
            ("{not json", false),
        ] {
            assert_eq!(
                looks_like_host_frame(&Payload::Text(text.into())),
                host,
                "{text}"
            );
        }
        assert!(!looks_like_host_frame(&Payload::Binary(
            bytes::Bytes::from_static(br#"{"megalis":1}"#)
        )));
    }
}
