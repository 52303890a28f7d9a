//! Organization-level routes: members, API tokens, the caller's OAuth grants and audit
//! (`/v1/organizations/{org}/…`).
//! The `ControlPlane` impl forwards here; [`RemoteControlPlane::export_audit_raw`] is the
//! byte-exact export for writing the server's JSON lines or CSV straight to a file.

use crate::RemoteControlPlane;
use crate::ndjson::parse_lines;
use crate::problem::Expect;
use crate::routes::{check_segment, org_url, with_query};
use crate::transport::Deadline;
use assay_core::audit::{
    ActorActivity, AuditEvent, AuditFilter, AuditSettings, AuditVerifyReport, Outcome,
};
use assay_core::identity::{
    ApiTokenInfo, CreatedApiToken, MemberInfo, MemberUpdate, NewApiToken, NewMember,
};
use assay_core::oauth::GrantInfo;
use assay_core::{Error, Level, Result, Timestamp};
use bytes::Bytes;
use futures::stream::BoxStream;
use reqwest::Method;
use serde::Deserialize;
use uuid::Uuid;

#[derive(Deserialize)]
struct Items<T> {
    items: Vec<T>,
}

/// How `GET …/audit/events` should encode the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditExportFormat {
    /// One JSON `AuditEvent` per line (`application/x-ndjson`).
    Jsonl,
    /// RFC 4180 with a header row, defused for spreadsheets (`text/csv`).
    Csv,
}

impl AuditExportFormat {
    fn as_str(self) -> &'static str {
        match self {
            AuditExportFormat::Jsonl => "jsonl",
            AuditExportFormat::Csv => "csv",
        }
    }

    fn accept(self) -> &'static str {
        match self {
            AuditExportFormat::Jsonl => "application/x-ndjson, application/problem+json",
            AuditExportFormat::Csv => "text/csv, application/problem+json",
        }
    }
}

fn rfc3339(what: &str, t: Option<Timestamp>) -> Result<Option<String>> {
    t.map(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::invalid(what, format!("cannot be written as RFC 3339: {e}")))
    })
    .transpose()
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Success => "success",
        Outcome::Denied => "denied",
        Outcome::Error => "error",
    }
}

fn org_expect(org: &str) -> Expect {
    Expect::new("organization", org, Level::Admin)
}

fn token_expect(id: Uuid) -> Expect {
    Expect::new("token", id.to_string(), Level::Admin)
}

/// A 403 on the grant routes names no level: an API token has no grants (`Refused`).
fn grant_expect(id: Option<Uuid>, org: &str) -> Expect {
    match id {
        Some(id) => Expect::new("grant", id.to_string(), Level::Admin),
        None => Expect::new("organization", org, Level::Admin),
    }
    .refused_without_level()
}

impl RemoteControlPlane {
    fn org_url(&self, org: &str, segments: &[&str]) -> Result<url::Url> {
        org_url(&self.config.base_url, org, segments)
    }

    // --- members ---------------------------------------------------------------------

    pub(crate) async fn members(&self, org: &str) -> Result<Vec<MemberInfo>> {
        let url = self.org_url(org, &["members"])?;
        let items: Items<MemberInfo> = self
            .call(self.request(Method::GET, url), &org_expect(org))
            .await?;
        Ok(items.items)
    }

    pub(crate) async fn member_add(&self, org: &str, member: &NewMember) -> Result<MemberInfo> {
        let url = self.org_url(org, &["members"])?;
        self.call(
            self.request(Method::POST, url).json(member),
            &org_expect(org),
        )
        .await
    }

    pub(crate) async fn member_update(
        &self,
        org: &str,
        user: &str,
        update: &MemberUpdate,
    ) -> Result<MemberInfo> {
        check_segment("user", user)?;
        let url = self.org_url(org, &["members", user])?;
        let expect = Expect::new("user", user, Level::Admin);
        self.call(self.request(Method::PATCH, url).json(update), &expect)
            .await
    }

    pub(crate) async fn member_remove(&self, org: &str, user: &str) -> Result<()> {
        check_segment("user", user)?;
        let url = self.org_url(org, &["members", user])?;
        let expect = Expect::new("user", user, Level::Admin);
        self.send(
            self.request(Method::DELETE, url),
            &expect,
            Deadline::Bounded,
        )
        .await
        .map(drop)
    }

    // --- API tokens ------------------------------------------------------------------

    pub(crate) async fn token_create(
        &self,
        org: &str,
        request: &NewApiToken,
    ) -> Result<CreatedApiToken> {
        let url = self.org_url(org, &["tokens"])?;
        self.call(
            self.request(Method::POST, url).json(request),
            &org_expect(org),
        )
        .await
    }

    pub(crate) async fn tokens(&self, org: &str) -> Result<Vec<ApiTokenInfo>> {
        let url = self.org_url(org, &["tokens"])?;
        let items: Items<ApiTokenInfo> = self
            .call(self.request(Method::GET, url), &org_expect(org))
            .await?;
        Ok(items.items)
    }

