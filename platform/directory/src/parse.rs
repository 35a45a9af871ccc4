//! Streaming parser of the Annuaire Santé extraction `PS_LibreAcces_Personne_activite_*.txt`.
//!
//! The file is UTF-8, one header line then one line per activity, 52 fields separated by `|`
//! and a trailing `|`. The parser reads one line at a time (memory does not grow with the file),
//! checks the header exactly, and turns each line into a [`Row`] or a [`RowError`] naming the
//! line, the column and the reason. Pure: no I/O other than the reader it is given.

use std::io::BufRead;

use crate::DirectoryError;
use crate::model::{
    Activity, Address, Coded, IdentifierKind, Organisation, PracticeMode, Practitioner, Row,
};

/// The 52 column names of the extraction, in order (the header line without its trailing `|`).
pub const COLUMNS: [&str; 52] = [
    "Type d'identifiant PP",
    "Identifiant PP",
    "Identification nationale PP",
    "Code civilité d'exercice",
    "Libellé civilité d'exercice",
    "Code civilité",
    "Libellé civilité",
    "Nom d'exercice",
    "Prénom d'exercice",
    "Code profession",
    "Libellé profession",
    "Code catégorie professionnelle",
    "Libellé catégorie professionnelle",
    "Code type savoir-faire",
    "Libellé type savoir-faire",
    "Code savoir-faire",
    "Libellé savoir-faire",
    "Code mode exercice",
    "Libellé mode exercice",
    "Numéro SIRET site",
    "Numéro SIREN site",
    "Numéro FINESS site",
    "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure",
    "Raison sociale site",
    "Enseigne commerciale site",
    "Complément destinataire (coord. structure)",
    "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)",
    "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)",
    "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)",
    "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)",
    "Code postal (coord. structure)",
    "Code commune (coord. structure)",
    "Libellé commune (coord. structure)",
    "Code pays (coord. structure)",
    "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)",
    "Téléphone 2 (coord. structure)",
    "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)",
    "Code Département (structure)",
    "Libellé Département (structure)",
    "Ancien identifiant de la structure",
    "Autorité d'enregistrement",
    "Code secteur d'activité",
    "Libellé secteur d'activité",
    "Code section tableau pharmaciens",
    "Libellé section tableau pharmaciens",
];

/// The header line as published (with its trailing `|`).
pub fn header_line() -> String {
    let mut s = COLUMNS.join("|");
    s.push('|');
    s
}

/// Lines longer than this are rejected without being held in memory: a real row is under 1 KiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A line that could not be imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line number (the header is line 1).
    pub line: u64,
    pub reason: String,
    /// The national id of the row when it was readable, so that the import does not close a
    /// practitioner merely because their row was malformed this time.
    pub national_id: Option<String>,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// What the parser yields for each data line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Row(Box<Row>),
    Rejected(RowError),
}

/// Reads the extraction line by line. Iterating yields `Err` only for I/O errors, after which
/// the iterator ends; malformed lines are [`Parsed::Rejected`] and iteration goes on.
pub struct Reader<R> {
    input: R,
    line: u64,
    buf: Vec<u8>,
    failed: bool,
}

enum Line {
    Eof,
    Ok,
    TooLong,
}

impl<R: BufRead> Reader<R> {
    /// Reads and checks the header line.
    pub fn new(mut input: R) -> Result<Self, DirectoryError> {
        let mut buf = Vec::new();
        match read_line(&mut input, &mut buf).map_err(DirectoryError::Read)? {
            Line::Eof => return Err(DirectoryError::Header("the file is empty".into())),
            Line::TooLong => {
                return Err(DirectoryError::Header(
                    "the first line is not the header (over 64 KiB)".into(),
                ));
            }
            Line::Ok => {}
        }
        let text = std::str::from_utf8(&buf).map_err(|e| {
            DirectoryError::Header(format!(
                "the header is not UTF-8 (byte {}); the extraction is published in UTF-8",
                e.valid_up_to()
            ))
        })?;
        check_header(text)?;
        Ok(Reader {
            input,
            line: 1,
            buf,
            failed: false,
        })
    }

    /// Number of the last line read.
    pub fn line(&self) -> u64 {
        self.line
    }
}

/// Checks a header line, naming the first column that differs.
pub fn check_header(text: &str) -> Result<(), DirectoryError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let fields = split_fields(text);
    if fields.len() != COLUMNS.len() {
        return Err(DirectoryError::Header(format!(
            "{} columns, expected 52 separated by `|`",
            fields.len()
        )));
    }
    for (i, (found, expected)) in fields.iter().zip(COLUMNS).enumerate() {
        if found.trim() != expected {
            return Err(DirectoryError::Header(format!(
                "column {} is {found:?}, expected {expected:?}: not a \
                 PS_LibreAcces_Personne_activite extraction (or a new layout)",
                i + 1
            )));
        }
    }
    Ok(())
}

