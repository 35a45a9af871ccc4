//! S3 backend against a real S3-compatible server: moto's `moto_server`, from the Python virtual
//! environment that the project test script makes from tests/requirements.txt and names with
//! `MEGALIS_PYTHON`. Each test starts its own server on a free port.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use megalis_blobs::{
    BlobBackend, BlobError, BlobStore, BlobStoreConfig, PutStream, S3BlobStore, Sha256Digest,
};
use object_store::{ObjectStore, PutOptions, PutPayload};

const BUCKET: &str = "megalis-blobs-test";

/// A running `moto_server`, killed when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server_path() -> PathBuf {
    let python = std::env::var("MEGALIS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "MEGALIS_PYTHON is not set: the S3 blob store tests need moto_server from the test \
             virtual environment. Run the project test script, or: python3 -m venv VENV && \
             VENV/bin/pip install -r tests/requirements.txt && export MEGALIS_PYTHON=VENV/bin/python"
        )
    });
    let script = PathBuf::from(&python).with_file_name("moto_server");
    assert!(
        script.is_file(),
        "{} not found next to MEGALIS_PYTHON={python}: is `moto[server]` from \
         tests/requirements.txt installed in that environment?",
        script.display()
    );
    script
}

async fn start_moto() -> Moto {
    let script = moto_server_path();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(&script)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", script.display()));
    let mut moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = moto.child.try_wait().unwrap() {
            panic!("moto_server exited before listening: {status}");
        }
        assert!(
            Instant::now() < deadline,
            "moto_server not listening after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Buckets are provisioned by operations, not by the store: create ours with a plain request
    // (moto does not check signatures by default).
    let response = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/{BUCKET}"))
        .send()
        .await
        .expect("create bucket");
    assert!(
        response.status().is_success(),
        "create bucket: {}",
        response.status()
    );
    moto.port = port;
    moto
}

fn config(moto: &Moto) -> BlobStoreConfig {
    BlobStoreConfig {
        backend: BlobBackend::S3,
        s3_bucket: Some(BUCKET.into()),
        s3_endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
        s3_region: Some("eu-west-3".into()),
        s3_access_key_id: Some("testing".into()),
        s3_secret_access_key: Some("testing".into()),
        s3_allow_http: true,
        ..Default::default()
    }
}

/// Part size of the multipart tests: S3's minimum, so that a few parts make a test.
const PART: usize = 5 * 1024 * 1024;

fn store(moto: &Moto) -> S3BlobStore {
    S3BlobStore::from_config(&config(moto))
        .unwrap()
        .with_part_size(PART)
}

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

fn chunked(data: &[u8], chunk: usize) -> PutStream {
    let pieces: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(pieces))
}

/// Every key in the bucket, sorted.
async fn keys(store: &S3BlobStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .object_store()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

async fn drain(store: &dyn BlobStore, d: &Sha256Digest) -> (Vec<u8>, Option<BlobError>) {
    let mut stream = store.get(d).await.expect("get opens the blob");
    let mut got = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(e) => {
                assert!(stream.next().await.is_none(), "items after the error");
                return (got, Some(e));
            }
        }
    }
    (got, None)
}

#[tokio::test]
async fn small_blob_round_trip_through_open() {
    let moto = start_moto().await;
    let store = megalis_blobs::open(&config(&moto)).unwrap();
    let data = content(300_000, 1);
    let blob = store.put(chunked(&data, 65536), None).await.unwrap();
    assert_eq!(blob.sha256, Sha256Digest::of(&data));
    assert_eq!(blob.size, data.len() as u64);
    assert_eq!(store.head(&blob.sha256).await.unwrap(), Some(blob));
    assert_eq!(drain(store.as_ref(), &blob.sha256).await.0, data);

    // Idempotent: the same content again is the same blob, one object.
    assert_eq!(store.put(chunked(&data, 1000), None).await.unwrap(), blob);
    let direct = store_for_listing(&moto);
    let hex = blob.sha256.to_hex();
    assert_eq!(
        keys(&direct).await,
        vec![format!("sha256/{}/{}/{hex}", &hex[0..2], &hex[2..4])]
    );

    assert!(store.delete(&blob.sha256).await.unwrap());
    assert!(!store.delete(&blob.sha256).await.unwrap());
    assert!(matches!(
        store.get(&blob.sha256).await,
        Err(BlobError::NotFound(_))
    ));
    assert!(keys(&direct).await.is_empty());
}

fn store_for_listing(moto: &Moto) -> S3BlobStore {
    S3BlobStore::from_config(&config(moto)).unwrap()
}

