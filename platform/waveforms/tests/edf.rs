//! EDF/EDF+ reading: physical values, windows, skipping, annotations, validation errors.

#[path = "common/edf_writer.rs"]
mod edf_writer;

use std::io::{Cursor, Read};

use edf_writer::{Header, Part, Signal, record, tals};
use megalis_waveforms::edf::EdfReader;
use megalis_waveforms::{AnnotationScan, Format, Modality, TimeWindow, WaveformError};

const EEG_N: usize = 256;
const ECG_N: usize = 128;
const ANN_N: usize = 60;

fn eeg_digital(record: usize, k: usize) -> i16 {
    (record * 1000 + k) as i16
}

fn ecg_digital(k: usize) -> i16 {
    k as i16 * 16 - 1024
}

fn signals() -> Vec<Signal> {
    vec![
        Signal::new("EEG Fp1", "uV", (-3276.8, 3276.7), (-32768, 32767), EEG_N),
        Signal::new("ECG", "mV", (-5.0, 5.0), (-2048, 2047), ECG_N),
        Signal::annotations(ANN_N),
    ]
}

/// An EDF+C file of `records` one-second records; `notes(i)` gives record i's annotations.
fn edf_plus(
    records: usize,
    notes: impl Fn(usize) -> Vec<(f64, Option<f64>, &'static str)>,
) -> Vec<u8> {
    let header = Header::edf_plus_c(records, "1", signals());
    let mut out = header.bytes();
    for i in 0..records {
        let eeg: Vec<i16> = (0..EEG_N).map(|k| eeg_digital(i, k)).collect();
        let ecg: Vec<i16> = (0..ECG_N).map(ecg_digital).collect();
        let ann = tals(i as f64, &notes(i), ANN_N);
        out.extend(record(&[
            Part::Samples(&eeg),
            Part::Samples(&ecg),
            Part::Bytes(&ann),
        ]));
    }
    out
}

fn standard() -> Vec<u8> {
    edf_plus(10, |i| match i {
        2 => vec![(2.5, Some(1.0), "Eyes closed")],
        7 => vec![(7.25, None, "Pointe ✓")],
        _ => vec![],
    })
}

fn window(start: f64, duration: f64) -> TimeWindow {
    TimeWindow::new(start, duration).unwrap()
}

#[test]
fn header_and_summary() {
    let reader = EdfReader::open(Cursor::new(standard())).unwrap();
    let h = reader.header();
    assert_eq!(h.format, Format::EdfPlusContinuous);
    assert_eq!(h.data_records, 10);
    assert_eq!(h.record_duration, 1.0);
    assert_eq!(h.header_bytes, 256 * 4);
    assert_eq!(h.signals.len(), 3);
    assert_eq!(h.signals[0].prefiltering, "HP:0.1Hz LP:75Hz");
    assert!(h.signals[2].is_annotations);
    assert!((h.signals[0].gain() - 0.1).abs() < 1e-12);
    assert!(h.signals[0].offset().abs() < 1e-9);
    assert!((h.signals[1].to_physical(-2048) + 5.0).abs() < 1e-9);
    assert!((h.signals[1].to_physical(2047) - 5.0).abs() < 1e-9);
    h.check_length(standard().len() as u64).unwrap();

    let s = reader.summary();
    assert_eq!(s.format, Format::EdfPlusContinuous);
    assert_eq!(s.modality, Modality::Eeg);
    assert_eq!(s.duration, 10.0);
    assert_eq!(s.start.unwrap().to_string(), "2002-03-02 14:27:00.0");
    assert_eq!(
        s.channels.len(),
        2,
        "the annotation signal is not a channel"
    );
    assert_eq!(s.channels[0].label, "EEG Fp1");
    assert_eq!(s.channels[0].unit, "uV");
    assert_eq!(s.channels[0].sampling_rate, 256.0);
    assert_eq!(s.channels[1].sampling_rate, 128.0);
    assert_eq!(s.channels[0].transducer, "AgAgCl electrode");
    assert!(s.patient_identification.contains("Haagse_Harry"));
    assert!(
        s.recording_identification
            .starts_with("Startdate 02-MAR-2002")
    );
}

#[test]
fn window_holds_physical_values() {
    let reader = EdfReader::open(Cursor::new(standard())).unwrap();
    let w = reader
        .read_window(window(3.0, 2.0), AnnotationScan::UpToWindowEnd)
        .unwrap();
    assert_eq!(w.channels.len(), 2);
    let eeg = &w.channels[0];
    assert_eq!(eeg.samples.len(), 512);
    for (j, &v) in eeg.samples.iter().enumerate() {
        let expected = 0.1 * f64::from(eeg_digital(3 + j / EEG_N, j % EEG_N));
        assert!(
            (f64::from(v) - expected).abs() < 1e-3,
            "sample {j}: {v} vs {expected}"
        );
    }
    let ecg = &w.channels[1];
    assert_eq!(ecg.unit, "mV");
    assert_eq!(ecg.samples.len(), 256);
    let gain = 10.0 / 4095.0;
    for (j, &v) in ecg.samples.iter().enumerate() {
        let expected = -5.0 + (f64::from(ecg_digital(j % ECG_N)) + 2048.0) * gain;
        assert!((f64::from(v) - expected).abs() < 1e-5, "sample {j}");
    }
}

#[test]
fn window_not_on_record_boundary_and_clipped_at_the_end() {
    let w = EdfReader::open(Cursor::new(standard()))
        .unwrap()
        .read_window(window(8.5, 5.0), AnnotationScan::UpToWindowEnd)
        .unwrap();
    assert_eq!(w.window.duration(), 1.5, "clipped to the 10 s recording");
    let eeg = &w.channels[0].samples;
    assert_eq!(eeg.len(), 384);
    assert!((f64::from(eeg[0]) - 0.1 * f64::from(eeg_digital(8, 128))).abs() < 1e-3);
    assert!((f64::from(eeg[383]) - 0.1 * f64::from(eeg_digital(9, 255))).abs() < 1e-3);
    assert!(eeg.iter().all(|v| v.is_finite()));

    let err = EdfReader::open(Cursor::new(standard()))
        .unwrap()
        .read_window(window(10.0, 1.0), AnnotationScan::UpToWindowEnd)
        .unwrap_err();
    assert!(matches!(err, WaveformError::InvalidWindow(_)), "{err}");
}

#[test]
fn annotations_of_the_window_only() {
    let read = |start, dur| {
        EdfReader::open(Cursor::new(standard()))
            .unwrap()
            .read_window(window(start, dur), AnnotationScan::UpToWindowEnd)
            .unwrap()
            .annotations
    };
    let a = read(0.0, 10.0);
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].onset, a[0].duration, a[0].text.as_str()),
        (2.5, Some(1.0), "Eyes closed")
    );
    assert_eq!(
        (a[1].onset, a[1].duration, a[1].text.as_str()),
        (7.25, None, "Pointe ✓")
    );
    // A window inside "Eyes closed" (2.5–3.5 s) still shows it.
    assert_eq!(read(3.0, 1.0).len(), 1);
    assert_eq!(read(4.0, 2.0).len(), 0);
    assert_eq!(read(7.0, 1.0)[0].text, "Pointe ✓");
}

