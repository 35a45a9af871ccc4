//! Local filesystem backend: behaviour on a real directory.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use megalis_blobs::{
    BlobBackend, BlobError, BlobRef, BlobStore, BlobStoreConfig, LocalBlobStore, PutStream,
    Sha256Digest,
};

/// Deterministic pseudo-random content (xorshift), so digests differ between sizes and seeds.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The content as a stream of `chunk`-sized pieces, as an HTTP body would arrive.
fn chunked(data: &[u8], chunk: usize) -> PutStream {
    let pieces: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Drains a get stream: (bytes received before the end or the first error, the error if any).
async fn drain(store: &dyn BlobStore, d: &Sha256Digest) -> (Vec<u8>, Option<BlobError>) {
    let mut stream = store.get(d).await.expect("get opens the blob");
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(e) => {
                // The error must be the last item.
                assert!(stream.next().await.is_none(), "items after the error");
                return (got, Some(e));
            }
        }
    }
    (got, None)
}

fn open(dir: &Path) -> LocalBlobStore {
    LocalBlobStore::open(dir).expect("open local store")
}

#[tokio::test]
async fn round_trip_is_streamed_and_content_addressed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = content(3 * 1024 * 1024 + 17, 1);
    let put = store.put(chunked(&data, 10_000), None).await.unwrap();
    assert_eq!(
        put,
        BlobRef {
            sha256: Sha256Digest::of(&data),
            size: data.len() as u64
        }
    );
    // Fanned out by the first two pairs of hex digits.
    let hex = put.sha256.to_hex();
    let expected_path = dir
        .path()
        .join("sha256")
        .join(&hex[0..2])
        .join(&hex[2..4])
        .join(&hex);
    assert_eq!(store.path_of(&put.sha256), expected_path);
    assert_eq!(std::fs::read(&expected_path).unwrap(), data);

    assert_eq!(store.head(&put.sha256).await.unwrap(), Some(put));
    assert!(store.exists(&put.sha256).await.unwrap());

    // Read back in bounded chunks (never the whole blob at once).
    let mut stream = store.get(&put.sha256).await.unwrap();
    let (mut got, mut chunks, mut largest) = (Vec::new(), 0, 0);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        largest = largest.max(chunk.len());
        chunks += 1;
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, data);
    assert!(
        chunks > 1 && largest <= 256 * 1024,
        "{chunks} chunks, largest {largest}"
    );
    assert_eq!(store.verify(&put.sha256).await.unwrap(), put);

    // Nothing left in the temp directory after a successful put.
    assert!(files_under(store.temp_dir()).is_empty());
}

#[tokio::test]
async fn empty_blob_and_put_reader() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BlobStore> = Arc::new(open(dir.path()));
    let empty = store.put_bytes(Bytes::new()).await.unwrap();
    assert_eq!(empty.size, 0);
    assert_eq!(empty.sha256, Sha256Digest::of(b""));
    let (got, err) = drain(store.as_ref(), &empty.sha256).await;
    assert!(got.is_empty() && err.is_none(), "{err:?}");

    let data = content(700_000, 2);
    let from_reader = store
        .put_reader(Box::new(std::io::Cursor::new(data.clone())), Some(700_000))
        .await
        .unwrap();
    assert_eq!(from_reader.sha256, Sha256Digest::of(&data));
}

#[tokio::test]
async fn putting_existing_content_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = content(100_000, 3);
    let first = store.put(chunked(&data, 4096), None).await.unwrap();
    let path = store.path_of(&first.sha256);
    let before = std::fs::metadata(&path).unwrap();
    // Different chunking, same content.
    let second = store.put(chunked(&data, 777), None).await.unwrap();
    assert_eq!(first, second);
    let after = std::fs::metadata(&path).unwrap();
    // The stored file was left alone (same inode, not replaced by a rename).
    assert_eq!(before.ino(), after.ino());
    assert_eq!(files_under(dir.path()), vec![path]);
}

