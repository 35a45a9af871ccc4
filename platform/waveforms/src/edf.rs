//! EDF and EDF+ (European Data Format) read as a stream.
//!
//! Facts from the specifications (Kemp et al. 1992 for EDF, Kemp & Olivan 2003 for EDF+):
//!
//! * A 256-byte fixed header (version `0`, patient and recording identification, start date
//!   `dd.mm.yy` and time `hh.mm.ss`, header length, a reserved field that EDF+ sets to `EDF+C`
//!   or `EDF+D`, number of data records, record duration in seconds, number of signals `ns`),
//!   then `ns × 256` bytes of signal headers, each field stored for all signals before the next
//!   field (labels ×16, transducers ×80, dimensions ×8, physical min ×8, physical max ×8,
//!   digital min ×8, digital max ×8, prefiltering ×80, samples per record ×8, reserved ×32).
//!   Every header byte is printable ASCII, numbers are ASCII decimals padded with spaces.
//! * Data records follow, each holding, signal after signal, its samples as 16-bit little-endian
//!   two's complement integers. `physical = (digital − dmin) × (pmax − pmin) / (dmax − dmin) +
//!   pmin`.
//! * EDF+ stores annotations in signals labelled `EDF Annotations` as Time-stamped Annotation
//!   Lists (TALs): `±onset [0x15 duration] 0x14 (text 0x14)* 0x00`, onsets in seconds from the
//!   header's start date and time, texts in UTF-8, unused bytes 0x00. The first TAL of every
//!   record is a time-keeping TAL with an empty text whose onset is the record's start time
//!   (the only way to place the records of an `EDF+D` file, which may have gaps).
//! * Two-digit years: 85–99 are 1985–1999, 00–84 are 2000–2084; beyond 2084 EDF+ writes `yy`
//!   and the date is only in the recording identification (`Startdate dd-MMM-yyyy`).
//!
//! # Why our own reader
//!
//! The EDF readers on crates.io did not fit: `edf-reader` (last release years ago) reads by
//! random access from a file through its own reader trait with futures 0.1, and `edf-rs` reads
//! from a path, calls itself an early, unstable implementation and pulls `chrono`. The server
//! reads blobs as streams (`Read`, possibly from S3) and must bound memory by the window
//! requested, not the file; the format is small and fully specified, so this module reads it
//! with `Read` only, one data record at a time, and validates every header field.

use std::io::Read;

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::{
    Annotation, AnnotationScan, Channel, ChannelInfo, Format, MAX_WINDOW_SAMPLES, Summary,
    TimeWindow, WaveformError, Window, guess_modality,
};

/// A data record larger than this is refused: it is read into memory whole, and a forged header
/// could otherwise make the reader allocate gigabytes. Real records are kilobytes (a 1 s record
/// of 256 channels at 2 kHz is 1 MiB).
pub const MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// At most this many annotations are collected in one pass; a file holding more is refused
/// rather than silently cut.
pub const MAX_ANNOTATIONS: usize = 100_000;

/// The label of EDF+ annotation signals.
pub const ANNOTATIONS_LABEL: &str = "EDF Annotations";

/// The fixed header and the signal headers of an EDF or EDF+ file.
#[derive(Debug, Clone, PartialEq)]
pub struct EdfHeader {
    pub format: Format,
    /// "Local patient identification": may identify the patient (see [`Summary`]).
    pub patient_identification: String,
    /// "Local recording identification".
    pub recording_identification: String,
    /// Start date and time of the recording (local time).
    pub start: PrimitiveDateTime,
    /// Number of bytes of the header, `256 × (ns + 1)`.
    pub header_bytes: usize,
    /// Number of data records the header declares.
    pub data_records: u64,
    /// Seconds per data record (0 only in an EDF+ file holding annotations only).
    pub record_duration: f64,
    pub signals: Vec<SignalHeader>,
}

/// The header of one signal.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalHeader {
    pub label: String,
    pub transducer: String,
    pub physical_dimension: String,
    pub physical_min: f64,
    pub physical_max: f64,
    pub digital_min: i32,
    pub digital_max: i32,
    pub prefiltering: String,
    pub samples_per_record: usize,
    pub reserved: String,
    /// True for an EDF+ `EDF Annotations` signal (never in a plain EDF file).
    pub is_annotations: bool,
}

