//! The archive rule (DOMAIN R3, 000: "行政执法行为终结之日起30日内 … 归档"): a case's
//! files are archived within 30 calendar days of the action that closes it, counted in
//! the agency's time zone as Chinese law counts periods — the closing day itself is not
//! counted, and the period ends at 24:00 of its last day.
//!
//! Worked example (China Standard Time, 30 days): a compulsory execution recorded at
//! 2026-05-01 15:00 CST closes the case. Day 1 is 2 May, day 30 is 31 May, so the
//! period ends at 24:00 on 31 May CST, which is 2026-05-31T16:00Z. A case still without
//! an archive record at 2026-05-31 23:59:59.999 CST is in time; from 2026-06-01 00:00
//! CST on it is overdue. (Counting 720 hours of UTC from the record instead would have
//! made it overdue at 15:00 CST on 31 May, nine hours early.)

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use crate::Millis;

/// The first instant after the archive period of a case closed at `closed_at`: 00:00
/// (local time in `zone`) of the day after the `days`-th day following the closing
/// day. A case without an archive record is overdue from this instant on.
///
/// Saturates at the ends of the representable range instead of failing: a corrupt
/// timestamp gives a far-off instant, never a panic.
pub fn archive_due(closed_at: Millis, days: u32, zone: &TimeZone) -> Millis {
    let closing_day = match Timestamp::from_millisecond(closed_at) {
        Ok(t) => t.to_zoned_datetime(zone.clone()).date(),
        Err(_) if closed_at < 0 => return Millis::MIN,
        Err(_) => return Millis::MAX,
    };
    let after_period = Span::new().days(i64::from(days) + 1);
    closing_day
        .checked_add(after_period)
        .ok()
        .and_then(|day: Date| day.to_zoned_datetime(zone.clone()).ok())
        .map_or(Millis::MAX, |start| start.timestamp().as_millisecond())
}

/// True when a case closed at `closed_at` and still without an archive record is
/// overdue at `now`.
pub fn archive_overdue(closed_at: Millis, now: Millis, days: u32, zone: &TimeZone) -> bool {
    now >= archive_due(closed_at, days, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cst() -> TimeZone {
        TimeZone::fixed(jiff::tz::offset(8))
    }

    fn ms(rfc3339: &str) -> Millis {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn the_worked_example_of_the_module_docs() {
        let closed = ms("2026-05-01T15:00:00+08:00");
        assert_eq!(
            archive_due(closed, 30, &cst()),
            ms("2026-06-01T00:00:00+08:00")
        );
        assert_eq!(archive_due(closed, 30, &cst()), ms("2026-05-31T16:00:00Z"));
        let last_moment = ms("2026-05-31T23:59:59.999+08:00");
        assert!(!archive_overdue(closed, last_moment, 30, &cst()));
        assert!(archive_overdue(closed, last_moment + 1, 30, &cst()));
        // 720 hours of UTC would have called it overdue nine hours early.
        assert!(!archive_overdue(
            closed,
            closed + 720 * 3_600_000,
            30,
            &cst()
        ));
    }

    #[test]
    fn the_closing_day_is_a_local_day_not_a_utc_day() {
        // 07:00 on 1 May in Beijing is still 30 April in UTC: the period still starts on
        // 2 May local time.
        let closed = ms("2026-05-01T07:00:00+08:00");
        assert_eq!(
            archive_due(closed, 30, &cst()),
            ms("2026-06-01T00:00:00+08:00")
        );
        let late = ms("2026-05-01T23:59:00+08:00");
        assert_eq!(
            archive_due(late, 30, &cst()),
            ms("2026-06-01T00:00:00+08:00")
        );
        assert_eq!(
            archive_due(late, 1, &cst()),
            ms("2026-05-03T00:00:00+08:00")
        );
    }

    #[test]
    fn corrupt_times_saturate() {
        assert_eq!(archive_due(Millis::MAX, 30, &cst()), Millis::MAX);
        assert_eq!(archive_due(Millis::MIN, 30, &cst()), Millis::MIN);
        let near_end = ms("9999-12-01T00:00:00Z");
        assert_eq!(archive_due(near_end, 30, &cst()), Millis::MAX);
    }
}
