//! Rooms of host-terminated WebSocket channels, and the bus that joins the rooms of several
//! replicas into one.
//!
//! A room is identified by (plugin, channel path, room name). Each server keeps, per room with
//! at least one local member, a `tokio::sync::broadcast` channel its members' connections read.
//! A message a member sends is given to the local room at once and handed to the [`RoomBus`],
//! which carries it to the other replicas; what the bus brings in from another replica is given
//! to the local room the same way. Frames carry the sending member's id, so a member never
//! receives its own messages, and the replica's id, so a replica ignores its own publications
//! when the bus echoes them back (PostgreSQL `NOTIFY` reaches every listener, its sender too).
//!
//! The bus has two implementations: [`InProcessBus`] (one server: SQLite, `megalis plugin run`)
//! and [`pg::PgBus`] (`LISTEN`/`NOTIFY` on the platform's PostgreSQL database).

pub mod pg;
pub mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::access::BoxFuture;

/// Frames a slow member may fall behind by before its connection is closed: a signalling
/// client that cannot keep up would act on stale offers anyway, and an unbounded queue per
/// member would let one stalled client hold the server's memory.
const ROOM_BUFFER: usize = 256;

/// A room across replicas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RoomKey {
    pub plugin: String,
    pub channel: String,
    pub room: String,
}

/// What a member sends: WebSocket text or binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Text(String),
    Binary(Bytes),
}

impl Payload {
    pub fn len(&self) -> usize {
        match self {
            Payload::Text(t) => t.len(),
            Payload::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happens in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Message(Payload),
    Joined,
    Left,
}

/// One event of a room, from one member (ids are random, unique across replicas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub from: Arc<str>,
    pub event: Event,
}

/// A frame on its way between replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The replica that published it.
    pub origin: Arc<str>,
    pub key: RoomKey,
    pub frame: Frame,
}

/// The wire form of an [`Envelope`] on the PostgreSQL bus (JSON; binary data in hex).
#[derive(Serialize, Deserialize)]
struct WireEnvelope {
    o: String,
    p: String,
    c: String,
    r: String,
    f: String,
    /// text, binary, joined, left
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    d: Option<String>,
}

impl Envelope {
    pub(crate) fn encode(&self) -> String {
        let (k, d) = match &self.frame.event {
            Event::Message(Payload::Text(t)) => ("text", Some(t.clone())),
            Event::Message(Payload::Binary(b)) => ("binary", Some(hex::encode(b))),
            Event::Joined => ("joined", None),
            Event::Left => ("left", None),
        };
        let wire = WireEnvelope {
            o: self.origin.to_string(),
            p: self.key.plugin.clone(),
            c: self.key.channel.clone(),
            r: self.key.room.clone(),
            f: self.frame.from.to_string(),
            k: k.to_owned(),
            d,
        };
        serde_json::to_string(&wire).expect("plain strings serialise")
    }

    pub(crate) fn decode(text: &str) -> Result<Envelope, String> {
        let w: WireEnvelope = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let event = match (w.k.as_str(), w.d) {
            ("text", Some(d)) => Event::Message(Payload::Text(d)),
            ("binary", Some(d)) => Event::Message(Payload::Binary(
                hex::decode(d).map_err(|e| e.to_string())?.into(),
            )),
            ("joined", _) => Event::Joined,
            ("left", _) => Event::Left,
            (k, _) => return Err(format!("unknown envelope kind {k:?}")),
        };
        Ok(Envelope {
            origin: w.o.into(),
            key: RoomKey {
                plugin: w.p,
                channel: w.c,
                room: w.r,
            },
            frame: Frame {
                from: w.f.into(),
                event,
            },
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("the channel bus is not connected: {0}")]
    Unavailable(String),
}

/// Carries room frames to the other replicas. Implementations deliver what other replicas
/// publish to the [`Rooms`] they were built with ([`Rooms::deliver_remote`]).
pub trait RoomBus: Send + Sync {
    /// Hands a frame of a local member to the other replicas. Frames of one member are
    /// published one after the other (a connection awaits each), which keeps their order.
    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BusError>>;

    /// Resolves once the bus receives what the other replicas publish. A member admitted
    /// before would miss their messages: its room would silently be split.
    fn ready(&self) -> BoxFuture<'_, Result<(), BusError>>;
}

/// One server alone: the local rooms are all the rooms.
pub struct InProcessBus;

impl RoomBus for InProcessBus {
    fn publish<'a>(&'a self, _envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async { Ok(()) })
    }
}