#[tokio::test]
async fn large_blob_goes_through_multipart_and_leaves_no_temporary_object() {
    let moto = start_moto().await;
    let store = store(&moto);
    // 3.5 parts: a multipart upload to a temporary key, then a copy to the content key.
    let data = content(PART * 7 / 2, 2);
    let blob = store.put(chunked(&data, 100_000), None).await.unwrap();
    assert_eq!(blob.sha256, Sha256Digest::of(&data));
    assert_eq!(
        keys(&store).await,
        vec![S3BlobStore::key_of(&blob.sha256).to_string()]
    );
    let (got, err) = drain(&store, &blob.sha256).await;
    assert!(err.is_none(), "{err:?}");
    assert!(got == data, "content differs");
    assert_eq!(store.verify(&blob.sha256).await.unwrap(), blob);

    // Same content again, multipart again: stored once, temporary object removed.
    assert_eq!(store.put(chunked(&data, 65536), None).await.unwrap(), blob);
    assert_eq!(keys(&store).await.len(), 1);
}

#[tokio::test]
async fn size_limit_aborts_the_upload_and_leaves_nothing() {
    let moto = start_moto().await;
    let store = store(&moto);
    let data = content(PART * 3, 3);
    // The limit is passed after the first part has been sent.
    let limit = (PART * 2) as u64;
    let err = store
        .put(chunked(&data, 65536), Some(limit))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BlobError::TooLarge { limit: l } if l == limit),
        "{err:?}"
    );
    assert!(keys(&store).await.is_empty());
    // No multipart upload left open either.
    let uploads = open_uploads(&moto).await;
    assert!(!uploads.contains("<UploadId>"), "{uploads}");

    // Under the limit, in a single part.
    let small = content(1000, 4);
    let blob = store.put(chunked(&small, 100), Some(limit)).await.unwrap();
    assert_eq!(blob.size, 1000);
}

#[tokio::test]
async fn corruption_in_the_bucket_is_detected_on_read() {
    let moto = start_moto().await;
    let store = store(&moto);
    let data = content(PART + 1000, 5);
    let blob = store.put(chunked(&data, 65536), None).await.unwrap();

    // Rewrite the object with one byte flipped, behind the store's back.
    let mut bad = data.clone();
    bad[PART / 2] ^= 0x80;
    store
        .object_store()
        .put_opts(
            &S3BlobStore::key_of(&blob.sha256),
            PutPayload::from(bad),
            PutOptions::default(),
        )
        .await
        .unwrap();
    let (got, err) = drain(&store, &blob.sha256).await;
    assert!(
        matches!(err, Some(BlobError::Corrupt { sha256, .. }) if sha256 == blob.sha256),
        "{err:?}"
    );
    assert!(got.len() < data.len());
    assert!(matches!(
        store.verify(&blob.sha256).await,
        Err(BlobError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn misconfiguration_is_reported() {
    let base = BlobStoreConfig {
        backend: BlobBackend::S3,
        ..Default::default()
    };
    let err = megalis_blobs::open(&base).unwrap_err();
    assert!(err.to_string().contains("blobs.s3_bucket"), "{err}");
    let half_keys = BlobStoreConfig {
        s3_bucket: Some("b".into()),
        s3_access_key_id: Some("id".into()),
        ..base
    };
    let err = megalis_blobs::open(&half_keys).unwrap_err();
    assert!(err.to_string().contains("s3_secret_access_key"), "{err}");
}

/// Lists the multipart uploads still open in the bucket (moto answers unsigned requests).
async fn open_uploads(moto: &Moto) -> String {
    reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/{BUCKET}?uploads", moto.port))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dropped_put_aborts_its_multipart_upload() {
    let moto = start_moto().await;
    let store = store(&moto);
    // More than one part, then the source stalls: the caller gives up (a client timeout).
    let first = Bytes::from(content(PART + 100_000, 6));
    let stalled: PutStream =
        Box::pin(futures::stream::iter([Ok(first)]).chain(futures::stream::pending()));
    // Boxed (not pinned on the stack) so that `drop` below really drops the future.
    let mut put = Box::pin(store.put(stalled, None));
    // Drive the put until the multipart upload exists, then drop it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), &mut put).await;
        if open_uploads(&moto).await.contains("<UploadId>") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the multipart upload never started"
        );
    }
    // Let the put take the upload's id and send its first part: it then waits on its source.
    // (A put dropped while CreateMultipartUpload is in flight never learns the id: that upload is
    // left to the bucket's lifecycle rule, see docs/operations-blobs.md.)
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut put).await;
    drop(put);
    // The abort runs in the background: wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_uploads(&moto).await.contains("<UploadId>") {
        assert!(
            Instant::now() < deadline,
            "multipart upload still open 20 s after the put was dropped"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(keys(&store).await.is_empty());
}