/// Counts the bytes taken from the underlying reader.
struct Counting<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

#[test]
fn reading_stops_after_the_window() {
    let file = edf_plus(100, |_| vec![]);
    let record_bytes = (EEG_N + ECG_N + ANN_N) * 2;
    let header_bytes = 256 * 4;
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let reader = EdfReader::open(Counting {
        inner: Cursor::new(file.clone()),
        read: counter.clone(),
    })
    .unwrap();
    let w = reader
        .read_window(window(20.0, 3.0), AnnotationScan::UpToWindowEnd)
        .unwrap();
    assert_eq!(w.channels[0].samples.len(), 3 * EEG_N);
    // Records 0..=22 for the data and one more to see that it starts after the window.
    assert_eq!(counter.get(), header_bytes + 24 * record_bytes);
    assert!(counter.get() < file.len() / 4);

    counter.set(0);
    EdfReader::open(Counting {
        inner: Cursor::new(file.clone()),
        read: counter.clone(),
    })
    .unwrap()
    .read_window(window(20.0, 3.0), AnnotationScan::WholeFile)
    .unwrap();
    assert_eq!(counter.get(), file.len());
}

#[test]
fn annotations_stored_after_their_window_need_a_whole_file_scan() {
    // EDFlib-style: the annotation of onset 1.5 s is stored in the last record.
    let file = edf_plus(6, |i| {
        if i == 5 {
            vec![(1.5, None, "Late note")]
        } else {
            vec![]
        }
    });
    let read = |scan| {
        EdfReader::open(Cursor::new(file.clone()))
            .unwrap()
            .read_window(window(1.0, 1.0), scan)
            .unwrap()
            .annotations
    };
    assert!(read(AnnotationScan::UpToWindowEnd).is_empty());
    let all = read(AnnotationScan::WholeFile);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].text, "Late note");
    let listed = EdfReader::open(Cursor::new(file))
        .unwrap()
        .read_annotations()
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].onset, 1.5);
}

