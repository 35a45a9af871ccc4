//! HL7 aECG (HL7 v3 annotated ECG, ANSI/HL7 V3 ECG R1): the rhythm waveforms of a resting ECG.
//!
//! Facts from the standard used here: the root element is `AnnotatedECG` (namespace
//! `urn:hl7-org:v3`); its `component/series` elements hold the waveforms, the one coded
//! `RHYTHM` (code system 2.16.840.1.113883.5.4) the full-length leads, others (e.g.
//! `REPRESENTATIVE_BEAT`, under `derivation/derivedSeries`) derived data. A series holds a
//! `sequenceSet` of `sequence`s sharing one time base:
//!
//! * a time sequence coded `TIME_ABSOLUTE` (`GLIST_TS`: `head` timestamp, `increment` in
//!   seconds) or `TIME_RELATIVE` (`GLIST_PQ`: `head` and `increment` quantities in `s`/`ms`);
//! * one sequence per lead, coded `MDC_ECG_LEAD_*` (MDC, code system 2.16.840.1.113883.6.24),
//!   with an `SLIST_PQ` value: `origin` and `scale` quantities (`uV`, `mV`…) and
//!   space-separated integer `digits`; value = origin + scale × digit. `SLIST_INT` leads have no
//!   unit.
//!
//! Timestamps are `YYYYMMDDHHMMSS[.fff][±ZZZZ]`. The subject's demographics (under
//! `componentOf`) are not read: nothing here needs the patient's identity.
//!
//! The document is read as events with `quick-xml`, which does not fetch or expand external
//! entities (no XXE) and keeps only the element path and the digits of the current sequence in
//! memory.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::{
    Channel, ChannelInfo, Format, MAX_WINDOW_SAMPLES, Modality, Summary, TimeWindow, WaveformError,
    Window, voltage_factor,
};

/// Elements nested deeper than this are refused (real documents are about 12 deep); it bounds
/// the element path kept in memory.
const MAX_DEPTH: usize = 128;

/// The standard 12-lead order; leads outside it follow in document order.
const STANDARD_LEADS: [(&str, &str); 12] = [
    ("MDC_ECG_LEAD_I", "I"),
    ("MDC_ECG_LEAD_II", "II"),
    ("MDC_ECG_LEAD_III", "III"),
    ("MDC_ECG_LEAD_AVR", "aVR"),
    ("MDC_ECG_LEAD_AVL", "aVL"),
    ("MDC_ECG_LEAD_AVF", "aVF"),
    ("MDC_ECG_LEAD_V1", "V1"),
    ("MDC_ECG_LEAD_V2", "V2"),
    ("MDC_ECG_LEAD_V3", "V3"),
    ("MDC_ECG_LEAD_V4", "V4"),
    ("MDC_ECG_LEAD_V5", "V5"),
    ("MDC_ECG_LEAD_V6", "V6"),
];

/// The rhythm leads of an annotated ECG, all in memory (an aECG is a few hundred kilobytes).
#[derive(Debug, Clone, PartialEq)]
pub struct Aecg {
    /// `effectiveTime/low` of the document (or of the rhythm series).
    pub start: Option<PrimitiveDateTime>,
    pub leads: Vec<Lead>,
}

/// One lead of the rhythm series.
#[derive(Debug, Clone, PartialEq)]
pub struct Lead {
    /// The MDC code, e.g. `MDC_ECG_LEAD_AVR`.
    pub code: String,
    /// Label (`aVR`), unit, sampling rate and physical values.
    pub channel: Channel,
}

impl Aecg {
    /// Seconds covered by the longest lead.
    pub fn duration(&self) -> f64 {
        self.leads
            .iter()
            .map(|l| l.channel.samples.len() as f64 / l.channel.sampling_rate)
            .fold(0.0, f64::max)
    }

