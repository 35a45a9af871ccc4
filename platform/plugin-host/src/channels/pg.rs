//! The room bus on PostgreSQL: `pg_notify` to publish, one `LISTEN` connection per replica to
//! receive. A frame whose notification would exceed PostgreSQL's payload limit (8000 bytes)
//! goes through the table `plugin_channel_message` and only its row id is notified; rows are
//! deleted a minute later, long after every listening replica has read them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::watch;

use super::{BusError, Envelope, RoomBus, RoomKey, Rooms};
use crate::access::BoxFuture;

/// The `NOTIFY` channel of every replica.
pub const NOTIFY_CHANNEL: &str = "megalis_channels";

/// Largest notification sent inline. PostgreSQL refuses payloads of 8000 bytes or more; the
/// margin is for the channel name and the server's own framing.
const INLINE_LIMIT: usize = 7900;

/// How long a large frame's row is kept: listeners read it within milliseconds; a replica
/// lagging a minute behind has lost its room's continuity anyway.
const ROW_TTL: Duration = Duration::from_secs(60);

/// At most one clean-up of old rows per replica in this interval.
const CLEANUP_EVERY: Duration = Duration::from_secs(10);

/// How long a join waits for the listener before it is refused.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// A large frame's notification: who published it (so the publisher skips it without a read),
/// for which room (so replicas without members there skip it too), and the row.
#[derive(Serialize, Deserialize)]
struct Pointer {
    o: String,
    p: String,
    c: String,
    r: String,
    id: i64,
}

pub struct PgBus {
    pool: PgPool,
    replica: Arc<str>,
    ready: watch::Receiver<bool>,
    last_cleanup_us: AtomicI64,
}

impl PgBus {
    /// Starts the listener task (on the current runtime) delivering into `rooms`; it stops once
    /// `rooms` is dropped and a notification arrives.
    pub fn start(pool: PgPool, rooms: &Arc<Rooms>, reconnects: prometheus::IntCounter) -> PgBus {
        let (ready_tx, ready) = watch::channel(false);
        tokio::spawn(listen(
            pool.clone(),
            Arc::downgrade(rooms),
            ready_tx,
            reconnects,
        ));
        PgBus {
            pool,
            replica: rooms.replica().clone(),
            ready,
            last_cleanup_us: AtomicI64::new(0),
        }
    }

    async fn publish_large(&self, envelope: &Envelope, text: String) -> Result<(), BusError> {
        let now = now_us();
        // One statement: the row and its notification commit together, so no listener is told
        // of a row it cannot read yet.
        sqlx::query(
            "WITH m AS (INSERT INTO plugin_channel_message (envelope, created_at_us) \
             VALUES ($1, $2) RETURNING id) \
             SELECT pg_notify($3, json_build_object('o', $4::text, 'p', $5::text, 'c', $6::text, \
             'r', $7::text, 'id', m.id)::text) FROM m",
        )
        .bind(text.into_bytes())
        .bind(now)
        .bind(NOTIFY_CHANNEL)
        .bind(&*self.replica)
        .bind(&envelope.key.plugin)
        .bind(&envelope.key.channel)
        .bind(&envelope.key.room)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        let last = self.last_cleanup_us.load(Ordering::Relaxed);
        if now - last >= CLEANUP_EVERY.as_micros() as i64
            && self
                .last_cleanup_us
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let horizon = now - ROW_TTL.as_micros() as i64;
            if let Err(e) =
                sqlx::query("DELETE FROM plugin_channel_message WHERE created_at_us < $1")
                    .bind(horizon)
                    .execute(&self.pool)
                    .await
            {
                tracing::warn!(error = %e, "old channel messages not deleted");
            }
        }
        Ok(())
    }
}

impl RoomBus for PgBus {
    fn publish<'a>(&'a self, envelope: &'a Envelope) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let text = envelope.encode();
            if text.len() > INLINE_LIMIT {
                return self.publish_large(envelope, text).await;
            }
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(NOTIFY_CHANNEL)
                .bind(text)
                .execute(&self.pool)
                .await
                .map(|_| ())
                .map_err(unavailable)
        })
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move {
            let mut ready = self.ready.clone();
            match tokio::time::timeout(READY_TIMEOUT, ready.wait_for(|r| *r)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(_)) => Err(BusError::Unavailable("the listener stopped".into())),
                Err(_) => Err(BusError::Unavailable(
                    "not listening to the other replicas".into(),
                )),
            }
        })
    }
}

fn unavailable(e: sqlx::Error) -> BusError {
    BusError::Unavailable(e.to_string())
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The listener: connects, listens, and hands every notification to the local rooms, in order
/// (a large frame's row is read before the next notification is looked at). sqlx's listener
/// reconnects by itself and listens again; a reconnection means notifications may have been
/// lost while it was down, which is logged and counted.
async fn listen(
    pool: PgPool,
    rooms: Weak<Rooms>,
    ready: watch::Sender<bool>,
    reconnects: prometheus::IntCounter,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "channel bus: cannot connect the listener; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(NOTIFY_CHANNEL).await {
            tracing::warn!(error = %e, "channel bus: LISTEN failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        backoff = Duration::from_millis(100);
        ready.send_replace(true);
        tracing::info!("channel bus: listening on {NOTIFY_CHANNEL}");
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    let Some(rooms) = rooms.upgrade() else { return };
                    receive(&pool, &rooms, notification.payload()).await;
                }
                Ok(None) => {
                    // The connection was lost and sqlx has already reconnected and listens
                    // again (eager reconnection).
                    reconnects.inc();
                    tracing::warn!(
                        "channel bus: the listener's connection was lost and re-established; \
                         room messages sent meanwhile by other replicas are lost"
                    );
                }
                Err(e) => {
                    ready.send_replace(false);
                    reconnects.inc();
                    tracing::warn!(error = %e, "channel bus: the listener failed; reconnecting");
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

async fn receive(pool: &PgPool, rooms: &Rooms, payload: &str) {
    if let Ok(pointer) = serde_json::from_str::<Pointer>(payload) {
        let key = RoomKey {
            plugin: pointer.p,
            channel: pointer.c,
            room: pointer.r,
        };
        if *pointer.o == **rooms.replica() || !rooms.has_room(&key) {
            return;
        }
        let row: Result<Option<Vec<u8>>, _> =
            sqlx::query_scalar("SELECT envelope FROM plugin_channel_message WHERE id = $1")
                .bind(pointer.id)
                .fetch_optional(pool)
                .await;
        match row {
            Ok(Some(bytes)) => match String::from_utf8(bytes)
                .map_err(|e| e.to_string())
                .and_then(|t| Envelope::decode(&t))
            {
                Ok(envelope) => rooms.deliver_remote(envelope),
                Err(e) => tracing::warn!(error = %e, "channel bus: unreadable stored message"),
            },
            Ok(None) => {
                tracing::warn!(
                    id = pointer.id,
                    "channel bus: stored message already deleted"
                )
            }
            Err(e) => tracing::warn!(error = %e, "channel bus: stored message not read"),
        }
        return;
    }
    match Envelope::decode(payload) {
        Ok(envelope) => rooms.deliver_remote(envelope),
        Err(e) => tracing::warn!(error = %e, "channel bus: unreadable notification"),
    }
}
