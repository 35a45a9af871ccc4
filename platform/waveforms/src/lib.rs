//! ECG and EEG recordings for the clinicians' portal: read them, plot them.
//!
//! Clinicians share electrophysiology files; the portal shows them as a plotted waveform. This
//! crate is pure (no file system, no network): readers take any [`std::io::Read`], the renderer
//! returns a `String`.
//!
//! * [`edf`]: EDF and EDF+ (European Data Format), the common exchange format of EEG and
//!   polysomnography. Read as a stream: a time window of a 200 MB recording is read by skipping
//!   the data records before it and stopping after it, so memory is bounded by the window, not
//!   the file.
//! * [`aecg`]: HL7 aECG (HL7 v3 XML, `AnnotatedECG`), the exchange format of resting ECGs.
//! * [`render`]: [`render_svg`] draws a [`Window`] as an accessible SVG: French first, then
//!   English; ECG paper grid or EEG scale bars; min/max downsampling so that the size of the
//!   SVG is bounded whatever the sampling rate or window length.
//!
//! # Patient identity
//!
//! EDF+ puts the patient's code, sex, birth date and name in the header, aECG in the subject
//! elements. They are exposed in [`Summary::patient_identification`] so that the server can
//! decide (and audit) what to do with them; nothing in this crate renders or logs them. The SVG
//! shows labels, units, times relative to the start of the recording and annotation texts only.
//!
//! # Usage (server side)
//!
//! ```
//! use megalis_waveforms::{edf::EdfReader, AnnotationScan, RenderOptions, TimeWindow, render_svg};
//! # fn show(file: impl std::io::Read) -> Result<String, megalis_waveforms::WaveformError> {
//! let reader = EdfReader::open(std::io::BufReader::new(file))?;
//! let summary = reader.summary(); // channels, rates, duration, start; patient field kept apart
//! let window = reader.read_window(TimeWindow::new(30.0, 10.0)?, AnnotationScan::UpToWindowEnd)?;
//! let svg = render_svg(&window, &RenderOptions::default());
//! # let _ = summary; Ok(svg) }
//! ```

pub mod aecg;
pub mod edf;
mod error;
pub mod render;

pub use error::WaveformError;
pub use render::{RenderOptions, render_svg};

use time::PrimitiveDateTime;

/// The most samples (all channels together) one window may hold: 16 Mi samples, 64 MiB of
/// `f32`. A 10 s window of 64 channels at 2 kHz is 1.28 M samples; the bound only stops a
/// request (or a forged header) from making the server allocate gigabytes.
pub const MAX_WINDOW_SAMPLES: usize = 16 * 1024 * 1024;

/// Which way to draw a recording: the conventions of ECG and EEG differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modality {
    /// Electrocardiogram: millimetre paper grid at 25 mm/s and 10 mm/mV.
    Ecg,
    /// Electroencephalogram and other polygraphic signals: one scale bar per channel.
    Eeg,
}

/// The format a recording was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// EDF (1992): no annotations, contiguous records.
    Edf,
    /// EDF+ with contiguous data records (`EDF+C`).
    EdfPlusContinuous,
    /// EDF+ with discontinuous data records (`EDF+D`): each record says when it starts.
    EdfPlusDiscontinuous,
    /// HL7 v3 annotated ECG.
    Aecg,
}

/// Guesses the format from the first bytes of a file (at least 8 for EDF; an XML prolog and
/// root element for aECG). Only a hint for choosing a reader: the reader validates.
pub fn sniff_format(head: &[u8]) -> Option<Format> {
    if head.len() >= 8 && &head[..8] == b"0       " {
        if head.len() >= 197 {
            return Some(match &head[192..197] {
                b"EDF+C" => Format::EdfPlusContinuous,
                b"EDF+D" => Format::EdfPlusDiscontinuous,
                _ => Format::Edf,
            });
        }
        return Some(Format::Edf);
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(4096)]);
    if text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .starts_with('<')
        && text.contains("AnnotatedECG")
    {
        return Some(Format::Aecg);
    }
    None
}