    pub fn summary(&self) -> Summary {
        Summary {
            format: Format::Aecg,
            modality: Modality::Ecg,
            channels: self
                .leads
                .iter()
                .map(|l| ChannelInfo {
                    label: l.channel.label.clone(),
                    transducer: l.code.clone(),
                    unit: l.channel.unit.clone(),
                    sampling_rate: l.channel.sampling_rate,
                    prefiltering: String::new(),
                })
                .collect(),
            duration: self.duration(),
            start: self.start,
            patient_identification: String::new(),
            recording_identification: String::new(),
        }
    }

    /// The part of every lead inside `window` (clipped to the end of the recording).
    pub fn window(&self, window: TimeWindow) -> Result<Window, WaveformError> {
        let end = self.duration();
        if window.start() >= end {
            return Err(WaveformError::InvalidWindow(format!(
                "starts at {} s, after the end of the recording ({end} s)",
                window.start()
            )));
        }
        let window = TimeWindow::new(window.start(), window.duration().min(end - window.start()))?;
        let channels = self
            .leads
            .iter()
            .map(|l| {
                let c = &l.channel;
                let fs = c.sampling_rate;
                let from = ((window.start() * fs).round() as usize).min(c.samples.len());
                let to = ((window.end() * fs).round() as usize).clamp(from, c.samples.len());
                Channel {
                    samples: c.samples[from..to].to_vec(),
                    ..c.clone()
                }
            })
            .collect();
        Ok(Window {
            modality: Modality::Ecg,
            window,
            channels,
            annotations: Vec::new(),
        })
    }
}

/// A quantity attribute pair (`value`, `unit`).
#[derive(Debug, Clone, Default)]
struct Quantity {
    value: String,
    unit: String,
}

#[derive(Debug, Default)]
struct SequenceAcc {
    code: String,
    value_type: String,
    head: Option<Quantity>,
    increment: Option<Quantity>,
    origin: Option<Quantity>,
    scale: Option<Quantity>,
    digits: Vec<i64>,
    /// A number split across two text events.
    pending: String,
}

#[derive(Debug, Default)]
struct SeriesAcc {
    code: String,
    low: Option<String>,
    sequences: Vec<SequenceAcc>,
}

fn invalid(reason: impl Into<String>) -> WaveformError {
    WaveformError::InvalidAecg(reason.into())
}