    pub(crate) async fn token(&self, org: &str, id: Uuid) -> Result<ApiTokenInfo> {
        let url = self.org_url(org, &["tokens", &id.to_string()])?;
        self.call(self.request(Method::GET, url), &token_expect(id))
            .await
    }

    pub(crate) async fn token_rotate(
        &self,
        org: &str,
        id: Uuid,
        grace_secs: Option<u64>,
    ) -> Result<CreatedApiToken> {
        let url = self.org_url(org, &["tokens", &id.to_string(), "rotate"])?;
        let body = match grace_secs {
            Some(g) => serde_json::json!({ "grace_secs": g }),
            None => serde_json::json!({}),
        };
        self.call(
            self.request(Method::POST, url).json(&body),
            &token_expect(id),
        )
        .await
    }

    pub(crate) async fn token_revoke(&self, org: &str, id: Uuid) -> Result<ApiTokenInfo> {
        let url = self.org_url(org, &["tokens", &id.to_string(), "revoke"])?;
        self.call(self.request(Method::POST, url), &token_expect(id))
            .await
    }

    // --- the caller's OAuth grants ---------------------------------------------------

    pub(crate) async fn grants(&self, org: &str) -> Result<Vec<GrantInfo>> {
        let url = self.org_url(org, &["me", "grants"])?;
        let items: Items<GrantInfo> = self
            .call(self.request(Method::GET, url), &grant_expect(None, org))
            .await?;
        Ok(items.items)
    }

    pub(crate) async fn grant_revoke(&self, org: &str, id: Uuid) -> Result<()> {
        let url = self.org_url(org, &["me", "grants", &id.to_string()])?;
        self.send(
            self.request(Method::DELETE, url),
            &grant_expect(Some(id), org),
            Deadline::Bounded,
        )
        .await
        .map(drop)
    }

    // --- audit -----------------------------------------------------------------------

    fn audit_events_url(
        &self,
        org: &str,
        filter: &AuditFilter,
        format: AuditExportFormat,
    ) -> Result<url::Url> {
        Ok(with_query(
            self.org_url(org, &["audit", "events"])?,
            &[
                ("since", rfc3339("since", filter.since)?),
                ("until", rfc3339("until", filter.until)?),
                ("actor", filter.actor.clone()),
                ("action", filter.action.clone()),
                ("env", filter.env.clone()),
                (
                    "outcome",
                    filter.outcome.map(|o| outcome_word(o).to_owned()),
                ),
                ("format", Some(format.as_str().to_owned())),
            ],
        ))
    }

    /// The export exactly as the server encodes it, in chunks: JSON lines or CSV (with
    /// its header row). Memory stays bounded by one chunk; the request has no deadline
    /// (an export lasts as long as it is big). A broken connection ends the stream with
    /// an error, so a truncated export is never mistaken for a whole one.
    pub async fn export_audit_raw(
        &self,
        org: &str,
        filter: &AuditFilter,
        format: AuditExportFormat,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let url = self.audit_events_url(org, filter, format)?;
        let req = self.request_accepting(Method::GET, url, format.accept());
        let resp = self
            .send(req, &org_expect(org), Deadline::Unbounded)
            .await?;
        Ok(self.body_stream(resp))
    }

    pub(crate) async fn audit_export(
        &self,
        org: &str,
        filter: &AuditFilter,
    ) -> Result<BoxStream<'static, Result<AuditEvent>>> {
        let body = self
            .export_audit_raw(org, filter, AuditExportFormat::Jsonl)
            .await?;
        Ok(parse_lines(body))
    }

    pub(crate) async fn audit_verify(&self, org: &str) -> Result<AuditVerifyReport> {
        let url = self.org_url(org, &["audit", "verify"])?;
        // Verification walks the whole chain; it may take longer than an ordinary call.
        let resp = self
            .send(
                self.request(Method::GET, url),
                &org_expect(org),
                Deadline::Unbounded,
            )
            .await?;
        self.decode(resp).await
    }

    pub(crate) async fn audit_actor_activity(
        &self,
        org: &str,
        since: Timestamp,
        until: Timestamp,
    ) -> Result<Vec<ActorActivity>> {
        let url = with_query(
            self.org_url(org, &["audit", "actors"])?,
            &[
                ("since", rfc3339("since", Some(since))?),
                ("until", rfc3339("until", Some(until))?),
            ],
        );
        let items: Items<ActorActivity> = self
            .call(self.request(Method::GET, url), &org_expect(org))
            .await?;
        Ok(items.items)
    }

    pub(crate) async fn audit_get_settings(&self, org: &str) -> Result<AuditSettings> {
        let url = self.org_url(org, &["audit", "settings"])?;
        self.call(self.request(Method::GET, url), &org_expect(org))
            .await
    }

    pub(crate) async fn audit_put_settings(
        &self,
        org: &str,
        settings: &AuditSettings,
    ) -> Result<AuditSettings> {
        let url = self.org_url(org, &["audit", "settings"])?;
        self.call(
            self.request(Method::PUT, url).json(settings),
            &org_expect(org),
        )
        .await
    }
}
