//! Certificate validity periods.
//!
//! Time is always passed in (`now` is an argument, never read here), so that tests can
//! issue expired and not-yet-valid certificates and the gateway can use its own clock.

use time::{Duration, OffsetDateTime, UtcOffset};

use crate::PkiError;

/// How far `not_before` is set before "now" by [`Validity::days_from`].
///
/// A device whose clock is a little behind the gateway's (or the reverse) would
/// otherwise refuse a certificate issued a moment ago as "not yet valid".
pub const CLOCK_SKEW_ALLOWANCE: Duration = Duration::hours(1);

/// The period in which a certificate is valid, both ends inclusive (RFC 5280).
///
/// Certificates store whole seconds in UTC; [`Validity::new`] and
/// [`Validity::days_from`] round to that, so the values kept here are exactly the
/// values written into the certificate (and into `enrollment.csv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// First instant at which the certificate is valid.
    pub not_before: OffsetDateTime,
    /// Last instant at which the certificate is valid.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// A validity from `not_before` to `not_after`, normalised to whole seconds in UTC.
    ///
    /// Not checked here (tests need odd periods); issuing checks that `not_after` is
    /// later than `not_before`.
    pub fn new(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        Validity {
            not_before: whole_utc_second(not_before),
            not_after: whole_utc_second(not_after),
        }
    }

    /// Valid for `days` days from `now`, starting [`CLOCK_SKEW_ALLOWANCE`] early.
    ///
    /// `what` names the setting in the error (for example `"--device-days"`).
    pub fn days_from(now: OffsetDateTime, days: u32, what: &'static str) -> Result<Self, PkiError> {
        if days == 0 {
            return Err(PkiError::InvalidValidity {
                what,
                reason: "must be at least 1 day".into(),
            });
        }
        let too_long = || PkiError::InvalidValidity {
            what,
            reason: format!("{days} days from {now} is later than a certificate can express"),
        };
        let not_after = now
            .checked_add(Duration::days(i64::from(days)))
            .ok_or_else(too_long)?;
        // X.509 GeneralizedTime has four year digits.
        if not_after.to_offset(UtcOffset::UTC).year() > 9999 {
            return Err(too_long());
        }
        let not_before = now.checked_sub(CLOCK_SKEW_ALLOWANCE).ok_or_else(too_long)?;
        Ok(Validity::new(not_before, not_after))
    }

    /// True if `at` lies within the period (inclusive, as X.509 defines it).
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.not_before <= at && at <= self.not_after
    }

    /// Refuses a period that never starts, naming the certificate `what`.
    pub(crate) fn check(&self, what: &str) -> Result<(), PkiError> {
        if self.not_after > self.not_before {
            Ok(())
        } else {
            Err(PkiError::EmptyValidity {
                what: what.to_owned(),
                not_before: self.not_before,
                not_after: self.not_after,
            })
        }
    }
}

fn whole_utc_second(t: OffsetDateTime) -> OffsetDateTime {
    let utc = t.to_offset(UtcOffset::UTC);
    // Setting nanoseconds to 0 is always in range.
    utc.replace_nanosecond(0).unwrap_or(utc)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn days_from_starts_early_and_ends_after_the_days() {
        let now = datetime!(2026-03-01 12:00:00.75 +02:00);
        let v = Validity::days_from(now, 365, "--device-days").unwrap();
        assert_eq!(v.not_before, datetime!(2026-03-01 09:00:00 UTC));
        assert_eq!(v.not_after, datetime!(2027-03-01 10:00:00 UTC));
        assert_eq!(v.not_after.offset(), UtcOffset::UTC);
        assert!(v.contains(datetime!(2026-03-01 10:00:00 UTC)));
        assert!(!v.contains(datetime!(2027-03-01 10:00:01 UTC)));
    }

    #[test]
    fn zero_and_unrepresentable_days_are_refused() {
        let now = datetime!(2026-03-01 12:00:00 UTC);
        let err = Validity::days_from(now, 0, "--device-days").unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains("--device-days"), "{err}");
        assert!(Validity::days_from(now, u32::MAX, "--ca-days").is_err());
    }

    #[test]
    fn check_refuses_empty_periods() {
        let t = datetime!(2026-03-01 12:00:00 UTC);
        assert!(Validity::new(t, t).check("device").is_err());
        assert!(
            Validity::new(t, t + Duration::seconds(1))
                .check("device")
                .is_ok()
        );
    }
}