/// Splits on `|`, dropping the one trailing empty field the trailing `|` makes.
fn split_fields(line: &str) -> Vec<&str> {
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').collect()
}

/// Reads one line without its terminator into `buf`, never holding more than
/// [`MAX_LINE_BYTES`]: the rest of a longer line is skipped.
fn read_line<R: BufRead>(input: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !too_long {
            if buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        input.consume(used);
        if done {
            break;
        }
    }
    if !any {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(if too_long { Line::TooLong } else { Line::Ok })
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Parsed, DirectoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let status = match read_line(&mut self.input, &mut self.buf) {
                Ok(s) => s,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(DirectoryError::Read(e)));
                }
            };
            self.line += 1;
            let line = self.line;
            match status {
                Line::Eof => return None,
                Line::TooLong => {
                    return Some(Ok(Parsed::Rejected(RowError {
                        line,
                        reason: format!("line longer than {MAX_LINE_BYTES} bytes"),
                        national_id: None,
                    })));
                }
                Line::Ok if self.buf.is_empty() => continue,
                Line::Ok => {}
            }
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    return Some(Ok(Parsed::Rejected(RowError {
                        line,
                        reason: format!("not UTF-8 at byte {}", e.valid_up_to() + 1),
                        national_id: None,
                    })));
                }
            };
            return Some(Ok(match parse_row(line, text) {
                Ok(row) => Parsed::Row(Box::new(row)),
                Err(e) => Parsed::Rejected(e),
            }));
        }
    }
}

fn column_error(line: u64, column: usize, reason: String, national_id: Option<&str>) -> RowError {
    RowError {
        line,
        reason: format!("column {} ({}): {reason}", column + 1, COLUMNS[column]),
        national_id: national_id.map(str::to_string),
    }
}

