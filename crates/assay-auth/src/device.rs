//! RFC 8628 device authorization grant: user codes, device codes and the polling rate.
//!
//! A user code is eight letters from a 20-consonant alphabet (no vowels, so no words; no
//! look-alikes such as `I`/`1`/`O`/`0`), shown as `XXXX-XXXX`: 20^8 ≈ 2^34.6 values.
//! That is too few to stop guessing by itself; RFC 8628 §5.1 asks the verification page
//! to rate-limit attempts and the codes to expire quickly — the server's part.

use std::time::Duration;

use rand::TryRngCore as _;
use rand::rngs::OsRng;
use time::OffsetDateTime;

use crate::secrets::{self, Secret, SecretError, SecretKind};

/// RFC 8628 §6.1's example alphabet: consonants only.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// Longest input `UserCode::parse` looks at; anything longer is not a mistyped code.
const MAX_USER_INPUT_LEN: usize = 64;

/// RFC 8628 §3.2: the default when the response gives no `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: `slow_down` adds 5 seconds to the interval, for good.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Polls are timed on arrival, so network jitter can make a client that waits exactly
/// `interval` look slightly early; without slack it would be slowed down for nothing.
pub const POLL_TOLERANCE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserCodeError {
    #[error("a user code has 8 letters")]
    WrongLength,
    #[error("a user code uses only the letters BCDFGHJKLMNPQRSTVWXZ")]
    InvalidCharacter,
}

/// A user code, held in canonical form: eight uppercase letters, no separator.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserCode(String);

impl UserCode {
    /// A new random user code, uniform over the alphabet.
    pub fn generate() -> Result<Self, SecretError> {
        let mut code = String::with_capacity(USER_CODE_LEN);
        let mut buf = [0u8; 16];
        while code.len() < USER_CODE_LEN {
            OsRng
                .try_fill_bytes(&mut buf)
                .map_err(|e| SecretError::Rng(e.to_string()))?;
            // Rejection sampling: 240 is the largest multiple of 20 below 256, so the
            // bytes kept map onto the alphabet without bias.
            for b in buf.iter().filter(|b| **b < 240) {
                if code.len() == USER_CODE_LEN {
                    break;
                }
                code.push(char::from(USER_CODE_ALPHABET[usize::from(*b % 20)]));
            }
        }
        Ok(Self(code))
    }

    /// Reads what a user typed: case is ignored, and spaces and dashes anywhere are
    /// dropped. Anything else — other separators, vowels, digits, non-ASCII — is refused
    /// rather than corrected, so one typed string never matches two codes.
    pub fn parse(input: &str) -> Result<Self, UserCodeError> {
        if input.len() > MAX_USER_INPUT_LEN {
            return Err(UserCodeError::WrongLength);
        }
        let mut code = String::with_capacity(USER_CODE_LEN);
        for c in input.chars() {
            if c == ' ' || c == '-' {
                continue;
            }
            let letter = u8::try_from(c.to_ascii_uppercase())
                .ok()
                .filter(|b| USER_CODE_ALPHABET.contains(b))
                .ok_or(UserCodeError::InvalidCharacter)?;
            code.push(char::from(letter));
        }
        if code.len() != USER_CODE_LEN {
            return Err(UserCodeError::WrongLength);
        }
        Ok(Self(code))
    }

    /// The canonical form, for storage and lookup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `XXXX-XXXX`, the form shown to the user and sent as `user_code`.
impl std::fmt::Display for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        write!(f, "{a}-{b}")
    }
}

/// A new device code: an opaque `assay_dc_` secret (see [`secrets`]).
pub fn generate_device_code() -> Result<Secret, SecretError> {
    secrets::generate(SecretKind::DeviceCode)
}

/// The polling bookkeeping stored with a pending device authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polling {
    /// The interval the client must keep between polls; grows with each `slow_down`.
    pub interval: Duration,
    pub last_poll: Option<OffsetDateTime>,
}

/// The token-endpoint error for a poll of a grant the user has not decided yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    AuthorizationPending,
    SlowDown,
}

impl PollOutcome {
    /// The RFC 8628 §3.5 `error` value.
    pub fn error_code(self) -> &'static str {
        match self {
            PollOutcome::AuthorizationPending => "authorization_pending",
            PollOutcome::SlowDown => "slow_down",
        }
    }
}