struct RoomState {
    sender: broadcast::Sender<Arc<Frame>>,
    /// Members on this server.
    members: usize,
}

/// The rooms with members on this server.
pub struct Rooms {
    replica: Arc<str>,
    rooms: Mutex<HashMap<RoomKey, RoomState>>,
}

impl Rooms {
    pub fn new() -> Arc<Rooms> {
        Arc::new(Rooms {
            replica: random_id().into(),
            rooms: Mutex::new(HashMap::new()),
        })
    }

    /// This server's id on the bus, random at each start.
    pub fn replica(&self) -> &Arc<str> {
        &self.replica
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomKey, RoomState>> {
        // Every critical section is a map update that cannot panic half-way.
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the room has members here (the bus skips fetching frames for no one).
    pub fn has_room(&self, key: &RoomKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Local members of a room.
    pub fn members(&self, key: &RoomKey) -> usize {
        self.lock().get(key).map_or(0, |r| r.members)
    }

    /// Gives a frame to the room's local members (a room without any drops it).
    fn deliver(&self, key: &RoomKey, frame: Arc<Frame>) {
        if let Some(room) = self.lock().get(key) {
            // An error only means no receiver is subscribed at this instant.
            let _ = room.sender.send(frame);
        }
    }

    /// A frame another replica published; this replica's own are ignored.
    pub fn deliver_remote(&self, envelope: Envelope) {
        if envelope.origin == self.replica {
            return;
        }
        self.deliver(&envelope.key, Arc::new(envelope.frame));
    }

    fn enter(&self, key: &RoomKey, max_members: usize) -> Option<broadcast::Receiver<Arc<Frame>>> {
        let mut rooms = self.lock();
        let room = rooms.entry(key.clone()).or_insert_with(|| RoomState {
            sender: broadcast::channel(ROOM_BUFFER).0,
            members: 0,
        });
        if room.members >= max_members {
            if room.members == 0 {
                rooms.remove(key);
            }
            return None;
        }
        room.members += 1;
        Some(room.sender.subscribe())
    }

    fn leave(&self, key: &RoomKey) {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(key) {
            room.members = room.members.saturating_sub(1);
            if room.members == 0 {
                rooms.remove(key);
            }
        }
    }
}

/// The rooms of this server and the bus to the others.
pub struct ChannelHub {
    rooms: Arc<Rooms>,
    bus: Arc<dyn RoomBus>,
}

impl ChannelHub {
    /// A hub for one server alone.
    pub fn in_process() -> Arc<ChannelHub> {
        Arc::new(ChannelHub {
            rooms: Rooms::new(),
            bus: Arc::new(InProcessBus),
        })
    }

    /// A hub over a bus built for `rooms` (which it delivers into).
    pub fn new(rooms: Arc<Rooms>, bus: Arc<dyn RoomBus>) -> Arc<ChannelHub> {
        Arc::new(ChannelHub { rooms, bus })
    }

    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.rooms
    }

    pub async fn ready(&self) -> Result<(), BusError> {
        self.bus.ready().await
    }

    /// Admits member `member` to a room (at most `max_members` on this server) and tells the
    /// room; `None` when the room is full.
    pub async fn enter(
        self: &Arc<Self>,
        key: RoomKey,
        member: Arc<str>,
        max_members: usize,
    ) -> Option<Membership> {
        let receiver = self.rooms.enter(&key, max_members)?;
        let membership = Membership {
            hub: Arc::downgrade(self),
            key,
            member,
            receiver,
        };
        // Presence is best effort: a lost `joined` frame does not make the member less joined.
        if let Err(e) = membership.publish_event(Event::Joined).await {
            tracing::warn!(error = %e, "channel presence not published");
        }
        Some(membership)
    }

    async fn publish(&self, key: &RoomKey, frame: Frame) -> Result<(), BusError> {
        let frame = Arc::new(frame);
        self.rooms.deliver(key, frame.clone());
        let envelope = Envelope {
            origin: self.rooms.replica.clone(),
            key: key.clone(),
            frame: (*frame).clone(),
        };
        self.bus.publish(&envelope).await
    }
}

/// A member's place in a room; leaving the room is dropping it.
pub struct Membership {
    hub: Weak<ChannelHub>,
    key: RoomKey,
    member: Arc<str>,
    receiver: broadcast::Receiver<Arc<Frame>>,
}

/// Why a member stops receiving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiveError {
    /// The member fell this many frames behind.
    Lagged(u64),
    /// The room is gone (the hub was dropped).
    Closed,
}

impl Membership {
    pub fn member(&self) -> &Arc<str> {
        &self.member
    }

