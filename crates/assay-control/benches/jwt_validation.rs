//! Benchmark: what validating an OAuth access token (JWT) costs, next to looking up an API
//! token, measured in the same run.
//!
//! Run: `cargo bench -p assay-control --bench jwt_validation`
//! (`ASSAY_BENCH_ITERS` sets the operations per measurement, default 20000;
//! `ASSAY_BENCH_ROUNDS` how many times each case is measured, default 3 — the best round
//! of each counts; `-- --quick` or `ASSAY_BENCH_QUICK=1`: 2000 operations, 1 round).
//!
//! Cases, each one task calling in a loop (ns per operation, no concurrency):
//! - `KeyRing::validate`: the JWS alone — header allow-list, Ed25519 signature, `iss`,
//!   `aud`, time claims. No store.
//! - JWT through the authenticator: `authenticate_for_resource` as the MCP endpoint calls
//!   it: the JWS on every call, then what the store said (denylist, organization, user,
//!   membership, grant and session liveness) from the short-TTL caches of `grant_cache`,
//!   read from a SQLite file again whenever an entry expires (2 s).
//! - API token through the authenticator: `authenticate` with an `assay_…` token — the
//!   checksum, the SHA-256 of the secret and the token cache (hit after the first call).
//!
//! The token is minted with the plane's own key ring under a real grant and sign-in
//! session (client, grant and refresh-token rows in the store), so every check validation
//! makes passes the same way it does for a token from `/oauth/token`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use assay_auth::jwt::AccessTokenRequest;
use assay_auth::metadata::PublicBase;
use assay_auth::scope::McpScope;
use assay_control::{ControlPlaneConfig, LocalControlPlane};
use assay_core::actor::{AuthMethod, ClientInfo};
use assay_core::identity::{ApiTokenKind, Membership, NewApiToken, OrgRole, User};
use assay_core::oauth::{OAuthClient, OAuthClientKind, OAuthGrant, RefreshToken};
use assay_core::ports::{Clock, ControlPlane, Store, SystemClock};
use assay_core::tenancy::{DEFAULT_AUDIT_RETENTION_DAYS, Environment, Organization};
use assay_core::{Actor, Level, Principal};
use assay_exec::{FsExecutionFiles, LocalExecutor, LocalExecutorConfig};
use assay_store::SqliteStore;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const ORG: &str = "bench";
const ENV: &str = "dev";
const PUBLIC_URL: &str = "http://127.0.0.1:7357";
const CLIENT_ID: &str = "assay-cli";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var("ASSAY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (iters, rounds) = if quick { (2_000, 1) } else { (20_000, 3) };
    let iters = env_u64("ASSAY_BENCH_ITERS", iters).max(1);
    let rounds = env_u64("ASSAY_BENCH_ROUNDS", rounds).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(iters, rounds));
}