impl SignalHeader {
    /// Physical units per digital step: `(pmax − pmin) / (dmax − dmin)`.
    pub fn gain(&self) -> f64 {
        (self.physical_max - self.physical_min)
            / (f64::from(self.digital_max) - f64::from(self.digital_min))
    }

    /// Physical value of the digital value 0: `pmin − gain × dmin`.
    pub fn offset(&self) -> f64 {
        self.physical_min - self.gain() * f64::from(self.digital_min)
    }

    /// Physical value of one digital sample.
    pub fn to_physical(&self, digital: i16) -> f64 {
        self.gain() * f64::from(digital) + self.offset()
    }

    /// Samples per second, given the record duration (0 when it is 0).
    pub fn sampling_rate(&self, record_duration: f64) -> f64 {
        if record_duration > 0.0 {
            self.samples_per_record as f64 / record_duration
        } else {
            0.0
        }
    }
}

impl EdfHeader {
    /// Bytes of one data record: two per sample of every signal.
    pub fn record_bytes(&self) -> usize {
        self.signals.iter().map(|s| s.samples_per_record * 2).sum()
    }

    /// Duration of the data (records × record duration; an EDF+D file's gaps excluded).
    pub fn duration(&self) -> f64 {
        self.data_records as f64 * self.record_duration
    }

    /// Checks that a file of `total_len` bytes holds exactly the declared data records. The
    /// server knows the blob's length before reading it; a stream reader only finds out at the
    /// end, which a window read never reaches.
    pub fn check_length(&self, total_len: u64) -> Result<(), WaveformError> {
        let record = self.record_bytes() as u64;
        let header = self.header_bytes as u64;
        let body = total_len.saturating_sub(header);
        let expected = self.data_records.saturating_mul(record);
        if total_len < header {
            return Err(WaveformError::TruncatedHeader {
                expected: self.header_bytes,
                got: usize::try_from(total_len).unwrap_or(usize::MAX),
            });
        }
        if body == expected {
            return Ok(());
        }
        let whole = body.checked_div(record).unwrap_or(0);
        let rest = body.checked_rem(record).unwrap_or(body);
        if rest != 0 && whole < self.data_records {
            return Err(WaveformError::TruncatedRecord {
                record: whole,
                expected: record as usize,
                got: rest as usize,
            });
        }
        Err(WaveformError::RecordCountMismatch {
            declared: self.data_records,
            found: whole,
        })
    }

    /// The summary shown by the portal (patient field kept apart, see [`Summary`]).
    pub fn summary(&self) -> Summary {
        let ordinary = self.signals.iter().filter(|s| !s.is_annotations);
        Summary {
            format: self.format,
            modality: guess_modality(
                ordinary
                    .clone()
                    .map(|s| (s.label.as_str(), s.transducer.as_str())),
            ),
            channels: ordinary
                .map(|s| ChannelInfo {
                    label: s.label.clone(),
                    transducer: s.transducer.clone(),
                    unit: s.physical_dimension.clone(),
                    sampling_rate: s.sampling_rate(self.record_duration),
                    prefiltering: s.prefiltering.clone(),
                })
                .collect(),
            duration: self.duration(),
            start: Some(self.start),
            patient_identification: self.patient_identification.clone(),
            recording_identification: self.recording_identification.clone(),
        }
    }

