//! Organizations, environments, users, memberships, API tokens, and the constructors.

use super::support::*;
use assay_core::Level;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord, Membership, OrgRole, User};
use assay_core::ports::Store;
use assay_core::{Error, Timestamp};
use libtest_mimic::Failed;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::macros::datetime;
use uuid::Uuid;

pub async fn orgs_insert_find_list(store: Arc<dyn Store>) {
    let b = org("beta");
    let a = org("alpha");
    store.insert_org(&b).await.unwrap();
    store.insert_org(&a).await.unwrap();

    assert_eq!(
        store.find_org(&a.id.to_string()).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.find_org("beta").await.unwrap(), Some(b.clone()));
    assert_eq!(store.find_org("gamma").await.unwrap(), None);
    assert_eq!(
        store.find_org(&Uuid::now_v7().to_string()).await.unwrap(),
        None
    );
    assert_eq!(store.list_orgs().await.unwrap(), vec![a.clone(), b.clone()]);

    let mut dup = org("alpha");
    dup.name = "Another".into();
    let message = assert_conflict(store.insert_org(&dup).await);
    assert!(message.contains("alpha"), "{message}");
    assert_eq!(store.list_orgs().await.unwrap().len(), 2);
}

/// A slug shaped like a UUID is matched as an ID first, then as a slug.
pub async fn org_uuid_shaped_slug(store: Arc<dyn Store>) {
    let a = org("plain");
    store.insert_org(&a).await.unwrap();
    // `b`'s slug is `a`'s ID: looking it up must find `a` (ID wins).
    let b = org(&a.id.to_string());
    store.insert_org(&b).await.unwrap();
    assert_eq!(
        store.find_org(&a.id.to_string()).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        store.find_org(&b.id.to_string()).await.unwrap(),
        Some(b.clone())
    );
    // A UUID-shaped slug that is no one's ID falls back to the slug.
    let ghost = Uuid::now_v7().to_string();
    let c = org(&ghost);
    store.insert_org(&c).await.unwrap();
    assert_eq!(store.find_org(&ghost).await.unwrap(), Some(c));

    let e1 = env(a.id, "one");
    store.insert_env(&e1).await.unwrap();
    let e2 = env(a.id, &e1.id.to_string());
    store.insert_env(&e2).await.unwrap();
    assert_eq!(
        store.find_env(a.id, &e1.id.to_string()).await.unwrap(),
        Some(e1)
    );
    assert_eq!(
        store.find_env(a.id, &e2.id.to_string()).await.unwrap(),
        Some(e2)
    );
}