fn attr(e: &BytesStart<'_>, local: &[u8]) -> Result<Option<String>, WaveformError> {
    for a in e.attributes() {
        let a = a.map_err(|err| invalid(format!("bad attribute: {err}")))?;
        if a.key.local_name().as_ref() == local {
            let v = a
                .unescape_value()
                .map_err(|err| invalid(format!("bad attribute value: {err}")))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn quantity(e: &BytesStart<'_>) -> Result<Quantity, WaveformError> {
    Ok(Quantity {
        value: attr(e, b"value")?.unwrap_or_default(),
        unit: attr(e, b"unit")?.unwrap_or_default(),
    })
}

/// Parses an annotated ECG and keeps its rhythm series.
pub fn parse(input: impl BufRead) -> Result<Aecg, WaveformError> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut root_seen = false;
    let mut doc_low: Option<String> = None;
    let mut series: Option<SeriesAcc> = None;
    let mut sequence: Option<SequenceAcc> = None;
    let mut rhythm: Option<SeriesAcc> = None;
    let mut total_digits = 0usize;

    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| WaveformError::Xml {
                position: reader.error_position(),
                reason: e.to_string(),
            })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                if !root_seen {
                    if name != b"AnnotatedECG" {
                        return Err(invalid(format!(
                            "the root element is <{}>, not <AnnotatedECG>",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    root_seen = true;
                } else if path.is_empty() {
                    return Err(invalid("more than one root element"));
                }
                let parent = path.last().map(Vec::as_slice);
                let grandparent = path.len().checked_sub(2).map(|i| path[i].as_slice());
                match (name.as_slice(), parent) {
                    (b"low", Some(b"effectiveTime")) if path.len() == 2 => {
                        doc_low = attr(e, b"value")?;
                    }
                    (b"low", Some(b"effectiveTime")) if grandparent == Some(b"series") => {
                        if let Some(s) = series.as_mut() {
                            s.low = attr(e, b"value")?;
                        }
                    }
                    (b"series", _) if !empty => series = Some(SeriesAcc::default()),
                    (b"code", Some(b"series")) => {
                        if let Some(s) = series.as_mut() {
                            s.code = attr(e, b"code")?.unwrap_or_default();
                        }
                    }
                    // Only the series' own sequences: a derivedSeries (representative
                    // beats) nested in it has sequences too.
                    (b"sequence", _) if series.is_some() && !empty && series_sequence(&path) => {
                        sequence = Some(SequenceAcc::default());
                    }
                    (b"code", Some(b"sequence")) => {
                        if let Some(q) = sequence.as_mut() {
                            q.code = attr(e, b"code")?.unwrap_or_default();
                        }
                    }
                    (b"value", Some(b"sequence")) => {
                        if let Some(q) = sequence.as_mut() {
                            q.value_type = attr(e, b"type")?.unwrap_or_default();
                        }
                    }
                    (b"head" | b"increment" | b"origin" | b"scale", Some(b"value"))
                        if grandparent == Some(b"sequence") =>
                    {
                        if let Some(q) = sequence.as_mut() {
                            let v = Some(quantity(e)?);
                            match name.as_slice() {
                                b"head" => q.head = v,
                                b"increment" => q.increment = v,
                                b"origin" => q.origin = v,
                                _ => q.scale = v,
                            }
                        }
                    }
                    _ => {}
                }
                if !empty {
                    if path.len() >= MAX_DEPTH {
                        return Err(invalid(format!("elements nested deeper than {MAX_DEPTH}")));
                    }
                    path.push(name);
                }
            }
            Event::Text(ref t) => {
                if in_digits(&path)
                    && let Some(q) = sequence.as_mut()
                {
                    let text = t
                        .decode()
                        .map_err(|e| invalid(format!("digits are not text: {e}")))?;
                    take_digits(q, &text, false, &mut total_digits)?;
                } else if path.is_empty() && !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(invalid("text outside the root element"));
                }
            }
            Event::GeneralRef(ref r) => {
                if in_digits(&path)
                    && let Some(q) = sequence.as_mut()
                {
                    // A character reference among digits (&#32; for a space) is legal XML.
                    let c = r
                        .resolve_char_ref()
                        .ok()
                        .flatten()
                        .ok_or_else(|| invalid("an entity reference among digits"))?;
                    take_digits(q, &c.to_string(), false, &mut total_digits)?;
                }
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match name.as_slice() {
                    b"digits" => {
                        if let Some(q) = sequence.as_mut() {
                            take_digits(q, "", true, &mut total_digits)?;
                        }
                    }
                    b"sequence" => {
                        if let (Some(q), Some(s)) = (sequence.take(), series.as_mut()) {
                            s.sequences.push(q);
                        }
                    }
                    b"series" => {
                        if let Some(s) = series.take()
                            && s.code == "RHYTHM"
                            && rhythm.is_none()
                        {
                            rhythm = Some(s);
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => {
                if !path.is_empty() {
                    return Err(WaveformError::Xml {
                        position: reader.buffer_position(),
                        reason: format!(
                            "the document ends inside <{}>",
                            String::from_utf8_lossy(path.last().map(Vec::as_slice).unwrap_or(b""))
                        ),
                    });
                }
                break;
            }
            Event::CData(_) if in_digits(&path) => {
                return Err(invalid("digits in a CDATA section"));
            }
            _ => {}
        }
        buf.clear();
    }
    if !root_seen {
        return Err(invalid("no <AnnotatedECG> element"));
    }
    let rhythm = rhythm.ok_or_else(|| invalid("no series coded RHYTHM"))?;
    build(rhythm, doc_low)
}

/// Whether an element with this parent path is a `series/component/sequenceSet/component/
/// sequence`.
fn series_sequence(path: &[Vec<u8>]) -> bool {
    path.len() >= 4
        && path[path.len() - 4..].iter().map(Vec::as_slice).eq([
            &b"series"[..],
            b"component",
            b"sequenceSet",
            b"component",
        ])
}

fn in_digits(path: &[Vec<u8>]) -> bool {
    path.len() >= 2 && path[path.len() - 1] == b"digits" && path[path.len() - 2] == b"value"
}

/// Appends the integers of `text` to the sequence; a number cut between two text events waits
/// in `pending` until whitespace (or the end of `digits`) closes it.
fn take_digits(
    q: &mut SequenceAcc,
    text: &str,
    end: bool,
    total: &mut usize,
) -> Result<(), WaveformError> {
    let mut push = |token: &str, q_digits: &mut Vec<i64>| -> Result<(), WaveformError> {
        let v: i64 = token
            .parse()
            .map_err(|_| invalid(format!("digit {token:?} is not an integer")))?;
        *total += 1;
        if *total > MAX_WINDOW_SAMPLES {
            return Err(WaveformError::WindowTooLarge {
                samples: *total as u64,
                max: MAX_WINDOW_SAMPLES,
            });
        }
        q_digits.push(v);
        Ok(())
    };
    let mut pending = std::mem::take(&mut q.pending);
    for ch in text.chars() {
        if ch.is_ascii_whitespace() {
            if !pending.is_empty() {
                push(&pending, &mut q.digits)?;
                pending.clear();
            }
        } else if pending.len() < 24 {
            pending.push(ch);
        } else {
            return Err(invalid("a digit is longer than 24 characters"));
        }
    }
    if end {
        if !pending.is_empty() {
            push(&pending, &mut q.digits)?;
        }
    } else {
        q.pending = pending;
    }
    Ok(())
}

/// A decimal attribute value (HL7 REAL: optional sign, digits, point, exponent allowed).
fn real(what: &str, text: &str) -> Result<f64, WaveformError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| invalid(format!("{what} {text:?} is not a number")))
}

fn build(rhythm: SeriesAcc, doc_low: Option<String>) -> Result<Aecg, WaveformError> {
    let time = rhythm
        .sequences
        .iter()
        .find(|q| q.code == "TIME_ABSOLUTE" || q.code == "TIME_RELATIVE")
        .ok_or_else(|| {
            invalid("the rhythm series has no TIME_ABSOLUTE or TIME_RELATIVE sequence")
        })?;
    let increment = time
        .increment
        .as_ref()
        .ok_or_else(|| invalid("the time sequence has no increment"))?;
    let step = real("increment", &increment.value)?
        * match increment.unit.as_str() {
            "s" | "" => 1.0,
            "ms" => 0.001,
            other => return Err(invalid(format!("increment unit {other:?} is not s or ms"))),
        };
    if step <= 0.0 {
        return Err(invalid("the time increment must be positive"));
    }
    let sampling_rate = 1.0 / step;

    let mut leads = Vec::new();
    for q in &rhythm.sequences {
        let Some(short) = q.code.strip_prefix("MDC_ECG_LEAD_") else {
            continue;
        };
        let kind = q.value_type.rsplit(':').next().unwrap_or_default();
        if kind != "SLIST_PQ" && kind != "SLIST_INT" {
            return Err(invalid(format!(
                "lead {} has a value of type {:?}, not SLIST_PQ or SLIST_INT",
                q.code, q.value_type
            )));
        }
        if q.digits.is_empty() {
            return Err(invalid(format!("lead {} has no digits", q.code)));
        }
        let scale = q.scale.clone().unwrap_or(Quantity {
            value: "1".into(),
            unit: String::new(),
        });
        let origin = q.origin.clone().unwrap_or(Quantity {
            value: "0".into(),
            unit: scale.unit.clone(),
        });
        let factor = real("scale", &scale.value)?;
        let mut offset = real("origin", &origin.value)?;
        if origin.unit != scale.unit {
            // Origin and scale in different voltage units: express the origin in the scale's.
            match (voltage_factor(&origin.unit), voltage_factor(&scale.unit)) {
                (Some(o), Some(s)) => offset *= o / s,
                _ => {
                    return Err(invalid(format!(
                        "lead {}: origin unit {:?} and scale unit {:?} differ",
                        q.code, origin.unit, scale.unit
                    )));
                }
            }
        }
        let label = STANDARD_LEADS
            .iter()
            .find(|(code, _)| *code == q.code)
            .map_or_else(|| short.to_string(), |(_, label)| label.to_string());
        leads.push(Lead {
            code: q.code.clone(),
            channel: Channel {
                label,
                unit: scale.unit.clone(),
                sampling_rate,
                samples: q
                    .digits
                    .iter()
                    .map(|&d| (offset + factor * d as f64) as f32)
                    .collect(),
            },
        });
    }
    if leads.is_empty() {
        return Err(invalid("the rhythm series has no MDC_ECG_LEAD_* sequence"));
    }
    let rank = |code: &str| {
        STANDARD_LEADS
            .iter()
            .position(|(c, _)| *c == code)
            .unwrap_or(STANDARD_LEADS.len())
    };
    // Stable: leads outside the standard twelve keep their document order.
    leads.sort_by_key(|l| rank(&l.code));
    let start = doc_low
        .or(rhythm.low)
        .or_else(|| {
            (time.code == "TIME_ABSOLUTE")
                .then(|| time.head.as_ref().map(|h| h.value.clone()))
                .flatten()
        })
        .and_then(|v| timestamp(&v));
    Ok(Aecg { start, leads })
}

/// An HL7 TS `YYYYMMDD[HH[MM[SS[.fff]]]][±ZZZZ]`, to the second; the zone is dropped (EDF
/// start times have none either, and the portal shows local times).
fn timestamp(value: &str) -> Option<PrimitiveDateTime> {
    let digits: String = value.chars().take_while(|c| c.is_ascii_digit()).collect();
    if digits.len() < 8 {
        return None;
    }
    let n = |from: usize, to: usize| -> Option<u32> {
        digits.get(from..to).map_or(Some(0), |s| s.parse().ok())
    };
    let date = Date::from_calendar_date(
        i32::try_from(n(0, 4)?).ok()?,
        Month::try_from(u8::try_from(n(4, 6)?).ok()?).ok()?,
        u8::try_from(n(6, 8)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(n(8, 10)?).ok()?,
        u8::try_from(n(10, 12)?).ok()?,
        u8::try_from(n(12, 14)?).ok()?,
    )
    .ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            timestamp("20021122091000.000+0100").unwrap().to_string(),
            "2002-11-22 9:10:00.0"
        );
        assert_eq!(
            timestamp("20021122").unwrap().to_string(),
            "2002-11-22 0:00:00.0"
        );
        assert!(timestamp("2002").is_none());
        assert!(timestamp("20021322").is_none());
    }

    #[test]
    fn digits_split_across_text_events() {
        let mut q = SequenceAcc::default();
        let mut total = 0;
        take_digits(&mut q, " 12 -3", false, &mut total).unwrap();
        take_digits(&mut q, "4 5\n", false, &mut total).unwrap();
        take_digits(&mut q, "6", false, &mut total).unwrap();
        take_digits(&mut q, "", true, &mut total).unwrap();
        assert_eq!(q.digits, vec![12, -34, 5, 6]);
        assert_eq!(total, 4);
        assert!(take_digits(&mut q, "1.5 ", false, &mut total).is_err());
    }
}
