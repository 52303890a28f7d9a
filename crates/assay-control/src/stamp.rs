//! Timestamps as stored: microsecond precision (what both databases keep), so a value we
//! return equals the value read back later.

use assay_core::Timestamp;
use assay_core::ports::Clock;

pub(crate) fn now(clock: &dyn Clock) -> Timestamp {
    truncate(clock.now())
}

pub(crate) fn truncate(t: Timestamp) -> Timestamp {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn truncates_to_microseconds() {
        assert_eq!(
            truncate(datetime!(2025-01-01 0:00:00.123456789 UTC)),
            datetime!(2025-01-01 0:00:00.123456 UTC)
        );
    }
}
