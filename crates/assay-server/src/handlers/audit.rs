//! Audit: export (streamed JSON lines or CSV), verify, actors, settings (organization
//! admins).

use super::{Items, OrgPath, org_admin_error};
use crate::AppState;
use crate::audit_csv;
use crate::auth::Authed;
use crate::extract::{ApiPath, JsonBody, Query, typed_body};
use crate::problem::ApiResult;
use assay_core::audit::{
    ActorActivity, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport, Outcome,
};
use assay_core::{Error, Result};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::stream::{BoxStream, Stream, StreamExt};

/// At most this many events are encoded into one body chunk; only events the store has
/// already produced are batched, so nothing waits for a batch to fill.
const EVENTS_PER_CHUNK: usize = 256;
/// The default activity window of `GET …/audit/actors`.
const DEFAULT_ACTORS_WINDOW_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8",
        }
    }
}

fn outcome(word: &str) -> Option<Outcome> {
    match word {
        "success" => Some(Outcome::Success),
        "denied" => Some(Outcome::Denied),
        "error" => Some(Outcome::Error),
        _ => None,
    }
}

fn check_window(
    since: Option<assay_core::Timestamp>,
    until: Option<assay_core::Timestamp>,
) -> Result<()> {
    match (since, until) {
        (Some(since), Some(until)) if since > until => {
            Err(Error::invalid("until", "is before since"))
        }
        _ => Ok(()),
    }
}

/// Encodes events as body chunks: the CSV header first, then batches of rows or lines.
/// Memory is bounded by one batch. A failure mid-stream aborts the response (the client
/// sees a truncated body), since the status is already sent.
pub fn encode(
    events: BoxStream<'static, Result<AuditEvent>>,
    format: ExportFormat,
    request_id: String,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let header = match format {
        ExportFormat::Csv => Some(Ok(Bytes::from(audit_csv::header()))),
        ExportFormat::Jsonl => None,
    };
    let rows = events.ready_chunks(EVENTS_PER_CHUNK).map(move |batch| {
        let mut buf = String::new();
        for event in batch {
            let event = event.map_err(|e| {
                tracing::warn!(request_id, error = %e, "audit export failed; aborting the response");
                std::io::Error::other(e.to_string())
            })?;
            match format {
                ExportFormat::Csv => audit_csv::write_row(&event, &mut buf),
                ExportFormat::Jsonl => {
                    let line = serde_json::to_string(&event).map_err(std::io::Error::other)?;
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }
        }
        Ok(Bytes::from(buf))
    });
    futures::stream::iter(header).chain(rows)
}

/// `GET …/audit/events`: matching events in chain order, streamed.
pub async fn export(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
    mut query: Query,
) -> ApiResult<Response> {
    let filter = AuditFilter {
        since: query.time("since"),
        until: query.time("until"),
        actor: query.string("actor"),
        action: query.string("action"),
        env: query.string("env"),
        outcome: query
            .one_of("outcome", &["success", "denied", "error"])
            .and_then(outcome),
    };
    let format = match query.one_of("format", &["jsonl", "csv"]) {
        Some("csv") => ExportFormat::Csv,
        _ => ExportFormat::Jsonl,
    };
    query.finish()?;
    check_window(filter.since, filter.until)?;
    let events = state
        .control
        .export_audit(&actor, &path.org, &filter)
        .await
        .map_err(org_admin_error)?;
    let request_id = actor.client.request_id.clone().unwrap_or_default();
    let mut res = Body::from_stream(encode(events, format, request_id)).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    // Reverse proxies (nginx) otherwise buffer the whole export.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(res)
}

pub async fn verify(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
) -> ApiResult<Json<AuditVerifyReport>> {
    let report = state
        .control
        .verify_audit(&actor, &path.org)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(report))
}

/// `GET …/audit/actors`: the window defaults to the last 30 days.
pub async fn actors(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
    mut query: Query,
) -> ApiResult<Json<Items<ActorActivity>>> {
    let since = query.time("since");
    let until = query.time("until");
    query.finish()?;
    check_window(since, until)?;
    let until = until.unwrap_or_else(time::OffsetDateTime::now_utc);
    let since = since.unwrap_or(until - time::Duration::days(DEFAULT_ACTORS_WINDOW_DAYS));
    let items = state
        .control
        .audit_actors(&actor, &path.org, since, until)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(Items { items }))
}

