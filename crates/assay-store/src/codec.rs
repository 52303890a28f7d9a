//! Conversions between domain values and their stored form.

use assay_core::actor::PrincipalKind;
use assay_core::audit::Outcome;
use assay_core::execution::ExecutionStatus;
use assay_core::identity::{ApiTokenKind, OrgRole};
use assay_core::workflow::ResourceKind;
use assay_core::{Error, Result, Timestamp};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Unix microseconds, rounded down: the precision both engines keep exactly.
pub fn to_micros(t: Timestamp) -> i64 {
    let micros = t.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
}

pub fn from_micros(micros: i64) -> Result<Timestamp> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|e| Error::Internal(format!("stored timestamp out of range: {e}")))
}

/// The timestamp as the store keeps it (microsecond precision).
pub fn truncate_micros(t: Timestamp) -> Timestamp {
    from_micros(to_micros(t)).unwrap_or(t)
}

pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(format!("encoding JSON: {e}")))
}

pub fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("stored {column} is not valid JSON: {e}")))
}

pub fn status(text: &str) -> Result<ExecutionStatus> {
    text.parse()
        .map_err(|e: String| Error::Internal(format!("stored status: {e}")))
}

pub fn resource_kind(text: &str) -> Result<ResourceKind> {
    match text {
        "workflow" => Ok(ResourceKind::Workflow),
        "template" => Ok(ResourceKind::Template),
        other => Err(Error::Internal(format!("stored kind {other:?} is unknown"))),
    }
}

pub fn org_role(text: &str) -> Result<OrgRole> {
    match text {
        "owner" => Ok(OrgRole::Owner),
        "admin" => Ok(OrgRole::Admin),
        "member" => Ok(OrgRole::Member),
        other => Err(Error::Internal(format!("stored role {other:?} is unknown"))),
    }
}

pub fn token_kind(text: &str) -> Result<ApiTokenKind> {
    match text {
        "admin" => Ok(ApiTokenKind::Admin),
        "member" => Ok(ApiTokenKind::Member),
        "org-read" => Ok(ApiTokenKind::OrgRead),
        other => Err(Error::Internal(format!(
            "stored token kind {other:?} is unknown"
        ))),
    }
}

/// Stored as their serde names, so the columns read like the event JSON.
pub fn principal_kind_str(kind: PrincipalKind) -> &'static str {
    match kind {
        PrincipalKind::User => "user",
        PrincipalKind::ApiToken => "api_token",
        PrincipalKind::System => "system",
    }
}

pub fn principal_kind(text: &str) -> Result<PrincipalKind> {
    match text {
        "user" => Ok(PrincipalKind::User),
        "api_token" => Ok(PrincipalKind::ApiToken),
        "system" => Ok(PrincipalKind::System),
        other => Err(Error::Internal(format!(
            "stored actor kind {other:?} is unknown"
        ))),
    }
}

pub fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "success",
        Outcome::Denied => "denied",
        Outcome::Error => "error",
    }
}

/// Retention in days: `u32` in the domain, `BIGINT` in both engines.
pub fn days(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(if v < 0 { 0 } else { u32::MAX })
}

/// Counts and sizes are `u64` in the domain and `BIGINT` in both engines.
pub fn u64_to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn i64_to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn stored_names_are_the_serde_names() {
        for kind in [
            PrincipalKind::User,
            PrincipalKind::ApiToken,
            PrincipalKind::System,
        ] {
            let serde = serde_json::to_value(kind).ok();
            assert_eq!(serde, Some(serde_json::json!(principal_kind_str(kind))));
            assert_eq!(principal_kind(principal_kind_str(kind)).ok(), Some(kind));
        }
        assert!(principal_kind("robot").is_err());
        for outcome in [Outcome::Success, Outcome::Denied, Outcome::Error] {
            let serde = serde_json::to_value(outcome).ok();
            assert_eq!(serde, Some(serde_json::json!(outcome_str(outcome))));
        }
        assert_eq!(days(180), 180);
        assert_eq!(days(-1), 0);
        assert_eq!(days(i64::MAX), u32::MAX);
    }

    #[test]
    fn micros_round_trip_and_round_down() {
        let t = datetime!(2025-03-04 05:06:07.123456 UTC);
        assert_eq!(from_micros(to_micros(t)).ok(), Some(t));
        let with_nanos = datetime!(2025-03-04 05:06:07.123456789 UTC);
        assert_eq!(truncate_micros(with_nanos), t);
        let before_epoch = datetime!(1969-12-31 23:59:59.999999 UTC);
        assert_eq!(to_micros(before_epoch), -1);
        assert_eq!(from_micros(-1).ok(), Some(before_epoch));
    }
}