#[tokio::test]
async fn corruption_is_reported_and_the_last_chunk_withheld() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = content(1024 * 1024, 4);
    let blob = store.put(chunked(&data, 65536), None).await.unwrap();
    let path = store.path_of(&blob.sha256);

    // Flip one byte in the middle, in place, as bit rot would.
    {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        f.seek(SeekFrom::Start(500_000)).unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        f.seek(SeekFrom::Start(500_000)).unwrap();
        f.write_all(&[b[0] ^ 0x01]).unwrap();
    }
    let (got, err) = drain(&store, &blob.sha256).await;
    assert!(
        matches!(err, Some(BlobError::Corrupt { sha256, .. }) if sha256 == blob.sha256),
        "{err:?}"
    );
    // The consumer never received the whole blob, so an HTTP body built on it is incomplete.
    assert!(got.len() < data.len());
    assert!(matches!(
        store.verify(&blob.sha256).await,
        Err(BlobError::Corrupt { .. })
    ));

    // Truncation is corruption too.
    std::fs::write(&path, &data[..1000]).unwrap();
    let (got, err) = drain(&store, &blob.sha256).await;
    assert!(matches!(err, Some(BlobError::Corrupt { .. })), "{err:?}");
    assert!(got.len() < 1000);

    // Putting the good content again repairs a copy whose size differs.
    store.put(chunked(&data, 65536), None).await.unwrap();
    assert_eq!(store.verify(&blob.sha256).await.unwrap(), blob);
}

#[tokio::test]
async fn size_limit_fails_cleanly_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let data = content(1024 * 1024, 5);
    let err = store
        .put(chunked(&data, 65536), Some(512 * 1024))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { limit } if limit == 512 * 1024),
        "{err:?}"
    );
    assert_eq!(files_under(dir.path()), Vec::<std::path::PathBuf>::new());
    assert!(!store.exists(&Sha256Digest::of(&data)).await.unwrap());

    // Exactly at the limit is accepted.
    let ok = store
        .put(chunked(&data, 65536), Some(data.len() as u64))
        .await
        .unwrap();
    assert_eq!(ok.size, data.len() as u64);
}

#[tokio::test]
async fn failing_source_and_dropped_put_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    // The uploading client goes away after some data.
    let items: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(content(100_000, 6))),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "client gone",
        )),
    ];
    let err = store
        .put(Box::pin(futures::stream::iter(items)), None)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Source(_)), "{err:?}");
    assert!(files_under(dir.path()).is_empty());

    // The put future is dropped while its source stalls (a timeout in the caller).
    let stalled: PutStream = Box::pin(
        futures::stream::iter([Ok(Bytes::from(content(100_000, 7)))])
            .chain(futures::stream::pending()),
    );
    let timed_out =
        tokio::time::timeout(Duration::from_millis(300), store.put(stalled, None)).await;
    assert!(timed_out.is_err());
    assert!(files_under(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_of_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let data = Arc::new(content(2 * 1024 * 1024, 8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (store, data) = (store.clone(), data.clone());
            tokio::spawn(async move { store.put(chunked(&data, 10_000 + i * 1000), None).await })
        })
        .collect();
    let mut refs = Vec::new();
    for t in tasks {
        refs.push(t.await.unwrap().unwrap());
    }
    assert!(refs.iter().all(|r| *r == refs[0]));
    assert_eq!(
        files_under(dir.path()),
        vec![store.path_of(&refs[0].sha256)]
    );
    assert_eq!(store.verify(&refs[0].sha256).await.unwrap(), refs[0]);
}

#[tokio::test]
async fn a_blob_is_invisible_until_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    let data = content(600_000, 9);
    let digest = Sha256Digest::of(&data);
    let (tx, rx) = futures::channel::mpsc::unbounded::<Result<Bytes, std::io::Error>>();
    let put = tokio::spawn({
        let store = store.clone();
        async move { store.put(Box::pin(rx), None).await }
    });
    tx.unbounded_send(Ok(Bytes::copy_from_slice(&data[..300_000])))
        .unwrap();
    // Wait until the first half is in the temp file.
    let temp = wait_for_temp_file(store.temp_dir(), 300_000).await;
    assert!(temp.extension().is_some_and(|e| e == "part"));
    assert!(!store.path_of(&digest).exists());
    assert_eq!(store.head(&digest).await.unwrap(), None);
    assert!(matches!(
        store.get(&digest).await,
        Err(BlobError::NotFound(_))
    ));

    tx.unbounded_send(Ok(Bytes::copy_from_slice(&data[300_000..])))
        .unwrap();
    drop(tx);
    let blob = put.await.unwrap().unwrap();
    assert_eq!(blob.sha256, digest);
    assert!(!temp.exists());
    assert_eq!(store.verify(&digest).await.unwrap(), blob);
}

