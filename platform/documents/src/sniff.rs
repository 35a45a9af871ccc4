//! Which contents a shared document may have, and whether the bytes are what their declared
//! content type says.
//!
//! A declared `contentType` is only a claim of the sender; a viewer trusting it could render an
//! HTML page or run a script where a PDF was announced. So the allowlist is small (what clinical
//! documents and signals are: PDF, CDA, JPEG/PNG/DICOM images, ECG, EEG) and the first bytes must
//! carry the magic of a format allowed for the declared type. Sniffing reads at most
//! [`SNIFF_LEN`] bytes, so it runs while a content streams in, before it is complete.

use std::fmt;

/// How many leading bytes the sniffer may need: enough for an XML prolog (declaration,
/// stylesheet instruction, comments) before the root element of a CDA or aECG document.
pub const SNIFF_LEN: usize = 16 * 1024;

/// The formats recognised in content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContentKind {
    /// PDF (reports, and ECG tracings printed to PDF).
    Pdf,
    /// HL7 CDA R2: XML whose root element is `ClinicalDocument`.
    Cda,
    Jpeg,
    Png,
    /// DICOM Part 10 file: 128-byte preamble then `DICM`.
    Dicom,
    /// HL7 v3 annotated ECG: XML whose root element is `AnnotatedECG`.
    AnnotatedEcg,
    /// SCP-ECG (EN 1064 / ISO 11073-91064) record.
    ScpEcg,
    /// EEG and other signals in EDF or EDF+ (header version `0` padded with spaces).
    Edf,
}

impl ContentKind {
    pub fn describe(self) -> &'static str {
        match self {
            ContentKind::Pdf => "a PDF document",
            ContentKind::Cda => "a CDA document (XML ClinicalDocument)",
            ContentKind::Jpeg => "a JPEG image",
            ContentKind::Png => "a PNG image",
            ContentKind::Dicom => "a DICOM file",
            ContentKind::AnnotatedEcg => "an HL7 aECG document (XML AnnotatedECG)",
            ContentKind::ScpEcg => "an SCP-ECG record",
            ContentKind::Edf => "an EDF/EDF+ recording",
        }
    }
}

/// A declared content type of the allowlist, normalised to its lower-case essence (parameters
/// such as `charset` are dropped: XML declares its own encoding and the other formats are
/// binary).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MediaType(&'static str);

/// The allowlist: declared type → formats its content may have.
const ALLOWED: &[(&str, &[ContentKind])] = &[
    ("application/pdf", &[ContentKind::Pdf]),
    ("text/xml", &[ContentKind::Cda, ContentKind::AnnotatedEcg]),
    (
        "application/xml",
        &[ContentKind::Cda, ContentKind::AnnotatedEcg],
    ),
    ("image/jpeg", &[ContentKind::Jpeg]),
    ("image/png", &[ContentKind::Png]),
    ("application/dicom", &[ContentKind::Dicom]),
    ("application/x-scp-ecg", &[ContentKind::ScpEcg]),
    ("application/scp-ecg", &[ContentKind::ScpEcg]),
    ("application/edf", &[ContentKind::Edf]),
    ("application/x-edf", &[ContentKind::Edf]),
];

impl MediaType {
    /// Parses a declared content type and checks it against the allowlist.
    pub fn parse(declared: &str) -> Result<Self, SniffError> {
        let essence = declared
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        ALLOWED
            .iter()
            .find(|(name, _)| *name == essence)
            .map(|(name, _)| MediaType(name))
            .ok_or_else(|| SniffError::NotAllowed(declared.chars().take(100).collect()))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }

    fn kinds(&self) -> &'static [ContentKind] {
        ALLOWED
            .iter()
            .find(|(name, _)| *name == self.0)
            .map(|(_, kinds)| *kinds)
            .unwrap_or_default()
    }

    /// Checks the first bytes of a content against this declared type. `prefix` holds the first
    /// `min(SNIFF_LEN, size)` bytes; `complete` says the content ends there (a short content).
    pub fn check_prefix(&self, prefix: &[u8], complete: bool) -> Result<ContentKind, SniffError> {
        let allowed = self.kinds();
        let found = identify(prefix);
        match found {
            Some(kind) if allowed.contains(&kind) => {
                check_header(kind, prefix)?;
                Ok(kind)
            }
            Some(kind) => Err(SniffError::Mismatch {
                declared: self.0,
                found: kind.describe().to_string(),
            }),
            None => Err(SniffError::Mismatch {
                declared: self.0,
                found: what_else(prefix, complete),
            }),
        }
    }
}