#[test]
fn discontinuous_records_leave_gaps() {
    let mut header = Header::edf_plus_c(4, "1", signals());
    header.reserved = "EDF+D".into();
    let mut file = header.bytes();
    for (i, onset) in [0.0, 1.0, 5.0, 6.0].into_iter().enumerate() {
        let eeg: Vec<i16> = (0..EEG_N).map(|k| eeg_digital(i, k)).collect();
        let ecg: Vec<i16> = (0..ECG_N).map(ecg_digital).collect();
        let ann = tals(onset, &[], ANN_N);
        file.extend(record(&[
            Part::Samples(&eeg),
            Part::Samples(&ecg),
            Part::Bytes(&ann),
        ]));
    }
    let reader = EdfReader::open(Cursor::new(file)).unwrap();
    assert_eq!(reader.summary().format, Format::EdfPlusDiscontinuous);
    let w = reader
        .read_window(window(0.0, 7.0), AnnotationScan::UpToWindowEnd)
        .unwrap();
    let eeg = &w.channels[0].samples;
    assert_eq!(eeg.len(), 7 * EEG_N);
    assert!(eeg[..2 * EEG_N].iter().all(|v| v.is_finite()));
    assert!(
        eeg[2 * EEG_N..5 * EEG_N].iter().all(|v| v.is_nan()),
        "the gap has no data"
    );
    // Record 2 starts at 5 s.
    assert!((f64::from(eeg[5 * EEG_N]) - 0.1 * f64::from(eeg_digital(2, 0))).abs() < 1e-3);
    assert!(eeg[7 * EEG_N - 1].is_finite());
}

#[test]
fn plain_edf_with_1985_clipping() {
    let mut header = Header::edf_plus_c(
        2,
        "0.5",
        vec![Signal::new("II", "uV", (-1000.0, 1000.0), (-1000, 1000), 4)],
    );
    header.reserved = String::new();
    header.date = "31.12.99".into();
    header.recording = "local recording".into();
    let mut file = header.bytes();
    file.extend(record(&[Part::Samples(&[1, 2, 3, 4])]));
    file.extend(record(&[Part::Samples(&[-1, -2, -3, -4])]));
    let reader = EdfReader::open(Cursor::new(file)).unwrap();
    let s = reader.summary();
    assert_eq!(s.format, Format::Edf);
    assert_eq!(s.modality, Modality::Ecg);
    assert_eq!(s.start.unwrap().year(), 1999);
    assert_eq!(s.channels[0].sampling_rate, 8.0);
    let w = reader
        .read_window(window(0.0, 1.0), AnnotationScan::WholeFile)
        .unwrap();
    assert_eq!(
        w.channels[0].samples,
        vec![1.0, 2.0, 3.0, 4.0, -1.0, -2.0, -3.0, -4.0]
    );
    assert!(w.annotations.is_empty());
}

/// Replaces a header field (by absolute offset) with `text` padded to `width`.
fn patch(mut file: Vec<u8>, offset: usize, width: usize, text: &str) -> Vec<u8> {
    let mut field = Vec::new();
    edf_writer::pad(&mut field, text, width);
    file[offset..offset + width].copy_from_slice(&field);
    file
}

