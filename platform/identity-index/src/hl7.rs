//! HL7 v2.5 messages of the IHE PAM / PAM-FR identity feed: parsing (written here: no maintained
//! Rust crate was found in this environment's registry mirror — `hl7-parser` and `rust-hl7` are
//! not installable offline here — and the subset needed is small), mapping of ADT messages to
//! index changes, and acknowledgements.
//!
//! Limits protect the listener: a message over [`MAX_MESSAGE`] bytes or a segment over
//! [`MAX_SEGMENT`] bytes is refused whole.

use megalis_identity::{
    Attributes, Demographics, IdentityStatus, Ins, Sex, SourceId, SourceRecord, StrictTraits,
};
use time::{Date, Month};

use crate::encounter::{EncounterEvent, encounter};
use crate::{Change, IndexError, now_us};

pub const MAX_MESSAGE: usize = 1 << 20;
pub const MAX_SEGMENT: usize = 64 << 10;

/// An HL7 error: the HL7 table 0357 code, where (e.g. `PID-3`), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hl7Error {
    pub code: u16,
    pub location: String,
    pub reason: String,
}

fn err(code: u16, location: &str, reason: impl Into<String>) -> Hl7Error {
    Hl7Error {
        code,
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Delimiters declared in MSH-1 and MSH-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: char,
    pub subcomponent: char,
}

/// A parsed message: segments of fields, kept raw (unescaped on access).
#[derive(Debug, Clone)]
pub struct Message {
    pub delimiters: Delimiters,
    segments: Vec<Vec<String>>,
}

impl Message {
    /// Parses a message (segments separated by CR; LF and CRLF tolerated).
    pub fn parse(text: &str) -> Result<Message, Hl7Error> {
        if text.len() > MAX_MESSAGE {
            return Err(err(100, "MSH", format!("message over {MAX_MESSAGE} bytes")));
        }
        if !text.starts_with("MSH") {
            return Err(err(
                100,
                "MSH",
                "the message must start with an MSH segment",
            ));
        }
        let mut chars = text[3..].chars();
        let field = chars
            .next()
            .ok_or_else(|| err(100, "MSH-1", "missing field separator"))?;
        let enc: Vec<char> = chars.take(4).collect();
        let all = [
            field,
            *enc.first().unwrap_or(&'a'),
            *enc.get(1).unwrap_or(&'a'),
            *enc.get(2).unwrap_or(&'a'),
            *enc.get(3).unwrap_or(&'a'),
        ];
        let distinct = all.iter().enumerate().all(|(i, c)| !all[..i].contains(c));
        if enc.len() < 4
            || !distinct
            || all.iter().any(|c| c.is_alphanumeric() || c.is_whitespace())
        {
            return Err(err(
                102,
                "MSH-2",
                "encoding characters must be 4 distinct delimiters, e.g. ^~\\&",
            ));
        }
        let delimiters = Delimiters {
            field,
            component: enc[0],
            repetition: enc[1],
            escape: enc[2],
            subcomponent: enc[3],
        };
        let mut segments = Vec::new();
        for (i, line) in text.split(['\r', '\n']).enumerate() {
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_SEGMENT {
                return Err(err(
                    100,
                    &format!("segment {}", i + 1),
                    format!("segment over {MAX_SEGMENT} bytes"),
                ));
            }
            let id = line.get(..3).unwrap_or("");
            if id.len() != 3
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(err(
                    100,
                    &format!("segment {}", i + 1),
                    "a segment starts with a 3-character identifier",
                ));
            }
            let mut fields: Vec<String> = line.split(field).map(str::to_string).collect();
            if id == "MSH" {
                // MSH-1 is the separator itself: keep numbering aligned with the standard.
                fields.insert(1, field.to_string());
            }
            segments.push(fields);
        }
        Ok(Message {
            delimiters,
            segments,
        })
    }

    /// The first segment with this identifier.
    pub fn segment(&self, id: &str) -> Option<&[String]> {
        self.segments
            .iter()
            .find(|s| s[0] == id)
            .map(|s| s.as_slice())
    }

    /// Raw field `n` (HL7 numbering) of the first `id` segment; empty when absent.
    pub fn field(&self, id: &str, n: usize) -> &str {
        self.segment(id)
            .and_then(|s| s.get(n))
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn repetitions<'a>(&self, raw: &'a str) -> Vec<&'a str> {
        raw.split(self.delimiters.repetition)
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// Component `n` (1-based) of a raw field repetition, unescaped.
    pub fn component(&self, raw: &str, n: usize) -> String {
        self.unescape(
            raw.split(self.delimiters.component)
                .nth(n - 1)
                .unwrap_or(""),
        )
    }

    /// Subcomponent `s` of component `n`, unescaped.
    pub fn subcomponent(&self, raw: &str, n: usize, s: usize) -> String {
        let c = raw
            .split(self.delimiters.component)
            .nth(n - 1)
            .unwrap_or("");
        self.unescape(
            c.split(self.delimiters.subcomponent)
                .nth(s - 1)
                .unwrap_or(""),
        )
    }

    /// Replaces the escape sequences `\F\ \S\ \T\ \R\ \E\` by the delimiters they stand for.
    pub fn unescape(&self, s: &str) -> String {
        let e = self.delimiters.escape;
        if !s.contains(e) {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut parts = s.split(e);
        out.push_str(parts.next().unwrap_or(""));
        let mut in_escape = true;
        for p in parts {
            if in_escape {
                match p {
                    "F" => out.push(self.delimiters.field),
                    "S" => out.push(self.delimiters.component),
                    "T" => out.push(self.delimiters.subcomponent),
                    "R" => out.push(self.delimiters.repetition),
                    "E" => out.push(e),
                    // Unknown sequences (hex, formatting) are dropped rather than misread.
                    _ => {}
                }
            } else {
                out.push_str(p);
            }
            in_escape = !in_escape;
        }
        out
    }

    pub fn control_id(&self) -> String {
        self.unescape(self.field("MSH", 10))
    }

    /// Sending application and facility (MSH-3, MSH-4), the key of the sender's bindings.
    pub fn sender(&self) -> String {
        format!(
            "{}|{}",
            self.component(self.field("MSH", 3), 1),
            self.component(self.field("MSH", 4), 1)
        )
    }

    /// The trigger event of MSH-9 (`A01`…).
    pub fn trigger(&self) -> String {
        self.component(self.field("MSH", 9), 2)
    }
}

/// Which assigning authorities each sender (MSH-3|MSH-4) may feed.
pub type SenderBindings = std::collections::BTreeMap<String, Vec<String>>;

fn identity_status(m: &Message) -> Result<(IdentityStatus, Attributes), Hl7Error> {
    let mut status = IdentityStatus::Prov;
    let mut attributes = Attributes::default();
    for rep in m.repetitions(m.field("PID", 32)) {
        match m.component(rep, 1).as_str() {
            "DOUTE" => attributes.doubtful = true,
            "FICTI" => attributes.fictitious = true,
            "HOMON" => attributes.homonym = true,
            "" | "VIDE" => {}
            code => {
                status = IdentityStatus::parse(code).map_err(|_| {
                    err(
                        103,
                        "PID-32",
                        format!("unknown identity reliability code {code:?}"),
                    )
                })?
            }
        }
    }
    Ok((status, attributes))
}

fn parse_date(s: &str) -> Result<Date, Hl7Error> {
    let bad = || err(102, "PID-7", format!("{s:?} is not a date (YYYYMMDD)"));
    if s.len() < 8 || !s.is_char_boundary(8) || !s[..8].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let y: i32 = s[..4].parse().map_err(|_| bad())?;
    let mo: u8 = s[4..6].parse().map_err(|_| bad())?;
    let d: u8 = s[6..8].parse().map_err(|_| bad())?;
    Date::from_calendar_date(y, Month::try_from(mo).map_err(|_| bad())?, d).map_err(|_| bad())
}

/// A CX identifier of PID-3 or MRG-1: `(id, authority OID or namespace, type code)`.
fn cx(m: &Message, rep: &str) -> (String, String, String) {
    let oid = m.subcomponent(rep, 4, 2);
    let authority = if oid.is_empty() {
        m.subcomponent(rep, 4, 1)
    } else {
        oid
    };
    (m.component(rep, 1), authority, m.component(rep, 5))
}

/// The local identifier (IPP, type PI) of a CX list, checked against the sender's bindings.
fn local_id(
    m: &Message,
    raw: &str,
    location: &str,
    allowed: &[String],
) -> Result<SourceId, Hl7Error> {
    for rep in m.repetitions(raw) {
        let (id, authority, kind) = cx(m, rep);
        if kind == "PI" || kind.is_empty() && authority != megalis_identity::ins::OID_NIR {
            if id.is_empty() || authority.is_empty() {
                return Err(err(
                    101,
                    location,
                    "the local identifier needs an id and an assigning authority",
                ));
            }
            if !allowed.contains(&authority) {
                return Err(err(
                    204,
                    location,
                    format!("this sender may not feed identifiers of {authority}"),
                ));
            }
            return Ok(SourceId {
                authority,
                local_id: id,
            });
        }
    }
    Err(err(
        101,
        location,
        "no local identifier (type PI) in the list",
    ))
}

/// The source record carried by PID.
pub fn source_record(
    m: &Message,
    allowed: &[String],
    test_mode: bool,
) -> Result<SourceRecord, Hl7Error> {
    if m.segment("PID").is_none() {
        return Err(err(100, "PID", "missing PID segment"));
    }
    let id = local_id(m, m.field("PID", 3), "PID-3", allowed)?;
    let mut ins = None;
    for rep in m.repetitions(m.field("PID", 3)) {
        let (value, authority, kind) = cx(m, rep);
        if kind == "INS" || kind == "INS-NIR" || kind == "INS-NIA" {
            ins = Some(
                Ins::parse(&value, &authority, test_mode)
                    .map_err(|e| err(102, "PID-3", e.to_string()))?,
            );
        }
    }
    let (mut birth_name, mut used_name, mut first_first, mut others, mut used_first) =
        (String::new(), None, String::new(), String::new(), None);
    for rep in m.repetitions(m.field("PID", 5)) {
        match m.component(rep, 7).as_str() {
            "L" => {
                birth_name = m.component(rep, 1);
                first_first = m.component(rep, 2);
                others = m.component(rep, 3);
            }
            "D" => {
                used_name = Some(m.component(rep, 1)).filter(|s| !s.is_empty());
                used_first = Some(m.component(rep, 2)).filter(|s| !s.is_empty());
            }
            _ => {}
        }
    }
    if birth_name.is_empty() {
        return Err(err(
            101,
            "PID-5",
            "missing birth name (PID-5 with name type L)",
        ));
    }
    // PAM-FR: PID-5.2 the first birth first name, PID-5.3 the others, separated by commas
    // (spaces belong to compound first names such as "Jean Pierre").
    let mut first_names = vec![first_first];
    first_names.extend(
        others
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
    );
    first_names.retain(|n| !n.is_empty());
    let birth_date = parse_date(m.field("PID", 7))?;
    let sex = Sex::parse_hl7(&m.component(m.field("PID", 8), 1))
        .map_err(|e| err(103, "PID-8", e.to_string()))?;
    let mut birthplace = None;
    for rep in m.repetitions(m.field("PID", 11)) {
        if m.component(rep, 7) == "BDL" {
            birthplace = Some(m.component(rep, 9)).filter(|s| !s.is_empty());
        }
    }
    let (status, attributes) = identity_status(m)?;
    Ok(SourceRecord {
        id,
        ins,
        demographics: Demographics {
            traits: StrictTraits {
                birth_name,
                birth_first_names: first_names,
                birth_date,
                sex,
                birthplace,
            },
            used_name,
            used_first_name: used_first,
            address: None,
            telecom: Some(m.component(m.field("PID", 13), 1)).filter(|s| !s.is_empty()),
        },
        status,
        attributes,
        updated_us: megalis_audit::record::now_us(),
    })
}

/// The index changes an ADT message asks for.
pub fn changes(m: &Message, allowed: &[String], test_mode: bool) -> Result<Vec<Change>, Hl7Error> {
    let kind = m.component(m.field("MSH", 9), 1);
    if kind != "ADT" {
        return Err(err(
            200,
            "MSH-9",
            format!("unsupported message type {kind:?}"),
        ));
    }
    match m.trigger().as_str() {
        "A28" | "A31" => Ok(vec![Change::Upsert(source_record(m, allowed, test_mode)?)]),
        "A01" | "A04" | "A05" | "A08" => {
            // Admission, registration, pre-admission, update: the identity, and the doctors of
            // the stay for the care team (issue 5).
            let record = source_record(m, allowed, test_mode)?;
            let stay = encounter(m, &record.id, EncounterEvent::Admit, now_us())?;
            let mut changes = vec![Change::Upsert(record)];
            changes.extend(stay.map(Change::Encounter));
            Ok(changes)
        }
        "A03" | "A11" | "A13" => {
            // Discharge and cancellations concern the stay only; the identity is fed by the
            // identity events, so a minimal PID (PID-3) is enough here.
            if m.segment("PID").is_none() {
                return Err(err(100, "PID", "missing PID segment"));
            }
            let patient = local_id(m, m.field("PID", 3), "PID-3", allowed)?;
            let event = match m.trigger().as_str() {
                "A03" => EncounterEvent::Discharge,
                "A11" => EncounterEvent::CancelAdmit,
                _ => EncounterEvent::CancelDischarge,
            };
            let mut stay = encounter(m, &patient, event, now_us())?
                .ok_or_else(|| err(100, "PV1", "this event needs a PV1 segment"))?;
            if event == EncounterEvent::CancelDischarge {
                stay.end = None;
            }
            Ok(vec![Change::Encounter(stay)])
        }
        "A40" => {
            let survivor = local_id(m, m.field("PID", 3), "PID-3", allowed)?;
            if m.segment("MRG").is_none() {
                return Err(err(100, "MRG", "an A40 needs an MRG segment"));
            }
            let merged = local_id(m, m.field("MRG", 1), "MRG-1", allowed)?;
            Ok(vec![Change::MergeSources { survivor, merged }])
        }
        "A47" => {
            // PAM: change of the patient identifier list; PID-3 the correct identifier, MRG-1
            // the incorrect one, same assigning authority.
            let to = local_id(m, m.field("PID", 3), "PID-3", allowed)?;
            if m.segment("MRG").is_none() {
                return Err(err(100, "MRG", "an A47 needs an MRG segment"));
            }
            let from = local_id(m, m.field("MRG", 1), "MRG-1", allowed)?;
            if from.authority != to.authority {
                return Err(err(
                    102,
                    "MRG-1",
                    "an A47 corrects an identifier within one assigning authority",
                ));
            }
            if from == to {
                return Err(err(102, "MRG-1", "MRG-1 and PID-3 are the same identifier"));
            }
            Ok(vec![Change::RenameSource { from, to }])
        }
        other => Err(err(
            201,
            "MSH-9",
            format!("unsupported trigger event {other:?}"),
        )),
    }
}

/// An HL7 error for an index refusal (unknown record in an A40, invalid traits…).
pub fn index_error(e: &IndexError) -> Hl7Error {
    match e {
        IndexError::UnknownSource(s) => err(204, "MRG-1", format!("unknown patient {s}")),
        IndexError::SourceExists(s) => err(
            205,
            "PID-3",
            format!("identifier {s} is already in use: send an A40 to merge the two records"),
        ),
        IndexError::Identity(i) => err(102, "PID", i.to_string()),
        IndexError::VisitConflict(_) => err(205, "PV1-19", e.to_string()),
        other if other.is_bad_input() => err(207, "", other.to_string()),
        other => err(207, "", format!("application error: {other}")),
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\E\\")
        .replace('|', "\\F\\")
        .replace('^', "\\S\\")
        .replace('&', "\\T\\")
        .replace('~', "\\R\\")
}

/// An acknowledgement (`AA`, `AE` or `AR`) of `message` (or of an unparsable one), with an ERR
/// segment naming the location when there is an error. Always uses the standard delimiters.
pub fn ack(
    message: Option<&Message>,
    code: &str,
    error: Option<&Hl7Error>,
    ack_id: &str,
) -> String {
    let (app, facility, control, trigger) = match message {
        Some(m) => (
            escape(&m.component(m.field("MSH", 3), 1)),
            escape(&m.component(m.field("MSH", 4), 1)),
            escape(&m.control_id()),
            escape(&m.trigger()),
        ),
        None => (String::new(), String::new(), String::new(), String::new()),
    };
    let now = time::OffsetDateTime::now_utc();
    let ts = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let mut out = format!(
        "MSH|^~\\&|MEGALIS|MEGALIS|{app}|{facility}|{ts}||ACK^{trigger}^ACK|{ack_id}|P|2.5\rMSA|{code}|{control}\r"
    );
    if let Some(e) = error {
        let mut loc = e.location.splitn(2, '-');
        let (seg, field) = (loc.next().unwrap_or(""), loc.next().unwrap_or(""));
        let location = if field.is_empty() {
            escape(seg)
        } else {
            format!("{}^1^{}", escape(seg), escape(field))
        };
        let text = match e.code {
            100 => "Segment sequence error",
            101 => "Required field missing",
            102 => "Data type error",
            103 => "Table value not found",
            200 => "Unsupported message type",
            201 => "Unsupported event code",
            204 => "Unknown key identifier",
            _ => "Application internal error",
        };
        out.push_str(&format!(
            "ERR||{location}|{}^{text}^HL70357|E||||{}\r",
            e.code,
            escape(&e.reason)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const RENNES: &str = "1.2.250.1.71.4.2.2.350005179";

    pub(crate) fn a28(control: &str, ipp: &str, extra_pid3: &str) -> String {
        format!(
            "MSH|^~\\&|DXCARE|CHU_RENNES|MEGALIS|ARS_BZH|20261125120000||ADT^A28^ADT_A05|{control}|P|2.5|||||FRA|8859/1|||2.11^IHE_FR\r\
             EVN||20261125120000\r\
             PID|||{ipp}^^^CHU&{RENNES}&ISO^PI{extra_pid3}||LE GOFF^ANNE^MARIE,SOIZIC^^^^L~MORVAN^ANNE^^^^^D||19690214|F|||^^^^^^BDL^^29019||0299000000{}VALI\r",
            // PID-13 to PID-32.
            "|".repeat(19)
        )
    }

    #[test]
    fn parses_a_pam_fr_a28() {
        let m = Message::parse(&a28("M1", "IPP1", "")).unwrap();
        assert_eq!(m.control_id(), "M1");
        assert_eq!(m.trigger(), "A28");
        assert_eq!(m.sender(), "DXCARE|CHU_RENNES");
        let r = source_record(&m, &[RENNES.to_string()], false).unwrap();
        assert_eq!(r.id.local_id, "IPP1");
        assert_eq!(
            r.demographics.traits.birth_first_names,
            ["ANNE", "MARIE", "SOIZIC"]
        );
        assert_eq!(r.demographics.used_name.as_deref(), Some("MORVAN"));
        assert_eq!(r.demographics.traits.birthplace.as_deref(), Some("29019"));
        assert_eq!(r.status, IdentityStatus::Vali);
    }

    #[test]
    fn bad_content_names_the_field() {
        let ins_ok = megalis_identity::ins::with_key("2690229019123").unwrap();
        let wrong_key = format!("{}00", &ins_ok[..13]);
        let allowed = [RENNES.to_string()];
        let cases: Vec<(String, &str, u16)> = vec![
            (
                a28(
                    "M",
                    "IPP1",
                    &format!("~{wrong_key}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"),
                ),
                "PID-3",
                102,
            ),
            (
                a28(
                    "M",
                    "IPP1",
                    &format!("~{ins_ok}^^^INS&1.2.250.1.213.1.4.10&ISO^INS"),
                ),
                "PID-3",
                102,
            ),
            (
                a28("M", "IPP1", "").replace("19690214", "19691314"),
                "PID-7",
                102,
            ),
            (
                a28("M", "IPP1", "").replace("LE GOFF^ANNE^MARIE,SOIZIC^^^^L~", ""),
                "PID-5",
                101,
            ),
            (a28("M", "IPP1", "").replace("|F|", "|X|"), "PID-8", 103),
            (a28("M", "IPP1", "").replace("VALI", "SUPER"), "PID-32", 103),
            (
                a28("M", "IPP1", "").replace(RENNES, "1.2.3.4"),
                "PID-3",
                204,
            ),
            (
                a28("M", "IPP1", "").replace("ADT^A28", "ADT^Z99"),
                "MSH-9",
                201,
            ),
            (
                a28("M", "IPP1", "").replace("ADT^A28", "ORU^R01"),
                "MSH-9",
                200,
            ),
        ];
        for (text, location, code) in cases {
            let m = Message::parse(&text).unwrap();
            let e = changes(&m, &allowed, false).unwrap_err();
            assert_eq!((e.location.as_str(), e.code), (location, code), "{e:?}");
            let ack = ack(Some(&m), "AE", Some(&e), "A1");
            let seg = location.split('-').next().unwrap();
            assert!(ack.contains(&format!("ERR||{seg}")), "{ack}");
        }
        // The right INS with the production OID is accepted.
        let m = Message::parse(&a28(
            "M",
            "IPP1",
            &format!("~{ins_ok}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS"),
        ))
        .unwrap();
        let r = source_record(&m, &allowed, false).unwrap();
        assert_eq!(r.ins.unwrap().as_str(), ins_ok);
    }

    #[test]
    fn framing_level_refusals() {
        let cases = [
            "",
            "PID|1",
            "MSH",
            "MSH|^~",
            "MSH|^^\\&|",
            "MSHa^~\\&|",
            "MSH|^~\\&|\rpid|x",
        ];
        for text in cases {
            assert!(Message::parse(text).is_err(), "{text:?}");
        }
        let huge = format!("{}\rNTE|{}", a28("M", "I", ""), "x".repeat(MAX_SEGMENT));
        assert!(Message::parse(&huge).is_err());
    }

    #[test]
    fn escapes() {
        let m = Message::parse("MSH|^~\\&|A\\F\\B|F\r").unwrap();
        assert_eq!(m.component(m.field("MSH", 3), 1), "A|B");
        assert_eq!(escape("a|b^c"), "a\\F\\b\\S\\c");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(m) = Message::parse(&text) {
                let _ = changes(&m, &[RENNES.to_string()], false);
                let _ = ack(Some(&m), "AE", None, "x");
            }
        }

        #[test]
        fn mutated_messages_never_panic(pos in 0usize..400, byte in proptest::prelude::any::<u8>(), cut in 0usize..400) {
            let mut bytes = a28("M", "IPP1", "").into_bytes();
            let p = pos % bytes.len();
            bytes[p] = byte;
            bytes.truncate(cut.max(1).min(bytes.len()));
            let text = String::from_utf8_lossy(&bytes);
            if let Ok(m) = Message::parse(&text) {
                let _ = changes(&m, &[RENNES.to_string()], false);
            }
        }
    }
}
