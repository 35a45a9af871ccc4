//! FHIR `date`, `dateTime` and `instant` values as the range of instants they cover.
//!
//! FHIR search compares ranges, not points: `2024-03` is the whole of March 2024, and
//! `date=ge2024-03` matches a document whose date range reaches into or past March (FHIR R4
//! §3.1.1.5.7). Every parsed value therefore keeps its text (written back unchanged in the
//! resource) and its range `[start_us, end_us)` in microseconds since the Unix epoch.
//!
//! Values without a time zone (a year, a month, a day) are read as UTC periods: FHIR leaves
//! their zone unspecified, and UTC keeps the stored ranges independent of the server's zone.
//! Calendar arithmetic is written here (days from a civil date) because the `time` crate cannot
//! represent the end of year 9999, the exclusive bound of the largest valid FHIR year.

use std::fmt;

/// A parsed FHIR date, dateTime or instant.
#[derive(Clone, PartialEq, Eq)]
pub struct FhirDateTime {
    text: String,
    start_us: i64,
    end_us: i64,
}

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

impl FhirDateTime {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or `YYYY-MM-DDThh:mm[:ss[.fff…]](Z|±hh:mm)`.
    /// A time needs a zone (FHIR R4 dateTime); minutes without seconds are accepted because FHIR
    /// search values may stop at the minute.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{s:?} is not a FHIR date/time ({why})");
        let b = s.as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = b.get(range)?;
            if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(part).ok()?.parse().ok()
        };
        let year = digits(0..4).ok_or_else(|| bad("expected a four-digit year"))?;
        if year < 1 {
            return Err(bad("year 0000 does not exist"));
        }
        if b.len() == 4 {
            let start = days_from_civil(year, 1, 1) * US_PER_DAY;
            let end = days_from_civil(year + 1, 1, 1) * US_PER_DAY;
            return Ok(Self::new(s, start, end));
        }
        if b.get(4) != Some(&b'-') {
            return Err(bad("expected '-' after the year"));
        }
        let month = digits(5..7)
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| bad("month must be 01 to 12"))?;
        if b.len() == 7 {
            let start = days_from_civil(year, month, 1) * US_PER_DAY;
            let (ny, nm) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            return Ok(Self::new(s, start, days_from_civil(ny, nm, 1) * US_PER_DAY));
        }
        if b.get(7) != Some(&b'-') {
            return Err(bad("expected '-' after the month"));
        }
        let day = digits(8..10)
            .filter(|d| *d >= 1 && *d <= days_in_month(year, month))
            .ok_or_else(|| bad("no such day in that month"))?;
        let day_start = days_from_civil(year, month, day) * US_PER_DAY;
        if b.len() == 10 {
            return Ok(Self::new(s, day_start, day_start + US_PER_DAY));
        }
        if b.get(10) != Some(&b'T') {
            return Err(bad("expected 'T' before the time"));
        }
        let hour = digits(11..13)
            .filter(|h| *h < 24)
            .ok_or_else(|| bad("hour must be 00 to 23"))?;
        if b.get(13) != Some(&b':') {
            return Err(bad("expected ':' after the hour"));
        }
        let minute = digits(14..16)
            .filter(|m| *m < 60)
            .ok_or_else(|| bad("minutes must be 00 to 59"))?;
        let mut pos = 16;
        let mut second = 0;
        let mut unit = 60 * US_PER_SEC;
        let mut fraction_us = 0;
        if b.get(pos) == Some(&b':') {
            // FHIR allows a leap second (60) in the lexical space; it is counted as 59.999…
            second = digits(17..19)
                .filter(|s| *s <= 60)
                .ok_or_else(|| bad("seconds must be 00 to 60"))?
                .min(59);
            unit = US_PER_SEC;
            pos = 19;
            if b.get(pos) == Some(&b'.') {
                let start = pos + 1;
                let mut end = start;
                while b.get(end).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                }
                if end == start {
                    return Err(bad("expected digits after '.'"));
                }
                // Keep microseconds; finer digits only narrow the range below what we store.
                let kept = (end - start).min(6);
                let value = digits(start..start + kept).unwrap_or(0);
                fraction_us = value * 10_i64.pow((6 - kept) as u32);
                unit = 10_i64.pow((6 - kept) as u32);
                pos = end;
            }
        }
        let offset_s = match b.get(pos) {
            Some(b'Z') if b.len() == pos + 1 => 0,
            Some(sign @ (b'+' | b'-')) if b.len() == pos + 6 && b.get(pos + 3) == Some(&b':') => {
                let h = digits(pos + 1..pos + 3)
                    .filter(|h| *h <= 14)
                    .ok_or_else(|| bad("zone hours must be 00 to 14"))?;
                let m = digits(pos + 4..pos + 6)
                    .filter(|m| *m < 60)
                    .ok_or_else(|| bad("zone minutes must be 00 to 59"))?;
                let secs = h * 3600 + m * 60;
                if *sign == b'-' { -secs } else { secs }
            }
            None => return Err(bad("a time needs a zone, Z or ±hh:mm")),
            _ => return Err(bad("unexpected characters after the time")),
        };
        let start =
            day_start + (hour * 3600 + minute * 60 + second - offset_s) * US_PER_SEC + fraction_us;
        Ok(Self::new(s, start, start + unit))
    }

    fn new(text: &str, start_us: i64, end_us: i64) -> Self {
        FhirDateTime {
            text: text.to_string(),
            start_us,
            end_us,
        }
    }

    /// An instant at microsecond precision, written in RFC 3339 UTC (`…Z`).
    pub fn from_unix_us(us: i64) -> Self {
        let days = us.div_euclid(US_PER_DAY);
        let in_day = us.rem_euclid(US_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        let secs = in_day / US_PER_SEC;
        let text = format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            in_day % US_PER_SEC
        );
        Self::new(&text, us, us + 1)
    }

    /// The current instant.
    pub fn now() -> Self {
        Self::from_unix_us(now_us())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// First microsecond covered.
    pub fn start_us(&self) -> i64 {
        self.start_us
    }

    /// First microsecond after the range.
    pub fn end_us(&self) -> i64 {
        self.end_us
    }

    /// Whether the value has a time of day (FHIR `instant` requires seconds and a zone).
    pub fn is_instant(&self) -> bool {
        self.text.len() >= 20 && self.end_us - self.start_us <= US_PER_SEC
    }
}

