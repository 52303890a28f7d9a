//! In-memory fixed-window counters for the authorization server's rate limits (logins,
//! registrations, token requests). Per process: with several replicas each enforces its
//! own window, so the effective limit is the configured one times the replica count.
//! Windows are measured with the injected clock, so tests can move time.

use super::config::RateLimit;
use assay_core::Timestamp;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Keys tracked at once; beyond it, finished windows are dropped first, then all (a flood
/// of distinct keys must not grow memory without bound).
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Timestamp,
    count: u32,
}

pub(crate) struct RateLimiter {
    limit: RateLimit,
    windows: Mutex<HashMap<String, Window>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn window_len(&self) -> time::Duration {
        time::Duration::try_from(self.limit.window).unwrap_or(time::Duration::MAX)
    }

    /// Seconds until `key` may act again, when it is at its limit now.
    pub(crate) fn blocked(&self, key: &str, now: Timestamp) -> Option<u64> {
        if self.limit.max == 0 {
            return None;
        }
        let windows = self.lock();
        let window = windows.get(key)?;
        let ends = window.started.checked_add(self.window_len())?;
        if ends <= now || window.count < self.limit.max {
            return None;
        }
        let secs = (ends - now).as_seconds_f64().ceil();
        // `as` saturates; the value is positive and far below u64::MAX.
        Some((secs as u64).max(1))
    }

    /// Counts one event for `key`.
    pub(crate) fn hit(&self, key: &str, now: Timestamp) {
        if self.limit.max == 0 {
            return;
        }
        let window_len = self.window_len();
        let mut windows = self.lock();
        if windows.len() >= MAX_KEYS && !windows.contains_key(key) {
            windows.retain(|_, w| w.started.checked_add(window_len).is_some_and(|e| e > now));
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        let window = windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            count: 0,
        });
        if window
            .started
            .checked_add(window_len)
            .is_none_or(|e| e <= now)
        {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        window.count = window.count.saturating_add(1);
    }

    /// Counts one event unless `key` is at its limit; `Err(retry_after_secs)` when it is.
    pub(crate) fn acquire(&self, key: &str, now: Timestamp) -> Result<(), u64> {
        if let Some(retry) = self.blocked(key, now) {
            return Err(retry);
        }
        self.hit(key, now);
        Ok(())
    }

    pub(crate) fn reset(&self, key: &str) {
        self.lock().remove(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2026-01-01 12:00 UTC);

    fn secs(n: i64) -> Timestamp {
        T0 + time::Duration::seconds(n)
    }

    #[test]
    fn blocks_at_the_limit_until_the_window_ends() {
        let l = RateLimiter::new(RateLimit::new(3, Duration::from_secs(60)));
        for i in 0..3 {
            assert_eq!(l.acquire("ip", secs(i)), Ok(()));
        }
        assert_eq!(l.acquire("ip", secs(10)), Err(50));
        assert_eq!(l.blocked("ip", secs(59)), Some(1));
        assert_eq!(l.blocked("other", secs(10)), None);
        // A new window starts with the first event after the old one ended.
        assert_eq!(l.acquire("ip", secs(60)), Ok(()));
        assert_eq!(l.blocked("ip", secs(61)), None);
    }

    #[test]
    fn hits_count_even_when_blocked_and_reset_forgets() {
        let l = RateLimiter::new(RateLimit::new(2, Duration::from_secs(900)));
        l.hit("a@x", T0);
        l.hit("a@x", secs(1));
        l.hit("a@x", secs(2));
        assert_eq!(l.blocked("a@x", secs(3)), Some(897));
        l.reset("a@x");
        assert_eq!(l.blocked("a@x", secs(3)), None);
    }

    #[test]
    fn zero_means_no_limit() {
        let l = RateLimiter::new(RateLimit::new(0, Duration::from_secs(60)));
        for i in 0..100 {
            assert_eq!(l.acquire("ip", secs(i)), Ok(()));
        }
    }
}
