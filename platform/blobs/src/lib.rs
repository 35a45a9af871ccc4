//! Blob store: documents, DICOM instances, ECG/EEG recordings and attachments, up to several
//! hundred MB each, kept by content address (SHA-256) behind one trait, [`BlobStore`].
//!
//! Two backends, chosen by [`BlobStoreConfig::backend`] and opened with [`open`]:
//! - [`local::LocalBlobStore`]: files under a directory, written atomically (temp file, fsync,
//!   rename, fsync of the directory);
//! - [`s3::S3BlobStore`]: any S3-compatible service through the `object_store` crate.
//!
//! Data flows as streams both ways, never as a whole blob in memory: `put` takes a stream of
//! [`Bytes`] chunks (or an `AsyncRead`) and hashes it on the way; `get` returns a [`BlobStream`].
//!
//! # Integrity on read
//! Every `get` stream hashes what it yields and compares with the content address. A blob whose
//! stored bytes no longer match is never delivered as good data: the stream **withholds the last
//! chunk** until the whole content has been read and its digest checked, and then yields
//! `Err(BlobError::Corrupt)` in its place as its final item. An HTTP response built on the stream
//! is therefore aborted before its last bytes: with a `Content-Length` the client sees a short
//! body, with chunked encoding it never gets the terminating chunk, and in both cases it cannot
//! take the response for a complete one. A caller who must know before sending the first byte
//! (e.g. to answer 500 instead of aborting a 200) calls [`BlobStore::verify`] first, at the price
//! of reading the blob twice.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

pub mod local;
pub mod s3;
mod verify;

pub use local::LocalBlobStore;
pub use s3::S3BlobStore;

/// A stream of blob content as `get` returns it. See the crate documentation for how it reports
/// corruption (an error as its last item, in place of the last chunk).
pub type BlobStream = Pin<Box<dyn Stream<Item = Result<Bytes, BlobError>> + Send + 'static>>;

/// Content handed to `put`: chunks of bytes, or the I/O error that ended the source (for instance
/// a client that went away in the middle of an upload).
pub type PutStream = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send + 'static>>;

/// The SHA-256 digest of a blob's content: its address.
///
/// Parsing accepts exactly 64 hexadecimal digits, so a digest taken from a URL can never name a
/// path outside the store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hexadecimal, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest of `data`, computed in one go (for small contents and tests).
    pub fn of(data: &[u8]) -> Self {
        let d = ring::digest::digest(&ring::digest::SHA256, data);
        Self::from_ring(d)
    }

    pub(crate) fn from_ring(d: ring::digest::Digest) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Self(out)
    }

    /// The two fan-out levels (`ab`, `cd`) and the full hex name, shared by both backends.
    pub(crate) fn fan_out(&self) -> (String, String, String) {
        let hex = self.to_hex();
        (hex[0..2].to_string(), hex[2..4].to_string(), hex)
    }
}

impl FromStr for Sha256Digest {
    type Err = BlobError;

    fn from_str(s: &str) -> Result<Self, BlobError> {
        let invalid = || BlobError::InvalidDigest(s.chars().take(80).collect());
        if s.len() != 64 {
            return Err(invalid());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| invalid())?;
        Ok(Self(out))
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the store knows of a blob: its address and its size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// The one error type of this crate.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no blob with SHA-256 {0}")]
    NotFound(Sha256Digest),
    #[error("blob larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// Stored bytes that no longer match their address (bit rot, truncation, tampering).
    #[error("blob {sha256} is corrupt: {detail}")]
    Corrupt {
        sha256: Sha256Digest,
        detail: String,
    },
    #[error("not a SHA-256 digest (64 hexadecimal digits): {0:?}")]
    InvalidDigest(String),
    #[error("blob store configuration: {0}")]
    Config(String),
    /// The content handed to `put` failed (e.g. the uploading client went away).
    #[error("reading the content to store failed: {0}")]
    Source(#[source] io::Error),
    #[error("blob store I/O ({context}): {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("S3 blob store: {0}")]
    S3(#[from] object_store::Error),
}

impl BlobError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}

/// The blob store. Object safe: the server holds an `Arc<dyn BlobStore>`.
///
/// Every implementation is content-addressed: storing the same bytes twice stores them once and
/// returns the same [`BlobRef`]; a blob never appears under its address before it is complete and
/// durable.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Stores the content of `data`, hashing it on the way, and returns its address and size.
    ///
    /// With `max_size`, a content longer than that fails with [`BlobError::TooLarge`] as soon as
    /// the limit is passed, and nothing is left behind. Dropping the returned future (a client
    /// that hangs up) leaves nothing behind either.
    async fn put(&self, data: PutStream, max_size: Option<u64>) -> Result<BlobRef, BlobError>;

    /// Streams a blob's content, checked against its address on the way (see the crate
    /// documentation for how corruption is reported). [`BlobError::NotFound`] when absent.
    async fn get(&self, sha256: &Sha256Digest) -> Result<BlobStream, BlobError>;

    /// The blob's size if it is stored, without reading nor checking its content.
    async fn head(&self, sha256: &Sha256Digest) -> Result<Option<BlobRef>, BlobError>;

    /// Removes a blob; `true` if it was there. For retention and tests only: documents are never
    /// deleted by users (deletion is a status change in the documents context).
    async fn delete(&self, sha256: &Sha256Digest) -> Result<bool, BlobError>;

    /// Whether a blob is stored (without checking its content).
    async fn exists(&self, sha256: &Sha256Digest) -> Result<bool, BlobError> {
        Ok(self.head(sha256).await?.is_some())
    }

    /// Reads the whole blob and checks it against its address, holding no more than one chunk
    /// in memory. [`BlobError::Corrupt`] if it does not match, [`BlobError::NotFound`] if absent.
    /// For callers that must know before they serve the first byte.
    async fn verify(&self, sha256: &Sha256Digest) -> Result<BlobRef, BlobError> {
        let mut stream = self.get(sha256).await?;
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            size += chunk?.len() as u64;
        }
        Ok(BlobRef {
            sha256: *sha256,
            size,
        })
    }