/// A time window in seconds from the start of the recording.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeWindow {
    start: f64,
    duration: f64,
}

impl TimeWindow {
    /// A window starting `start` seconds after the start of the recording, `duration` long.
    /// Both must be finite, `start >= 0` and `duration > 0`.
    pub fn new(start: f64, duration: f64) -> Result<Self, WaveformError> {
        if !start.is_finite() || start < 0.0 {
            return Err(WaveformError::InvalidWindow(format!(
                "start {start} s must be a finite number >= 0"
            )));
        }
        if !duration.is_finite() || duration <= 0.0 {
            return Err(WaveformError::InvalidWindow(format!(
                "duration {duration} s must be a finite number > 0"
            )));
        }
        Ok(Self { start, duration })
    }

    /// Seconds from the start of the recording.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        self.duration
    }

    /// `start + duration`.
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// How far an EDF+ reader looks for annotations when reading a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnotationScan {
    /// Only the data records read anyway: those before the window (read to skip them, since a
    /// `Read` cannot seek) and those of the window; reading stops after the window. The EDF+
    /// specification does not oblige a writer to store an annotation in the record its onset
    /// falls in (EDFlib, hence pyedflib, packs them from the first records on), so an
    /// annotation stored after the window is missed. Use it when annotations are listed once
    /// with [`edf::EdfReader::read_annotations`].
    UpToWindowEnd,
    /// Also read the records after the window (their samples are discarded as they are read,
    /// so memory stays bounded) to find every annotation of the window. Costs reading the
    /// whole file.
    WholeFile,
}

/// One channel of a window: samples in physical units, evenly spaced from the window start.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Label from the file (`Fp1`, `EEG C3-A2`, `II`…); free text from a file, escaped when
    /// rendered.
    pub label: String,
    /// Physical dimension as written in the file (`uV`, `mV`…), empty when absent.
    pub unit: String,
    /// Samples per second.
    pub sampling_rate: f64,
    /// Physical values; `NaN` where the recording has no data (the gaps of an EDF+D file, or
    /// past its end).
    pub samples: Vec<f32>,
}

impl Channel {
    /// The factor that turns this channel's values into microvolts, when its unit is a voltage
    /// (`uV`, `µV`, `mV`, `V`, `nV`, case-sensitive as UCUM writes them).
    pub fn microvolts_per_unit(&self) -> Option<f64> {
        voltage_factor(&self.unit)
    }
}

/// Microvolts per unit for the voltage units found in EDF and aECG files.
pub(crate) fn voltage_factor(unit: &str) -> Option<f64> {
    match unit.trim() {
        "uV" | "µV" | "μV" | "mcV" => Some(1.0),
        "mV" => Some(1_000.0),
        "V" => Some(1_000_000.0),
        "nV" => Some(0.001),
        _ => None,
    }
}

/// An annotation (EDF+ TAL text, or an event of the recording).
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Seconds from the start of the recording.
    pub onset: f64,
    /// Seconds, when the annotation has a duration.
    pub duration: Option<f64>,
    /// Free text from the file; escaped when rendered.
    pub text: String,
}

/// What a window of a recording holds: the input of [`render_svg`].
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// ECG or EEG drawing conventions.
    pub modality: Modality,
    /// The window read (may extend past the end of the recording: samples there are `NaN`).
    pub window: TimeWindow,
    /// One entry per signal, annotation signals excluded, in file order (aECG: standard lead
    /// order).
    pub channels: Vec<Channel>,
    /// Annotations whose span meets the window, sorted by onset.
    pub annotations: Vec<Annotation>,
}