impl fmt::Debug for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MediaType({})", self.0)
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Why a content was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SniffError {
    #[error(
        "content type {0:?} is not accepted (allowed: PDF, CDA or aECG XML, JPEG, PNG, DICOM, SCP-ECG, EDF)"
    )]
    NotAllowed(String),
    #[error("the content is declared {declared} but is {found}")]
    Mismatch {
        declared: &'static str,
        found: String,
    },
    #[error("{0}")]
    Malformed(String),
}

/// The format the first bytes announce, if any of the allowlist.
pub fn identify(prefix: &[u8]) -> Option<ContentKind> {
    if prefix.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(ContentKind::Jpeg);
    }
    if prefix.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(ContentKind::Png);
    }
    if prefix.get(128..132) == Some(b"DICM") {
        return Some(ContentKind::Dicom);
    }
    if prefix.starts_with(b"0       ") {
        return Some(ContentKind::Edf);
    }
    // SCP-ECG: record CRC (2) and length (4), then section 0's header: CRC (2), id 0 (2),
    // length (4), versions (2) and the reserved "SCPECG" marker.
    if prefix.get(8..10) == Some(&[0, 0]) && prefix.get(16..22) == Some(b"SCPECG") {
        return Some(ContentKind::ScpEcg);
    }
    // PDF readers accept the header anywhere in the first 1,024 bytes (ISO 32000 implementation
    // note); some producers put a few bytes before it.
    let head = &prefix[..prefix.len().min(1024)];
    if head.windows(5).any(|w| w == b"%PDF-") {
        return Some(ContentKind::Pdf);
    }
    match xml_root(prefix) {
        Some("ClinicalDocument") => Some(ContentKind::Cda),
        Some("AnnotatedECG") => Some(ContentKind::AnnotatedEcg),
        _ => None,
    }
}

/// A description of a content that is none of the allowed formats, for the error message.
fn what_else(prefix: &[u8], complete: bool) -> String {
    if prefix.is_empty() {
        return "empty".into();
    }
    let text = String::from_utf8_lossy(&prefix[..prefix.len().min(512)]).to_ascii_lowercase();
    if text.contains("<html") || text.contains("<!doctype html") || text.contains("<script") {
        return "HTML".into();
    }
    if let Some(root) = xml_root(prefix) {
        return format!("XML whose root element is {root:?}");
    }
    if prefix.starts_with(b"PK\x03\x04") {
        return "a ZIP archive".into();
    }
    if looks_like_xml(prefix) && !complete && prefix.len() >= SNIFF_LEN {
        return format!("XML without a root element in its first {SNIFF_LEN} bytes");
    }
    "none of the accepted formats".into()
}