    /// Parses the 256-byte fixed header and the `ns × 256` bytes of signal headers.
    pub fn parse(fixed: &[u8], signal_bytes: &[u8]) -> Result<Self, WaveformError> {
        if fixed.len() < 256 {
            return Err(WaveformError::TruncatedHeader {
                expected: 256,
                got: fixed.len(),
            });
        }
        if fixed[0] == 0xff {
            return Err(WaveformError::Unsupported(
                "BDF (24-bit samples) is not EDF".into(),
            ));
        }
        let version = ascii("version", &fixed[0..8])?;
        if version != "0" {
            return Err(WaveformError::InvalidField {
                field: "version".into(),
                reason: format!("must be 0, found {version:?}"),
            });
        }
        let patient = ascii("local patient identification", &fixed[8..88])?;
        let recording = ascii("local recording identification", &fixed[88..168])?;
        let date = ascii("start date", &fixed[168..176])?;
        let clock = ascii("start time", &fixed[176..184])?;
        let header_bytes = integer("number of bytes in header", &fixed[184..192])?;
        let reserved = ascii("reserved", &fixed[192..236])?;
        let data_records = integer("number of data records", &fixed[236..244])?;
        let record_duration = decimal("duration of a data record", &fixed[244..252])?;
        let ns = integer("number of signals", &fixed[252..256])?;

        let format = if reserved.starts_with("EDF+C") {
            Format::EdfPlusContinuous
        } else if reserved.starts_with("EDF+D") {
            Format::EdfPlusDiscontinuous
        } else if reserved.starts_with("EDF+") {
            return Err(invalid("reserved", "EDF+ must say EDF+C or EDF+D"));
        } else if reserved.starts_with("24BIT") || reserved.starts_with("BDF") {
            return Err(WaveformError::Unsupported(
                "BDF+ (24-bit samples) is not EDF".into(),
            ));
        } else {
            Format::Edf
        };
        let plus = format != Format::Edf;

        if ns < 1 {
            return Err(invalid("number of signals", "must be at least 1"));
        }
        let ns = usize::try_from(ns).map_err(|_| invalid("number of signals", "too large"))?;
        if header_bytes != 256 * (ns as i64 + 1) {
            return Err(invalid(
                "number of bytes in header",
                &format!("{header_bytes} but {ns} signals need {}", 256 * (ns + 1)),
            ));
        }
        if data_records == -1 {
            return Err(invalid(
                "number of data records",
                "-1 (unknown): the recording was never closed",
            ));
        }
        let data_records = u64::try_from(data_records)
            .map_err(|_| invalid("number of data records", "must not be negative"))?;
        if record_duration < 0.0 {
            return Err(invalid("duration of a data record", "must not be negative"));
        }
        let start = start_date_time(&date, &clock, plus.then_some(recording.as_str()))?;

        if signal_bytes.len() < ns * 256 {
            return Err(WaveformError::TruncatedHeader {
                expected: 256 * (ns + 1),
                got: 256 + signal_bytes.len(),
            });
        }
        let signals = parse_signals(&signal_bytes[..ns * 256], ns, plus)?;

        if plus && !signals.iter().any(|s| s.is_annotations) {
            return Err(invalid(
                "reserved",
                "an EDF+ file must have an \"EDF Annotations\" signal",
            ));
        }
        if record_duration == 0.0 && signals.iter().any(|s| !s.is_annotations) {
            return Err(invalid(
                "duration of a data record",
                "0 is only allowed when every signal is an annotation signal",
            ));
        }
        let header = EdfHeader {
            format,
            patient_identification: patient,
            recording_identification: recording,
            start,
            header_bytes: 256 * (ns + 1),
            data_records,
            record_duration,
            signals,
        };
        if header.record_bytes() > MAX_RECORD_BYTES {
            return Err(WaveformError::Unsupported(format!(
                "data records of {} bytes (this reader accepts up to {MAX_RECORD_BYTES})",
                header.record_bytes()
            )));
        }
        Ok(header)
    }
}

fn parse_signals(bytes: &[u8], ns: usize, plus: bool) -> Result<Vec<SignalHeader>, WaveformError> {
    // Field widths in storage order; each field is stored for all signals before the next.
    const WIDTHS: [usize; 10] = [16, 80, 8, 8, 8, 8, 8, 80, 8, 32];
    let mut offsets = [0usize; 10];
    let mut at = 0;
    for (i, w) in WIDTHS.iter().enumerate() {
        offsets[i] = at;
        at += w * ns;
    }
    let field = |f: usize, s: usize| {
        let start = offsets[f] + s * WIDTHS[f];
        &bytes[start..start + WIDTHS[f]]
    };
    let mut signals = Vec::with_capacity(ns);
    for s in 0..ns {
        let name = |what: &str| format!("signal {} {what}", s + 1);
        let label = ascii(&name("label"), field(0, s))?;
        let transducer = ascii(&name("transducer type"), field(1, s))?;
        let physical_dimension = ascii(&name("physical dimension"), field(2, s))?;
        let physical_min = decimal(&name("physical minimum"), field(3, s))?;
        let physical_max = decimal(&name("physical maximum"), field(4, s))?;
        let digital_min = integer(&name("digital minimum"), field(5, s))?;
        let digital_max = integer(&name("digital maximum"), field(6, s))?;
        let prefiltering = ascii(&name("prefiltering"), field(7, s))?;
        let samples = integer(&name("number of samples in each data record"), field(8, s))?;
        let reserved = ascii(&name("reserved"), field(9, s))?;

        let range = i64::from(i16::MIN)..=i64::from(i16::MAX);
        for (what, v) in [
            ("digital minimum", digital_min),
            ("digital maximum", digital_max),
        ] {
            if !range.contains(&v) {
                return Err(invalid(
                    &name(what),
                    &format!("{v} is outside the 16-bit range -32768..32767"),
                ));
            }
        }
        if digital_min >= digital_max {
            return Err(invalid(
                &name("digital minimum"),
                &format!("{digital_min} must be below the digital maximum {digital_max}"),
            ));
        }
        if physical_min == physical_max {
            return Err(invalid(
                &name("physical maximum"),
                &format!("equals the physical minimum {physical_min}"),
            ));
        }
        if samples < 1 {
            return Err(invalid(
                &name("number of samples in each data record"),
                &format!("{samples}: a signal needs at least one sample per record"),
            ));
        }
        let samples_per_record = usize::try_from(samples)
            .ok()
            .filter(|n| *n <= MAX_RECORD_BYTES / 2)
            .ok_or_else(|| {
                invalid(
                    &name("number of samples in each data record"),
                    &format!("{samples} is too large"),
                )
            })?;
        signals.push(SignalHeader {
            is_annotations: plus && label == ANNOTATIONS_LABEL,
            label,
            transducer,
            physical_dimension,
            physical_min,
            physical_max,
            digital_min: digital_min as i32,
            digital_max: digital_max as i32,
            prefiltering,
            samples_per_record,
            reserved,
        });
    }
    Ok(signals)
}

