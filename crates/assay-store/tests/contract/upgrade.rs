//! Upgrading a database created by the first release (migration 0001 only, with data)
//! to the current schema: the data stays usable, and new columns are filled in.

use super::audit::event;
use super::harness::{PG_URL_VAR, runtime, with_pg_schema};
use super::support::*;
use assay_core::actor::PrincipalKind;
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter};
use assay_core::audit_chain::{self, GENESIS_PREV_HASH};
use assay_core::identity::{ApiTokenKind, ApiTokenRecord};
use assay_core::ports::Store;
use assay_store::{PostgresStore, SqliteStore};
use libtest_mimic::{Failed, Trial};
use sqlx::migrate::Migrator;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// A migrator that knows only the first migration of `backend`, as the first release did.
async fn first_release_migrator(backend: &str, dir: &Path) -> Result<Migrator, Failed> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend)
        .join("0001_initial.sql");
    std::fs::copy(src, dir.join("0001_initial.sql"))?;
    Ok(Migrator::new(dir).await?)
}

struct Old {
    org: assay_core::Organization,
    token: ApiTokenRecord,
    events: Vec<AuditEvent>,
}

fn old_data() -> Old {
    let org = org("legacy");
    let token = ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id: org.id,
        name: "ci".into(),
        description: String::new(),
        kind: ApiTokenKind::OrgRead,
        grants: BTreeMap::new(),
        secret_hash: "a".repeat(64),
        created_by: None,
        created_at: T0,
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        previous_secret_hash: None,
        previous_valid_until: None,
    };
    let mut events = Vec::new();
    let mut prev = GENESIS_PREV_HASH.to_string();
    for (seq, (kind, name)) in [
        (PrincipalKind::User, "Ada"),
        (PrincipalKind::ApiToken, "ci"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = event(org.id, "workflow.create");
        e.actor.kind = kind;
        e.actor.name = name.into();
        e.time = at(i64::try_from(seq).unwrap_or(0) * 60);
        e.seq = i64::try_from(seq).unwrap_or(0) + 1;
        e.prev_hash = prev.clone();
        e.hash = audit_chain::chain_hash(&e);
        prev = e.hash.clone();
        events.push(e);
    }
    Old { org, token, events }
}

/// What must hold once the current code opened the upgraded database.
async fn check_upgraded(store: Arc<dyn Store>, old: &Old) {
    let org = store.find_org("legacy").await.unwrap().unwrap();
    assert_eq!(org, old.org);
    assert_eq!(org.audit_retention_days, 180);
    assert_eq!(
        store.find_api_token_by_hash(&"a".repeat(64)).await.unwrap(),
        Some(old.token.clone())
    );
    let chain = store.audit_events(old.org.id, 0, 100).await.unwrap();
    assert_eq!(chain, old.events);
    audit_chain::verify(&chain, None).unwrap();
    // Actor kind and name were filled in from the stored JSON.
    let by_name = AuditFilter {
        actor: Some("ci".into()),
        ..Default::default()
    };
    assert_eq!(
        store
            .query_audit(old.org.id, &by_name, 0, 10)
            .await
            .unwrap(),
        vec![old.events[1].clone()]
    );
    let a = &old.events[0].actor;
    let c = &old.events[1].actor;
    assert_eq!(
        store
            .audit_actors(old.org.id, at(0), at(3600))
            .await
            .unwrap(),
        vec![
            ActorActivity {
                kind: PrincipalKind::ApiToken,
                id: c.id,
                name: "ci".into(),
                events: 1,
                first_seen: at(60),
                last_seen: at(60),
            },
            ActorActivity {
                kind: PrincipalKind::User,
                id: a.id,
                name: "Ada".into(),
                events: 1,
                first_seen: at(0),
                last_seen: at(0),
            },
        ]
    );
    let mut next = event(old.org.id, "after.upgrade");
    store.append_audit(&mut next).await.unwrap();
    assert_eq!((next.seq, &next.prev_hash), (3, &old.events[1].hash));
}

