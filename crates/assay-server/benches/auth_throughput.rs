//! Benchmark: MCP `tools/call` throughput and latency over loopback HTTP with an OAuth
//! access token (JWT) against the same calls with an API token, in one run.
//!
//! Run: `cargo bench -p assay-server --bench auth_throughput`
//! Knobs (as in `mcp_throughput`): `ASSAY_BENCH_CLIENTS` (concurrent keep-alive clients,
//! default 16), `ASSAY_BENCH_SECS` (seconds measured per case and round, default 5),
//! `ASSAY_BENCH_WARMUP_MS` (warm-up per case and round, default 1000), `ASSAY_BENCH_ROUNDS`
//! (rounds, default 3; a case's best round is reported). `-- --quick` or
//! `ASSAY_BENCH_QUICK=1`: a smoke run (1 s, 200 ms warm-up, 1 round).
//!
//! One server: `assay_server::router` (every layer, authentication, RBAC, audit on) over
//! `LocalControlPlane` on a SQLite file, with a public URL so it accepts its own access
//! tokens. Two credentials for the same environment at the same level (read):
//! - an API token (`assay_…`, member, dev=read);
//! - an access token minted by the plane's key ring for a member with dev=read, under a
//!   live grant of the first-party client (`mcp:read`, audience = the endpoint's resource),
//!   exactly what `/oauth/token` hands out.
//!
//! Cases: `list_workflows` (50 workflows) and `get_execution_info`, each with both
//! credentials, alternating within each round. Reported: req/s, p50, p99, and the ratio
//! OAuth / API token per tool. Afterwards the audit trail must hold exactly one event per
//! answered call of each credential (so audit was on for both, equally).
//!
//! Client and server share this process and the machine's cores: compare the ratio.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "support/mod.rs"]
mod support;

use assay_auth::jwt::AccessTokenRequest;
use assay_auth::metadata::PublicBase;
use assay_auth::scope::McpScope;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::Level;
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::oauth::{OAuthClient, OAuthClientKind, OAuthGrant};
use assay_core::ports::Store;
use assay_core::tenancy::{Environment, Organization};
use bytes::Bytes;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use support::{
    ENV, Load, ORG, Stats, Timing, WORKFLOWS, check_once, install_crypto, measure, ms, plane, seed,
    serve_app, tenant, tool_call,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const CLIENT_ID: &str = "assay-cli";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Credential {
    ApiToken,
    OAuth,
}

/// One measured case: where to POST, with which credential and body, and a fragment every
/// successful answer contains (checked on each response, cheaply).
struct Case {
    name: &'static str,
    credential: Credential,
    bearer: String,
    body: Bytes,
    expect: &'static str,
    /// The case with the same tool and the other credential (index into the case list).
    pair: usize,
    /// Requests answered 200, warm-up included.
    sent: AtomicU64,
}

impl Case {
    fn load<'a>(&'a self, url: &'a str) -> Load<'a> {
        Load {
            name: self.name,
            url,
            bearer: Some(&self.bearer),
            body: &self.body,
            expect: self.expect,
            sent: &self.sent,
        }
    }
}

fn main() {
    let settings = Timing::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(settings));
}

/// A member of the organization with `level` on `env`, no password (never logs in here).
async fn member(store: &dyn Store, org: &Organization, env: &Environment, level: Level) -> User {
    let user = User {
        id: Uuid::now_v7(),
        email: "agent-owner@example.com".into(),
        display_name: "Agent Owner".into(),
        password_hash: None,
        disabled: false,
        created_at: time::OffsetDateTime::now_utc(),
    };
    store.insert_user(&user).await.unwrap();
    store
        .upsert_membership(&Membership {
            org_id: org.id,
            user_id: user.id,
            role: OrgRole::Member,
            grants: [(env.id, level)].into(),
        })
        .await
        .unwrap();
    user
}

