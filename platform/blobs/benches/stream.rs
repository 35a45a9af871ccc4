//! Streaming benchmark of the local blob store: put and get of a large file (200 MB by default),
//! in MB/s, next to a plain copy and a plain read of the same file on the same disk, with the
//! process's peak memory during each phase (the goal: constant, whatever the blob size).
//!
//! `cargo bench -p megalis-blobs --bench stream`
//! Environment: `MEGALIS_BENCH_MB` (size, default 200), `MEGALIS_BENCH_DIR` (a directory on the
//! disk to measure; default: the system temp directory), `MEGALIS_BENCH_RUNS` (default 3; the
//! median is printed).
//!
//! Every run reads its source from the page cache (the file was just written), for the store and
//! the baselines alike; writes end with an fsync in both.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use megalis_blobs::{BlobStore, LocalBlobStore};

const MB: f64 = 1_000_000.0;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resets the kernel's peak-RSS counter of this process (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = fs::write("/proc/self/clear_refs", "5");
}

/// (current RSS, peak RSS since the last reset), in MiB, from /proc/self/status.
fn rss_mib() -> (f64, f64) {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn write_source(path: &Path, bytes: u64) {
    let mut f = File::create(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = bytes;
    while left > 0 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.sync_all().unwrap();
}

fn plain_read(path: &Path) -> u64 {
    let mut f = File::open(path).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn report(what: &str, bytes: u64, d: Duration, peak: Option<(f64, f64)>) {
    let rate = bytes as f64 / MB / d.as_secs_f64();
    match peak {
        Some((before, peak)) => println!(
            "{what:<34} {rate:>8.0} MB/s  {:>7.3} s   RSS before {before:>6.1} MiB, peak {peak:>6.1} MiB",
            d.as_secs_f64()
        ),
        None => println!("{what:<34} {rate:>8.0} MB/s  {:>7.3} s", d.as_secs_f64()),
    }
}

fn main() {
    let size_mb = env_or("MEGALIS_BENCH_MB", 200);
    let runs = env_or("MEGALIS_BENCH_RUNS", 3).max(1) as usize;
    let base = std::env::var_os("MEGALIS_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).unwrap();
    let bytes = size_mb * 1_000_000;
    let src = dir.path().join("source.bin");
    let copy = dir.path().join("copy.bin");
    write_source(&src, bytes);
    println!(
        "blob store streaming benchmark: {size_mb} MB, {runs} runs (median), in {}",
        dir.path().display()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store = LocalBlobStore::open(dir.path().join("store")).unwrap();

    // SHA-256 alone, over the data in memory: the floor of what hashing costs a put and a get.
    let chunk = vec![0x5Au8; 1 << 20];
    let t = Instant::now();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for _ in 0..size_mb {
        ctx.update(&chunk);
    }
    std::hint::black_box(ctx.finish());
    report("sha256 (ring) in memory", bytes, t.elapsed(), None);

    let mut times = Vec::new();
    for _ in 0..runs {
        let _ = fs::remove_file(&copy);
        let t = Instant::now();
        fs::copy(&src, &copy).unwrap();
        File::open(&copy).unwrap().sync_all().unwrap();
        times.push(t.elapsed());
    }
    report(
        "baseline: std::fs::copy + fsync",
        bytes,
        median(times),
        None,
    );

    let (mut times, mut peaks) = (Vec::new(), Vec::new());
    let mut blob = None;
    for _ in 0..runs {
        if let Some(b) = blob {
            runtime.block_on(store.delete(&b)).unwrap();
        }
        let before = rss_mib().0;
        reset_peak();
        let t = Instant::now();
        let put = runtime
            .block_on(async {
                let file = tokio::fs::File::open(&src).await.unwrap();
                store.put_reader(Box::new(file), None).await
            })
            .unwrap();
        times.push(t.elapsed());
        peaks.push((before, rss_mib().1));
        assert_eq!(put.size, bytes);
        blob = Some(put.sha256);
    }
    let blob = blob.unwrap();
    report(
        "put (stream, hash, fsync, rename)",
        bytes,
        median(times),
        peaks.pop(),
    );

    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        assert_eq!(plain_read(&copy), bytes);
        times.push(t.elapsed());
    }
    report("baseline: plain read, 256 KiB", bytes, median(times), None);

    let (mut times, mut peaks) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let before = rss_mib().0;
        reset_peak();
        let t = Instant::now();
        let read = runtime.block_on(async {
            let mut stream = store.get(&blob).await.unwrap();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                n += chunk.unwrap().len() as u64;
            }
            n
        });
        times.push(t.elapsed());
        peaks.push((before, rss_mib().1));
        assert_eq!(read, bytes);
    }
    report("get (stream, verified)", bytes, median(times), peaks.pop());
}
