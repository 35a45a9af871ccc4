//! Hospital encounters from the ADT feed, for the care team: the doctors named in PV1 of a
//! hospital's admission, registration, update or discharge belong to the patient's care team
//! for that stay (issue 5). Only national identifiers (`8` + RPPS, `0` + ADELI) are kept: a
//! hospital's internal doctor codes mean nothing outside it.

use megalis_identity::SourceId;
use serde::Serialize;

use crate::hl7::{Hl7Error, Message};

/// OID of the national identifiers of health professionals.
pub const OID_NATIONAL_ID: &str = "1.2.250.1.71.4.2.1";

/// What the message does to the stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncounterEvent {
    /// A01, A04, A05, A08: the stay exists (or is updated) with these doctors.
    Admit,
    /// A03: the patient left; the stay ends.
    Discharge,
    /// A11: the admission is cancelled; the stay never was.
    CancelAdmit,
    /// A13: the discharge is cancelled; the stay goes on.
    CancelDischarge,
}

/// A stay and its doctors, as one message describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Encounter {
    pub patient: SourceId,
    pub event: EncounterEvent,
    /// PV1-19, unique within the sending hospital's assigning authority.
    pub visit_number: String,
    /// `(national id, role)`: attending (PV1-7), referring (PV1-8), consulting (PV1-9),
    /// admitting (PV1-17).
    pub participants: Vec<(String, &'static str)>,
    /// Microseconds since the epoch: PV1-44 (admission), else the event time.
    pub start: i64,
    /// PV1-45 (discharge), or the event time of an A03.
    pub end: Option<i64>,
}

fn err(code: u16, location: &str, reason: impl Into<String>) -> Hl7Error {
    Hl7Error {
        code,
        location: location.into(),
        reason: reason.into(),
    }
}

/// A national identifier of a health professional.
fn is_national_id(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
        && ((s.len() == 12 && s.starts_with('8')) || (s.len() == 10 && s.starts_with('0')))
}

/// An HL7 DTM (`YYYYMMDD[HH[MM[SS]]]`, an optional `±ZZZZ` offset, fractions ignored) in
/// microseconds since the epoch. Without an offset the time is French legal time: the feed
/// comes from hospitals in Brittany; we take UTC+1 (winter) as the conservative reading, an
/// hour's error at most on a stay's bounds.
pub fn parse_dtm(s: &str, location: &str) -> Result<i64, Hl7Error> {
    let bad = || err(102, location, format!("{s:?} is not an HL7 date/time"));
    let (body, offset) = match s.find(['+', '-']) {
        Some(i) => (&s[..i], Some(&s[i..])),
        None => (s, None),
    };
    let body = body.split('.').next().unwrap_or("");
    if body.len() < 8
        || body.len() > 14
        || body.len() % 2 == 1
        || !body.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let n = |a: usize, b: usize| -> Result<u32, Hl7Error> {
        if body.len() >= b {
            body[a..b].parse().map_err(|_| bad())
        } else {
            Ok(0)
        }
    };
    let year = i32::try_from(n(0, 4)?).map_err(|_| bad())?;
    let month =
        time::Month::try_from(u8::try_from(n(4, 6)?).map_err(|_| bad())?).map_err(|_| bad())?;
    let day = u8::try_from(n(6, 8)?).map_err(|_| bad())?;
    let date = time::Date::from_calendar_date(year, month, day).map_err(|_| bad())?;
    let t = time::Time::from_hms(
        u8::try_from(n(8, 10)?).map_err(|_| bad())?,
        u8::try_from(n(10, 12)?).map_err(|_| bad())?,
        u8::try_from(n(12, 14)?).map_err(|_| bad())?,
    )
    .map_err(|_| bad())?;
    let offset_seconds = match offset {
        None => 3600,
        Some(o) => {
            if o.len() != 5 || !o[1..].bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let h: i32 = o[1..3].parse().map_err(|_| bad())?;
            let m: i32 = o[3..5].parse().map_err(|_| bad())?;
            if h > 14 || m > 59 {
                return Err(bad());
            }
            let v = h * 3600 + m * 60;
            if o.starts_with('-') { -v } else { v }
        }
    };
    let offset = time::UtcOffset::from_whole_seconds(offset_seconds).map_err(|_| bad())?;
    let at = time::PrimitiveDateTime::new(date, t).assume_offset(offset);
    i64::try_from(at.unix_timestamp_nanos() / 1000).map_err(|_| bad())
}

