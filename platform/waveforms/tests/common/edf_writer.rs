//! A minimal EDF/EDF+ writer for fixtures, written from the specification's field table (not
//! from the reader under test): fields padded with spaces to their width, signal header fields
//! stored field after field, 16-bit little-endian samples, TALs `±onset[0x15 dur]0x14text0x14 0x00`.
//! Shared by the tests and the benchmark example (`#[path]`).

#![allow(dead_code)]

use std::io::Write;

/// One signal's header.
#[derive(Clone, Debug)]
pub struct Signal {
    pub label: String,
    pub transducer: String,
    pub dimension: String,
    pub physical_min: String,
    pub physical_max: String,
    pub digital_min: String,
    pub digital_max: String,
    pub prefiltering: String,
    pub samples_per_record: usize,
}

impl Signal {
    /// An ordinary signal with the given ranges.
    pub fn new(
        label: &str,
        dimension: &str,
        physical: (f64, f64),
        digital: (i32, i32),
        n: usize,
    ) -> Self {
        Self {
            label: label.into(),
            transducer: "AgAgCl electrode".into(),
            dimension: dimension.into(),
            physical_min: physical.0.to_string(),
            physical_max: physical.1.to_string(),
            digital_min: digital.0.to_string(),
            digital_max: digital.1.to_string(),
            prefiltering: "HP:0.1Hz LP:75Hz".into(),
            samples_per_record: n,
        }
    }

    /// An EDF+ annotation signal of `n` samples (2n bytes) per record.
    pub fn annotations(n: usize) -> Self {
        Self {
            label: "EDF Annotations".into(),
            transducer: String::new(),
            dimension: String::new(),
            physical_min: "-1".into(),
            physical_max: "1".into(),
            digital_min: "-32768".into(),
            digital_max: "32767".into(),
            prefiltering: String::new(),
            samples_per_record: n,
        }
    }
}

/// The fixed header fields.
#[derive(Clone, Debug)]
pub struct Header {
    pub patient: String,
    pub recording: String,
    pub date: String,
    pub time: String,
    pub reserved: String,
    pub records: String,
    pub record_duration: String,
    pub signals: Vec<Signal>,
}

impl Header {
    pub fn edf_plus_c(records: usize, record_duration: &str, signals: Vec<Signal>) -> Self {
        Self {
            patient: "MCH-0234567 F 02-MAY-1951 Haagse_Harry".into(),
            recording: "Startdate 02-MAR-2002 EMG561 BK/JOP Sony. MNC R Median Nerve.".into(),
            date: "02.03.02".into(),
            time: "14.27.00".into(),
            reserved: "EDF+C".into(),
            records: records.to_string(),
            record_duration: record_duration.into(),
            signals,
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let ns = self.signals.len();
        let mut out = Vec::with_capacity(256 * (ns + 1));
        pad(&mut out, "0", 8);
        pad(&mut out, &self.patient, 80);
        pad(&mut out, &self.recording, 80);
        pad(&mut out, &self.date, 8);
        pad(&mut out, &self.time, 8);
        pad(&mut out, &(256 * (ns + 1)).to_string(), 8);
        pad(&mut out, &self.reserved, 44);
        pad(&mut out, &self.records, 8);
        pad(&mut out, &self.record_duration, 8);
        pad(&mut out, &ns.to_string(), 4);
        let fields: [(FieldOf, usize); 10] = [
            (|s| s.label.clone(), 16),
            (|s| s.transducer.clone(), 80),
            (|s| s.dimension.clone(), 8),
            (|s| s.physical_min.clone(), 8),
            (|s| s.physical_max.clone(), 8),
            (|s| s.digital_min.clone(), 8),
            (|s| s.digital_max.clone(), 8),
            (|s| s.prefiltering.clone(), 80),
            (|s| s.samples_per_record.to_string(), 8),
            (|_| String::new(), 32),
        ];
        for (get, width) in fields {
            for s in &self.signals {
                pad(&mut out, &get(s), width);
            }
        }
        out
    }
}

/// Reads one field of a signal header.
type FieldOf = fn(&Signal) -> String;

/// Pads (or panics on overflow: a fixture bug) a field with spaces.
pub fn pad(out: &mut Vec<u8>, text: &str, width: usize) {
    assert!(text.len() <= width, "{text:?} is longer than {width}");
    out.extend_from_slice(text.as_bytes());
    out.extend(std::iter::repeat_n(b' ', width - text.len()));
}

/// The bytes of an annotation signal in one record: the time-keeping TAL then one TAL per
/// annotation `(onset, duration, text)`, padded with 0 to `2 × samples`.
pub fn tals(
    record_onset: f64,
    annotations: &[(f64, Option<f64>, &str)],
    samples: usize,
) -> Vec<u8> {
    let mut out = format!("+{record_onset}\x14\x14\0").into_bytes();
    for (onset, duration, text) in annotations {
        let sign = if *onset < 0.0 { "-" } else { "+" };
        out.extend_from_slice(format!("{sign}{}", onset.abs()).as_bytes());
        if let Some(d) = duration {
            out.extend_from_slice(format!("\x15{d}").as_bytes());
        }
        out.push(0x14);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\x14\0");
    }
    assert!(out.len() <= samples * 2, "annotations overflow the signal");
    out.resize(samples * 2, 0);
    out
}

/// One data record: each signal's digital samples in order (`annotation bytes` for EDF+
/// annotation signals are passed as already encoded bytes).
pub enum Part<'a> {
    Samples(&'a [i16]),
    Bytes(&'a [u8]),
}

pub fn record(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        match p {
            Part::Samples(s) => {
                for v in *s {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Part::Bytes(b) => out.extend_from_slice(b),
        }
    }
    out
}

/// Writes a plain header then `records` records produced by `make(index)` to `out`.
pub fn write_stream(
    out: &mut impl Write,
    header: &Header,
    records: usize,
    mut make: impl FnMut(usize) -> Vec<u8>,
) -> std::io::Result<()> {
    out.write_all(&header.bytes())?;
    for i in 0..records {
        out.write_all(&make(i))?;
    }
    Ok(())
}
