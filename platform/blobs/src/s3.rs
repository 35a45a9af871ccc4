//! S3-compatible backend, through the `object_store` crate.
//!
//! Keys: `sha256/ab/cd/abcd…` (the same content addressing as the local backend) and, for large
//! uploads in progress, `tmp/<random>`.
//!
//! # Why a temporary key
//! The content key is the SHA-256 of the content, known only once the whole stream has been read;
//! but an S3 object's key must be given when its upload starts, and S3 has no rename. So:
//! - a content of at most one part (`part_size`, 8 MiB by default) is buffered, hashed, and, unless
//!   already stored, sent with a single PUT straight to its content key;
//! - a larger one is sent as a multipart upload to `tmp/<random>` while being hashed, then copied
//!   server-side (CopyObject) to its content key and the temporary object deleted.
//!
//! S3 makes an object visible only once its PUT, multipart completion or copy has succeeded, so a
//! content key never names a partial object. A put that fails or is dropped aborts its multipart
//! upload (in the background when dropped); a process killed in the middle, or a put dropped
//! while its CreateMultipartUpload request is in flight, can leave an incomplete multipart upload
//! or a `tmp/` object behind, which a bucket lifecycle rule removes (see docs/operations). CopyObject is limited to 5 GiB on AWS: far above our largest blobs.
//!
//! Integrity in transit is covered by SigV4, which signs the SHA-256 of every request payload;
//! integrity at rest is checked on every `get`, as for the local backend.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{
    ClientOptions, CopyMode, CopyOptions, GetOptions, ObjectStore, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use ring::digest;

use crate::verify::verifying;
use crate::{BlobError, BlobRef, BlobStore, BlobStoreConfig, BlobStream, PutStream, Sha256Digest};

/// Default multipart part size: above S3's 5 MiB minimum, small enough to keep memory low.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3's minimum size for every part but the last.
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploaded at once. Memory held by a put is at most (1 + this) × part size.
const MAX_CONCURRENT_PARTS: usize = 2;

#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: Arc<dyn ObjectStore>,
    part_size: usize,
}

