//! Conversions between domain values and their stored form.

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
