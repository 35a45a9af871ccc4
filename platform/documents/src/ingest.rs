//! Streamed ingest: a content flows from the client into the blob store chunk by chunk, and on
//! the way it is hashed with SHA-1 (FHIR R4 `Attachment.hash`; the store hashes SHA-256 itself),
//! counted, and sniffed on its first bytes. Nothing holds more than the sniff window
//! ([`crate::sniff::SNIFF_LEN`]) plus one chunk, so a 200 MB EEG costs no more memory than a
//! 20 kB letter.
//!
//! A content that turns out not to be what it is declared to be is refused *during* the upload:
//! the inspecting stream yields an error in place of the next chunk, which makes the blob store
//! abandon its temporary file, so nothing is left behind.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use megalis_blobs::{BlobError, BlobRef, BlobStore, PutStream, Sha256Digest};

// SHA-1 from RustCrypto rather than ring: ring's SHA-1 has no hardware path and was the
// slowest step of a streamed upload (about 300 MB/s); this one uses the CPU's SHA extensions.
use sha1::{Digest, Sha1};

use crate::sniff::{self, ContentKind, MediaType, SNIFF_LEN, SniffError};

/// What was learnt of a content while it streamed through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Inspected {
    pub blob: BlobRef,
    /// Lower-case hex SHA-1.
    pub sha1: String,
    pub kind: ContentKind,
}

/// Why an ingest failed, before it is given a FHIRPath by the caller.
#[derive(Debug)]
pub(crate) enum IngestError {
    Refused(SniffError),
    Blob(BlobError),
}

struct State {
    sha1: Sha1,
    size: u64,
    prefix: Vec<u8>,
    kind: Option<ContentKind>,
    refused: Option<SniffError>,
    complete: bool,
}

/// Wraps the client's stream: hashes, counts and sniffs each chunk before passing it on.
struct Inspect {
    inner: PutStream,
    media: MediaType,
    state: Arc<Mutex<State>>,
    finished: bool,
}

impl Inspect {
    fn refuse(&mut self, state: &mut State, e: SniffError) -> Poll<Option<io::Result<Bytes>>> {
        state.refused = Some(e);
        self.finished = true;
        Poll::Ready(Some(Err(io::Error::other(
            "content refused by the sniffer",
        ))))
    }
}

impl Stream for Inspect {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        let item = futures::ready!(self.inner.poll_next_unpin(cx));
        let state = Arc::clone(&self.state);
        // Never poisoned: nothing panics while holding it (no user code runs inside).
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        match item {
            Some(Ok(chunk)) => {
                state.sha1.update(&chunk);
                state.size += chunk.len() as u64;
                if state.kind.is_none() {
                    let room = SNIFF_LEN - state.prefix.len();
                    state
                        .prefix
                        .extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if state.prefix.len() == SNIFF_LEN {
                        match self.media.check_prefix(&state.prefix, false) {
                            Ok(kind) => state.kind = Some(kind),
                            Err(e) => return self.refuse(&mut state, e),
                        }
                    }
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                let kind = match state.kind {
                    Some(kind) => kind,
                    None => match self.media.check_prefix(&state.prefix, true) {
                        Ok(kind) => kind,
                        Err(e) => return self.refuse(&mut state, e),
                    },
                };
                state.kind = Some(kind);
                let size = state.size;
                if let Err(e) = sniff::check_complete(kind, &state.prefix, size) {
                    return self.refuse(&mut state, e);
                }
                state.complete = true;
                self.finished = true;
                Poll::Ready(None)
            }
        }
    }
}