impl S3BlobStore {
    /// Builds the client from the `blobs.s3_*` settings; does not contact the service.
    ///
    /// Without an access key pair, credentials come from the environment of the pod the way AWS
    /// SDKs find them (web identity token, container or instance metadata).
    pub fn from_config(config: &BlobStoreConfig) -> Result<Self, BlobError> {
        let bucket = config
            .s3_bucket
            .as_deref()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                BlobError::Config("blobs.s3_bucket is required for the s3 backend".into())
            })?;
        // No overall request timeout: a GET of several hundred MB streamed to a slow client may
        // take long, and the timeout would cut the body. Connecting still has a bound.
        let client = ClientOptions::new()
            .with_timeout_disabled()
            .with_connect_timeout(Duration::from_secs(10))
            .with_allow_http(config.s3_allow_http);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_allow_http(config.s3_allow_http)
            .with_client_options(client);
        if let Some(region) = &config.s3_region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.s3_endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        match (&config.s3_access_key_id, &config.s3_secret_access_key) {
            (Some(id), Some(secret)) => {
                builder = builder
                    .with_access_key_id(id)
                    .with_secret_access_key(secret);
            }
            (None, None) => {}
            _ => {
                return Err(BlobError::Config(
                    "blobs.s3_access_key_id and blobs.s3_secret_access_key go together".into(),
                ));
            }
        }
        let store = builder
            .build()
            .map_err(|e| BlobError::Config(format!("s3 backend: {e}")))?;
        Ok(Self::new(Arc::new(store)))
    }

    /// A store over any `object_store` implementation.
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self {
            store,
            part_size: DEFAULT_PART_SIZE,
        }
    }

    /// Changes the multipart part size (at least 5 MiB, S3's minimum).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size.max(MIN_PART_SIZE);
        self
    }

    /// The underlying object store (for listings in tests and maintenance tools).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key of the blob with this digest: `sha256/ab/cd/<hex>`.
    pub fn key_of(sha256: &Sha256Digest) -> Path {
        let (a, b, hex) = sha256.fan_out();
        Path::from(format!("sha256/{a}/{b}/{hex}"))
    }

    async fn head_key(&self, key: &Path) -> Result<Option<u64>, BlobError> {
        match self
            .store
            .get_opts(key, GetOptions::new().with_head(true))
            .await
        {
            Ok(r) => Ok(Some(r.meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete_key(&self, key: &Path) -> Result<(), BlobError> {
        let key = key.clone();
        let mut results = self
            .store
            .delete_stream(futures::stream::once(async move { Ok(key) }).boxed());
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Moves a completed temporary object to its content key (unless the content is there).
    async fn publish(&self, tmp: &Path, key: &Path, size: u64) -> Result<(), BlobError> {
        if self.head_key(key).await? != Some(size) {
            self.store
                .copy_opts(tmp, key, CopyOptions::new().with_mode(CopyMode::Overwrite))
                .await?;
        }
        if let Err(e) = self.delete_key(tmp).await {
            // The blob is stored; the left-over is removed by the bucket's lifecycle rule.
            tracing::warn!(key = %tmp, error = %e, "could not delete temporary blob object");
        }
        Ok(())
    }
}

/// A multipart upload that is aborted if dropped before completion (a put whose future is
/// dropped), so its parts do not linger in the bucket.
struct Upload(Option<WriteMultipart>);

impl Upload {
    fn get(&mut self) -> &mut WriteMultipart {
        self.0.as_mut().expect("upload in progress")
    }

    fn take(mut self) -> WriteMultipart {
        self.0.take().expect("upload in progress")
    }

    async fn abort(self) {
        if let Err(e) = self.take().abort().await {
            tracing::warn!(error = %e, "could not abort multipart upload");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if let Some(upload) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(error = %e, "could not abort dropped multipart upload");
                }
            });
        }
    }
}

#[async_trait::async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, mut data: PutStream, max_size: Option<u64>) -> Result<BlobRef, BlobError> {
        let mut hasher = digest::Context::new(&digest::SHA256);
        let mut size = 0u64;
        // Chunks of the first part, kept until we know whether the content fits in one part.
        let mut first: Vec<Bytes> = Vec::new();
        let mut upload: Option<Upload> = None;
        let tmp = Path::from(format!("tmp/{:032x}", rand::random::<u128>()));

        while let Some(chunk) = data.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    if let Some(u) = upload.take() {
                        u.abort().await;
                    }
                    return Err(BlobError::Source(e));
                }
            };
            size += chunk.len() as u64;
            if let Some(limit) = max_size
                && size > limit
            {
                if let Some(u) = upload.take() {
                    u.abort().await;
                }
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&chunk);
            match upload.as_mut() {
                Some(u) => {
                    // Back-pressure: wait for an in-flight part before buffering more.
                    u.get().wait_for_capacity(MAX_CONCURRENT_PARTS).await?;
                    u.get().put(chunk);
                }
                None => {
                    first.push(chunk);
                    if size > self.part_size as u64 {
                        let multipart = self
                            .store
                            .put_multipart_opts(&tmp, PutMultipartOptions::default())
                            .await?;
                        let mut u = Upload(Some(WriteMultipart::new_with_chunk_size(
                            multipart,
                            self.part_size,
                        )));
                        for c in first.drain(..) {
                            u.get().put(c);
                        }
                        upload = Some(u);
                    }
                }
            }
        }

        let sha256 = Sha256Digest::from_ring(hasher.finish());
        let key = Self::key_of(&sha256);
        match upload {
            Some(u) => {
                // `finish` aborts the upload itself if completing it fails.
                u.take().finish().await?;
                self.publish(&tmp, &key, size).await?;
            }
            None => {
                if self.head_key(&key).await? != Some(size) {
                    let payload: PutPayload = first.into_iter().collect();
                    self.store
                        .put_opts(&key, payload, PutOptions::default())
                        .await?;
                }
            }
        }
        Ok(BlobRef { sha256, size })
    }

    async fn get(&self, sha256: &Sha256Digest) -> Result<BlobStream, BlobError> {
        let key = Self::key_of(sha256);
        let result = match self.store.get_opts(&key, GetOptions::default()).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(BlobError::NotFound(*sha256));
            }
            Err(e) => return Err(e.into()),
        };
        let size = result.meta.size;
        let raw = result.into_stream().map_err(BlobError::from);
        Ok(verifying(raw, *sha256, size))
    }

    async fn head(&self, sha256: &Sha256Digest) -> Result<Option<BlobRef>, BlobError> {
        Ok(self
            .head_key(&Self::key_of(sha256))
            .await?
            .map(|size| BlobRef {
                sha256: *sha256,
                size,
            }))
    }

    async fn delete(&self, sha256: &Sha256Digest) -> Result<bool, BlobError> {
        let key = Self::key_of(sha256);
        if self.head_key(&key).await?.is_none() {
            return Ok(false);
        }
        self.delete_key(&key).await?;
        Ok(true)
    }
}
