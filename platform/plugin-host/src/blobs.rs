//! The `blobs` capability: content written and read in pieces through the platform's blob store
//! (local disk or S3), with a record per blob in the plugin's private key-value namespace.
//!
//! Records live in the key-value store under the namespace `<plugin>#blobs`: plugin ids are
//! `a-z0-9-`, so no plugin can name that namespace through `store`, and the record carries the
//! patient like any store entry. Blob ids are random (not the content's digest): a plugin cannot
//! probe for content it did not write by guessing a digest, and two plugins storing the same
//! bytes share the stored content but never each other's records.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use megalis_blobs::{BlobError, BlobRef, BlobStore, BlobStream, Sha256Digest};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the host needs for the capability: the platform's store and the size cap per blob.
pub struct PluginBlobs {
    pub store: Arc<dyn BlobStore>,
    pub max_size: u64,
}

/// The largest piece a plugin writes or reads at once.
pub const MAX_PIECE: usize = 1 << 20;
/// Uploads and downloads open at once in one request.
pub const MAX_OPEN: usize = 8;

/// A blob's record, as kept in the plugin's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRecord {
    pub id: String,
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub created_at_ms: u64,
}

/// The key-value namespace of a plugin's blob records.
pub fn namespace(plugin: &str) -> String {
    format!("{plugin}#blobs")
}

/// An upload in progress: the pieces go to a task that streams them into the store.
pub struct UploadState {
    pub(crate) pieces: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
    pub(crate) task: Option<JoinHandle<Result<BlobRef, BlobError>>>,
    pub(crate) media_type: String,
    pub(crate) patient: Option<String>,
    pub(crate) written: u64,
    pub(crate) max_size: u64,
}

impl UploadState {
    pub(crate) fn start(
        blobs: &PluginBlobs,
        media_type: String,
        patient: Option<String>,
    ) -> UploadState {
        // A few pieces in flight: the plugin's writes wait for the store (back-pressure)
        // rather than piling up in memory.
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let store = blobs.store.clone();
        let max = blobs.max_size;
        let stream = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }));
        let task = tokio::spawn(async move { store.put(stream, Some(max)).await });
        UploadState {
            pieces: Some(tx),
            task: Some(task),
            media_type,
            patient,
            written: 0,
            max_size: blobs.max_size,
        }
    }
}

impl UploadState {
    /// Ends the upload without keeping anything (dropped before `finish`, or over the cap):
    /// the store's put is cancelled (its partial file removed).
    pub(crate) fn abandon(&mut self) {
        // The pieces' sender must outlive the task: were it dropped first, the put could see a
        // clean end of stream and store the truncated content before the cancellation lands.
        let Some(task) = self.task.take() else {
            return;
        };
        task.abort();
        let pieces = self.pieces.take();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = task.await;
                drop(pieces);
            });
        }
    }
}

impl Drop for UploadState {
    fn drop(&mut self) {
        self.abandon();
    }
}

/// A download in progress: the store's checked stream and what is left of its last piece.
pub struct DownloadState {
    pub(crate) stream: BlobStream,
    pub(crate) pending: Bytes,
    pub(crate) done: bool,
}

impl DownloadState {
    pub(crate) fn new(stream: BlobStream) -> DownloadState {
        DownloadState {
            stream,
            pending: Bytes::new(),
            done: false,
        }
    }

    /// At most `max` bytes; empty at the end.
    pub(crate) async fn read(&mut self, max: usize) -> Result<Bytes, BlobError> {
        while self.pending.is_empty() && !self.done {
            match self.stream.next().await {
                Some(Ok(piece)) => self.pending = piece,
                Some(Err(e)) => return Err(e),
                None => self.done = true,
            }
        }
        let n = self.pending.len().min(max);
        Ok(self.pending.split_to(n))
    }
}

/// A new blob id: 128 random bits, hex.
pub fn new_id() -> String {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("the system's random source");
    hex::encode(bytes)
}

pub fn digest_of(hex: &str) -> Option<Sha256Digest> {
    hex.parse().ok()
}