fn invalid(field: &str, reason: &str) -> WaveformError {
    WaveformError::InvalidField {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// A header field as text: printable ASCII only, trailing (and leading) spaces removed.
fn ascii(field: &str, bytes: &[u8]) -> Result<String, WaveformError> {
    if bytes.iter().any(|b| !(32..=126).contains(b)) {
        return Err(WaveformError::NotAscii {
            field: field.to_string(),
        });
    }
    // Checked above: every byte is ASCII, so this is valid UTF-8.
    Ok(String::from_utf8_lossy(bytes).trim().to_string())
}

/// An ASCII integer (optional sign, digits). Rust's parser alone would accept nothing more, but
/// the error must name the field.
fn integer(field: &str, bytes: &[u8]) -> Result<i64, WaveformError> {
    let text = ascii(field, bytes)?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WaveformError::NotANumber {
            field: field.to_string(),
            value: text,
        });
    }
    text.parse().map_err(|_| WaveformError::NotANumber {
        field: field.to_string(),
        value: text.clone(),
    })
}

/// An ASCII decimal: optional sign, digits with at most one point. `f64::from_str` would also
/// take `inf`, `NaN` and exponents, which the specification does not allow.
fn decimal(field: &str, bytes: &[u8]) -> Result<f64, WaveformError> {
    let text = ascii(field, bytes)?;
    parse_decimal(&text, true).ok_or_else(|| WaveformError::NotANumber {
        field: field.to_string(),
        value: text,
    })
}

fn parse_decimal(text: &str, signed: bool) -> Option<f64> {
    let unsigned = if signed {
        text.strip_prefix(['+', '-']).unwrap_or(text)
    } else {
        text
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    text.parse().ok().filter(|v: &f64| v.is_finite())
}

fn start_date_time(
    date: &str,
    clock: &str,
    plus_recording: Option<&str>,
) -> Result<PrimitiveDateTime, WaveformError> {
    let parts = |text: &str, field: &str| -> Result<[String; 3], WaveformError> {
        let p: Vec<&str> = text.split('.').collect();
        if text.len() != 8 || p.len() != 3 || p.iter().any(|x| x.len() != 2) {
            return Err(invalid(
                field,
                &format!("{text:?} is not dd.mm.yy / hh.mm.ss"),
            ));
        }
        Ok([p[0].to_string(), p[1].to_string(), p[2].to_string()])
    };
    let number = |text: &str, field: &str| -> Result<u8, WaveformError> {
        if !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(WaveformError::NotANumber {
                field: field.to_string(),
                value: text.to_string(),
            });
        }
        text.parse().map_err(|_| WaveformError::NotANumber {
            field: field.to_string(),
            value: text.to_string(),
        })
    };
    let [dd, mm, yy] = parts(date, "start date")?;
    let [h, m, s] = parts(clock, "start time")?;
    let day = number(&dd, "start date")?;
    let month = number(&mm, "start date")?;
    let plus_year = plus_recording.and_then(recording_year);
    let year = if yy == "yy" {
        plus_year.ok_or_else(|| {
            invalid(
                "start date",
                "year `yy` needs an EDF+ `Startdate dd-MMM-yyyy` in the recording field",
            )
        })?
    } else {
        let y = i32::from(number(&yy, "start date")?);
        // The 1985 clipping date of the EDF specification; an EDF+ four-digit year wins.
        plus_year.unwrap_or(if y >= 85 { 1900 + y } else { 2000 + y })
    };
    let month = Month::try_from(month)
        .map_err(|_| invalid("start date", &format!("month {mm} does not exist")))?;
    let day = Date::from_calendar_date(year, month, day)
        .map_err(|_| invalid("start date", &format!("{date} is not a date")))?;
    let time = Time::from_hms(
        number(&h, "start time")?,
        number(&m, "start time")?,
        number(&s, "start time")?,
    )
    .map_err(|_| invalid("start time", &format!("{clock} is not a time of day")))?;
    Ok(PrimitiveDateTime::new(day, time))
}

