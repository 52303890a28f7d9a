//! Tunables of the authorization server (`ControlPlaneConfig::oauth`).

use assay_auth::ssrf::SsrfPolicy;
use std::time::Duration;

/// At most `max` events per key in a fixed window of `window` that starts at the key's
/// first event. `max == 0` turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConfig {
    /// Lifetime of JWT access tokens (default 10 minutes).
    pub access_token_ttl: Duration,
    /// Lifetime of authorization codes (default 5 minutes; single use in any case).
    pub authorization_code_ttl: Duration,
    /// A refresh token unused for this long stops working (default 14 days).
    pub refresh_idle_ttl: Duration,
    /// No refresh token of one authorization lives longer than this (default 30 days).
    pub refresh_absolute_ttl: Duration,
    /// Lifetime of an RFC 8628 device authorization (default 10 minutes).
    pub device_code_ttl: Duration,
    /// Initial minimum interval between device-code polls (default 5 s).
    pub device_poll_interval: Duration,
    /// Dynamic registrations never used within this time are deleted (default 24 h).
    pub unused_registration_ttl: Duration,
    /// Lifetime of a browser login session on the server's pages (default 8 h).
    pub browser_session_ttl: Duration,
    /// RFC 7591 registrations per client IP (default 10 per hour).
    pub registrations_per_ip: RateLimit,
    /// Failed password logins per client IP (default 20 per 15 minutes); a success does
    /// not reset it.
    pub login_failures_per_ip: RateLimit,
    /// Failed password logins per email address (default 5 per 15 minutes).
    pub login_failures_per_email: RateLimit,
    /// Token, revocation and device-authorization requests per client IP (default 60 per
    /// minute).
    pub token_requests_per_ip: RateLimit,
    /// What Client ID Metadata Document fetches may reach. Strict (https to public
    /// addresses) unless relaxed on purpose, for tests and air-gapped installations.
    pub cimd_policy: SsrfPolicy,
    /// How long a grant's liveness is cached by the access-token validator (default 2 s):
    /// a grant revoked on another replica stops its access tokens here within this time;
    /// on this replica at once.
    pub grant_check_ttl: Duration,
    /// The access-token signing key is replaced when it is older than this (default 30
    /// days); the old one keeps validating until its tokens have expired.
    pub signing_key_rotation: Duration,
    /// How often every replica reloads the signing keys from the store, and rotates or
    /// retires what is due (default 5 minutes): a rotation made on another replica is
    /// used here within this time.
    pub signing_key_reload_interval: Duration,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: 10 * MINUTE,
            authorization_code_ttl: 5 * MINUTE,
            refresh_idle_ttl: 14 * DAY,
            refresh_absolute_ttl: 30 * DAY,
            device_code_ttl: 10 * MINUTE,
            device_poll_interval: Duration::from_secs(5),
            unused_registration_ttl: DAY,
            browser_session_ttl: 8 * HOUR,
            registrations_per_ip: RateLimit::new(10, HOUR),
            login_failures_per_ip: RateLimit::new(20, 15 * MINUTE),
            login_failures_per_email: RateLimit::new(5, 15 * MINUTE),
            token_requests_per_ip: RateLimit::new(60, MINUTE),
            cimd_policy: SsrfPolicy::strict(),
            grant_check_ttl: Duration::from_secs(2),
            signing_key_rotation: 30 * DAY,
            signing_key_reload_interval: 5 * MINUTE,
        }
    }
}