impl Polling {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last_poll: None,
        }
    }

    /// Judges a poll arriving at `now` for a still-pending grant and returns the answer
    /// and the bookkeeping to store. A poll sooner than `interval` (less
    /// [`POLL_TOLERANCE`]) after the previous one gets `slow_down` and a longer
    /// interval. Every poll resets the clock, so the client's next poll is measured from
    /// this one, as the client measures it. A clock that went backwards counts as too
    /// soon: the safe side.
    pub fn poll(self, now: OffsetDateTime) -> (PollOutcome, Polling) {
        let too_soon = self.last_poll.is_some_and(|last| {
            let elapsed = Duration::try_from(now - last).unwrap_or(Duration::ZERO);
            elapsed.saturating_add(POLL_TOLERANCE) < self.interval
        });
        let (outcome, interval) = if too_soon {
            (
                PollOutcome::SlowDown,
                self.interval.saturating_add(SLOW_DOWN_STEP),
            )
        } else {
            (PollOutcome::AuthorizationPending, self.interval)
        };
        (
            outcome,
            Polling {
                interval,
                last_poll: Some(now),
            },
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use time::macros::datetime;

    #[test]
    fn generated_user_codes_use_the_alphabet_and_display_with_a_dash() {
        let mut seen = HashMap::<u8, usize>::new();
        for _ in 0..500 {
            let code = UserCode::generate().unwrap();
            assert_eq!(code.as_str().len(), USER_CODE_LEN);
            for b in code.as_str().bytes() {
                assert!(USER_CODE_ALPHABET.contains(&b), "{code:?}");
                *seen.entry(b).or_default() += 1;
            }
            let shown = code.to_string();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown).unwrap(), code);
        }
        // 4000 draws over 20 letters: every letter turns up (a missing one would mean a
        // broken mapping, not bad luck: P ≈ 20 × 0.95^4000).
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn typed_codes_are_normalised() {
        for typed in [
            "BCDF-GHJK",
            "bcdf-ghjk",
            "BcDf GhJk",
            "bcdfghjk",
            " BCDF - GHJK ",
            "B-C-D-F-G-H-J-K",
            "--bcdf--ghjk--",
        ] {
            let code = UserCode::parse(typed).unwrap();
            assert_eq!(code.as_str(), "BCDFGHJK", "{typed:?}");
            assert_eq!(code.to_string(), "BCDF-GHJK");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for (typed, err) in [
            ("", UserCodeError::WrongLength),
            ("BCDF-GHJ", UserCodeError::WrongLength),
            ("BCDF-GHJKL", UserCodeError::WrongLength),
            ("BCDF - - -", UserCodeError::WrongLength),
            ("BCDF_GHJK", UserCodeError::InvalidCharacter),
            ("BCDF.GHJK", UserCodeError::InvalidCharacter),
            ("BCDF\tGHJK", UserCodeError::InvalidCharacter),
            ("ACDF-GHJK", UserCodeError::InvalidCharacter),
            ("BCDF-GHJ1", UserCodeError::InvalidCharacter),
            ("BCDF-GHJY", UserCodeError::InvalidCharacter),
            ("BCDF–GHJK", UserCodeError::InvalidCharacter),
            ("BCDF-GHJＫ", UserCodeError::InvalidCharacter),
            ("BCDF\u{a0}GHJK", UserCodeError::InvalidCharacter),
        ] {
            assert_eq!(UserCode::parse(typed), Err(err), "{typed:?}");
        }
        let long = "-".repeat(MAX_USER_INPUT_LEN) + "BCDFGHJK";
        assert_eq!(UserCode::parse(&long), Err(UserCodeError::WrongLength));
    }

    #[test]
    fn device_codes_are_device_code_secrets() {
        let code = generate_device_code().unwrap();
        assert_eq!(code.kind(), SecretKind::DeviceCode);
        assert!(code.expose().starts_with("assay_dc_"));
        assert_eq!(
            secrets::kind_of(code.expose()),
            secrets::TokenKind::Secret(SecretKind::DeviceCode)
        );
    }

    #[test]
    fn polling_on_time_is_pending_and_too_soon_slows_down_for_good() {
        let t0 = datetime!(2026-01-01 00:00:00 UTC);
        let s = Polling::new(DEFAULT_INTERVAL);

        // The first poll can never be early.
        let (out, s) = s.poll(t0);
        assert_eq!(out, PollOutcome::AuthorizationPending);
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.last_poll, Some(t0));

        // Exactly on time, and within the tolerance, is fine.
        let t1 = t0 + time::Duration::seconds(5);
        let (out, s) = s.poll(t1);
        assert_eq!(out, PollOutcome::AuthorizationPending);
        let t2 = t1 + time::Duration::milliseconds(4_000);
        let (out, s) = s.poll(t2);
        assert_eq!(out, PollOutcome::AuthorizationPending);
        assert_eq!(s.interval, Duration::from_secs(5));

        // Too soon: slow_down, and the interval grows by 5 s.
        let t3 = t2 + time::Duration::milliseconds(3_999);
        let (out, s) = s.poll(t3);
        assert_eq!(out, PollOutcome::SlowDown);
        assert_eq!(out.error_code(), "slow_down");
        assert_eq!(s.interval, Duration::from_secs(10));
        assert_eq!(s.last_poll, Some(t3));

        // The larger interval now applies: 5 s later is too soon again.
        let t4 = t3 + time::Duration::seconds(5);
        let (out, s) = s.poll(t4);
        assert_eq!(out, PollOutcome::SlowDown);
        assert_eq!(s.interval, Duration::from_secs(15));

        // Waiting the full interval gets the plain pending answer.
        let t5 = t4 + time::Duration::seconds(15);
        let (out, s) = s.poll(t5);
        assert_eq!(out, PollOutcome::AuthorizationPending);
        assert_eq!(out.error_code(), "authorization_pending");
        assert_eq!(s.interval, Duration::from_secs(15));
    }

    #[test]
    fn a_clock_that_went_backwards_counts_as_too_soon() {
        let t0 = datetime!(2026-01-01 00:00:10 UTC);
        let s = Polling {
            interval: DEFAULT_INTERVAL,
            last_poll: Some(t0),
        };
        let (out, s) = s.poll(t0 - time::Duration::seconds(60));
        assert_eq!(out, PollOutcome::SlowDown);
        assert_eq!(s.interval, Duration::from_secs(10));
    }

    #[test]
    fn the_interval_saturates_instead_of_overflowing() {
        let t0 = datetime!(2026-01-01 00:00:00 UTC);
        let s = Polling {
            interval: Duration::MAX,
            last_poll: Some(t0),
        };
        let (out, s) = s.poll(t0);
        assert_eq!(out, PollOutcome::SlowDown);
        assert_eq!(s.interval, Duration::MAX);
    }
}