/// The four-digit year of an EDF+ recording field `Startdate dd-MMM-yyyy …`, when present
/// (anonymised files write `Startdate X`).
fn recording_year(recording: &str) -> Option<i32> {
    let date = recording.strip_prefix("Startdate ")?.split(' ').next()?;
    let year = date.rsplit('-').next()?;
    if date.len() == 11 && year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) {
        year.parse().ok()
    } else {
        None
    }
}

/// Reads `buf.len()` bytes unless the stream ends first; returns how many were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, WaveformError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// An EDF/EDF+ file being read from the front. Reading a window consumes it: a `Read` goes one
/// way, and the server opens the blob again for another window.
#[derive(Debug)]
pub struct EdfReader<R> {
    inner: R,
    header: EdfHeader,
}

impl<R: Read> EdfReader<R> {
    /// Reads and validates the header. Give it a buffered reader: data records are read in one
    /// call each, but the header in two.
    pub fn open(mut inner: R) -> Result<Self, WaveformError> {
        let mut fixed = [0u8; 256];
        let got = read_full(&mut inner, &mut fixed)?;
        if got < 256 {
            return Err(WaveformError::TruncatedHeader { expected: 256, got });
        }
        // The number of signals is needed to know how much more header to read; parse() checks
        // the field again (and everything else) on the whole header.
        let ns = integer("number of signals", &fixed[252..256])?;
        let ns = usize::try_from(ns)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| invalid("number of signals", "must be at least 1"))?;
        let mut signal_bytes = vec![0u8; ns * 256];
        let got = read_full(&mut inner, &mut signal_bytes)?;
        if got < signal_bytes.len() {
            return Err(WaveformError::TruncatedHeader {
                expected: 256 * (ns + 1),
                got: 256 + got,
            });
        }
        let header = EdfHeader::parse(&fixed, &signal_bytes)?;
        Ok(Self { inner, header })
    }

    pub fn header(&self) -> &EdfHeader {
        &self.header
    }

    /// See [`EdfHeader::summary`].
    pub fn summary(&self) -> Summary {
        self.header.summary()
    }

    /// Reads the samples of `window` (physical units) and the annotations that meet it.
    ///
    /// Records before the window are read and dropped one at a time (their annotations are
    /// kept when they meet the window); reading stops after the window unless `scan` asks for
    /// the whole file. For plain EDF and EDF+C the window is clipped to the end of the
    /// recording; a window starting after the end is an error.
    pub fn read_window(
        mut self,
        window: TimeWindow,
        scan: AnnotationScan,
    ) -> Result<Window, WaveformError> {
        let h = &self.header;
        let discontinuous = h.format == Format::EdfPlusDiscontinuous;
        let window = if discontinuous || h.record_duration == 0.0 {
            window
        } else {
            let end = h.duration();
            if window.start() >= end {
                return Err(WaveformError::InvalidWindow(format!(
                    "starts at {} s, after the end of the recording ({end} s)",
                    window.start()
                )));
            }
            TimeWindow::new(window.start(), window.duration().min(end - window.start()))?
        };

        // Allocate the window up front (NaN = no data), refusing a window too large first.
        let ordinary: Vec<usize> = (0..h.signals.len())
            .filter(|&i| !h.signals[i].is_annotations)
            .collect();
        let lengths: Vec<usize> = ordinary
            .iter()
            .map(|&i| {
                let fs = h.signals[i].sampling_rate(h.record_duration);
                (window.duration() * fs - 1e-9).ceil().max(0.0) as usize
            })
            .collect();
        let total: u64 = lengths.iter().map(|&n| n as u64).sum();
        if total > MAX_WINDOW_SAMPLES as u64 {
            return Err(WaveformError::WindowTooLarge {
                samples: total,
                max: MAX_WINDOW_SAMPLES,
            });
        }
        let mut channels: Vec<Channel> = ordinary
            .iter()
            .zip(&lengths)
            .map(|(&i, &n)| Channel {
                label: h.signals[i].label.clone(),
                unit: h.signals[i].physical_dimension.clone(),
                sampling_rate: h.signals[i].sampling_rate(h.record_duration),
                samples: vec![f32::NAN; n],
            })
            .collect();
        let modality = guess_modality(ordinary.iter().map(|&i| {
            (
                h.signals[i].label.as_str(),
                h.signals[i].transducer.as_str(),
            )
        }));

        let mut annotations = Vec::new();
        let records = Records::new(&self.header);
        let mut buf = Vec::new();
        let mut read_all = true;
        for index in 0..self.header.data_records {
            let onset_guess = index as f64 * self.header.record_duration;
            // Plain EDF has no annotations and contiguous records: the first record past the
            // window ends the read. EDF+ records say when they start (time-keeping TAL): the
            // check below breaks on the first one that starts after the window (the
            // specification keeps records in chronological order).
            if self.header.format == Format::Edf && onset_guess >= window.end() {
                read_all = false;
                break;
            }
            records.read(&mut self.inner, index, &mut buf)?;
            let (onset, tals) = records.annotations(&buf, index)?;
            let onset = onset.unwrap_or(onset_guess);
            for a in tals {
                let end = a.onset + a.duration.unwrap_or(0.0);
                if a.onset < window.end() && end >= window.start() {
                    push_annotation(&mut annotations, a)?;
                }
            }
            if onset >= window.end() {
                if scan == AnnotationScan::UpToWindowEnd {
                    read_all = false;
                    break;
                }
                continue;
            }
            for (channel, &s) in channels.iter_mut().zip(&ordinary) {
                place(
                    channel,
                    &records.layout[s],
                    &self.header.signals[s],
                    &buf,
                    onset,
                    &window,
                );
            }
        }
        if read_all {
            records.expect_end(&mut self.inner)?;
        }
        annotations.sort_by(|a: &Annotation, b| a.onset.total_cmp(&b.onset));
        Ok(Window {
            modality,
            window,
            channels,
            annotations,
        })
    }

    /// Every annotation of the file, sorted by onset: reads the whole file (samples are dropped
    /// record by record). Empty for plain EDF.
    pub fn read_annotations(mut self) -> Result<Vec<Annotation>, WaveformError> {
        let records = Records::new(&self.header);
        let mut buf = Vec::new();
        let mut annotations = Vec::new();
        for index in 0..self.header.data_records {
            records.read(&mut self.inner, index, &mut buf)?;
            for a in records.annotations(&buf, index)?.1 {
                push_annotation(&mut annotations, a)?;
            }
        }
        records.expect_end(&mut self.inner)?;
        annotations.sort_by(|a, b| a.onset.total_cmp(&b.onset));
        Ok(annotations)
    }
}