fn opt(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn alphanumeric(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn all_digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses one data line (without its terminator).
pub fn parse_row(line: u64, text: &str) -> Result<Row, RowError> {
    if let Some(pos) = text.chars().position(|c| c.is_control()) {
        // PostgreSQL refuses NUL in text, and no field of the extraction holds control
        // characters: such a line is damaged.
        return Err(RowError {
            line,
            reason: format!("control character at character {}", pos + 1),
            national_id: None,
        });
    }
    let raw = split_fields(text);
    if raw.len() != COLUMNS.len() {
        return Err(RowError {
            line,
            reason: format!("{} fields, expected 52", raw.len()),
            national_id: None,
        });
    }
    let f: Vec<&str> = raw.iter().map(|s| s.trim()).collect();
    let err = |column: usize, reason: String, id: Option<&str>| {
        Err(column_error(line, column, reason, id))
    };

    let Some(kind) = IdentifierKind::parse(f[0]) else {
        return err(
            0,
            format!("{:?} is not an identifier type (0 ADELI, 8 RPPS)", f[0]),
            None,
        );
    };
    let identifier = f[1];
    let valid_identifier = match kind {
        IdentifierKind::Rpps => all_digits(identifier, 11),
        IdentifierKind::Adeli => {
            identifier.len() == 9 && identifier.bytes().all(|b| b.is_ascii_alphanumeric())
        }
    };
    if !valid_identifier {
        let expected = match kind {
            IdentifierKind::Rpps => "an RPPS number is 11 digits",
            IdentifierKind::Adeli => "an ADELI number is 9 characters",
        };
        return err(1, format!("{identifier:?}: {expected}"), None);
    }
    let national_id = f[2];
    if national_id.len() != identifier.len() + 1
        || !national_id.starts_with(kind.code())
        || &national_id[1..] != identifier
    {
        return err(
            2,
            format!(
                "{national_id:?} is not {}{identifier} (type + identifier)",
                kind.code()
            ),
            None,
        );
    }
    let id = Some(national_id);
    if f[7].is_empty() {
        return err(7, "empty family name".into(), id);
    }
    if f[9].is_empty() || f[9].len() > 4 || !f[9].bytes().all(|b| b.is_ascii_digit()) {
        return err(
            9,
            format!("{:?} is not a TRE_G15 profession code", f[9]),
            id,
        );
    }
    let mode = match f[17] {
        "" => None,
        code => match PracticeMode::parse(code) {
            Some(m) => Some(m),
            None => {
                return err(
                    17,
                    format!("{code:?} is not a mode of practice (L, S or B)"),
                    id,
                );
            }
        },
    };
    for (column, n, what) in [
        (19, 14, "a SIRET is 14 digits"),
        (20, 9, "a SIREN is 9 digits"),
    ] {
        if !f[column].is_empty() && !all_digits(f[column], n) {
            return err(column, format!("{:?}: {what}", f[column]), id);
        }
    }
    for column in [21, 22] {
        let v = f[column];
        if !(v.is_empty() || alphanumeric(v, 9)) {
            return err(
                column,
                format!("{v:?}: a FINESS number is 9 characters"),
                id,
            );
        }
    }
    let structure_id = f[23];
    if structure_id.len() > 64
        || !structure_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return err(
            23,
            format!("{structure_id:?}: expected letters and digits, at most 64"),
            id,
        );
    }
    if !f[35].is_empty() && !all_digits(f[35], 5) {
        return err(35, format!("{:?}: a postcode is 5 digits", f[35]), id);
    }
    if !(f[36].is_empty() || alphanumeric(f[36], 5)) {
        return err(
            36,
            format!("{:?}: an INSEE commune code is 5 characters", f[36]),
            id,
        );
    }

    let practitioner = Practitioner {
        national_id: national_id.to_string(),
        kind,
        identifier: identifier.to_string(),
        practice_civility: Coded::new(f[3], f[4]),
        civility: Coded::new(f[5], f[6]),
        family_name: f[7].to_string(),
        given_name: f[8].to_string(),
        profession: Coded::new(f[9], f[10]),
        category: Coded::new(f[11], f[12]),
        mssante_address: None,
    };
    let organisation = (!structure_id.is_empty()).then(|| {
        let street: Vec<&str> = [f[28], f[29], f[31], f[32]]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let mut lines: Vec<String> = [f[26], f[27]]
            .into_iter()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if !street.is_empty() {
            lines.push(street.join(" "));
        }
        let district: Vec<&str> = [f[33], f[34]]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        Organisation {
            structure_id: structure_id.to_string(),
            siret: opt(f[19]),
            siren: opt(f[20]),
            finess_site: opt(f[21]),
            finess_legal: opt(f[22]),
            name: if f[24].is_empty() { f[25] } else { f[24] }.to_string(),
            trade_name: opt(f[25]),
            address: Address {
                lines,
                district: (!district.is_empty()).then(|| district.join(" ")),
                postal_code: opt(f[35]),
                commune_code: opt(f[36]),
                city: opt(f[37]),
                country_code: opt(f[38]),
                country: opt(f[39]),
            },
            phone: opt(f[40]),
            phone2: opt(f[41]),
            fax: opt(f[42]),
            email: opt(f[43]),
            department: Coded::new(f[44], f[45]),
            sector: Coded::new(f[48], f[49]),
        }
    });
    let activity = Activity {
        national_id: national_id.to_string(),
        structure_id: opt(structure_id),
        profession: Coded::new(f[9], f[10]),
        specialty_kind: Coded::new(f[13], f[14]),
        specialty: Coded::new(f[15], f[16]),
        mode,
        mode_label: f[18].to_string(),
        pharmacist_section: Coded::new(f[50], f[51]),
        registration_authority: opt(f[47]),
    };
    Ok(Row {
        line,
        practitioner,
        organisation,
        activity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid row, as a vector of fields to alter in each case.
    pub(crate) fn fields() -> Vec<String> {
        let mut f = vec![String::new(); 52];
        let set = |f: &mut Vec<String>, i: usize, v: &str| f[i] = v.to_string();
        set(&mut f, 0, "8");
        set(&mut f, 1, "10001234567");
        set(&mut f, 2, "810001234567");
        set(&mut f, 3, "DR");
        set(&mut f, 4, "Docteur");
        set(&mut f, 7, "LE GALL");
        set(&mut f, 8, "Maïwenn");
        set(&mut f, 9, "10");
        set(&mut f, 10, "Médecin");
        set(&mut f, 11, "C");
        set(&mut f, 13, "S");
        set(&mut f, 15, "SM54");
        set(&mut f, 16, "Médecine générale");
        set(&mut f, 17, "S");
        set(&mut f, 19, "26290001700011");
        set(&mut f, 21, "290000017");
        set(&mut f, 23, "F290000017");
        set(&mut f, 24, "CHU DE BREST");
        set(&mut f, 28, "2");
        set(&mut f, 32, "AVENUE FOCH");
        set(&mut f, 35, "29200");
        set(&mut f, 36, "29019");
        set(&mut f, 37, "Brest");
        f
    }

    fn line(f: &[String]) -> String {
        let mut s = f.join("|");
        s.push('|');
        s
    }

    #[test]
    fn a_valid_row_is_read_into_the_domain() {
        let row = parse_row(2, &line(&fields())).unwrap();
        assert_eq!(row.practitioner.national_id, "810001234567");
        assert_eq!(row.practitioner.kind, IdentifierKind::Rpps);
        assert_eq!(row.practitioner.given_name, "Maïwenn");
        let org = row.organisation.unwrap();
        assert_eq!(org.structure_id, "F290000017");
        assert_eq!(org.address.lines, vec!["2 AVENUE FOCH".to_string()]);
        assert_eq!(org.address.commune_code.as_deref(), Some("29019"));
        assert_eq!(row.activity.mode, Some(PracticeMode::Salaried));
        assert_eq!(row.activity.specialty.code, "SM54");
    }

    #[test]
    fn malformed_rows_name_the_column_and_reason() {
        type Case = (&'static str, fn(&mut Vec<String>), &'static str);
        let cases: Vec<Case> = vec![
            (
                "type",
                |f| f[0] = "9".into(),
                "column 1 (Type d'identifiant PP)",
            ),
            (
                "rpps",
                |f| f[1] = "123".into(),
                "an RPPS number is 11 digits",
            ),
            ("natid", |f| f[2] = "899999999999".into(), "column 3"),
            ("family", |f| f[7] = " ".into(), "empty family name"),
            ("profession", |f| f[9] = "x1".into(), "TRE_G15"),
            ("mode", |f| f[17] = "Z".into(), "mode of practice"),
            ("siret", |f| f[19] = "1234".into(), "SIRET is 14 digits"),
            ("finess", |f| f[21] = "29'--".into(), "FINESS number"),
            ("structure", |f| f[23] = "a b".into(), "column 24"),
            (
                "postcode",
                |f| f[35] = "2920".into(),
                "postcode is 5 digits",
            ),
            ("nul", |f| f[24] = "CHU\0".into(), "control character"),
            (
                "fields",
                |f| {
                    f.pop();
                },
                "51 fields, expected 52",
            ),
        ];
        for (name, alter, expected) in cases {
            let mut f = fields();
            alter(&mut f);
            let e = parse_row(7, &line(&f)).expect_err(name);
            assert_eq!(e.line, 7);
            assert!(e.reason.contains(expected), "{name}: {}", e.reason);
        }
    }

    #[test]
    fn header_is_checked_column_by_column() {
        assert!(check_header(&header_line()).is_ok());
        assert!(check_header(&format!("\u{feff}{}", header_line())).is_ok());
        let wrong = header_line().replace("Nom d'exercice", "Nom");
        let e = check_header(&wrong).unwrap_err().to_string();
        assert!(e.contains("column 8"), "{e}");
        let e = check_header("a;b;c").unwrap_err().to_string();
        assert!(e.contains("1 columns, expected 52"), "{e}");
        let e = check_header(&format!("{}x|", header_line()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("53 columns"), "{e}");
    }

    #[test]
    fn the_reader_streams_rows_with_line_numbers() {
        let mut text = header_line();
        text.push_str("\r\n");
        text.push_str(&line(&fields()));
        text.push('\n');
        text.push_str("garbage\n\n");
        text.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
        text.push('\n');
        text.push_str(&line(&fields()));
        let items: Vec<Parsed> = Reader::new(text.as_bytes())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(items.len(), 4);
        assert!(matches!(&items[0], Parsed::Row(r) if r.line == 2));
        assert!(matches!(&items[1], Parsed::Rejected(e) if e.line == 3));
        assert!(
            matches!(&items[2], Parsed::Rejected(e) if e.line == 5 && e.reason.contains("longer"))
        );
        assert!(matches!(&items[3], Parsed::Row(r) if r.line == 6));
    }

    #[test]
    fn invalid_utf8_is_a_rejected_row_not_a_failure() {
        let mut bytes = header_line().into_bytes();
        bytes.push(b'\n');
        bytes.extend_from_slice(b"8|\xff\xfe|\n");
        let items: Vec<_> = Reader::new(&bytes[..]).unwrap().collect();
        assert!(
            matches!(&items[0], Ok(Parsed::Rejected(e)) if e.reason.contains("not UTF-8")),
            "{items:?}"
        );
    }

    #[test]
    fn empty_and_foreign_files_are_refused() {
        assert!(Reader::new(&b""[..]).is_err());
        assert!(Reader::new(&b"\xff\n"[..]).is_err());
    }

    proptest::proptest! {
        // Arbitrary bytes after a valid header: the reader never panics and accounts for every
        // non-empty line.
        #[test]
        fn arbitrary_input_never_panics(body in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
            let mut bytes = header_line().into_bytes();
            bytes.push(b'\n');
            bytes.extend_from_slice(&body);
            for item in Reader::new(&bytes[..]).unwrap() {
                item.unwrap();
            }
        }

        // Valid rows with one field replaced by arbitrary text: parsed or rejected, never a panic.
        #[test]
        fn arbitrary_fields_never_panic(column in 0usize..52, value in ".{0,40}") {
            let mut f = fields();
            f[column] = value.replace(['\n', '|'], "");
            let _ = parse_row(2, &line(&f));
        }

        #[test]
        fn arbitrary_headers_never_panic(text in ".{0,300}") {
            let _ = check_header(&text);
        }
    }
}
