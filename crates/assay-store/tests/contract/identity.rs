//! Issue 3 identity operations: user updates, membership listing and removal, API token
//! listing, updates and rotation, usage tracking, bulk revocation, audit retention days.

use super::support::*;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord, Membership, OrgRole, User};
use assay_core::ports::Store;
use assay_core::{Error, Level, Organization, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

fn user(email: &str) -> User {
    User {
        id: Uuid::now_v7(),
        email: email.into(),
        display_name: format!("User {email}"),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        disabled: false,
        created_at: T0,
    }
}

fn token(org_id: Uuid, name: &str, secret: char, created_at: Timestamp) -> ApiTokenRecord {
    ApiTokenRecord {
        id: Uuid::now_v7(),
        org_id,
        name: name.into(),
        description: format!("{name} token"),
        kind: ApiTokenKind::Member,
        grants: [(Uuid::now_v7(), Level::Run)].into_iter().collect(),
        secret_hash: secret.to_string().repeat(64),
        created_by: Some(Uuid::now_v7()),
        created_at,
        expires_at: Some(at(90 * 86_400)),
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        previous_secret_hash: None,
        previous_valid_until: None,
    }
}

async fn new_org(store: &dyn Store) -> assay_core::Organization {
    let o = org(&format!("org-{}", Uuid::now_v7().simple()));
    store.insert_org(&o).await.unwrap();
    o
}

pub async fn update_user(store: Arc<dyn Store>) {
    let ada = user("ada@example.com");
    let bob = user("bob@example.com");
    store.insert_user(&ada).await.unwrap();
    store.insert_user(&bob).await.unwrap();

    let changed = User {
        email: "Ada@New.Example".into(),
        display_name: "Ada L.".into(),
        password_hash: None,
        disabled: true,
        // Creation time is not a mutable field.
        created_at: at(500),
        ..ada.clone()
    };
    store.update_user(&changed).await.unwrap();
    let expected = User {
        created_at: T0,
        ..changed.clone()
    };
    assert_eq!(
        store.find_user(ada.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.find_user_by_email("ada@new.example").await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.find_user_by_email("ada@example.com").await.unwrap(),
        None
    );

    // Taking another user's email (in any case) is a conflict and changes nothing.
    let stealing = User {
        email: "BOB@example.com".into(),
        ..expected.clone()
    };
    assert_conflict(store.update_user(&stealing).await);
    assert_eq!(store.find_user(ada.id).await.unwrap(), Some(expected));
    assert_eq!(store.find_user(bob.id).await.unwrap(), Some(bob));

    let ghost = user("ghost@example.com");
    match store.update_user(&ghost).await {
        Err(Error::NotFound { kind: "user", name }) => assert_eq!(name, ghost.id.to_string()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(store.find_user(ghost.id).await.unwrap(), None);
}

pub async fn memberships_list_delete(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    let p = new_org(store.as_ref()).await;
    let (a, b, c) = (user("a@x.test"), user("b@x.test"), user("c@x.test"));
    for u in [&a, &b, &c] {
        store.insert_user(u).await.unwrap();
    }
    let ma = Membership {
        org_id: o.id,
        user_id: a.id,
        role: OrgRole::Owner,
        grants: BTreeMap::new(),
    };
    let mb = Membership {
        org_id: o.id,
        user_id: b.id,
        role: OrgRole::Member,
        grants: [
            (Uuid::now_v7(), Level::Read),
            (Uuid::now_v7(), Level::Admin),
        ]
        .into_iter()
        .collect(),
    };
    let mc = Membership {
        org_id: p.id,
        user_id: c.id,
        role: OrgRole::Admin,
        grants: BTreeMap::new(),
    };
    // Inserted out of order: listing is by user ID.
    for m in [&mb, &mc, &ma] {
        store.upsert_membership(m).await.unwrap();
    }
    let mut expected = vec![ma.clone(), mb.clone()];
    expected.sort_by_key(|m| m.user_id);
    assert_eq!(store.list_memberships(o.id).await.unwrap(), expected);
    assert_eq!(
        store.list_memberships(p.id).await.unwrap(),
        vec![mc.clone()]
    );
    assert_eq!(
        store.list_memberships(Uuid::now_v7()).await.unwrap(),
        vec![]
    );

    assert!(store.delete_membership(o.id, b.id).await.unwrap());
    assert!(!store.delete_membership(o.id, b.id).await.unwrap());
    // c is a member of p, not of o.
    assert!(!store.delete_membership(o.id, c.id).await.unwrap());
    assert_eq!(store.list_memberships(o.id).await.unwrap(), vec![ma]);
    assert_eq!(store.find_membership(o.id, b.id).await.unwrap(), None);
    assert_eq!(store.list_memberships(p.id).await.unwrap(), vec![mc]);
    // The user outlives the membership.
    assert_eq!(store.find_user(b.id).await.unwrap(), Some(b));
}

pub async fn memberships_of_user(store: Arc<dyn Store>) {
    let orgs = [
        new_org(store.as_ref()).await,
        new_org(store.as_ref()).await,
        new_org(store.as_ref()).await,
    ];
    let (a, b) = (user("a@x.test"), user("b@x.test"));
    for u in [&a, &b] {
        store.insert_user(u).await.unwrap();
    }
    let env = Uuid::now_v7();
    let in_org = |org: &Organization, user: &User, role, grants: &[(Uuid, Level)]| Membership {
        org_id: org.id,
        user_id: user.id,
        role,
        grants: grants.iter().copied().collect(),
    };
    let a0 = in_org(&orgs[0], &a, OrgRole::Owner, &[]);
    let a2 = in_org(&orgs[2], &a, OrgRole::Member, &[(env, Level::Run)]);
    let b1 = in_org(&orgs[1], &b, OrgRole::Admin, &[]);
    // Inserted out of order: listing is by organization ID.
    for m in [&a2, &b1, &a0] {
        store.upsert_membership(m).await.unwrap();
    }
    let mut expected = vec![a0.clone(), a2.clone()];
    expected.sort_by_key(|m| m.org_id);
    assert_eq!(
        store.list_memberships_of_user(a.id).await.unwrap(),
        expected
    );
    assert_eq!(
        store.list_memberships_of_user(b.id).await.unwrap(),
        vec![b1.clone()]
    );
    assert_eq!(
        store
            .list_memberships_of_user(Uuid::now_v7())
            .await
            .unwrap(),
        vec![]
    );
    // A changed role and a removed membership show at once.
    let a0 = Membership {
        role: OrgRole::Member,
        ..a0
    };
    store.upsert_membership(&a0).await.unwrap();
    assert!(store.delete_membership(orgs[2].id, a.id).await.unwrap());
    assert_eq!(
        store.list_memberships_of_user(a.id).await.unwrap(),
        vec![a0]
    );
}

pub async fn api_token_list_get(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    let p = new_org(store.as_ref()).await;
    let old = token(o.id, "old", 'a', at(0));
    let newest = token(o.id, "newest", 'b', at(10));
    let middle = token(o.id, "middle", 'c', at(5));
    // Same creation time as `middle`, higher ID: listed before it.
    let twin = token(o.id, "twin", 'd', at(5));
    let foreign = token(p.id, "foreign", 'e', at(20));
    for t in [&old, &newest, &middle, &twin, &foreign] {
        store.insert_api_token(t).await.unwrap();
    }
    assert!(twin.id > middle.id);
    assert_eq!(
        store.list_api_tokens(o.id).await.unwrap(),
        vec![newest.clone(), twin, middle, old.clone()]
    );
    assert_eq!(
        store.list_api_tokens(p.id).await.unwrap(),
        vec![foreign.clone()]
    );
    assert_eq!(store.list_api_tokens(Uuid::now_v7()).await.unwrap(), vec![]);

    assert_eq!(store.get_api_token(o.id, old.id).await.unwrap(), Some(old));
    // Another organization's token is invisible by ID.
    assert_eq!(store.get_api_token(o.id, foreign.id).await.unwrap(), None);
    assert_eq!(store.get_api_token(p.id, newest.id).await.unwrap(), None);
    assert_eq!(
        store.get_api_token(o.id, Uuid::now_v7()).await.unwrap(),
        None
    );
}

pub async fn api_token_update_and_rotation(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    let t = token(o.id, "ci", 'a', at(0));
    let other = token(o.id, "other", 'c', at(1));
    store.insert_api_token(&t).await.unwrap();
    store.insert_api_token(&other).await.unwrap();

    // Rotation with a grace period: new secret, the old one kept as previous.
    let rotated = ApiTokenRecord {
        name: "ci-renamed".into(),
        description: "rotated".into(),
        grants: [(Uuid::now_v7(), Level::Write)].into_iter().collect(),
        secret_hash: "b".repeat(64),
        previous_secret_hash: Some("a".repeat(64)),
        previous_valid_until: Some(at(3600)),
        expires_at: Some(at(30 * 86_400)),
        last_used_at: Some(at(7)),
        last_used_ip: Some("203.0.113.9".into()),
        ..t.clone()
    };
    // Kind, creator and creation time are not mutable: attempts to change them are ignored.
    let attempt = ApiTokenRecord {
        kind: ApiTokenKind::Admin,
        created_by: None,
        created_at: at(99),
        ..rotated.clone()
    };
    store.update_api_token(&attempt).await.unwrap();
    assert_eq!(
        store.get_api_token(o.id, t.id).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        store.find_api_token_by_hash(&"b".repeat(64)).await.unwrap(),
        Some(rotated.clone())
    );
    // The previous secret still finds the token; the caller checks previous_valid_until.
    assert_eq!(
        store.find_api_token_by_hash(&"a".repeat(64)).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        store.find_api_token_by_hash(&"c".repeat(64)).await.unwrap(),
        Some(other.clone())
    );

    // Rotating again without grace: the first secret stops matching at all.
    let rotated_again = ApiTokenRecord {
        secret_hash: "f".repeat(64),
        previous_secret_hash: None,
        previous_valid_until: None,
        revoked_at: Some(at(8)),
        expires_at: None,
        ..rotated.clone()
    };
    store.update_api_token(&rotated_again).await.unwrap();
    assert_eq!(
        store.find_api_token_by_hash(&"a".repeat(64)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_api_token_by_hash(&"b".repeat(64)).await.unwrap(),
        None
    );
    assert_eq!(
        store.find_api_token_by_hash(&"f".repeat(64)).await.unwrap(),
        Some(rotated_again.clone())
    );

    // A secret hash already in use is a conflict that does not echo the hash.
    let clash = ApiTokenRecord {
        secret_hash: "c".repeat(64),
        ..rotated_again.clone()
    };
    let message = assert_conflict(store.update_api_token(&clash).await);
    assert!(!message.contains(&"c".repeat(64)), "hash leaked: {message}");
    assert_eq!(
        store.get_api_token(o.id, t.id).await.unwrap(),
        Some(rotated_again.clone())
    );

    // Unknown ID, or the right ID under another organization: NotFound, nothing written.
    for missing in [
        ApiTokenRecord {
            id: Uuid::now_v7(),
            ..rotated_again.clone()
        },
        ApiTokenRecord {
            org_id: Uuid::now_v7(),
            name: "hijack".into(),
            ..rotated_again.clone()
        },
    ] {
        match store.update_api_token(&missing).await {
            Err(Error::NotFound {
                kind: "api token",
                name,
            }) => assert_eq!(name, missing.id.to_string()),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(
        store.get_api_token(o.id, t.id).await.unwrap(),
        Some(rotated_again)
    );
    assert_eq!(
        store.get_api_token(o.id, other.id).await.unwrap(),
        Some(other)
    );
}

pub async fn token_usage_batched_and_monotonic(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    let t1 = token(o.id, "one", 'a', at(0));
    let t2 = token(o.id, "two", 'b', at(0));
    let t3 = token(o.id, "three", 'c', at(0));
    for t in [&t1, &t2, &t3] {
        store.insert_api_token(t).await.unwrap();
    }
    let ip = |s: &str| Some(s.to_string());
    store
        .record_token_usage(&[
            (t1.id, at(10), ip("192.0.2.1")),
            (t1.id, at(20), ip("192.0.2.2")),
            (t1.id, at(15), ip("192.0.2.3")),
            (t2.id, at(5), None),
            // Unknown tokens are ignored.
            (Uuid::now_v7(), at(1), ip("192.0.2.9")),
        ])
        .await
        .unwrap();
    let used = |t: &ApiTokenRecord, when: i64, ip: Option<String>| ApiTokenRecord {
        last_used_at: Some(at(when)),
        last_used_ip: ip,
        ..t.clone()
    };
    let get = |id| {
        let store = store.clone();
        let org_id = o.id;
        async move { store.get_api_token(org_id, id).await.unwrap().unwrap() }
    };
    assert_eq!(get(t1.id).await, used(&t1, 20, ip("192.0.2.2")));
    assert_eq!(get(t2.id).await, used(&t2, 5, None));
    assert_eq!(get(t3.id).await, t3);

    // An older use (a late flush) does not move last use backwards, nor its IP.
    store
        .record_token_usage(&[
            (t1.id, at(12), ip("198.51.100.1")),
            (t2.id, at(6), ip("198.51.100.2")),
        ])
        .await
        .unwrap();
    assert_eq!(get(t1.id).await, used(&t1, 20, ip("192.0.2.2")));
    assert_eq!(get(t2.id).await, used(&t2, 6, ip("198.51.100.2")));
    // The same time again changes nothing either.
    store
        .record_token_usage(&[(t1.id, at(20), ip("198.51.100.3"))])
        .await
        .unwrap();
    assert_eq!(get(t1.id).await, used(&t1, 20, ip("192.0.2.2")));
    store.record_token_usage(&[]).await.unwrap();

    // Concurrent flushes in random order: the newest use wins.
    let mut tasks = Vec::new();
    for i in (0..24).rev() {
        let store = store.clone();
        let (a, b) = (t1.id, t3.id);
        tasks.push(tokio::spawn(async move {
            let ip = Some(format!("10.0.0.{i}"));
            store
                .record_token_usage(&[(a, at(100 + i), ip.clone()), (b, at(100 + i), ip)])
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(get(t1.id).await, used(&t1, 123, ip("10.0.0.23")));
    assert_eq!(get(t3.id).await, used(&t3, 123, ip("10.0.0.23")));
    assert_eq!(get(t2.id).await, used(&t2, 6, ip("198.51.100.2")));
}

pub async fn revoke_tokens_created_by(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    let p = new_org(store.as_ref()).await;
    let creator = Uuid::now_v7();
    let by = |t: ApiTokenRecord, who: Option<Uuid>| ApiTokenRecord {
        created_by: who,
        ..t
    };
    let a = by(token(o.id, "a", 'a', at(0)), Some(creator));
    let b = ApiTokenRecord {
        revoked_at: Some(at(1)),
        ..by(token(o.id, "b", 'b', at(0)), Some(creator))
    };
    let c = by(token(o.id, "c", 'c', at(0)), Some(creator));
    let d = by(token(p.id, "d", 'd', at(0)), Some(creator));
    let e = by(token(o.id, "e", 'e', at(0)), Some(Uuid::now_v7()));
    let f = by(token(o.id, "f", 'f', at(0)), None);
    for t in [&a, &b, &c, &d, &e, &f] {
        store.insert_api_token(t).await.unwrap();
    }
    assert_eq!(
        store
            .revoke_api_tokens_created_by(o.id, creator, at(50))
            .await
            .unwrap(),
        2
    );
    let revoked = |t: &ApiTokenRecord| ApiTokenRecord {
        revoked_at: Some(at(50)),
        ..t.clone()
    };
    for (t, expected) in [
        (&a, revoked(&a)),
        (&b, b.clone()),
        (&c, revoked(&c)),
        (&e, e.clone()),
        (&f, f.clone()),
    ] {
        assert_eq!(
            store.get_api_token(o.id, t.id).await.unwrap(),
            Some(expected)
        );
    }
    assert_eq!(store.get_api_token(p.id, d.id).await.unwrap(), Some(d));
    // Already revoked: nothing more to do.
    assert_eq!(
        store
            .revoke_api_tokens_created_by(o.id, creator, at(60))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.get_api_token(o.id, a.id).await.unwrap(),
        Some(revoked(&a))
    );
}

pub async fn audit_retention_days(store: Arc<dyn Store>) {
    let o = new_org(store.as_ref()).await;
    assert_eq!(
        store
            .find_org(&o.slug)
            .await
            .unwrap()
            .unwrap()
            .audit_retention_days,
        180
    );
    let short = assay_core::Organization {
        audit_retention_days: 30,
        ..org(&format!("org-{}", Uuid::now_v7().simple()))
    };
    store.insert_org(&short).await.unwrap();
    assert_eq!(
        store.find_org(&short.slug).await.unwrap(),
        Some(short.clone())
    );

    store.set_audit_retention_days(o.id, 7).await.unwrap();
    let updated = assay_core::Organization {
        audit_retention_days: 7,
        ..o.clone()
    };
    assert_eq!(
        store.find_org(&o.id.to_string()).await.unwrap(),
        Some(updated.clone())
    );
    let listed = store.list_orgs().await.unwrap();
    assert!(
        listed.contains(&updated) && listed.contains(&short),
        "{listed:?}"
    );

    assert_invalid(
        store.set_audit_retention_days(o.id, 0).await,
        "retention_days",
    );
    assert_eq!(store.find_org(&o.slug).await.unwrap(), Some(updated));
    let ghost = Uuid::now_v7();
    match store.set_audit_retention_days(ghost, 5).await {
        Err(Error::NotFound {
            kind: "organization",
            name,
        }) => assert_eq!(name, ghost.to_string()),
        other => panic!("expected NotFound, got {other:?}"),
    }
    // The largest value round-trips.
    store
        .set_audit_retention_days(short.id, u32::MAX)
        .await
        .unwrap();
    assert_eq!(
        store
            .find_org(&short.slug)
            .await
            .unwrap()
            .unwrap()
            .audit_retention_days,
        u32::MAX
    );
}
