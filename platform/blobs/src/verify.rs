//! The checking stream shared by both backends' `get`.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use ring::digest;

use crate::{BlobError, BlobStream, Sha256Digest};

struct State<S> {
    inner: S,
    hasher: Option<digest::Context>,
    expected: Sha256Digest,
    size: u64,
    seen: u64,
}

impl<S> State<S> {
    fn corrupt(&self, detail: String) -> BlobError {
        // Logged here, once, so that bit rot is seen by operators whatever the caller does.
        tracing::error!(sha256 = %self.expected, %detail, "stored blob does not match its address");
        BlobError::Corrupt {
            sha256: self.expected,
            detail,
        }
    }

    /// Checks the digest of everything seen; the hasher is consumed, so the stream ends after.
    fn check_digest(&mut self) -> Result<(), BlobError> {
        let hasher = self.hasher.take().expect("digest checked once");
        let actual = Sha256Digest::from_ring(hasher.finish());
        if actual == self.expected {
            Ok(())
        } else {
            Err(self.corrupt(format!("stored content hashes to {actual}")))
        }
    }
}

/// Wraps the raw content stream of a blob of `size` bytes (as the backend's metadata says) so
/// that it is checked against `expected` while it flows.
///
/// The chunk that completes `size` bytes is held back until the end of the source has been seen
/// and the digest checked; if the check fails, an error takes its place as the last item. So no
/// consumer ever receives all the bytes of a corrupt blob. A source longer or shorter than `size`
/// is corrupt too (a file truncated or appended to after its size was read).
pub(crate) fn verifying<S>(inner: S, expected: Sha256Digest, size: u64) -> BlobStream
where
    S: Stream<Item = Result<Bytes, BlobError>> + Send + Unpin + 'static,
{
    let state = State {
        inner,
        hasher: Some(digest::Context::new(&digest::SHA256)),
        expected,
        size,
        seen: 0,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        // `hasher` is None once the stream has ended (successfully or with an error).
        st.hasher.as_ref()?;
        loop {
            match st.inner.next().await {
                Some(Err(e)) => {
                    st.hasher = None;
                    return Some((Err(e), st));
                }
                Some(Ok(chunk)) if chunk.is_empty() => continue,
                Some(Ok(chunk)) => {
                    st.seen += chunk.len() as u64;
                    if st.seen > st.size {
                        st.hasher = None;
                        let err = st.corrupt(format!("longer than its recorded {} bytes", st.size));
                        return Some((Err(err), st));
                    }
                    if let Some(h) = st.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    if st.seen < st.size {
                        return Some((Ok(chunk), st));
                    }
                    // Last chunk by size: hold it until the source is over and the digest matches.
                    let item = match drain_trailing(&mut st.inner).await {
                        Err(e) => Err(e),
                        Ok(true) => {
                            Err(st.corrupt(format!("longer than its recorded {} bytes", st.size)))
                        }
                        Ok(false) => st.check_digest().map(|()| chunk),
                    };
                    st.hasher = None;
                    return Some((item, st));
                }
                None => {
                    if st.seen < st.size {
                        st.hasher = None;
                        let err = st.corrupt(format!(
                            "ends after {} of its recorded {} bytes",
                            st.seen, st.size
                        ));
                        return Some((Err(err), st));
                    }
                    // Only an empty blob gets here: its digest is checked too.
                    return match st.check_digest() {
                        Ok(()) => None,
                        Err(e) => Some((Err(e), st)),
                    };
                }
            }
        }
    }))
}

/// Reads past the expected end: `true` if any byte follows.
async fn drain_trailing<S>(inner: &mut S) -> Result<bool, BlobError>
where
    S: Stream<Item = Result<Bytes, BlobError>> + Unpin,
{
    loop {
        match inner.next().await {
            None => return Ok(false),
            Some(Ok(c)) if c.is_empty() => continue,
            Some(Ok(_)) => return Ok(true),
            Some(Err(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(
        chunks: &[&'static [u8]],
    ) -> impl Stream<Item = Result<Bytes, BlobError>> + Unpin + use<> {
        futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
    }

    /// Collects the items as (Ok bytes | "corrupt" | other error).
    async fn run(chunks: &[&'static [u8]], expected: Sha256Digest, size: u64) -> Vec<String> {
        verifying(source(chunks), expected, size)
            .map(|item| match item {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(BlobError::Corrupt { .. }) => "CORRUPT".to_string(),
                Err(e) => format!("ERR {e}"),
            })
            .collect()
            .await
    }

    #[tokio::test]
    async fn table_of_cases() {
        let good = Sha256Digest::of(b"hello world");
        let empty = Sha256Digest::of(b"");
        // (chunks as stored, expected digest, recorded size, items the consumer must see)
        type Case = (
            &'static [&'static [u8]],
            Sha256Digest,
            u64,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (&[b"hello ", b"world"], good, 11, vec!["hello ", "world"]),
            (
                &[b"hello ", b"", b"world", b""],
                good,
                11,
                vec!["hello ", "world"],
            ),
            // A flipped byte in the last chunk: the last chunk is replaced by the error.
            (&[b"hello ", b"worle"], good, 11, vec!["hello ", "CORRUPT"]),
            // A flipped byte early: data already sent, but the end is still an error.
            (&[b"jello ", b"world"], good, 11, vec!["jello ", "CORRUPT"]),
            // Truncated source.
            (&[b"hello "], good, 11, vec!["hello ", "CORRUPT"]),
            // Source longer than the recorded size, extra bytes in a chunk or after it.
            (&[b"hello ", b"worldX"], good, 11, vec!["hello ", "CORRUPT"]),
            (
                &[b"hello ", b"world", b"X"],
                good,
                11,
                vec!["hello ", "CORRUPT"],
            ),
            (&[], empty, 0, vec![]),
            (&[], good, 0, vec!["CORRUPT"]),
            (&[b"x"], empty, 0, vec!["CORRUPT"]),
        ];
        for (chunks, expected, size, want) in cases {
            assert_eq!(run(chunks, expected, size).await, want, "case {chunks:?}");
        }
    }
}