impl fmt::Debug for FhirDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FhirDateTime({})", self.text)
    }
}

impl fmt::Display for FhirDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for FhirDateTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for FhirDateTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FhirDateTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the era-based method: 400-year eras of
/// 146,097 days, years starting in March so the leap day ends the year).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A FHIR search prefix on a date parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatePrefix {
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    Sa,
    Eb,
}

/// One `date`/`period` search condition: a prefix and the range of its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateCondition {
    pub prefix: DatePrefix,
    pub value: FhirDateTime,
}

impl DateCondition {
    /// Parses `[prefix]value` (no prefix means `eq`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (prefix, rest) = match s.get(..2) {
            Some("eq") => (DatePrefix::Eq, &s[2..]),
            Some("ne") => (DatePrefix::Ne, &s[2..]),
            Some("gt") => (DatePrefix::Gt, &s[2..]),
            Some("lt") => (DatePrefix::Lt, &s[2..]),
            Some("ge") => (DatePrefix::Ge, &s[2..]),
            Some("le") => (DatePrefix::Le, &s[2..]),
            Some("sa") => (DatePrefix::Sa, &s[2..]),
            Some("eb") => (DatePrefix::Eb, &s[2..]),
            Some("ap") => return Err("the `ap` (approximately) prefix is not supported".into()),
            _ => (DatePrefix::Eq, s),
        };
        Ok(DateCondition {
            prefix,
            value: FhirDateTime::parse(rest)?,
        })
    }

    /// Whether a target range `[t0, t1)` matches (FHIR R4 search semantics on ranges, with `ge`
    /// and `le` inclusive of partial overlaps; `None` bounds are open ends). This is the reference the SQL of the search is tested against.
    pub fn matches(&self, t0: Option<i64>, t1: Option<i64>) -> bool {
        let (s0, s1) = (self.value.start_us, self.value.end_us);
        let t0 = t0.unwrap_or(i64::MIN);
        let t1 = t1.unwrap_or(i64::MAX);
        let eq = t0 >= s0 && t1 <= s1;
        match self.prefix {
            DatePrefix::Eq => eq,
            DatePrefix::Ne => !eq,
            DatePrefix::Gt => t1 > s1,
            DatePrefix::Lt => t0 < s0,
            // "At or after the value": the target reaches into the value's range or beyond.
            // This includes the literal R4 reading (above it, or contained in it) and also a
            // target that only partly overlaps the value, which a reader of `ge` expects to see.
            DatePrefix::Ge => t1 > s0,
            DatePrefix::Le => t0 < s1,
            DatePrefix::Sa => t0 >= s1,
            DatePrefix::Eb => t1 <= s0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_each_precision() {
        let cases: &[(&str, i64, i64)] = &[
            ("1970", 0, 365 * US_PER_DAY),
            ("1970-02", 31 * US_PER_DAY, 59 * US_PER_DAY),
            ("2024-02-29", 19_782 * US_PER_DAY, 19_783 * US_PER_DAY),
            ("1970-01-01T00:00:01Z", US_PER_SEC, 2 * US_PER_SEC),
            ("1970-01-01T01:00:00+01:00", 0, US_PER_SEC),
            ("1970-01-01T00:00:00.5Z", 500_000, 600_000),
            ("1970-01-01T00:00:00.1234567Z", 123_456, 123_457),
            ("1970-01-01T00:01Z", 60 * US_PER_SEC, 120 * US_PER_SEC),
            (
                "9999",
                days_from_civil(9999, 1, 1) * US_PER_DAY,
                days_from_civil(10000, 1, 1) * US_PER_DAY,
            ),
        ];
        for (text, start, end) in cases {
            let v = FhirDateTime::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((v.start_us(), v.end_us()), (*start, *end), "{text}");
            assert_eq!(v.as_str(), *text);
        }
    }

    #[test]
    fn invalid_values_are_refused() {
        for text in [
            "",
            "24",
            "2024-13",
            "2023-02-29",
            "2024-04-31",
            "2024-01-01T10:00:00",
            "2024-01-01T24:00:00Z",
            "2024-01-01T10:00:00.Z",
            "2024-01-01 10:00:00Z",
            "0000",
            "2024-01-01T10:00:00+1:00",
            "2024-01-01T10:00:00Zjunk",
            "２０２４",
            "2024-1-01",
        ] {
            assert!(FhirDateTime::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn civil_round_trip() {
        for days in [-719_468, -1, 0, 1, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        let now = FhirDateTime::from_unix_us(1_709_164_800_123_456);
        assert_eq!(now.as_str(), "2024-02-29T00:00:00.123456Z");
        let back = FhirDateTime::parse(now.as_str()).unwrap();
        assert_eq!(back.start_us(), now.start_us());
        assert!(back.is_instant());
        assert!(!FhirDateTime::parse("2024-02-29").unwrap().is_instant());
    }

    #[test]
    fn search_prefixes_compare_ranges() {
        // Target: the whole of March 2024.
        let march = FhirDateTime::parse("2024-03").unwrap();
        let t = (Some(march.start_us()), Some(march.end_us()));
        let cases = [
            ("2024-03", true),
            ("2024", true),
            ("2024-03-15", false),
            ("ge2024-03-15", true),
            ("ge2024-03-31", true),
            ("ge2024-04", false),
            ("le2024-02-29", false),
            ("gt2024-03-31", false),
            ("le2024-03-01", true),
            ("lt2024-03-01", false),
            ("lt2024-03-02", true),
            ("sa2024-02", true),
            ("sa2024-03-01", false),
            ("eb2024-04", true),
            ("ne2024-03", false),
            ("ne2024-03-10", true),
        ];
        for (q, expected) in cases {
            let c = DateCondition::parse(q).unwrap();
            assert_eq!(c.matches(t.0, t.1), expected, "{q}");
        }
        // An open-ended period matches anything after its start.
        let c = DateCondition::parse("ge2030").unwrap();
        assert!(c.matches(Some(march.start_us()), None));
        assert!(DateCondition::parse("ap2024").is_err());
    }
}