/// What a recording holds, for the server's listing and the portal's page around the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub format: Format,
    pub modality: Modality,
    /// Ordinary signals (EDF+ annotation signals excluded).
    pub channels: Vec<ChannelInfo>,
    /// Seconds covered by the data records (for EDF+D, from the start to the end of the last
    /// record as declared; gaps included).
    pub duration: f64,
    /// Start of the recording as written in the file (local time of the recording site; EDF
    /// has no time zone). `None` when the file has none.
    pub start: Option<PrimitiveDateTime>,
    /// EDF "local patient identification" (EDF+: code, sex, birth date, name); aECG: empty.
    /// **May identify the patient**: never rendered by this crate; the server decides.
    pub patient_identification: String,
    /// EDF "local recording identification" (EDF+: start date, administration code,
    /// technician, equipment); may name staff. aECG: empty.
    pub recording_identification: String,
}

/// One signal of a [`Summary`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    pub label: String,
    /// Transducer type (EDF), or the lead's code system code (aECG).
    pub transducer: String,
    /// Physical dimension (`uV`, `mV`…).
    pub unit: String,
    /// Samples per second.
    pub sampling_rate: f64,
    /// Filters applied before digitisation (EDF `prefiltering`, e.g. `HP:0.1Hz LP:75Hz`).
    pub prefiltering: String,
}

/// ECG when every channel looks like an ECG lead (by label or transducer), EEG conventions
/// otherwise (a polysomnography mixes EEG, EMG, ECG: scale bars suit it better than a grid).
pub(crate) fn guess_modality<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> Modality {
    const LEADS: [&str; 12] = [
        "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
    ];
    let mut any = false;
    for (label, transducer) in labels {
        any = true;
        let l = label.trim();
        let upper = l.to_ascii_uppercase();
        let t = transducer.to_ascii_uppercase();
        let is_ecg = upper.contains("ECG")
            || upper.contains("EKG")
            || t.contains("ECG")
            || t.contains("EKG")
            || LEADS.iter().any(|lead| lead.eq_ignore_ascii_case(l));
        if !is_ecg {
            return Modality::Eeg;
        }
    }
    if any { Modality::Ecg } else { Modality::Eeg }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_checked() {
        assert!(TimeWindow::new(0.0, 10.0).is_ok());
        assert!(TimeWindow::new(-1.0, 10.0).is_err());
        assert!(TimeWindow::new(0.0, 0.0).is_err());
        assert!(TimeWindow::new(f64::NAN, 1.0).is_err());
        assert!(TimeWindow::new(0.0, f64::INFINITY).is_err());
        assert_eq!(TimeWindow::new(2.0, 3.0).unwrap().end(), 5.0);
    }

    #[test]
    fn modality_is_ecg_only_when_every_channel_is_a_lead() {
        assert_eq!(guess_modality([("II", ""), ("V5", "")]), Modality::Ecg);
        assert_eq!(
            guess_modality([("ECG1", ""), ("x", "ECG electrode")]),
            Modality::Ecg
        );
        assert_eq!(guess_modality([("Fp1", ""), ("ECG", "")]), Modality::Eeg);
        assert_eq!(guess_modality([]), Modality::Eeg);
    }

    #[test]
    fn voltage_units() {
        assert_eq!(voltage_factor("mV"), Some(1000.0));
        assert_eq!(voltage_factor("uV "), Some(1.0));
        assert_eq!(voltage_factor("degC"), None);
    }

    #[test]
    fn sniffing() {
        let mut edf = b"0       ".to_vec();
        edf.resize(256, b' ');
        edf[192..197].copy_from_slice(b"EDF+D");
        assert_eq!(sniff_format(&edf), Some(Format::EdfPlusDiscontinuous));
        assert_eq!(sniff_format(b"0       "), Some(Format::Edf));
        assert_eq!(
            sniff_format(b"<?xml version=\"1.0\"?>\n<AnnotatedECG xmlns=\"urn:hl7-org:v3\">"),
            Some(Format::Aecg)
        );
        assert_eq!(sniff_format(b"PK\x03\x04"), None);
    }
}