/// Whether an error is the one expected.
type Check = fn(&WaveformError) -> bool;

fn open_err(file: Vec<u8>) -> WaveformError {
    EdfReader::open(Cursor::new(file)).unwrap_err()
}

fn window_err(file: Vec<u8>) -> WaveformError {
    EdfReader::open(Cursor::new(file))
        .unwrap()
        .read_window(window(0.0, 100.0), AnnotationScan::WholeFile)
        .unwrap_err()
}

#[test]
fn bad_headers_are_refused_with_clear_errors() {
    let good = standard();
    // Offsets of the signal header fields for ns = 3: labels at 256, transducers at 304, …
    let ns = 3;
    let field = |before: usize, s: usize, width: usize| 256 + before * ns + s * width;
    let digital_min = field(16 + 80 + 8 + 8 + 8, 0, 8);
    let digital_max = field(16 + 80 + 8 + 8 + 8 + 8, 0, 8);
    let physical_max = field(16 + 80 + 8 + 8, 1, 8);
    let samples = field(16 + 80 + 8 + 8 + 8 + 8 + 8 + 80, 1, 8);

    let cases: Vec<(&str, Vec<u8>, Check)> = vec![
        ("truncated fixed header", good[..100].to_vec(), |e| {
            matches!(
                e,
                WaveformError::TruncatedHeader {
                    expected: 256,
                    got: 100
                }
            )
        }),
        ("truncated signal headers", good[..700].to_vec(), |e| {
            matches!(
                e,
                WaveformError::TruncatedHeader {
                    expected: 1024,
                    got: 700
                }
            )
        }),
        (
            "records not a number",
            patch(good.clone(), 236, 8, "ten"),
            |e| matches!(e, WaveformError::NotANumber { field, value } if field == "number of data records" && value == "ten"),
        ),
        (
            "duration with exponent",
            patch(good.clone(), 244, 8, "1e0"),
            |e| matches!(e, WaveformError::NotANumber { field, .. } if field == "duration of a data record"),
        ),
        (
            "non-ASCII patient",
            {
                let mut f = good.clone();
                f[10] = 0xe9;
                f
            },
            |e| matches!(e, WaveformError::NotAscii { field } if field == "local patient identification"),
        ),
        (
            "version",
            patch(good.clone(), 0, 8, "1"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "version"),
        ),
        (
            "BDF",
            {
                let mut f = good.clone();
                f[0] = 0xff;
                f
            },
            |e| matches!(e, WaveformError::Unsupported(_)),
        ),
        (
            "header length",
            patch(good.clone(), 184, 8, "768"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "number of bytes in header"),
        ),
        (
            "unknown record count",
            patch(good.clone(), 236, 8, "-1"),
            |e| matches!(e, WaveformError::InvalidField { reason, .. } if reason.contains("never closed")),
        ),
        (
            "bad EDF+ kind",
            patch(good.clone(), 192, 44, "EDF+X"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "reserved"),
        ),
        (
            "bad start date",
            patch(good.clone(), 168, 8, "32.01.02"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "start date"),
        ),
        (
            "digital min >= max",
            patch(good.clone(), digital_min, 8, "32767"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "signal 1 digital minimum"),
        ),
        (
            "digital max beyond 16 bits",
            patch(good.clone(), digital_max, 8, "40000"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "signal 1 digital maximum"),
        ),
        (
            "physical min == max",
            patch(good.clone(), physical_max, 8, "-5"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "signal 2 physical maximum"),
        ),
        (
            "zero samples",
            patch(good.clone(), samples, 8, "0"),
            |e| matches!(e, WaveformError::InvalidField { field, .. } if field == "signal 2 number of samples in each data record"),
        ),
        (
            "EDF+ without annotations",
            patch(good.clone(), 256 + 32, 16, "Resp"),
            |e| matches!(e, WaveformError::InvalidField { reason, .. } if reason.contains("EDF Annotations")),
        ),
    ];
    for (name, file, check) in cases {
        let err = open_err(file);
        assert!(check(&err), "{name}: unexpected {err:?}");
        assert!(
            !err.to_string().contains("Haagse"),
            "{name}: the message quotes the patient"
        );
    }
}

