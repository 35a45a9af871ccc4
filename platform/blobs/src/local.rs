//! Local filesystem backend.
//!
//! Layout under the root directory:
//! ```text
//! <root>/sha256/ab/cd/abcd…(64 hex digits)   one file per blob, named by the SHA-256 of its content
//! <root>/tmp/put-XXXXXX.part                  uploads in progress (same filesystem, for rename)
//! ```
//!
//! A put writes to a temp file in `tmp/`, hashing as it goes, fsyncs the file, renames it to its
//! content name and fsyncs the directory (and the parent of any fan-out directory it created).
//! Rename is atomic within a filesystem, so a content name only ever refers to a complete,
//! durable file; a crash leaves at worst a `.part` file in `tmp/`, swept at the next `open` once
//! older than [`STALE_TEMP_AGE`]. The temp file is removed when a put fails, exceeds its size
//! limit or is dropped half-way.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use ring::digest;

use crate::verify::verifying;
use crate::{BlobError, BlobRef, BlobStore, BlobStream, CHUNK_SIZE, PutStream, Sha256Digest};

/// Temp files older than this are left-overs of a crash and removed by `open`. Long enough that
/// no upload still running (several hundred MB over a slow link) is ever swept by another
/// process sharing the directory.
pub const STALE_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating if needed) a store rooted at `root`, and sweeps stale temp files.
    /// Blocking: call at start-up.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, BlobError> {
        let root = root.as_ref().to_path_buf();
        let objects = root.join("sha256");
        let tmp = root.join("tmp");
        for dir in [&root, &objects, &tmp] {
            fs::create_dir_all(dir)
                .map_err(|e| BlobError::io(format!("creating {}", dir.display()), e))?;
        }
        fsync_dir(&root)?;
        let store = Self { root, objects, tmp };
        let swept = store.sweep_temp_files(STALE_TEMP_AGE)?;
        if swept > 0 {
            tracing::warn!(
                swept,
                dir = %store.tmp.display(),
                "removed stale temp files left by an interrupted blob upload"
            );
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of uploads in progress.
    pub fn temp_dir(&self) -> &Path {
        &self.tmp
    }

    /// Where the blob with this digest lives (whether or not it is there).
    pub fn path_of(&self, sha256: &Sha256Digest) -> PathBuf {
        let (a, b, hex) = sha256.fan_out();
        self.objects.join(a).join(b).join(hex)
    }

    /// Removes temp files last modified more than `older_than` ago; returns how many.
    pub fn sweep_temp_files(&self, older_than: Duration) -> Result<usize, BlobError> {
        let ctx = || format!("sweeping {}", self.tmp.display());
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in fs::read_dir(&self.tmp).map_err(|e| BlobError::io(ctx(), e))? {
            let entry = entry.map_err(|e| BlobError::io(ctx(), e))?;
            let Ok(meta) = entry.metadata() else { continue };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if meta.is_file() && age >= older_than {
                match fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    // Swept concurrently by another process: fine.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlobError::io(ctx(), e)),
                }
            }
        }
        Ok(removed)
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(&self, mut data: PutStream, max_size: Option<u64>) -> Result<BlobRef, BlobError> {
        let tmp_dir = self.tmp.clone();
        // NamedTempFile deletes its file when dropped: on every error path below, and when this
        // future is dropped half-way (a client that hangs up).
        let temp = blocking(move || {
            tempfile::Builder::new()
                .prefix("put-")
                .suffix(".part")
                .tempfile_in(&tmp_dir)
                .map_err(|e| BlobError::io("creating temp file", e))
        })
        .await?;
        let std_file = temp
            .as_file()
            .try_clone()
            .map_err(|e| BlobError::io("opening temp file", e))?;
        // Batches (about CHUNK_SIZE) are hashed and written on blocking threads while this task
        // receives the next one: receiving, hashing and writing overlap, and at most two
        // batches are held in memory.
        let mut writer = BatchWriter::new(std_file);
        // An HTTP body arrives in pieces of a few KiB: they are gathered into one buffer per
        // batch (a memcpy), so the blocking thread hashes and writes large buffers, one system
        // call per batch rather than per piece.
        let mut batch = bytes::BytesMut::with_capacity(CHUNK_SIZE);
        let mut size = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(BlobError::Source)?;
            size += chunk.len() as u64;
            if let Some(limit) = max_size
                && size > limit
            {
                return Err(BlobError::TooLarge { limit });
            }
            if batch.is_empty() && chunk.len() >= CHUNK_SIZE {
                // Already a large buffer (a file read): no copy.
                writer.write(vec![chunk]).await?;
                continue;
            }
            batch.extend_from_slice(&chunk);
            if batch.len() >= CHUNK_SIZE {
                let full =
                    std::mem::replace(&mut batch, bytes::BytesMut::with_capacity(CHUNK_SIZE));
                writer.write(vec![full.freeze()]).await?;
            }
        }
        writer.write(vec![batch.freeze()]).await?;
        // The content must be on disk before it gets its name.
        let sha256 = writer.sync().await?;
        let target = self.path_of(&sha256);
        let objects = self.objects.clone();
        blocking(move || commit(temp, &objects, &target, size)).await?;
        Ok(BlobRef { sha256, size })
    }

    async fn get(&self, sha256: &Sha256Digest) -> Result<BlobStream, BlobError> {
        let path = self.path_of(sha256);
        let opened = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                let file = fs::File::open(&path)?;
                let size = file.metadata()?.len();
                Ok::<_, io::Error>((file, size))
            }
        })
        .await
        .map_err(|e| BlobError::io("blocking task", io::Error::other(e)))?;
        let (file, size) = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::NotFound(*sha256));
            }
            Err(e) => return Err(BlobError::io(format!("opening {}", path.display()), e)),
        };
        let raw = read_ahead(file);
        Ok(verifying(raw, *sha256, size))
    }

    async fn head(&self, sha256: &Sha256Digest) -> Result<Option<BlobRef>, BlobError> {
        let path = self.path_of(sha256);
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(BlobRef {
                sha256: *sha256,
                size: m.len(),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::io(
                format!("reading metadata of {}", path.display()),
                e,
            )),
        }
    }

    async fn delete(&self, sha256: &Sha256Digest) -> Result<bool, BlobError> {
        let path = self.path_of(sha256);
        blocking(move || match fs::remove_file(&path) {
            Ok(()) => {
                fsync_dir(path.parent().expect("blob path has a parent"))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(BlobError::io(format!("removing {}", path.display()), e)),
        })
        .await
    }
}