fn push_annotation(list: &mut Vec<Annotation>, a: Annotation) -> Result<(), WaveformError> {
    if list.len() >= MAX_ANNOTATIONS {
        return Err(WaveformError::Unsupported(format!(
            "more than {MAX_ANNOTATIONS} annotations"
        )));
    }
    list.push(a);
    Ok(())
}

/// Where each signal's bytes sit in a data record, and the record-level reading checks.
struct Records {
    declared: u64,
    record_bytes: usize,
    plus: bool,
    /// Byte range of each signal in a record.
    layout: Vec<std::ops::Range<usize>>,
    annotation_signals: Vec<usize>,
}

impl Records {
    fn new(h: &EdfHeader) -> Self {
        let mut at = 0;
        let layout = h
            .signals
            .iter()
            .map(|s| {
                let r = at..at + s.samples_per_record * 2;
                at = r.end;
                r
            })
            .collect();
        Self {
            declared: h.data_records,
            record_bytes: h.record_bytes(),
            plus: h.format != Format::Edf,
            layout,
            annotation_signals: (0..h.signals.len())
                .filter(|&i| h.signals[i].is_annotations)
                .collect(),
        }
    }

    /// Reads record `index` into `buf`. The buffer grows with the bytes actually read (and is
    /// reused for the next record), so a forged header declaring huge records in a tiny file
    /// costs no more memory than the file.
    fn read(&self, r: &mut impl Read, index: u64, buf: &mut Vec<u8>) -> Result<(), WaveformError> {
        buf.clear();
        let got = r.take(self.record_bytes as u64).read_to_end(buf)?;
        if got == 0 && self.record_bytes > 0 {
            return Err(WaveformError::RecordCountMismatch {
                declared: self.declared,
                found: index,
            });
        }
        if got < self.record_bytes {
            return Err(WaveformError::TruncatedRecord {
                record: index,
                expected: self.record_bytes,
                got,
            });
        }
        Ok(())
    }