/// Streams `data` into `store` (at most `max_size` bytes) while hashing and sniffing it
/// against `media`.
pub(crate) async fn put_inspected(
    store: &dyn BlobStore,
    data: PutStream,
    media: MediaType,
    max_size: u64,
) -> Result<Inspected, IngestError> {
    let state = Arc::new(Mutex::new(State {
        sha1: Sha1::new(),
        size: 0,
        prefix: Vec::with_capacity(SNIFF_LEN.min(64 * 1024)),
        kind: None,
        refused: None,
        complete: false,
    }));
    let inspect = Inspect {
        inner: data,
        media,
        state: Arc::clone(&state),
        finished: false,
    };
    let result = store.put(Box::pin(inspect), Some(max_size)).await;
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = state.refused.take() {
        return Err(IngestError::Refused(e));
    }
    let blob = result.map_err(IngestError::Blob)?;
    let (Some(kind), true, true) = (state.kind, state.complete, state.size == blob.size) else {
        // The store answered without reading the content to its end: never accept that as a
        // checked content.
        return Err(IngestError::Blob(BlobError::Source(io::Error::other(
            "the blob store did not read the whole content",
        ))));
    };
    let sha1 = hex::encode(state.sha1.clone().finalize());
    Ok(Inspected { blob, sha1, kind })
}

/// Hashes of a content held in memory (a Binary entry of a bundle): SHA-256 and hex SHA-1.
pub(crate) fn hashes(data: &[u8]) -> (Sha256Digest, String) {
    (Sha256Digest::of(data), hex::encode(Sha1::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sniff::samples;

    fn chunks(data: &[u8], size: usize) -> PutStream {
        let parts: Vec<io::Result<Bytes>> = data
            .chunks(size.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn hashes_and_sniffs_while_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let store = megalis_blobs::LocalBlobStore::open(dir.path()).unwrap();
        // An EDF larger than the sniff window, in uneven chunks.
        let edf = samples::edf(4, 20, 250);
        assert!(edf.len() > SNIFF_LEN);
        let media = MediaType::parse("application/edf").unwrap();
        let got = put_inspected(&store, chunks(&edf, 7_001), media.clone(), 1 << 20)
            .await
            .unwrap();
        let (sha256, sha1) = hashes(&edf);
        assert_eq!(got.blob.sha256, sha256);
        assert_eq!(got.sha1, sha1);
        assert_eq!(got.blob.size, edf.len() as u64);
        assert_eq!(got.kind, ContentKind::Edf);

        // Too large: refused by the store, nothing stored.
        let e = put_inspected(&store, chunks(&edf, 4096), media.clone(), 10_000)
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            IngestError::Blob(BlobError::TooLarge { limit: 10_000 })
        ));

        // A PDF declared as EDF: refused during the upload, nothing stored.
        let mut fake = samples::pdf();
        fake.resize(SNIFF_LEN * 3, b' ');
        let e = put_inspected(&store, chunks(&fake, 1000), media, 1 << 20)
            .await
            .unwrap_err();
        assert!(
            matches!(e, IngestError::Refused(SniffError::Mismatch { .. })),
            "{e:?}"
        );
        assert!(!store.exists(&Sha256Digest::of(&fake)).await.unwrap());

        // A truncated SCP-ECG record is refused once its end is reached.
        let mut ecg = samples::scp_ecg();
        ecg.truncate(50);
        let e = put_inspected(
            &store,
            chunks(&ecg, 10),
            MediaType::parse("application/x-scp-ecg").unwrap(),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, IngestError::Refused(SniffError::Malformed(_))),
            "{e:?}"
        );
        assert!(!store.exists(&Sha256Digest::of(&ecg)).await.unwrap());
    }

    #[tokio::test]
    async fn a_failing_source_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let store = megalis_blobs::LocalBlobStore::open(dir.path()).unwrap();
        let parts: Vec<io::Result<Bytes>> = vec![
            Ok(Bytes::from(samples::pdf())),
            Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            )),
        ];
        let e = put_inspected(
            &store,
            Box::pin(futures::stream::iter(parts)),
            MediaType::parse("application/pdf").unwrap(),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(e, IngestError::Blob(BlobError::Source(_))),
            "{e:?}"
        );
    }
}
