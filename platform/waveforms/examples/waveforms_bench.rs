//! Renders a 10 s window from a synthetic 200 MB EEG (EDF+C) and reports the time taken and the
//! peak memory (VmHWM), to show that a window costs memory in proportion to the window, not the
//! file.
//!
//! ```sh
//! CARGO_TARGET_DIR=/root/.cache/megalis/target-waveforms-rel \
//!   cargo build --release -p megalis-waveforms --example waveforms_bench
//! /usr/bin/time -v /root/.cache/megalis/target-waveforms-rel/release/examples/waveforms_bench [SVG_OUT]
//! ```
//!
//! The file is written to a temporary directory first (streamed, record by record) and
//! deleted at the end; pass a path to keep the SVG of the window.

#[path = "../tests/common/edf_writer.rs"]
mod edf_writer;

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::time::Instant;

use edf_writer::{Header, Part, Signal, record, tals};
use megalis_waveforms::edf::EdfReader;
use megalis_waveforms::{AnnotationScan, RenderOptions, TimeWindow, render_svg};

const CHANNELS: usize = 32;
const RATE: usize = 512;
const ANNOTATION_SAMPLES: usize = 40;
const TARGET_BYTES: usize = 200 * 1000 * 1000;

/// Peak resident set size of this process so far, from /proc (Linux), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let svg_out = std::env::args().nth(1);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("synthetic-eeg.edf");

    let labels = [
        "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T3", "C3", "Cz", "C4", "T4", "T5", "P3", "Pz",
        "P4", "T6", "O1", "O2", "Fpz", "FC1", "FC2", "CP1", "CP2", "FC5", "FC6", "CP5", "CP6",
        "TP9", "TP10", "POz", "Oz",
    ];
    let mut signals: Vec<Signal> = labels
        .iter()
        .map(|l| {
            Signal::new(
                &format!("EEG {l}"),
                "uV",
                (-3276.8, 3276.7),
                (-32768, 32767),
                RATE,
            )
        })
        .collect();
    signals.push(Signal::annotations(ANNOTATION_SAMPLES));
    let record_bytes = CHANNELS * RATE * 2 + ANNOTATION_SAMPLES * 2;
    let records = TARGET_BYTES / record_bytes;
    let header = Header::edf_plus_c(records, "1", signals);

    let started = Instant::now();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
    // An alpha rhythm plus a slow wave, different per channel; one annotation a minute.
    let mut channel_samples = vec![vec![0i16; RATE]; CHANNELS];
    edf_writer::write_stream(&mut out, &header, records, |i| {
        for (c, samples) in channel_samples.iter_mut().enumerate() {
            for (k, s) in samples.iter_mut().enumerate() {
                let t = i as f64 + k as f64 / RATE as f64;
                let uv = 40.0 * (2.0 * std::f64::consts::PI * (9.0 + c as f64 * 0.1) * t).sin()
                    + 25.0 * (2.0 * std::f64::consts::PI * 0.7 * t).sin();
                *s = (uv * 10.0) as i16;
            }
        }
        let note = (i % 60 == 5).then_some((i as f64 + 0.5, Some(2.0), "Stimulation lumineuse"));
        let ann = tals(i as f64, note.as_slice(), ANNOTATION_SAMPLES);
        let mut parts: Vec<Part<'_>> = channel_samples.iter().map(|s| Part::Samples(s)).collect();
        parts.push(Part::Bytes(&ann));
        record(&parts)
    })?;
    out.into_inner()?.sync_all()?;
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {} bytes ({} records of {} channels at {} Hz, {} s) in {:.2?}",
        size,
        records,
        CHANNELS,
        RATE,
        records,
        started.elapsed()
    );
    println!("peak RSS after generation: {:?} KiB", peak_rss_kib());

    // Mid-file, with the annotation of minute 50 inside the window.
    let start = (records / 2 / 60 * 60 + 3) as f64;
    for (name, scan) in [
        ("window up to its end", AnnotationScan::UpToWindowEnd),
        (
            "window, annotations of the whole file",
            AnnotationScan::WholeFile,
        ),
    ] {
        let t0 = Instant::now();
        let reader = EdfReader::open(BufReader::with_capacity(1 << 16, File::open(&path)?))?;
        reader.header().check_length(size)?;
        let window = reader.read_window(TimeWindow::new(start, 10.0)?, scan)?;
        let read = t0.elapsed();
        let t1 = Instant::now();
        let svg = render_svg(&window, &RenderOptions::default());
        let render = t1.elapsed();
        println!(
            "{name}: 10 s at {start} s, {} channels, {} annotations: read {:.2?}, render {:.2?}, SVG {} bytes",
            window.channels.len(),
            window.annotations.len(),
            read,
            render,
            svg.len()
        );
        if let Some(out) = &svg_out
            && scan == AnnotationScan::UpToWindowEnd
        {
            std::fs::write(out, &svg)?;
        }
    }
    println!("peak RSS at the end: {:?} KiB", peak_rss_kib());
    Ok(())
}