#[test]
fn bad_data_is_refused() {
    let good = standard();
    let record_bytes = (EEG_N + ECG_N + ANN_N) * 2;
    let header = 1024;

    // Two records missing.
    let err = window_err(good[..header + 8 * record_bytes].to_vec());
    assert!(
        matches!(
            err,
            WaveformError::RecordCountMismatch {
                declared: 10,
                found: 8
            }
        ),
        "{err:?}"
    );
    // Cut inside record 9.
    let err = window_err(good[..good.len() - 10].to_vec());
    assert!(
        matches!(err, WaveformError::TruncatedRecord { record: 9, got, .. } if got == record_bytes - 10),
        "{err:?}"
    );
    // Data after the last record.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 10]);
    assert!(matches!(
        window_err(long),
        WaveformError::RecordCountMismatch {
            declared: 10,
            found: 11
        }
    ));
    // A broken TAL in record 4.
    let mut bad = good.clone();
    let tal_at = header + 4 * record_bytes + (EEG_N + ECG_N) * 2;
    bad[tal_at] = b'x';
    assert!(matches!(
        window_err(bad),
        WaveformError::BadAnnotation { record: 4, .. }
    ));

    // The length check the server can make before reading.
    let h = EdfReader::open(Cursor::new(good.clone()))
        .unwrap()
        .header()
        .clone();
    assert!(h.check_length(good.len() as u64).is_ok());
    assert!(matches!(
        h.check_length((header + 8 * record_bytes) as u64),
        Err(WaveformError::RecordCountMismatch {
            declared: 10,
            found: 8
        })
    ));
    assert!(matches!(
        h.check_length((header + 8 * record_bytes + 3) as u64),
        Err(WaveformError::TruncatedRecord {
            record: 8,
            got: 3,
            ..
        })
    ));
    assert!(matches!(
        h.check_length(12 * record_bytes as u64 + header as u64),
        Err(WaveformError::RecordCountMismatch { found: 12, .. })
    ));
    assert!(matches!(
        h.check_length(10),
        Err(WaveformError::TruncatedHeader { .. })
    ));
}

#[test]
fn windows_too_large_are_refused() {
    let err = EdfReader::open(Cursor::new(standard()))
        .unwrap()
        .read_window(window(0.0, 1e6), AnnotationScan::UpToWindowEnd);
    // Clipped to the recording's 10 s: fine.
    assert!(err.is_ok());
    let mut header = Header::edf_plus_c(1_000_000, "1", signals());
    header.reserved = "EDF+D".into();
    let err = EdfReader::open(Cursor::new(header.bytes()))
        .unwrap()
        .read_window(window(0.0, 100_000.0), AnnotationScan::UpToWindowEnd)
        .unwrap_err();
    assert!(
        matches!(err, WaveformError::WindowTooLarge { .. }),
        "{err:?}"
    );
}

#[test]
fn discontinuous_records_far_away_are_outside_any_window() {
    let mut header = Header::edf_plus_c(3, "1", signals());
    header.reserved = "EDF+D".into();
    let mut file = header.bytes();
    for onset in [-1e20f64, 0.0, 1e20] {
        let eeg = vec![100i16; EEG_N];
        let ecg = vec![0i16; ECG_N];
        let mut ann = format!(
            "{}{}\x14\x14\0",
            if onset < 0.0 { "-" } else { "+" },
            onset.abs()
        )
        .into_bytes();
        ann.resize(ANN_N * 2, 0);
        file.extend(record(&[
            Part::Samples(&eeg),
            Part::Samples(&ecg),
            Part::Bytes(&ann),
        ]));
    }
    let w = EdfReader::open(Cursor::new(file))
        .unwrap()
        .read_window(window(0.0, 2.0), AnnotationScan::WholeFile)
        .unwrap();
    let eeg = &w.channels[0].samples;
    assert!(
        eeg[..EEG_N].iter().all(|v| (v - 10.0).abs() < 1e-4),
        "the record at 0 s"
    );
    assert!(
        eeg[EEG_N..].iter().all(|v| v.is_nan()),
        "nothing from the far records"
    );
}