async fn plane(dir: &std::path::Path, store: Arc<dyn Store>) -> Arc<LocalControlPlane> {
    let data_dir = dir.join("data");
    let files = Arc::new(FsExecutionFiles::new(data_dir.clone()));
    let executor = Arc::new(LocalExecutor::new(
        LocalExecutorConfig {
            data_dir,
            ..LocalExecutorConfig::default()
        },
        files.clone(),
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    LocalControlPlane::start(
        ControlPlaneConfig {
            public_url: Some(url::Url::parse(PUBLIC_URL).unwrap()),
            ..ControlPlaneConfig::default()
        },
        store,
        executor,
        files,
        clock,
    )
    .await
    .unwrap()
}

async fn run(iters: u64, rounds: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&dir.path().join("bench.db"))
            .await
            .unwrap(),
    );
    let now = time::OffsetDateTime::now_utc();
    let org = Organization {
        id: Uuid::now_v7(),
        slug: ORG.into(),
        name: ORG.into(),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    store.insert_org(&org).await.unwrap();
    let env = Environment {
        id: Uuid::now_v7(),
        org_id: org.id,
        slug: ENV.into(),
        name: ENV.into(),
        created_at: now,
    };
    store.insert_env(&env).await.unwrap();
    // A member who may read `dev`: what a person connecting an MCP client would be.
    let user = User {
        id: Uuid::now_v7(),
        email: "reader@example.com".into(),
        display_name: "Reader".into(),
        password_hash: None,
        disabled: false,
        created_at: now,
    };
    store.insert_user(&user).await.unwrap();
    store
        .upsert_membership(&Membership {
            org_id: org.id,
            user_id: user.id,
            role: OrgRole::Member,
            grants: [(env.id, Level::Read)].into(),
        })
        .await
        .unwrap();

    let plane = plane(dir.path(), store.clone()).await;
    let public = PublicBase::new(&url::Url::parse(PUBLIC_URL).unwrap()).unwrap();
    let resource = public.mcp_resource(ORG, ENV).unwrap().url;

    // The grant a consent would have recorded (the first-party client may exist already:
    // the authorization server inserts it at start).
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
            resource: resource.clone(),
            created_at: now,
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap();
    // The sign-in session (refresh-token family) the token names in `sid`.
    let family_id = Uuid::now_v7();
    store
        .insert_refresh_token(&RefreshToken {
            token_hash: format!("{:0>64}", family_id.simple()),
            family_id,
            grant_id: grant.id,
            client_id: CLIENT_ID.into(),
            resource: resource.clone(),
            scope: "mcp:read".into(),
            created_at: now,
            expires_at: now + time::Duration::days(30),
            idle_expires_at: now + time::Duration::days(7),
            used_at: None,
            revoked_at: None,
        })
        .await
        .unwrap();
    let ring = plane.key_ring();
    let subject = user.id.to_string();
    let grant_id = grant.id.to_string();
    let session_id = family_id.to_string();
    let (jwt, _) = ring
        .issue(
            &public.issuer(),
            &AccessTokenRequest {
                subject: &subject,
                audience: &resource,
                client_id: CLIENT_ID,
                scope: McpScope::Read,
                lifetime: Duration::from_secs(3600),
                grant_id: &grant_id,
                session_id: Some(&session_id),
            },
            now,
        )
        .unwrap();

    let system = Actor::new(Principal::system(org.id), ClientInfo::default());
    let api_token = plane
        .create_api_token(
            &system,
            ORG,
            &NewApiToken {
                name: "bench-agent".into(),
                description: String::new(),
                kind: ApiTokenKind::Member,
                grants: [(ENV.to_owned(), Level::Read)].into(),
                expires_in_days: None,
                never_expires: false,
            },
        )
        .await
        .unwrap()
        .secret;

    let auth = plane.authenticator();
    let client = ClientInfo {
        ip: Some("127.0.0.1".into()),
        ..ClientInfo::default()
    };
    // Both credentials must authenticate, as what they are, before anything is timed.
    let by_jwt = auth
        .authenticate_for_resource(&jwt, &client, Some(ORG), Some(&resource))
        .await
        .unwrap();
    assert_eq!(by_jwt.auth_method, AuthMethod::CliLogin);
    assert_eq!(by_jwt.id, user.id);
    assert_eq!(by_jwt.credential_id.as_deref(), Some(CLIENT_ID));
    let by_token = auth
        .authenticate(&api_token, &client, Some(ORG))
        .await
        .unwrap();
    assert_eq!(by_token.auth_method, AuthMethod::ApiToken);

    let issuer = public.issuer();
    let base = public.base_resource().url;
    let audiences = [base.as_str(), resource.as_str()];
    println!(
        "access-token validation vs API-token lookup: {iters} operations per measurement, one task, best of {rounds}"
    );
    let mut best = [f64::MAX; 3];
    for round in 1..=rounds {
        let jws = time_sync(iters, || {
            let claims = ring
                .validate(
                    black_box(&jwt),
                    &issuer,
                    &audiences,
                    time::OffsetDateTime::now_utc(),
                    Duration::from_secs(60),
                )
                .unwrap();
            black_box(claims);
        });
        let full_jwt = time_async(iters, || async {
            let p = auth
                .authenticate_for_resource(black_box(&jwt), &client, Some(ORG), Some(&resource))
                .await
                .unwrap();
            black_box(p);
        })
        .await;
        let token = time_async(iters, || async {
            let p = auth
                .authenticate(black_box(&api_token), &client, Some(ORG))
                .await
                .unwrap();
            black_box(p);
        })
        .await;
        for (b, v) in best.iter_mut().zip([jws, full_jwt, token]) {
            *b = b.min(v);
        }
        println!(
            "round {round}/{rounds}: KeyRing::validate {jws:>9.0} ns/op   JWT authenticate {full_jwt:>9.0} ns/op   API token authenticate {token:>9.0} ns/op"
        );
    }
    println!();
    println!(
        "{:<48} {:>10} {:>12}",
        "case (best round)", "ns/op", "×API token"
    );
    let names = [
        "JWT: KeyRing::validate (JWS + claims, no store)",
        "JWT: authenticate_for_resource (JWS + store)",
        "API token: authenticate (checksum + hash + cache)",
    ];
    for (name, ns) in names.iter().zip(best) {
        println!("{name:<48} {ns:>10.0} {:>12.2}", ns / best[2]);
    }
    plane.shutdown().await;
}

/// Mean nanoseconds per call of `op` over `iters` calls.
fn time_sync(iters: u64, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        op();
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Mean nanoseconds per awaited call of `op` over `iters` calls.
async fn time_async<F, Fut>(iters: u64, mut op: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let start = Instant::now();
    for _ in 0..iters {
        op().await;
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}