/// The grant a consent records, and an access token issued under it, as `/oauth/token`
/// would mint it (the first-party client may exist already: the authorization server
/// inserts it at start).
async fn access_token(
    store: &dyn Store,
    plane: &LocalControlPlane,
    public: &PublicBase,
    org: &Organization,
    user: &User,
    resource: &str,
) -> String {
    let now = time::OffsetDateTime::now_utc();
    if store.get_oauth_client(CLIENT_ID).await.unwrap().is_none() {
        store
            .insert_oauth_client(&OAuthClient {
                id: CLIENT_ID.into(),
                kind: OAuthClientKind::FirstParty,
                client_name: "Assay CLI".into(),
                redirect_uris: vec!["http://127.0.0.1/callback".into()],
                created_at: now,
                last_used_at: None,
                expires_at: None,
            })
            .await
            .unwrap();
    }
    let grant = store
        .upsert_oauth_grant(&OAuthGrant {
            id: Uuid::now_v7(),
            org_id: org.id,
            user_id: user.id,
            client_id: CLIENT_ID.into(),
            scope: "mcp:read".into(),
            resource: resource.to_owned(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap();
    let subject = user.id.to_string();
    let grant_id = grant.id.to_string();
    plane
        .key_ring()
        .issue(
            &public.issuer(),
            &AccessTokenRequest {
                subject: &subject,
                audience: resource,
                client_id: CLIENT_ID,
                scope: McpScope::Read,
                // Outlives any run of this bench.
                lifetime: Duration::from_secs(3600),
                grant_id: &grant_id,
                session_id: None,
            },
            now,
        )
        .unwrap()
        .0
}

async fn run(settings: Timing) {
    install_crypto();
    println!(
        "MCP tools/call, OAuth access token vs API token, over loopback HTTP: {} clients, {} s measured after {} ms warm-up per case, {} round(s), best round reported",
        settings.clients,
        settings.measure.as_secs(),
        settings.warmup.as_millis(),
        settings.rounds
    );
    println!("setting up: SQLite store, {WORKFLOWS} workflows, one finished execution …");
    let dir = tempfile::tempdir().unwrap();
    let (store, org, environment) = tenant(dir.path()).await;

    // The listener first: its address is the public URL, the access tokens' issuer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let public_url = url::Url::parse(&base).unwrap();
    let public = PublicBase::new(&public_url).unwrap();
    let plane = plane(
        dir.path(),
        "data",
        store.clone(),
        ControlPlaneConfig {
            public_url: Some(public_url.clone()),
            ..ControlPlaneConfig::default()
        },
    )
    .await;
    let seeded = seed(&plane, &org).await;
    let (api_token, token_id) = (seeded.api_token, seeded.token_id);
    let user = member(store.as_ref(), &org, &environment, Level::Read).await;
    let resource = public.mcp_resource(ORG, ENV).unwrap().url;
    let jwt = access_token(store.as_ref(), &plane, &public, &org, &user, &resource).await;

    let stop = CancellationToken::new();
    serve_app(listener, &plane, public_url.clone(), &stop);
    let url = resource.clone();

    let list = tool_call("list_workflows", json!({"pageSize": WORKFLOWS}));
    let info = tool_call(
        "get_execution_info",
        json!({"executionId": seeded.execution_id}),
    );
    let case = |name, credential, body: &Bytes, expect, pair| Case {
        name,
        credential,
        bearer: match credential {
            Credential::ApiToken => api_token.clone(),
            Credential::OAuth => jwt.clone(),
        },
        body: body.clone(),
        expect,
        pair,
        sent: AtomicU64::new(0),
    };
    let cases = [
        case(
            "list_workflows / API token",
            Credential::ApiToken,
            &list,
            "\"total\":50",
            1,
        ),
        case(
            "list_workflows / OAuth access token",
            Credential::OAuth,
            &list,
            "\"total\":50",
            0,
        ),
        case(
            "get_execution_info / API token",
            Credential::ApiToken,
            &info,
            "\"status\":\"passed\"",
            3,
        ),
        case(
            "get_execution_info / OAuth access token",
            Credential::OAuth,
            &info,
            "\"status\":\"passed\"",
            2,
        ),
    ];
    for c in &cases {
        check_once(&c.load(&url)).await;
    }

    let mut best: Vec<Option<Stats>> = cases.iter().map(|_| None).collect();
    for round in 1..=settings.rounds {
        for (i, c) in cases.iter().enumerate() {
            let s = measure(&c.load(&url), &settings).await;
            println!(
                "round {round}/{}: {:<40} {:>8.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
                settings.rounds,
                c.name,
                s.rps,
                ms(s.p50),
                ms(s.p99)
            );
            if best[i].as_ref().is_none_or(|b| s.rps > b.rps) {
                best[i] = Some(s);
            }
        }
    }

    println!();
    println!(
        "{:<40} {:>9} {:>8} {:>8} {:>8} {:>11}",
        "case (best round)", "req/s", "p50 ms", "p99 ms", "calls", "OAuth/API"
    );
    for (c, s) in cases.iter().zip(&best) {
        let Some(s) = s else { continue };
        let ratio = match (c.credential, &best[c.pair]) {
            (Credential::OAuth, Some(api)) => format!("{:.2}", s.rps / api.rps),
            _ => "-".to_owned(),
        };
        println!(
            "{:<40} {:>9.0} {:>8.2} {:>8.2} {:>8} {:>11}",
            c.name,
            s.rps,
            ms(s.p50),
            ms(s.p99),
            s.count,
            ratio
        );
    }

    // Audit was on for both credentials: one event per answered call of each.
    let answered = |credential| -> u64 {
        cases
            .iter()
            .filter(|c| c.credential == credential)
            .map(|c| c.sent.load(Ordering::Relaxed))
            .sum()
    };
    let events = store.audit_events(org.id, 0, u32::MAX).await.unwrap();
    let by_token = events
        .iter()
        .filter(|e| e.actor.credential_id.as_deref() == Some(token_id.as_str()))
        .count() as u64;
    let by_user = events
        .iter()
        .filter(|e| e.actor.id == user.id && e.actor.credential_id.as_deref() == Some(CLIENT_ID))
        .count() as u64;
    println!();
    println!(
        "audit events: API token {by_token} (calls answered {}), OAuth user via {CLIENT_ID} {by_user} (calls answered {})",
        answered(Credential::ApiToken),
        answered(Credential::OAuth)
    );
    assert_eq!(by_token, answered(Credential::ApiToken));
    assert_eq!(by_user, answered(Credential::OAuth));

    stop.cancel();
    plane.shutdown().await;
}