    /// Stores the content read from `reader` (a file, a request body adapter…), streamed.
    async fn put_reader(
        &self,
        reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        max_size: Option<u64>,
    ) -> Result<BlobRef, BlobError> {
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, CHUNK_SIZE);
        self.put(Box::pin(stream), max_size).await
    }

    /// Stores a content already in memory (small attachments, tests).
    async fn put_bytes(&self, data: Bytes) -> Result<BlobRef, BlobError> {
        self.put(Box::pin(futures::stream::iter([Ok(data)])), None)
            .await
    }
}

/// Size of the chunks read from disk and from readers: large enough that per-chunk overhead
/// (a thread hop for each file read, a hash update) is small, small enough to stay cache-friendly.
pub(crate) const CHUNK_SIZE: usize = 256 * 1024;

/// Which backend holds the blobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobBackend {
    /// Files under [`BlobStoreConfig::path`] (default: `<data-dir>/blobs`, set by the server).
    #[default]
    Local,
    /// An S3-compatible bucket.
    S3,
}

impl FromStr for BlobBackend {
    type Err = BlobError;

    fn from_str(s: &str) -> Result<Self, BlobError> {
        match s {
            "local" => Ok(Self::Local),
            "s3" => Ok(Self::S3),
            other => Err(BlobError::Config(format!(
                "backend must be `local` or `s3`, not {other:?}"
            ))),
        }
    }
}

/// Configuration of the blob store: the `blobs.*` keys of the server configuration.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobStoreConfig {
    pub backend: BlobBackend,
    /// Root directory of the local backend (required for `local`).
    pub path: Option<PathBuf>,
    pub s3_bucket: Option<String>,
    /// Endpoint URL of an S3-compatible service (MinIO, Ceph RGW, Garage…); unset for AWS.
    pub s3_endpoint: Option<String>,
    pub s3_region: Option<String>,
    pub s3_access_key_id: Option<String>,
    /// Secret: redacted by `Debug`.
    pub s3_secret_access_key: Option<String>,
    /// Allow a plain `http://` endpoint (tests, in-cluster services behind a mesh).
    pub s3_allow_http: bool,
}

impl fmt::Debug for BlobStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStoreConfig")
            .field("backend", &self.backend)
            .field("path", &self.path)
            .field("s3_bucket", &self.s3_bucket)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field(
                "s3_secret_access_key",
                &self.s3_secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("s3_allow_http", &self.s3_allow_http)
            .finish()
    }
}

/// Opens the configured backend. The local backend creates its directories (blocking briefly: call
/// it at start-up); the S3 backend checks its settings but does not contact the service (the
/// bucket must exist).
pub fn open(config: &BlobStoreConfig) -> Result<Arc<dyn BlobStore>, BlobError> {
    match config.backend {
        BlobBackend::Local => {
            let path = config.path.as_ref().ok_or_else(|| {
                BlobError::Config("blobs.path is required for the local backend".into())
            })?;
            Ok(Arc::new(LocalBlobStore::open(path)?))
        }
        BlobBackend::S3 => Ok(Arc::new(S3BlobStore::from_config(config)?)),
    }
}

/// A store held in memory (`object_store`'s `InMemory` under the S3 backend's code): for tests
/// and `megalis plugin run`, where nothing must outlive the process.
pub fn in_memory() -> Arc<dyn BlobStore> {
    Arc::new(S3BlobStore::new(Arc::new(
        object_store::memory::InMemory::new(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parsing_accepts_only_64_hex_digits() {
        let good = "a".repeat(64);
        let cases = [
            (good.as_str(), true),
            (
                "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                true,
            ),
            ("", false),
            (&good[..63], false),
            ("../../../../etc/passwd", false),
            ("g".repeat(64).leak(), false),
            (format!("{}/", &good[..63]).leak(), false),
        ];
        for (input, ok) in cases {
            assert_eq!(input.parse::<Sha256Digest>().is_ok(), ok, "{input:?}");
        }
        // Display is always lower case, whatever the input case.
        let upper: Sha256Digest = cases[1].0.parse().unwrap();
        assert_eq!(upper, Sha256Digest::of(b""));
        assert_eq!(upper.to_string(), cases[1].0.to_lowercase());
    }

    #[test]
    fn config_debug_redacts_the_secret() {
        let config = BlobStoreConfig {
            backend: BlobBackend::S3,
            s3_secret_access_key: Some("very-secret".into()),
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret") && shown.contains("<redacted>"));
        assert_eq!("s3".parse::<BlobBackend>().unwrap(), BlobBackend::S3);
        assert!("ftp".parse::<BlobBackend>().is_err());
    }
}