fn looks_like_xml(prefix: &[u8]) -> bool {
    let p = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    p.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// The local name of the root element of an XML document, skipping the BOM, the declaration,
/// processing instructions, comments and a DOCTYPE. `None` if not found in `prefix`.
pub fn xml_root(prefix: &[u8]) -> Option<&str> {
    let mut p = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    loop {
        let skip = p.iter().position(|b| !b.is_ascii_whitespace())?;
        p = &p[skip..];
        if p.starts_with(b"<?") {
            p = &p[find(p, b"?>")? + 2..];
        } else if p.starts_with(b"<!--") {
            p = &p[find(&p[4..], b"-->")? + 7..];
        } else if p.starts_with(b"<!DOCTYPE") {
            // An internal subset may hold '>' inside brackets; skip it whole.
            let mut depth = 0usize;
            let end = p.iter().position(|b| match b {
                b'[' => {
                    depth += 1;
                    false
                }
                b']' => {
                    depth = depth.saturating_sub(1);
                    false
                }
                b'>' => depth == 0,
                _ => false,
            })?;
            p = &p[end + 1..];
        } else if p.first() == Some(&b'<') {
            let name_end = p[1..]
                .iter()
                .position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/')?;
            let name = std::str::from_utf8(&p[1..1 + name_end]).ok()?;
            if name.is_empty() || name.starts_with(['!', '?']) {
                return None;
            }
            // Prefixed roots (`<hl7:ClinicalDocument>`) are the same element.
            return Some(name.rsplit(':').next().unwrap_or(name));
        } else {
            return None;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Checks of the format's header beyond its magic, where the header is in the sniffed prefix.
fn check_header(kind: ContentKind, prefix: &[u8]) -> Result<(), SniffError> {
    match kind {
        ContentKind::Edf => {
            // The fixed header is 256 ASCII bytes; its length field counts 256 more per signal.
            let Some(header) = prefix.get(..256) else {
                return Err(SniffError::Malformed(
                    "EDF content shorter than its 256-byte header".into(),
                ));
            };
            if !header.iter().all(|b| (0x20..0x7F).contains(b)) {
                return Err(SniffError::Malformed(
                    "EDF header holds non-ASCII bytes".into(),
                ));
            }
            let field = |r: std::ops::Range<usize>| {
                std::str::from_utf8(&header[r])
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
            };
            let (Some(bytes), Some(signals)) = (field(184..192), field(252..256)) else {
                return Err(SniffError::Malformed(
                    "EDF header: header size or number of signals is not a number".into(),
                ));
            };
            if bytes != 256 * (signals + 1) {
                return Err(SniffError::Malformed(format!(
                    "EDF header: {bytes} header bytes announced for {signals} signals (expected {})",
                    256 * (signals + 1)
                )));
            }
            Ok(())
        }
        // The other formats' magic is all the prefix can tell; their decoders judge the rest.
        _ => Ok(()),
    }
}

/// Checks that need the whole content's size, run once it has been read.
pub fn check_complete(kind: ContentKind, prefix: &[u8], size: u64) -> Result<(), SniffError> {
    if kind == ContentKind::ScpEcg {
        // The record length (bytes 2..6, little endian) covers the whole record: a different
        // size means a truncated or padded file.
        let Some(len) = prefix.get(2..6) else {
            return Err(SniffError::Malformed("SCP-ECG record too short".into()));
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as u64;
        if len != size {
            return Err(SniffError::Malformed(format!(
                "SCP-ECG record announces {len} bytes but holds {size}"
            )));
        }
    }
    Ok(())
}

/// Samples of each allowed format, for tests here and in other modules.
#[cfg(test)]
pub(crate) mod samples {
    pub fn pdf() -> Vec<u8> {
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
            .to_vec()
    }

    pub fn cda() -> Vec<u8> {
        br#"<?xml version="1.0" encoding="UTF-8"?>
<?xml-stylesheet type="text/xsl" href="cda.xsl"?>
<!-- CR d'imagerie -->
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title></ClinicalDocument>"#
            .to_vec()
    }

    pub fn aecg() -> Vec<u8> {
        br#"<?xml version="1.0"?><AnnotatedECG xmlns="urn:hl7-org:v3"></AnnotatedECG>"#.to_vec()
    }

    pub fn png() -> Vec<u8> {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend_from_slice(&[0, 0, 0, 13]);
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&[0; 17]);
        v
    }

    pub fn jpeg() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16];
        v.extend_from_slice(b"JFIF\0");
        v.extend_from_slice(&[0; 20]);
        v
    }

    pub fn dicom() -> Vec<u8> {
        let mut v = vec![0; 128];
        v.extend_from_slice(b"DICM");
        v.extend_from_slice(&[2, 0, 0, 0, b'U', b'L', 4, 0, 0, 0, 0, 0]);
        v
    }

    pub fn scp_ecg() -> Vec<u8> {
        let mut v = vec![0u8; 64];
        v[2..6].copy_from_slice(&64u32.to_le_bytes());
        v[8..10].copy_from_slice(&[0, 0]);
        v[10..14].copy_from_slice(&58u32.to_le_bytes());
        v[14] = 20;
        v[15] = 20;
        v[16..22].copy_from_slice(b"SCPECG");
        v
    }

    /// An EDF+ recording with `signals` signals and `records` records of `samples` samples.
    pub fn edf(signals: usize, records: usize, samples: usize) -> Vec<u8> {
        fn field(out: &mut Vec<u8>, value: &str, width: usize) {
            let mut f = value.as_bytes().to_vec();
            f.resize(width, b' ');
            out.extend_from_slice(&f);
        }
        let mut v = Vec::new();
        field(&mut v, "0", 8);
        field(&mut v, "X X X X", 80);
        field(&mut v, "Startdate 01-MAR-2024 X X X", 80);
        field(&mut v, "01.03.24", 8);
        field(&mut v, "10.00.00", 8);
        field(&mut v, &(256 * (signals + 1)).to_string(), 8);
        field(&mut v, "EDF+C", 44);
        field(&mut v, &records.to_string(), 8);
        field(&mut v, "1", 8);
        field(&mut v, &signals.to_string(), 4);
        for (name, width) in [
            ("EEG Fp1", 16),
            ("AgAgCl", 80),
            ("uV", 8),
            ("-3200", 8),
            ("3200", 8),
            ("-32768", 8),
            ("32767", 8),
            ("HP:0.1Hz", 80),
        ] {
            for _ in 0..signals {
                field(&mut v, name, width);
            }
        }
        for _ in 0..signals {
            field(&mut v, &samples.to_string(), 8);
        }
        for _ in 0..signals {
            field(&mut v, "", 32);
        }
        v.resize(v.len() + records * signals * samples * 2, 0);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::samples::*;
    use super::*;

    fn check(declared: &str, content: &[u8]) -> Result<ContentKind, SniffError> {
        let prefix = &content[..content.len().min(SNIFF_LEN)];
        let t = MediaType::parse(declared)?;
        let kind = t.check_prefix(prefix, content.len() <= SNIFF_LEN)?;
        check_complete(kind, prefix, content.len() as u64)?;
        Ok(kind)
    }

    #[test]
    fn each_allowed_format_is_recognised() {
        let cases: Vec<(&str, Vec<u8>, ContentKind)> = vec![
            ("application/pdf", pdf(), ContentKind::Pdf),
            ("text/xml", cda(), ContentKind::Cda),
            ("application/xml; charset=UTF-8", cda(), ContentKind::Cda),
            ("text/xml", aecg(), ContentKind::AnnotatedEcg),
            ("image/png", png(), ContentKind::Png),
            ("IMAGE/JPEG", jpeg(), ContentKind::Jpeg),
            ("application/dicom", dicom(), ContentKind::Dicom),
            ("application/x-scp-ecg", scp_ecg(), ContentKind::ScpEcg),
            ("application/edf", edf(2, 3, 10), ContentKind::Edf),
            ("application/x-edf", edf(1, 1, 1), ContentKind::Edf),
        ];
        for (declared, content, kind) in cases {
            assert_eq!(check(declared, &content), Ok(kind), "{declared}");
        }
        assert_eq!(
            MediaType::parse("Text/XML; charset=utf-8")
                .unwrap()
                .as_str(),
            "text/xml"
        );
    }

    #[test]
    fn wrong_or_unknown_types_are_refused() {
        let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec();
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("application/pdf", png(), "is a PNG image"),
            ("image/png", pdf(), "is a PDF document"),
            ("text/xml", html.clone(), "HTML"),
            ("application/pdf", html, "HTML"),
            (
                "text/xml",
                b"<?xml version='1.0'?><Bundle/>".to_vec(),
                "root element is \"Bundle\"",
            ),
            (
                "application/dicom",
                b"DICM".to_vec(),
                "none of the accepted formats",
            ),
            (
                "application/edf",
                b"1       ".to_vec(),
                "none of the accepted",
            ),
            ("application/x-scp-ecg", cda(), "CDA"),
            ("application/pdf", Vec::new(), "empty"),
        ];
        for (declared, content, why) in cases {
            let e = check(declared, &content).unwrap_err();
            assert!(e.to_string().contains(why), "{declared}: {e}");
        }
        for declared in [
            "text/html",
            "application/octet-stream",
            "text/plain",
            "",
            "image/svg+xml",
        ] {
            assert!(
                matches!(check(declared, &pdf()), Err(SniffError::NotAllowed(_))),
                "{declared}"
            );
        }
    }

    #[test]
    fn headers_are_checked_beyond_the_magic() {
        let mut bad_edf = edf(2, 1, 1);
        bad_edf[184..192].copy_from_slice(b"512     ");
        assert!(
            check("application/edf", &bad_edf)
                .unwrap_err()
                .to_string()
                .contains("768")
        );
        let mut truncated = scp_ecg();
        truncated.truncate(40);
        assert!(
            check("application/x-scp-ecg", &truncated)
                .unwrap_err()
                .to_string()
                .contains("announces 64")
        );
        let mut edf_binary_header = edf(1, 1, 1);
        edf_binary_header[100] = 0xC3;
        assert!(check("application/edf", &edf_binary_header).is_err());
    }

    #[test]
    fn xml_root_skips_the_prolog() {
        assert_eq!(xml_root(b"\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- a > b -->\n<!DOCTYPE x [<!ENTITY a 'b>'>]><hl7:ClinicalDocument/>"), Some("ClinicalDocument"));
        assert_eq!(xml_root(b"   "), None);
        assert_eq!(xml_root(b"<?xml unterminated"), None);
        assert_eq!(xml_root(b"text"), None);
        assert_eq!(xml_root(b"<>"), None);
    }

    proptest::proptest! {
        #[test]
        fn the_sniffer_never_panics(
            content in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            declared in proptest::sample::select(ALLOWED.iter().map(|(n, _)| *n).collect::<Vec<_>>()),
            complete in proptest::bool::ANY,
        ) {
            let t = MediaType::parse(declared).unwrap();
            if let Ok(kind) = t.check_prefix(&content, complete) {
                let _ = check_complete(kind, &content, content.len() as u64);
            }
            let _ = identify(&content);
        }

        #[test]
        fn mutated_valid_contents_never_panic(
            which in 0usize..7,
            edits in proptest::collection::vec((0usize..400, proptest::num::u8::ANY), 0..8),
            cut in 0usize..400,
        ) {
            let mut content = [pdf(), cda(), png(), jpeg(), dicom(), scp_ecg(), edf(1, 1, 4)][which].clone();
            for (at, byte) in edits {
                if !content.is_empty() {
                    let i = at % content.len();
                    content[i] = byte;
                }
            }
            content.truncate(cut.max(1));
            for (declared, _) in ALLOWED {
                let _ = check(declared, &content);
            }
        }
    }
}