/// The event time of the message: EVN-2 (recorded date/time), else MSH-7, else `now`.
fn event_time(m: &Message, now: i64) -> Result<i64, Hl7Error> {
    let evn = m.component(m.field("EVN", 2), 1);
    if !evn.is_empty() {
        return parse_dtm(&evn, "EVN-2");
    }
    let msh = m.component(m.field("MSH", 7), 1);
    if !msh.is_empty() {
        return parse_dtm(&msh, "MSH-7");
    }
    Ok(now)
}

/// The doctors of one XCN field that carry a national identifier.
fn doctors(m: &Message, n: usize, role: &'static str, out: &mut Vec<(String, &'static str)>) {
    for rep in m.repetitions(m.field("PV1", n)) {
        let id = m.component(rep, 1);
        // XCN-9 assigning authority: when named by OID it must be the national one.
        let oid = m.subcomponent(rep, 9, 2);
        if is_national_id(&id)
            && (oid.is_empty() || oid == OID_NATIONAL_ID)
            && !out.iter().any(|(p, r)| p == &id && *r == role)
        {
            out.push((id, role));
        }
    }
}

/// The encounter a message describes, if any: `None` when there is no PV1 or, for an
/// admission or update, no doctor with a national identifier (nothing for the care team).
pub fn encounter(
    m: &Message,
    patient: &SourceId,
    event: EncounterEvent,
    now: i64,
) -> Result<Option<Encounter>, Hl7Error> {
    if m.segment("PV1").is_none() {
        return match event {
            EncounterEvent::Admit => Ok(None),
            _ => Err(err(100, "PV1", "this event needs a PV1 segment")),
        };
    }
    let mut participants = Vec::new();
    doctors(m, 7, "attending", &mut participants);
    doctors(m, 8, "referring", &mut participants);
    doctors(m, 9, "consulting", &mut participants);
    doctors(m, 17, "admitting", &mut participants);
    if event == EncounterEvent::Admit && participants.is_empty() {
        return Ok(None);
    }
    let visit_number = m.component(m.field("PV1", 19), 1);
    if visit_number.is_empty() {
        return Err(err(
            101,
            "PV1-19",
            "a stay with doctors needs its visit number to be followed (discharge, cancellation)",
        ));
    }
    if visit_number.len() > 64 {
        return Err(err(102, "PV1-19", "visit number longer than 64 characters"));
    }
    let at = event_time(m, now)?;
    let admitted = m.component(m.field("PV1", 44), 1);
    let start = if admitted.is_empty() {
        at
    } else {
        parse_dtm(&admitted, "PV1-44")?
    };
    let discharged = m.component(m.field("PV1", 45), 1);
    let end = if !discharged.is_empty() {
        Some(parse_dtm(&discharged, "PV1-45")?)
    } else if event == EncounterEvent::Discharge {
        Some(at)
    } else {
        None
    };
    if end.is_some_and(|e| e < start) {
        return Err(err(102, "PV1-45", "the discharge is before the admission"));
    }
    Ok(Some(Encounter {
        patient: patient.clone(),
        event,
        visit_number,
        participants,
        start,
        end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(trigger: &str, pv1: &str) -> Message {
        let text = format!(
            "MSH|^~\\&|HIS|CHU|MEGALIS|GRADES|20261120101500+0100||ADT^{trigger}|M1|P|2.5\r\
             EVN|{trigger}|20261120101500+0100\r\
             PID|||123^^^CHU&1.2.250.1.71.4.2.2.290000017&ISO^PI\r\
             {pv1}\r"
        );
        Message::parse(&text).unwrap()
    }

    /// A PV1 segment with these fields set (by HL7 position).
    fn pv1(fields: &[(usize, &str)]) -> String {
        let mut v = vec![String::new(); 46];
        v[0] = "PV1".into();
        v[2] = "I".into();
        for (n, value) in fields {
            v[*n] = value.to_string();
        }
        v.join("|")
    }

    fn source() -> SourceId {
        SourceId {
            authority: "1.2.250.1.71.4.2.2.290000017".into(),
            local_id: "123".into(),
        }
    }

    #[test]
    fn doctors_with_national_ids_join_the_stay() {
        let m = message(
            "A01",
            &pv1(&[
                (3, "CARDIO^^^CHU"),
                (
                    7,
                    "810001234567^LE GALL^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO~DR042^LOCAL^Interne",
                ),
                (8, "810009876543^MORVAN^Yann"),
                (19, "V2026-001^^^CHU"),
                (44, "20261120093000+0100"),
            ]),
        );
        let e = encounter(&m, &source(), EncounterEvent::Admit, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            e.participants,
            vec![
                ("810001234567".to_string(), "attending"),
                ("810009876543".to_string(), "referring")
            ],
            "the hospital's local code DR042 is not a national id"
        );
        assert_eq!(e.visit_number, "V2026-001");
        assert_eq!(e.start, parse_dtm("20261120093000+0100", "x").unwrap());
        assert_eq!(e.end, None);
    }

    #[test]
    fn discharge_ends_the_stay_at_the_event_time() {
        let m = message("A03", &pv1(&[(19, "V9")]));
        let e = encounter(&m, &source(), EncounterEvent::Discharge, 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.end, Some(parse_dtm("20261120101500+0100", "x").unwrap()));
        assert!(e.participants.is_empty());
    }

    #[test]
    fn refusals() {
        // Doctors but no visit number.
        let m = message("A01", &pv1(&[(7, "810001234567^LE GALL")]));
        let e = encounter(&m, &source(), EncounterEvent::Admit, 0).unwrap_err();
        assert_eq!(e.location, "PV1-19");
        // No doctor: nothing for the care team, no error.
        let m = message("A01", &pv1(&[]));
        assert_eq!(
            encounter(&m, &source(), EncounterEvent::Admit, 0).unwrap(),
            None
        );
        // A discharge needs PV1.
        let text = "MSH|^~\\&|HIS|CHU|M|G|20261120||ADT^A03|M1|P|2.5\rPID|||1^^^X&1.2&ISO^PI\r";
        let m = Message::parse(text).unwrap();
        assert_eq!(
            encounter(&m, &source(), EncounterEvent::Discharge, 0)
                .unwrap_err()
                .location,
            "PV1"
        );
        // A national id under another authority's OID is not a national id.
        let m = message(
            "A01",
            &pv1(&[(7, "810001234567^X^^^^^^^OTHER&1.2.3&ISO"), (19, "V1")]),
        );
        assert_eq!(
            encounter(&m, &source(), EncounterEvent::Admit, 0).unwrap(),
            None
        );
        // Discharge before admission.
        let m = message(
            "A03",
            &pv1(&[(19, "V1"), (44, "20261121"), (45, "20261120")]),
        );
        assert_eq!(
            encounter(&m, &source(), EncounterEvent::Discharge, 0)
                .unwrap_err()
                .location,
            "PV1-45"
        );
    }

    #[test]
    fn hl7_date_times() {
        assert_eq!(parse_dtm("19700101000000+0000", "x").unwrap(), 0);
        assert_eq!(
            parse_dtm("19700101010000", "x").unwrap(),
            0,
            "local time is UTC+1"
        );
        assert_eq!(parse_dtm("197001010100+0100", "x").unwrap(), 0);
        assert_eq!(
            parse_dtm("19700101000000.1234-0130", "x").unwrap(),
            5_400_000_000
        );
        for bad in [
            "",
            "2026",
            "20261301",
            "20260230",
            "2026010125",
            "20260101+01",
            "2026010112a0",
            "20260101+9999",
        ] {
            assert!(parse_dtm(bad, "x").is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn date_times_never_panic(s in "\\PC{0,30}") {
            let _ = parse_dtm(&s, "x");
        }

        #[test]
        fn mutated_stays_never_panic(pos in 0usize..200, byte in proptest::prelude::any::<u8>()) {
            let pv1 = pv1(&[
                (7, "810001234567^LE GALL^Anne^^^^^^ASIP&1.2.250.1.71.4.2.1&ISO"),
                (19, "V1"),
                (44, "20261120093000+0100"),
                (45, "20261121"),
            ]);
            let mut bytes = pv1.into_bytes();
            let at = pos % bytes.len();
            bytes[at] = byte;
            let Ok(pv1) = String::from_utf8(bytes) else { return Ok(()) };
            let text = format!("MSH|^~\\&|HIS|CHU|M|G|20261120||ADT^A03|M1|P|2.5\rPID|||1^^^X&1.2&ISO^PI\r{pv1}\r");
            if let Ok(m) = Message::parse(&text) {
                for event in [EncounterEvent::Admit, EncounterEvent::Discharge] {
                    if let Ok(Some(e)) = encounter(&m, &source(), event, 0) {
                        proptest::prop_assert!(e.end.is_none_or(|end| end >= e.start));
                    }
                }
            }
        }
    }
}