pub async fn settings(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
) -> ApiResult<Json<AuditSettings>> {
    let settings = state
        .control
        .audit_settings(&actor, &path.org)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(settings))
}

pub async fn put_settings(
    State(state): State<AppState>,
    Authed(actor): Authed,
    ApiPath(path): ApiPath<OrgPath>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<AuditSettings>> {
    let Some(body) = body else {
        return Err(Error::invalid("", "required: {\"retention_days\": N}").into());
    };
    let wanted: AuditSettings = typed_body(body, &["retention_days"])?;
    let settings = state
        .control
        .set_audit_settings(&actor, &path.org, &wanted)
        .await
        .map_err(org_admin_error)?;
    Ok(Json(settings))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::actor::{AuthMethod, ClientInfo, PrincipalKind};
    use assay_core::audit::AuditActor;
    use uuid::Uuid;

    fn event(seq: i64) -> AuditEvent {
        AuditEvent {
            id: Uuid::now_v7(),
            time: time::macros::datetime!(2025-01-01 00:00:00 UTC),
            org_id: Uuid::nil(),
            env_id: None,
            actor: AuditActor {
                kind: PrincipalKind::User,
                id: Uuid::nil(),
                name: "ann".into(),
                auth_method: AuthMethod::CliLogin,
                credential_id: None,
            },
            client: ClientInfo::default(),
            action: "workflow.create".into(),
            resources: vec![],
            outcome: Outcome::Success,
            reason: None,
            seq,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    async fn collect(
        events: Vec<Result<AuditEvent>>,
        format: ExportFormat,
    ) -> (String, Option<String>) {
        let mut body = String::new();
        let mut chunks = encode(futures::stream::iter(events).boxed(), format, "r".into()).boxed();
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(b) => body.push_str(std::str::from_utf8(&b).unwrap()),
                Err(e) => return (body, Some(e.to_string())),
            }
        }
        (body, None)
    }

    #[tokio::test]
    async fn jsonl_is_one_event_per_line_in_order() {
        let (body, err) =
            collect((1..=3).map(|s| Ok(event(s))).collect(), ExportFormat::Jsonl).await;
        assert_eq!(err, None);
        let seqs: Vec<i64> = body
            .lines()
            .map(|l| serde_json::from_str::<AuditEvent>(l).unwrap().seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(body.ends_with('\n'));
    }

    #[tokio::test]
    async fn csv_starts_with_the_header_even_when_empty() {
        let (body, err) = collect(vec![], ExportFormat::Csv).await;
        assert_eq!(err, None);
        assert_eq!(body, audit_csv::header());
        let (body, _) = collect(vec![Ok(event(7))], ExportFormat::Csv).await;
        let rows: Vec<&str> = body.split_terminator("\r\n").collect();
        assert_eq!(rows.len(), 2);
        assert!(
            rows[1].starts_with("7,2025-01-01T00:00:00Z,"),
            "{}",
            rows[1]
        );
    }

    #[tokio::test]
    async fn a_failure_mid_stream_ends_the_body_with_an_error() {
        let (body, err) = collect(
            vec![Ok(event(1)), Err(Error::Unavailable("db gone".into()))],
            ExportFormat::Jsonl,
        )
        .await;
        assert_eq!(err.as_deref(), Some("unavailable: db gone"));
        // The batch holding the failure is not sent half-written.
        assert_eq!(body, "");
    }

    #[tokio::test]
    async fn large_exports_are_sent_in_bounded_batches() {
        let n = EVENTS_PER_CHUNK * 3 + 5;
        let events: Vec<Result<AuditEvent>> = (1..=n as i64).map(|s| Ok(event(s))).collect();
        let chunks: Vec<Bytes> = encode(
            futures::stream::iter(events).boxed(),
            ExportFormat::Jsonl,
            "r".into(),
        )
        .map(|c| c.unwrap())
        .collect()
        .await;
        assert_eq!(chunks.len(), 4);
        let lines: usize = chunks
            .iter()
            .map(|c| c.iter().filter(|b| **b == b'\n').count())
            .sum();
        assert_eq!(lines, n);
        assert!(
            chunks
                .iter()
                .all(|c| c.iter().filter(|b| **b == b'\n').count() <= EVENTS_PER_CHUNK)
        );
    }
}