pub async fn envs_insert_find_list(store: Arc<dyn Store>) {
    let o1 = org("one");
    let o2 = org("two");
    store.insert_org(&o1).await.unwrap();
    store.insert_org(&o2).await.unwrap();
    let prod = env(o1.id, "prod");
    let dev = env(o1.id, "dev");
    let other = env(o2.id, "dev");
    for e in [&prod, &dev, &other] {
        store.insert_env(e).await.unwrap();
    }
    assert_eq!(
        store.find_env(o1.id, "dev").await.unwrap(),
        Some(dev.clone())
    );
    assert_eq!(
        store.find_env(o2.id, "dev").await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(
        store.find_env(o1.id, &prod.id.to_string()).await.unwrap(),
        Some(prod.clone())
    );
    // Another organization's environment is invisible, by slug or by ID.
    assert_eq!(store.find_env(o2.id, "prod").await.unwrap(), None);
    assert_eq!(
        store.find_env(o2.id, &prod.id.to_string()).await.unwrap(),
        None
    );
    assert_eq!(
        store.list_envs(o1.id).await.unwrap(),
        vec![dev.clone(), prod.clone()]
    );
    assert_eq!(store.list_envs(o2.id).await.unwrap(), vec![other]);
    assert_eq!(store.list_envs(Uuid::now_v7()).await.unwrap(), vec![]);

    let message = assert_conflict(store.insert_env(&env(o1.id, "prod")).await);
    assert!(message.contains("prod"), "{message}");
    // An environment needs its organization.
    let orphan = env(Uuid::now_v7(), "x");
    assert!(matches!(
        store.insert_env(&orphan).await,
        Err(Error::Conflict(_))
    ));
}

fn user(email: &str) -> User {
    User {
        id: Uuid::now_v7(),
        email: email.into(),
        display_name: "Ada Lovelace".into(),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        disabled: false,
        created_at: T0,
    }
}

pub async fn users_and_memberships(store: Arc<dyn Store>) {
    let ada = user("Ada@Example.com");
    let mut bob = user("bob@example.com");
    bob.password_hash = None;
    bob.disabled = true;
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();
    assert_eq!(store.find_user(ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(store.find_user(bob.id).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.find_user(Uuid::now_v7()).await.unwrap(), None);
    // Emails match case-insensitively, and are unique that way.
    assert_eq!(
        store.find_user_by_email("ada@example.com").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        store.find_user_by_email("ADA@EXAMPLE.COM").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        store.find_user_by_email("eve@example.com").await.unwrap(),
        None
    );
    assert_conflict(store.insert_user(&user("ada@example.com")).await);

    let o = org("acme");
    store.insert_org(&o).await.unwrap();
    let dev = Uuid::now_v7();
    let prod = Uuid::now_v7();
    let mut m = Membership {
        org_id: o.id,
        user_id: ada.id,
        role: OrgRole::Member,
        grants: [(dev, Level::Write), (prod, Level::Read)]
            .into_iter()
            .collect(),
    };
    store.upsert_membership(&m).await.unwrap();
    assert_eq!(
        store.find_membership(o.id, ada.id).await.unwrap(),
        Some(m.clone())
    );
    m.role = OrgRole::Admin;
    m.grants = BTreeMap::new();
    store.upsert_membership(&m).await.unwrap();
    assert_eq!(
        store.find_membership(o.id, ada.id).await.unwrap(),
        Some(m.clone())
    );
    assert_eq!(store.find_membership(o.id, bob.id).await.unwrap(), None);
    let owner = Membership {
        org_id: o.id,
        user_id: bob.id,
        role: OrgRole::Owner,
        grants: BTreeMap::new(),
    };
    store.upsert_membership(&owner).await.unwrap();
    assert_eq!(
        store.find_membership(o.id, bob.id).await.unwrap(),
        Some(owner)
    );
    assert_eq!(store.find_membership(o.id, ada.id).await.unwrap(), Some(m));
}

pub async fn api_tokens(store: Arc<dyn Store>) {
    let o = org("acme");
    store.insert_org(&o).await.unwrap();
    let env_id = Uuid::now_v7();
    let full = ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id: o.id,
        name: "ci".into(),
        description: "GitHub Actions".into(),
        kind: ApiTokenKind::Member,
        grants: [(env_id, Level::Run)].into_iter().collect(),
        secret_hash: "a".repeat(64),
        created_by: Some(Uuid::now_v7()),
        created_at: T0,
        expires_at: Some(datetime!(2026-01-01 00:00:00.000001 UTC)),
        last_used_at: Some(at(5)),
        last_used_ip: Some("192.0.2.7".into()),
        revoked_at: Some(at(9)),
        previous_secret_hash: Some("d".repeat(64)),
        previous_valid_until: Some(at(3600)),
    };
    let bare = ApiTokenRecord {
        id: Uuid::now_v7(),
        name: "reader".into(),
        description: String::new(),
        kind: ApiTokenKind::OrgRead,
        grants: BTreeMap::new(),
        secret_hash: "b".repeat(64),
        created_by: None,
        expires_at: None,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        previous_secret_hash: None,
        previous_valid_until: None,
        ..full.clone()
    };
    store.insert_api_token(&full).await.unwrap();
    store.insert_api_token(&bare).await.unwrap();
    assert_eq!(
        store.find_api_token_by_hash(&"a".repeat(64)).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        store.find_api_token_by_hash(&"b".repeat(64)).await.unwrap(),
        Some(bare)
    );
    assert_eq!(
        store.find_api_token_by_hash(&"c".repeat(64)).await.unwrap(),
        None
    );
    let mut dup = full.clone();
    dup.id = Uuid::now_v7();
    dup.kind = ApiTokenKind::Admin;
    let message = assert_conflict(store.insert_api_token(&dup).await);
    assert!(
        !message.contains(&"a".repeat(64)),
        "secret hash leaked: {message}"
    );
}

// ----- constructor tests (SQLite only: they need no server) -----------------------------

pub async fn connect_dispatches_on_url() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let o = org("acme");
    // Plain path, then `sqlite://` URL to the same file: both see the same data.
    let path = dir.path().join("plain.db");
    let store = assay_store::connect(path.to_str().ok_or("path")?).await?;
    store.insert_org(&o).await?;
    drop(store);
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = assay_store::connect(&url).await?;
    assert_eq!(store.find_org("acme").await?, Some(o.clone()));

    let memory = assay_store::connect("sqlite::memory:").await?;
    assert_eq!(memory.find_org("acme").await?, None);
    memory.insert_org(&o).await?;
    assert_eq!(memory.list_orgs().await?, vec![o]);

    match assay_store::connect("mysql://localhost/db").await {
        Err(Error::Invalid(e)) => assert_eq!(e[0].path, "database_url"),
        Err(other) => return Err(format!("expected Invalid, got {other:?}").into()),
        Ok(_) => return Err("mysql URL accepted".into()),
    }
    // A directory that does not exist cannot hold the database file.
    match assay_store::connect("/nonexistent-assay-dir/x/assay.db").await {
        Err(Error::Unavailable(_)) => {}
        Err(other) => return Err(format!("expected Unavailable, got {other:?}").into()),
        Ok(_) => return Err("opened a file in a missing directory".into()),
    }
    Ok(())
}

pub async fn reopen_keeps_data() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("assay.db");
    let o = org("acme");
    let t: Timestamp = datetime!(2024-02-29 23:59:59.999999 UTC);
    {
        let store = assay_store::SqliteStore::open(&path).await?;
        store
            .insert_org(&assay_core::Organization {
                created_at: t,
                ..o.clone()
            })
            .await?;
    }
    // Migrations are idempotent and data persists.
    let store = assay_store::SqliteStore::open(&path).await?;
    let found = store.find_org("acme").await?.ok_or("org lost on reopen")?;
    assert_eq!(found.created_at, t);
    assert_eq!(found.id, o.id);
    Ok(())
}
