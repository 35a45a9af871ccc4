/// The one error type of the waveforms crate.
///
/// Every variant but [`WaveformError::Io`] means the file (or the request) is wrong, not the
/// server: the server maps them to 422 (file) or 400 (window), `Io` to 500. Messages name the
/// offending field or record so that a clinician's IT can fix the export; they never quote the
/// patient field.
#[derive(Debug, thiserror::Error)]
pub enum WaveformError {
    /// The underlying reader failed (not an end of file: that is a truncation).
    #[error("reading the recording failed: {0}")]
    Io(#[from] std::io::Error),

    /// The file ends inside the fixed or per-signal header.
    #[error("EDF header truncated: {got} of {expected} bytes")]
    TruncatedHeader { expected: usize, got: usize },

    /// A header field holds bytes outside printable ASCII (the EDF specification allows only
    /// 32..=126).
    #[error("EDF header field `{field}` is not printable ASCII")]
    NotAscii { field: String },

    /// A numeric header field is not an ASCII decimal number.
    #[error("EDF header field `{field}` is not an ASCII number: {value:?}")]
    NotANumber { field: String, value: String },

    /// A header field is well formed but its value is not allowed.
    #[error("EDF header field `{field}` is invalid: {reason}")]
    InvalidField { field: String, reason: String },

    /// A variant of the format this crate does not read (BDF's 24-bit samples, for instance).
    #[error("unsupported recording: {0}")]
    Unsupported(String),

    /// The file ends inside a data record.
    #[error("EDF data record {record} truncated: {got} of {expected} bytes")]
    TruncatedRecord {
        record: u64,
        expected: usize,
        got: usize,
    },

    /// The file holds fewer (or more) whole data records than the header declares.
    #[error("the EDF header declares {declared} data records but the file holds {found}")]
    RecordCountMismatch { declared: u64, found: u64 },

    /// An EDF+ annotation (TAL) breaks the specification.
    #[error("EDF+ annotation in data record {record} is malformed: {reason}")]
    BadAnnotation { record: u64, reason: String },

    /// The requested window is not a valid time span.
    #[error("invalid time window: {0}")]
    InvalidWindow(String),

    /// The window would hold more samples than [`crate::MAX_WINDOW_SAMPLES`].
    #[error(
        "the window holds {samples} samples, more than the {max} allowed: ask for a shorter one"
    )]
    WindowTooLarge { samples: u64, max: usize },

    /// The aECG document is not well-formed XML.
    #[error("aECG document is not well-formed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },

    /// The aECG document is XML but not a usable annotated ECG.
    #[error("invalid aECG document: {0}")]
    InvalidAecg(String),
}