/// Streams a file in chunks of CHUNK_SIZE, reading the next chunk on a blocking thread while the
/// consumer hashes and sends the current one. A blocking thread is held only during a read, never
/// while a slow consumer waits, and at most two chunks are in memory.
fn read_ahead(
    file: fs::File,
) -> impl futures::Stream<Item = Result<Bytes, BlobError>> + Send + Unpin + 'static {
    type Read = tokio::task::JoinHandle<io::Result<(fs::File, Bytes)>>;
    fn spawn_read(mut file: fs::File) -> Read {
        tokio::task::spawn_blocking(move || {
            let mut buf = bytes::BytesMut::zeroed(CHUNK_SIZE);
            let mut filled = 0;
            while filled < buf.len() {
                match io::Read::read(&mut file, &mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf.truncate(filled);
            Ok((file, buf.freeze()))
        })
    }
    Box::pin(futures::stream::unfold(
        Some(spawn_read(file)),
        |next: Option<Read>| async move {
            let read = next?.await;
            match read {
                Ok(Ok((_, chunk))) if chunk.is_empty() => None,
                Ok(Ok((file, chunk))) => Some((Ok(chunk), Some(spawn_read(file)))),
                Ok(Err(e)) => Some((Err(BlobError::io("reading blob", e)), None)),
                Err(e) => Some((
                    Err(BlobError::io("blocking task", io::Error::other(e))),
                    None,
                )),
            }
        },
    ))
}

/// Writes batches of chunks to a file on a blocking thread, one batch in flight at a time.
/// A write in flight: the file being written on one blocking thread, the hash being updated on
/// another.
type InFlight = (
    tokio::task::JoinHandle<io::Result<fs::File>>,
    tokio::task::JoinHandle<digest::Context>,
);

struct BatchWriter {
    file: Option<(fs::File, digest::Context)>,
    in_flight: Option<InFlight>,
}

impl BatchWriter {
    fn new(file: fs::File) -> Self {
        Self {
            file: Some((file, digest::Context::new(&digest::SHA256))),
            in_flight: None,
        }
    }

    /// Waits for the batch in flight, if any, and gets the file (and the running hash) back.
    async fn file(&mut self) -> Result<(fs::File, digest::Context), BlobError> {
        if let Some((write, hash)) = self.in_flight.take() {
            let file = write
                .await
                .map_err(|e| BlobError::io("blocking task", io::Error::other(e)))?
                .map_err(|e| BlobError::io("writing temp file", e))?;
            let hasher = hash
                .await
                .map_err(|e| BlobError::io("blocking task", io::Error::other(e)))?;
            self.file = Some((file, hasher));
        }
        Ok(self
            .file
            .take()
            .expect("file is here when no write is in flight"))
    }

    /// Starts writing `batch` and hashing it, each on a blocking thread, once the previous
    /// batch is done; returns without waiting. Receiving the next batch, hashing this one and
    /// writing it all overlap (a streamed document upload also computes a SHA-1 on the
    /// receiving task).
    async fn write(&mut self, batch: Vec<Bytes>) -> Result<(), BlobError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (mut file, mut hasher) = self.file().await?;
        let to_hash = batch.clone();
        let write = tokio::task::spawn_blocking(move || {
            for chunk in &batch {
                io::Write::write_all(&mut file, chunk)?;
            }
            Ok(file)
        });
        let hash = tokio::task::spawn_blocking(move || {
            for chunk in &to_hash {
                hasher.update(chunk);
            }
            hasher
        });
        self.in_flight = Some((write, hash));
        Ok(())
    }

    /// Waits for the last batch, fsyncs the file and returns the content's SHA-256.
    async fn sync(mut self) -> Result<Sha256Digest, BlobError> {
        let (file, hasher) = self.file().await?;
        blocking(move || {
            file.sync_all()
                .map_err(|e| BlobError::io("fsync of temp file", e))
        })
        .await?;
        Ok(Sha256Digest::from_ring(hasher.finish()))
    }
}