    /// After the last declared record the file must end.
    fn expect_end(&self, r: &mut impl Read) -> Result<(), WaveformError> {
        let mut one = [0u8; 1];
        if read_full(r, &mut one)? != 0 {
            return Err(WaveformError::RecordCountMismatch {
                declared: self.declared,
                found: self.declared + 1,
            });
        }
        Ok(())
    }

    /// The record's start time (EDF+ time-keeping TAL) and its annotations.
    fn annotations(
        &self,
        buf: &[u8],
        index: u64,
    ) -> Result<(Option<f64>, Vec<Annotation>), WaveformError> {
        if !self.plus {
            return Ok((None, Vec::new()));
        }
        let mut onset = None;
        let mut out = Vec::new();
        for (n, &s) in self.annotation_signals.iter().enumerate() {
            let tals = parse_tals(&buf[self.layout[s].clone()], index)?;
            for (k, tal) in tals.into_iter().enumerate() {
                let mut texts = tal.texts.into_iter();
                if n == 0 && k == 0 {
                    // Time-keeping TAL: its first text is empty by definition.
                    match texts.next() {
                        Some(t) if t.is_empty() => onset = Some(tal.onset),
                        _ => {
                            return Err(WaveformError::BadAnnotation {
                                record: index,
                                reason: "the first annotation is not a time-keeping one".into(),
                            });
                        }
                    }
                }
                for text in texts.filter(|t| !t.is_empty()) {
                    out.push(Annotation {
                        onset: tal.onset,
                        duration: tal.duration,
                        text,
                    });
                }
            }
        }
        if onset.is_none() {
            return Err(WaveformError::BadAnnotation {
                record: index,
                reason: "no time-keeping annotation".into(),
            });
        }
        Ok((onset, out))
    }
}

/// One Time-stamped Annotation List.
#[derive(Debug, PartialEq)]
struct Tal {
    onset: f64,
    duration: Option<f64>,
    texts: Vec<String>,
}

