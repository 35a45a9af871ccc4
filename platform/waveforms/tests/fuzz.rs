//! Property tests: arbitrary bytes and mutations of valid files never make a reader (or the
//! renderer fed by it) panic: they parse or return an error.

#[path = "common/edf_writer.rs"]
mod edf_writer;

use std::io::Cursor;

use edf_writer::{Header, Part, Signal, record, tals};
use megalis_waveforms::edf::EdfReader;
use megalis_waveforms::{AnnotationScan, RenderOptions, TimeWindow, aecg, render_svg};
use proptest::prelude::*;

const FIXTURE: &str = include_str!("fixtures/aecg_rhythm.xml");

fn valid_edf() -> Vec<u8> {
    let header = Header::edf_plus_c(
        4,
        "0.5",
        vec![
            Signal::new("Fp1", "uV", (-200.0, 200.0), (-2048, 2047), 16),
            Signal::new("ECG", "mV", (-5.0, 5.0), (-32768, 32767), 8),
            Signal::annotations(20),
        ],
    );
    let mut file = header.bytes();
    for i in 0..4 {
        let a: Vec<i16> = (0..16).map(|k| (k * 100 - 800) as i16).collect();
        let b: Vec<i16> = (0..8).map(|k| (k * 4000) as i16).collect();
        let ann = tals(
            i as f64 * 0.5,
            &[(i as f64 * 0.5 + 0.1, Some(0.2), "x")],
            20,
        );
        file.extend(record(&[
            Part::Samples(&a),
            Part::Samples(&b),
            Part::Bytes(&ann),
        ]));
    }
    file
}

/// Everything a server would do with an uploaded EDF: summary, a window, the annotations, the
/// SVG. Errors are fine; panics are not.
fn exercise_edf(bytes: &[u8], start: f64, duration: f64) {
    let Ok(window) = TimeWindow::new(start, duration) else {
        return;
    };
    if let Ok(reader) = EdfReader::open(Cursor::new(bytes)) {
        let _ = reader.summary();
        let _ = reader.header().check_length(bytes.len() as u64);
        if let Ok(w) = reader.read_window(window, AnnotationScan::WholeFile) {
            let svg = render_svg(&w, &RenderOptions::default());
            assert!(svg.starts_with("<svg"));
        }
    }
    if let Ok(reader) = EdfReader::open(Cursor::new(bytes)) {
        let _ = reader.read_annotations();
    }
}

fn exercise_aecg(bytes: &[u8]) {
    if let Ok(ecg) = aecg::parse(bytes) {
        let _ = ecg.summary();
        if let Ok(w) = ecg.window(TimeWindow::new(0.0, 10.0).unwrap()) {
            let svg = render_svg(&w, &RenderOptions::default());
            assert!(svg.starts_with("<svg"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_as_edf(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise_edf(&bytes, 0.0, 10.0);
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_edf_prefix(
        cut in 0usize..1024,
        tail in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut bytes = valid_edf()[..cut].to_vec();
        bytes.extend(tail);
        exercise_edf(&bytes, 0.0, 10.0);
    }

    #[test]
    fn mutated_edf(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        start in 0.0f64..3.0,
        duration in 0.01f64..5.0,
    ) {
        let mut bytes = valid_edf();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        exercise_edf(&bytes, start, duration);
    }

    #[test]
    fn mutated_edf_numeric_fields(
        field in prop::sample::select(vec![184usize, 236, 244, 252]),
        text in "[-+0-9. eE]{1,8}",
        start in 0.0f64..3.0,
    ) {
        let mut bytes = valid_edf();
        let width = if field == 252 { 4 } else { 8 };
        let mut padded = text.into_bytes();
        padded.resize(width, b' ');
        padded.truncate(width);
        bytes[field..field + width].copy_from_slice(&padded);
        exercise_edf(&bytes, start, 1.0);
    }

    #[test]
    fn arbitrary_bytes_as_aecg(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        exercise_aecg(&bytes);
    }

    #[test]
    fn mutated_aecg(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = FIXTURE.as_bytes().to_vec();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        exercise_aecg(&bytes);
    }

    #[test]
    fn mutated_aecg_markup(
        at in any::<prop::sample::Index>(),
        insert in prop::sample::select(vec![
            "<", ">", "</digits>", "<digits>", "&amp;", "&#0;", "<sequence>", "</series>",
            "<!--", "]]>", "\"", "<value xsi:type=\"SLIST_PQ\">", "-", "99999999999999999999",
        ]),
    ) {
        let mut doc = FIXTURE.to_string();
        let mut i = at.index(doc.len());
        while !doc.is_char_boundary(i) {
            i -= 1;
        }
        doc.insert_str(i, insert);
        exercise_aecg(doc.as_bytes());
    }
}

#[test]
fn the_valid_inputs_of_the_properties_are_valid() {
    // Mutations start from files that parse, so they explore near-valid inputs.
    let edf = valid_edf();
    let w = EdfReader::open(Cursor::new(edf))
        .unwrap()
        .read_window(
            TimeWindow::new(0.0, 2.0).unwrap(),
            AnnotationScan::WholeFile,
        )
        .unwrap();
    assert_eq!(w.channels.len(), 2);
    assert_eq!(w.annotations.len(), 4);
    assert_eq!(aecg::parse(FIXTURE.as_bytes()).unwrap().leads.len(), 12);
}