/// Gives the complete, fsynced temp file its content name (blocking).
fn commit(
    temp: tempfile::NamedTempFile,
    objects: &Path,
    target: &Path,
    size: u64,
) -> Result<(), BlobError> {
    match fs::metadata(target) {
        // Already stored: same address, hence same content. `temp` is dropped, so removed.
        Ok(m) if m.len() == size => return Ok(()),
        // Same address, different size: the stored copy is damaged; the new one replaces it.
        Ok(m) => tracing::warn!(
            path = %target.display(),
            stored = m.len(),
            size,
            "replacing a stored blob whose size does not match its content"
        ),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(BlobError::io(
                format!("reading metadata of {}", target.display()),
                e,
            ));
        }
    }
    let dir = target.parent().expect("blob path has a parent");
    // Create the two fan-out levels; a directory entry that is new is made durable by an fsync
    // of its parent, or a crash could lose the directory and the blob with it.
    let first = dir.parent().expect("fan-out has two levels");
    for (level, parent) in [(first, objects), (dir, first)] {
        match fs::create_dir(level) {
            Ok(()) => fsync_dir(parent)?,
            // Made by an earlier or a concurrent put.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(BlobError::io(format!("creating {}", level.display()), e)),
        }
    }
    temp.persist(target).map_err(|e| {
        BlobError::io(
            format!("renaming temp file to {}", target.display()),
            e.error,
        )
    })?;
    fsync_dir(dir)
}

fn fsync_dir(dir: &Path) -> Result<(), BlobError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BlobError::io(format!("fsync of directory {}", dir.display()), e))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlobError::io("blocking task", io::Error::other(e)))?
}