/// The TALs of one annotation signal of one record.
fn parse_tals(bytes: &[u8], record: u64) -> Result<Vec<Tal>, WaveformError> {
    let bad = |reason: &str| WaveformError::BadAnnotation {
        record,
        reason: reason.to_string(),
    };
    let mut tals = Vec::new();
    let mut at = 0;
    while at < bytes.len() && bytes[at] != 0 {
        let end = bytes[at..]
            .iter()
            .position(|&b| b == 0)
            .map(|p| at + p)
            .ok_or_else(|| bad("a TAL is not terminated by a 0 byte"))?;
        let tal = &bytes[at..end];
        at = end + 1;
        let Some(body) = tal.strip_suffix(&[0x14]) else {
            return Err(bad("a TAL does not end with 0x14"));
        };
        let mut parts = body.split(|&b| b == 0x14);
        let time = parts.next().unwrap_or_default();
        let (onset, duration) = match time.iter().position(|&b| b == 0x15) {
            Some(p) => (&time[..p], Some(&time[p + 1..])),
            None => (time, None),
        };
        if !matches!(onset.first(), Some(b'+' | b'-')) {
            return Err(bad("an onset does not start with + or -"));
        }
        let onset = std::str::from_utf8(onset)
            .ok()
            .and_then(|t| parse_decimal(t, true))
            .ok_or_else(|| bad("an onset is not a decimal number"))?;
        let duration = match duration {
            None => None,
            Some(d) => Some(
                std::str::from_utf8(d)
                    .ok()
                    .and_then(|t| parse_decimal(t, false))
                    .ok_or_else(|| bad("a duration is not an unsigned decimal number"))?,
            ),
        };
        let texts = parts
            .map(|t| {
                String::from_utf8(t.to_vec()).map_err(|_| bad("an annotation text is not UTF-8"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // `onset 0x14 0x00` has no annotation at all: a TAL holds at least one (maybe empty).
        if texts.is_empty() {
            return Err(bad("a TAL has no annotation"));
        }
        tals.push(Tal {
            onset,
            duration,
            texts,
        });
    }
    // What follows the last TAL must be unused (0) bytes.
    if bytes[at.min(bytes.len())..].iter().any(|&b| b != 0) {
        return Err(bad("bytes after the last TAL are not 0"));
    }
    Ok(tals)
}

/// Copies the samples of one signal of one record (starting at `onset`) that fall in the
/// window into the channel, converted to physical units.
fn place(
    channel: &mut Channel,
    range: &std::ops::Range<usize>,
    signal: &SignalHeader,
    buf: &[u8],
    onset: f64,
    window: &TimeWindow,
) {
    let fs = channel.sampling_rate;
    let n = signal.samples_per_record as i64;
    let len = channel.samples.len() as i64;
    // Index in the window of the record's first sample; rounding keeps records that start on a
    // sample boundary exactly aligned despite floating-point error.
    // `as` saturates; the arithmetic must too (an EDF+D onset may be absurdly far away).
    let first = ((onset - window.start()) * fs).round() as i64;
    let from = first.saturating_neg().clamp(0, n);
    let to = len.saturating_sub(first).clamp(0, n);
    let (gain, offset) = (signal.gain(), signal.offset());
    let bytes = &buf[range.clone()];
    for k in from..to {
        let at = k as usize * 2;
        let digital = i16::from_le_bytes([bytes[at], bytes[at + 1]]);
        // In range: from..to keeps first + k within 0..len.
        channel.samples[first.saturating_add(k) as usize] =
            (gain * f64::from(digital) + offset) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_strict() {
        assert_eq!(parse_decimal("-3.5", true), Some(-3.5));
        assert_eq!(parse_decimal("+.5", true), Some(0.5));
        assert_eq!(parse_decimal("7.", true), Some(7.0));
        for bad in ["", ".", "1e3", "inf", "NaN", "1,5", "1.2.3", "--1"] {
            assert_eq!(parse_decimal(bad, true), None, "{bad}");
        }
        assert_eq!(parse_decimal("-1", false), None);
    }

    #[test]
    fn tals() {
        let bytes = b"+12.5\x14\x14\x00+13\x151.5\x14Spike\x14Eyes open\x14\x00\x00\x00";
        let tals = parse_tals(bytes, 0).unwrap();
        assert_eq!(tals.len(), 2);
        assert_eq!(tals[0].onset, 12.5);
        assert_eq!(tals[0].texts, vec![String::new()]);
        assert_eq!(tals[1].duration, Some(1.5));
        assert_eq!(
            tals[1].texts,
            vec!["Spike".to_string(), "Eyes open".to_string()]
        );
        for bad in [
            &b"12\x14\x14\x00"[..],
            b"+1\x14\x14",
            b"+1\x14\x00",
            b"+x\x14\x14\x00",
            b"+1\x15-2\x14\x14\x00",
            b"+1\x14\xff\x14\x00",
            b"+1\x14\x14\x00\x00junk",
        ] {
            assert!(parse_tals(bad, 3).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_dates() {
        let d = start_date_time("02.03.04", "05.06.07", None).unwrap();
        assert_eq!(d.to_string(), "2004-03-02 5:06:07.0");
        assert_eq!(
            start_date_time("02.03.85", "00.00.00", None)
                .unwrap()
                .year(),
            1985
        );
        let plus = Some("Startdate 02-MAR-2102 X X X");
        assert_eq!(
            start_date_time("02.03.yy", "00.00.00", plus)
                .unwrap()
                .year(),
            2102
        );
        assert!(start_date_time("31.02.04", "00.00.00", None).is_err());
        assert!(start_date_time("02/03/04", "00.00.00", None).is_err());
        assert!(start_date_time("02.03.04", "25.00.00", None).is_err());
        assert!(start_date_time("02.03.yy", "00.00.00", None).is_err());
    }
}
