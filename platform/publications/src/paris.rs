//! The wall clock of the editors: Brittany is on Europe/Paris time. Scheduling forms give a
//! local date and time (`<input type="datetime-local">`, no zone) and pages show dates in local
//! time, so the platform converts with the European Union's summer-time rule (in force since
//! 1996): UTC+2 from the last Sunday of March, 01:00 UTC, to the last Sunday of October, 01:00
//! UTC; UTC+1 otherwise. No time-zone database is needed for that one zone.
//!
//! A local time that happens twice (the autumn hour repeated) is taken at its first
//! occurrence; one that never happens (the spring hour skipped) is read as UTC+1, i.e. one
//! hour later on the clock.

use time::macros::{format_description, offset, time};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset};

const WINTER: UtcOffset = offset!(+1);
const SUMMER: UtcOffset = offset!(+2);

fn last_sunday(year: i32, month: Month) -> Date {
    // March and October both have 31 days.
    let last = Date::from_calendar_date(year, month, 31).expect("day 31 of March or October");
    last - time::Duration::days(i64::from(last.weekday().number_days_from_sunday()))
}

/// The offset of Europe/Paris at an instant.
pub fn offset_at(instant: OffsetDateTime) -> UtcOffset {
    let utc = instant.to_offset(UtcOffset::UTC);
    let year = utc.year();
    let start = PrimitiveDateTime::new(last_sunday(year, Month::March), time!(01:00)).assume_utc();
    let end = PrimitiveDateTime::new(last_sunday(year, Month::October), time!(01:00)).assume_utc();
    if utc >= start && utc < end {
        SUMMER
    } else {
        WINTER
    }
}

/// The instant a local Paris date and time names (see the module note on the two edge hours).
pub fn to_instant(local: PrimitiveDateTime) -> OffsetDateTime {
    let summer = local.assume_offset(SUMMER);
    if offset_at(summer) == SUMMER {
        summer
    } else {
        local.assume_offset(WINTER)
    }
}

/// Local Paris time of an instant given in microseconds since the epoch.
pub fn local(us: i64) -> PrimitiveDateTime {
    let t = OffsetDateTime::from_unix_timestamp(us.div_euclid(1_000_000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let t = t.to_offset(offset_at(t));
    PrimitiveDateTime::new(t.date(), t.time())
}

/// The value of an `<input type="datetime-local">`: `2026-03-12T09:30` or with seconds.
pub fn parse_input(s: &str) -> Option<PrimitiveDateTime> {
    let s = s.trim().replacen(' ', "T", 1);
    PrimitiveDateTime::parse(
        &s,
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .or_else(|_| {
        PrimitiveDateTime::parse(
            &s,
            format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        )
    })
    .ok()
}

/// A form value back in the `datetime-local` format, from microseconds.
pub fn input_value(us: i64) -> String {
    let t = local(us);
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Microseconds since the epoch of a local form value.
pub fn input_to_us(s: &str) -> Option<i64> {
    let instant = to_instant(parse_input(s)?);
    i64::try_from(instant.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn summer_time_follows_the_eu_rule() {
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(
            last_sunday(2026, Month::March),
            time::macros::date!(2026 - 03 - 29)
        );
        assert_eq!(
            last_sunday(2026, Month::October),
            time::macros::date!(2026 - 10 - 25)
        );
        assert_eq!(
            last_sunday(2027, Month::March),
            time::macros::date!(2027 - 03 - 28)
        );
        let cases = [
            (datetime!(2026-01-15 12:00 UTC), WINTER),
            (datetime!(2026-03-29 00:59:59 UTC), WINTER),
            (datetime!(2026-03-29 01:00 UTC), SUMMER),
            (datetime!(2026-07-14 10:00 UTC), SUMMER),
            (datetime!(2026-10-25 00:59:59 UTC), SUMMER),
            (datetime!(2026-10-25 01:00 UTC), WINTER),
            (datetime!(2026-12-31 23:30 UTC), WINTER),
        ];
        for (instant, offset) in cases {
            assert_eq!(offset_at(instant), offset, "{instant}");
        }
    }

    #[test]
    fn local_form_values_round_trip() {
        let cases = [
            ("2026-01-15T09:30", datetime!(2026-01-15 08:30 UTC)),
            ("2026-07-14T09:30", datetime!(2026-07-14 07:30 UTC)),
            ("2026-07-14T09:30:15", datetime!(2026-07-14 07:30:15 UTC)),
            ("2026-07-14 09:30", datetime!(2026-07-14 07:30 UTC)),
            // The repeated autumn hour: its first occurrence (still summer time).
            ("2026-10-25T02:30", datetime!(2026-10-25 00:30 UTC)),
            // The skipped spring hour: read as winter time.
            ("2026-03-29T02:30", datetime!(2026-03-29 01:30 UTC)),
        ];
        for (input, instant) in cases {
            let us = input_to_us(input).unwrap_or_else(|| panic!("{input}"));
            assert_eq!(
                us,
                (instant.unix_timestamp_nanos() / 1000) as i64,
                "{input}"
            );
        }
        let us = input_to_us("2026-07-14T09:30").unwrap();
        assert_eq!(input_value(us), "2026-07-14T09:30");
        assert_eq!(local(us).hour(), 9);
        for bad in ["", "14/07/2026 09:30", "2026-13-01T00:00", "2026-07-14"] {
            assert_eq!(input_to_us(bad), None, "{bad}");
        }
    }
}