async fn wait_for_temp_file(tmp: &Path, min_len: u64) -> std::path::PathBuf {
    for _ in 0..500 {
        if let Some(p) = files_under(tmp)
            .into_iter()
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= min_len))
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "no temp file of {min_len} bytes appeared in {}",
        tmp.display()
    );
}

const CRASH_CHILD_ENV: &str = "MEGALIS_BLOBS_CRASH_CHILD_DIR";

/// A process killed (SIGKILL) in the middle of a put leaves only a temp file, never a file under
/// the content name; the temp file is swept later, and the content can be stored again.
///
/// The test runs itself as the child: the same test function, re-executed with an environment
/// variable naming the store directory, puts half a blob, says READY and waits to be killed.
#[tokio::test]
async fn crash_in_the_middle_of_a_put_leaves_no_partial_blob() {
    let data = content(800_000, 10);
    let digest = Sha256Digest::of(&data);

    if let Ok(dir) = std::env::var(CRASH_CHILD_ENV) {
        let store = open(Path::new(&dir));
        let half = Bytes::copy_from_slice(&data[..400_000]);
        let stalled: PutStream =
            Box::pin(futures::stream::iter([Ok(half)]).chain(futures::stream::pending()));
        let put = tokio::spawn(async move { store.put(stalled, None).await });
        wait_for_temp_file(&Path::new(&dir).join("tmp"), 400_000).await;
        println!("READY");
        let _ = put.await;
        unreachable!("the put never completes: its source stalls until the process is killed");
    }

    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_in_the_middle_of_a_put_leaves_no_partial_blob",
            "--exact",
            "--nocapture",
        ])
        .env(CRASH_CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.trim() == "READY" => break,
            Some(Ok(_)) => continue,
            other => {
                let _ = child.kill();
                panic!("child ended before it was ready: {other:?}");
            }
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor runs, the temp file stays.
    child.wait().unwrap();

    let store = open(dir.path());
    let leftovers = files_under(store.temp_dir());
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert!(!store.path_of(&digest).exists());
    assert_eq!(store.head(&digest).await.unwrap(), None);
    // Young temp files survive `open` (they may belong to a live upload); stale ones are swept.
    assert_eq!(
        store.sweep_temp_files(Duration::from_secs(3600)).unwrap(),
        0
    );
    assert_eq!(store.sweep_temp_files(Duration::ZERO).unwrap(), 1);
    assert!(files_under(store.temp_dir()).is_empty());

    let blob = store.put(chunked(&data, 65536), None).await.unwrap();
    assert_eq!(store.verify(&digest).await.unwrap(), blob);
}

#[tokio::test]
async fn delete_removes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let blob = store
        .put_bytes(Bytes::from_static(b"retention"))
        .await
        .unwrap();
    assert!(store.delete(&blob.sha256).await.unwrap());
    assert!(!store.delete(&blob.sha256).await.unwrap());
    assert!(!store.exists(&blob.sha256).await.unwrap());
    assert!(matches!(
        store.get(&blob.sha256).await,
        Err(BlobError::NotFound(d)) if d == blob.sha256
    ));
}

#[tokio::test]
async fn open_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = BlobStoreConfig {
        backend: BlobBackend::Local,
        path: Some(dir.path().join("blobs")),
        ..Default::default()
    };
    let store = megalis_blobs::open(&config).unwrap();
    let blob = store
        .put_bytes(Bytes::from_static(b"configured"))
        .await
        .unwrap();
    assert!(dir.path().join("blobs/sha256").is_dir());
    assert!(store.exists(&blob.sha256).await.unwrap());

    let missing_path = BlobStoreConfig::default();
    let err = megalis_blobs::open(&missing_path).unwrap_err();
    assert!(err.to_string().contains("blobs.path"), "{err}");
}
