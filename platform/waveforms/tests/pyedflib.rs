//! A third-party writer: pyedflib (EDFlib) writes an EDF+ file and reads it back itself; our
//! reader must find the same header, samples and annotations.
//!
//! Needs `MEGALIS_PYTHON`, a Python with `pyedflib` (tests/requirements.txt; scripts/test.sh
//! sets it). Without it the test fails rather than passing silently.

use std::io::{BufReader, Cursor};
use std::process::Command;

use megalis_waveforms::edf::EdfReader;
use megalis_waveforms::{AnnotationScan, Format, RenderOptions, TimeWindow, render_svg};
use serde_json::Value;

fn python() -> String {
    std::env::var("MEGALIS_PYTHON").expect(
        "MEGALIS_PYTHON is not set: point it to a Python with pyedflib \
         (scripts/test.sh sets it from tests/requirements.txt)",
    )
}

#[test]
fn pyedflib_written_edf_plus_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/python/write_edf_plus.py"
    );
    let out = Command::new(python())
        .arg(script)
        .arg(dir.path())
        .output()
        .expect("run MEGALIS_PYTHON");
    assert!(
        out.status.success(),
        "pyedflib script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("expected.json")).unwrap()).unwrap();
    let path = dir.path().join("recording.edf");
    let bytes = std::fs::read(&path).unwrap();

    let reader = EdfReader::open(BufReader::new(std::fs::File::open(&path).unwrap())).unwrap();
    reader.header().check_length(bytes.len() as u64).unwrap();
    let summary = reader.summary();
    assert_eq!(summary.format, Format::EdfPlusContinuous);
    let labels: Vec<&str> = summary.channels.iter().map(|c| c.label.as_str()).collect();
    let expected_labels: Vec<&str> = expected["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(labels, expected_labels);
    for (c, rate) in summary
        .channels
        .iter()
        .zip(expected["rates"].as_array().unwrap())
    {
        assert_eq!(c.sampling_rate, rate.as_f64().unwrap());
    }
    for (c, unit) in summary
        .channels
        .iter()
        .zip(expected["units"].as_array().unwrap())
    {
        assert_eq!(c.unit, unit.as_str().unwrap());
    }
    assert_eq!(summary.channels[0].prefiltering, "HP:0.1Hz LP:70Hz");
    assert_eq!(summary.duration, expected["duration"].as_f64().unwrap());
    let start = summary.start.unwrap();
    assert_eq!(
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            start.year(),
            u8::from(start.month()),
            start.day(),
            start.hour(),
            start.minute(),
            start.second()
        ),
        expected["start"].as_str().unwrap()
    );
    assert!(summary.patient_identification.contains("Jeanne_Dupontel"));

    // The window pyedflib read: same samples (pyedflib computes in f64, we keep f32).
    let w = &expected["window"];
    let window = TimeWindow::new(w[0].as_f64().unwrap(), w[1].as_f64().unwrap()).unwrap();
    let ours = reader
        .read_window(window, AnnotationScan::WholeFile)
        .unwrap();
    for (channel, theirs) in ours
        .channels
        .iter()
        .zip(expected["samples"].as_array().unwrap())
    {
        let theirs = theirs.as_array().unwrap();
        assert_eq!(channel.samples.len(), theirs.len(), "{}", channel.label);
        for (i, (a, b)) in channel.samples.iter().zip(theirs).enumerate() {
            let b = b.as_f64().unwrap();
            assert!(
                (f64::from(*a) - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{} sample {i}: {a} vs {b}",
                channel.label
            );
        }
    }

    // Annotations: EDFlib stores them in the first records whatever their onset, so the whole
    // file is scanned; the window (4–7 s) meets "Pointe" and "Artefact" only.
    let texts: Vec<&str> = ours.annotations.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["Pointe", "Artefact & <bruit>"]);
    let all = EdfReader::open(Cursor::new(bytes))
        .unwrap()
        .read_annotations()
        .unwrap();
    let theirs = expected["annotations"].as_array().unwrap();
    assert_eq!(all.len(), theirs.len());
    for (a, t) in all.iter().zip(theirs) {
        assert!((a.onset - t[0].as_f64().unwrap()).abs() < 1e-6);
        let duration = t[1].as_f64().unwrap();
        // pyedflib reports -1 for "no duration".
        assert_eq!(a.duration, (duration >= 0.0).then_some(duration));
        assert_eq!(a.text, t[2].as_str().unwrap());
    }

    let svg = render_svg(&ours, &RenderOptions::default());
    assert!(svg.contains("Artefact &amp; &lt;bruit&gt;"));
    assert!(!svg.contains("Dupontel") && !svg.contains("PAT-0042"));
}