async fn sqlite_upgrade() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("assay.db");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations)?;
    let old = old_data();
    {
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await?;
        first_release_migrator("sqlite", &migrations)
            .await?
            .run(&pool)
            .await?;
        let micros =
            |t: assay_core::Timestamp| i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0);
        sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(old.org.id)
            .bind(&old.org.slug)
            .bind(&old.org.name)
            .bind(micros(old.org.created_at))
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, org_id, name, description, kind, grants, secret_hash, \
             created_at) VALUES ($1, $2, $3, '', 'org-read', '{}', $4, $5)",
        )
        .bind(old.token.id)
        .bind(old.org.id)
        .bind(&old.token.name)
        .bind(&old.token.secret_hash)
        .bind(micros(old.token.created_at))
        .execute(&pool)
        .await?;
        for e in &old.events {
            sqlx::query(
                "INSERT INTO audit_events (org_id, seq, id, time, env_id, actor_id, action, \
                 outcome, hash, event) VALUES ($1, $2, $3, $4, $5, $6, $7, 'success', $8, $9)",
            )
            .bind(e.org_id)
            .bind(e.seq)
            .bind(e.id)
            .bind(micros(e.time))
            .bind(e.env_id)
            .bind(e.actor.id)
            .bind(&e.action)
            .bind(&e.hash)
            .bind(serde_json::to_string(e)?)
            .execute(&pool)
            .await?;
        }
        sqlx::query("INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 2, $2)")
            .bind(old.org.id)
            .bind(&old.events[1].hash)
            .execute(&pool)
            .await?;
        pool.close().await;
    }
    let store = SqliteStore::open(&path).await?;
    let old = Arc::new(old);
    super::harness::run_checked(Arc::new(store), move |s| {
        let old = old.clone();
        async move { check_upgraded(s, &old).await }
    })
    .await?;
    // The append-only trigger survived the migration's backfill.
    let pool =
        sqlx::SqlitePool::connect_with(sqlx::sqlite::SqliteConnectOptions::new().filename(&path))
            .await?;
    let refused = sqlx::query("UPDATE audit_events SET action = 'forged'")
        .execute(&pool)
        .await;
    match refused {
        Err(e) if e.to_string().contains("append-only") => Ok(()),
        other => Err(format!("UPDATE of an audit event was not refused: {other:?}").into()),
    }
}

async fn postgres_upgrade(url: String) -> Result<(), Failed> {
    with_pg_schema(&url, |store_url| async move {
        let dir = tempfile::tempdir()?;
        let old = old_data();
        let pool = sqlx::PgPool::connect(&store_url).await?;
        first_release_migrator("postgres", dir.path())
            .await?
            .run(&pool)
            .await?;
        sqlx::query("INSERT INTO orgs (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(old.org.id)
            .bind(&old.org.slug)
            .bind(&old.org.name)
            .bind(old.org.created_at)
            .execute(&pool)
            .await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, org_id, name, description, kind, grants, secret_hash, \
             created_at) VALUES ($1, $2, $3, '', 'org-read', '{}', $4, $5)",
        )
        .bind(old.token.id)
        .bind(old.org.id)
        .bind(&old.token.name)
        .bind(&old.token.secret_hash)
        .bind(old.token.created_at)
        .execute(&pool)
        .await?;
        for e in &old.events {
            sqlx::query(
                "INSERT INTO audit_events (org_id, seq, id, time, env_id, actor_id, action, \
                 outcome, hash, event) VALUES ($1, $2, $3, $4, $5, $6, $7, 'success', $8, $9)",
            )
            .bind(e.org_id)
            .bind(e.seq)
            .bind(e.id)
            .bind(e.time)
            .bind(e.env_id)
            .bind(e.actor.id)
            .bind(&e.action)
            .bind(&e.hash)
            .bind(serde_json::to_string(e)?)
            .execute(&pool)
            .await?;
        }
        sqlx::query("INSERT INTO audit_heads (org_id, seq, hash) VALUES ($1, 2, $2)")
            .bind(old.org.id)
            .bind(&old.events[1].hash)
            .execute(&pool)
            .await?;
        let store = Arc::new(PostgresStore::connect(&store_url).await?);
        let old = Arc::new(old);
        let checked = super::harness::run_checked(store.clone(), move |s| {
            let old = old.clone();
            async move { check_upgraded(s, &old).await }
        })
        .await;
        store.close().await;
        checked?;
        let refused = sqlx::query("UPDATE audit_events SET action = 'forged'")
            .execute(&pool)
            .await;
        pool.close().await;
        match refused {
            Err(e) if e.to_string().contains("append-only") => Ok(()),
            other => Err(format!("UPDATE of an audit event was not refused: {other:?}").into()),
        }
    })
    .await
}

pub fn trials() -> Vec<Trial> {
    let pg_url = std::env::var(PG_URL_VAR).ok().filter(|u| !u.is_empty());
    vec![
        Trial::test("sqlite::upgrade_from_first_release", || {
            runtime()?.block_on(sqlite_upgrade())
        }),
        Trial::test("postgres::upgrade_from_first_release", {
            let url = pg_url.clone();
            move || match url {
                Some(url) => runtime()?.block_on(postgres_upgrade(url)),
                None => Err(format!("{PG_URL_VAR} is not set").into()),
            }
        })
        .with_ignored_flag(pg_url.is_none()),
    ]
}