    pub fn key(&self) -> &RoomKey {
        &self.key
    }

    async fn publish_event(&self, event: Event) -> Result<(), BusError> {
        let Some(hub) = self.hub.upgrade() else {
            return Err(BusError::Unavailable("the channel hub is gone".into()));
        };
        let frame = Frame {
            from: self.member.clone(),
            event,
        };
        hub.publish(&self.key, frame).await
    }

    /// Sends a message to the other members of the room, here and on the other replicas. The
    /// local members have it when this returns an error: only the other replicas may not.
    pub async fn send(&self, payload: Payload) -> Result<(), BusError> {
        self.publish_event(Event::Message(payload)).await
    }

    /// The next frame of another member.
    pub async fn recv(&mut self) -> Result<Arc<Frame>, ReceiveError> {
        loop {
            match self.receiver.recv().await {
                Ok(frame) if frame.from == self.member => continue,
                Ok(frame) => return Ok(frame),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    return Err(ReceiveError::Lagged(n));
                }
                Err(broadcast::error::RecvError::Closed) => return Err(ReceiveError::Closed),
            }
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        hub.rooms.leave(&self.key);
        let frame = Frame {
            from: self.member.clone(),
            event: Event::Left,
        };
        // The other members learn of the departure; publishing is async and a drop is not, so
        // it goes on a task when there is a runtime to run it (the local room has it at once).
        let local = Arc::new(frame.clone());
        hub.rooms.deliver(&self.key, local);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let envelope = Envelope {
                origin: hub.rooms.replica.clone(),
                key: self.key.clone(),
                frame,
            };
            runtime.spawn(async move {
                if let Err(e) = hub.bus.publish(&envelope).await {
                    tracing::debug!(error = %e, "channel departure not published");
                }
            });
        }
    }
}

/// 64 random bits, hex: member and replica ids.
pub fn random_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 8];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
}

/// Room names: 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (they name rows, log fields and
/// metric-free keys; nothing a URL or a log line must escape).
pub fn valid_room(room: &str) -> bool {
    (1..=128).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip() {
        let key = RoomKey {
            plugin: "visio".into(),
            channel: "/signal".into(),
            room: "ok-1".into(),
        };
        for event in [
            Event::Message(Payload::Text("{\"sdp\":\"v=0\\r\\n\"} é".into())),
            Event::Message(Payload::Binary(Bytes::from_static(&[0, 1, 255]))),
            Event::Joined,
            Event::Left,
        ] {
            let e = Envelope {
                origin: "r1".into(),
                key: key.clone(),
                frame: Frame {
                    from: "m1".into(),
                    event,
                },
            };
            assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        }
        assert!(Envelope::decode("{\"o\":\"r\"}").is_err());
    }

    #[test]
    fn room_names() {
        for ok in ["a", "ok-1", "consult:2026-11-26.A_b", &"x".repeat(128)] {
            assert!(valid_room(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a%20", &"x".repeat(129)] {
            assert!(!valid_room(bad), "{bad}");
        }
    }
}
