//! Issue 5: what the OAuth authorization server stores — clients, grants, codes,
//! refresh tokens, the access-token denylist, signing keys, device authorizations.

use super::support::*;
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::oauth::*;
use assay_core::ports::Store;
use assay_core::{Error, Organization, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Barrier;
use uuid::Uuid;

const RESOURCE: &str = "https://assay.example/organizations/acme/environments/dev/mcp";

/// An organization with one member, and one registered client.
struct World {
    org: Organization,
    user: User,
    client: OAuthClient,
}

fn hash(tag: &str) -> String {
    // Stands in for a hex SHA-256: 64 hex characters, unique per call.
    format!("{:0>32}{}", tag.len(), Uuid::now_v7().simple())
}

fn client(id: &str, kind: OAuthClientKind) -> OAuthClient {
    OAuthClient {
        id: id.into(),
        kind,
        client_name: format!("Client {id}"),
        redirect_uris: vec![
            "http://127.0.0.1/callback".into(),
            "https://app.example/cb".into(),
        ],
        created_at: T0,
        last_used_at: None,
        expires_at: None,
    }
}

async fn new_user(store: &dyn Store, org: &Organization) -> User {
    let user = User {
        id: Uuid::now_v7(),
        email: format!("{}@example.com", Uuid::now_v7().simple()),
        display_name: "Ada".into(),
        password_hash: None,
        disabled: false,
        created_at: T0,
    };
    store.insert_user(&user).await.unwrap();
    store
        .upsert_membership(&Membership {
            org_id: org.id,
            user_id: user.id,
            role: OrgRole::Member,
            grants: BTreeMap::new(),
        })
        .await
        .unwrap();
    user
}

async fn world(store: &dyn Store) -> World {
    let (org, _) = org_env(store).await;
    let user = new_user(store, &org).await;
    let client = client(
        &format!("dcr_{}", Uuid::now_v7().simple()),
        OAuthClientKind::Registered,
    );
    store.insert_oauth_client(&client).await.unwrap();
    World { org, user, client }
}

fn grant_for(w: &World, scope: &str, resource: &str, created_at: Timestamp) -> OAuthGrant {
    OAuthGrant {
        id: Uuid::now_v7(),
        org_id: w.org.id,
        user_id: w.user.id,
        client_id: w.client.id.clone(),
        scope: scope.into(),
        resource: resource.into(),
        created_at,
        revoked_at: None,
        revoked_reason: None,
    }
}

fn code_for(g: &OAuthGrant, expires_at: Timestamp) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash("code"),
        grant_id: g.id,
        client_id: g.client_id.clone(),
        redirect_uri: "http://127.0.0.1:49152/callback".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        resource: g.resource.clone(),
        scope: g.scope.clone(),
        user_id: g.user_id,
        org_id: g.org_id,
        created_at: T0,
        expires_at,
        consumed_at: None,
    }
}

fn refresh_for(g: &OAuthGrant, family_id: Uuid) -> RefreshToken {
    RefreshToken {
        token_hash: hash("refresh"),
        family_id,
        grant_id: g.id,
        client_id: g.client_id.clone(),
        resource: g.resource.clone(),
        scope: g.scope.clone(),
        created_at: T0,
        expires_at: at(30 * 86_400),
        idle_expires_at: at(7 * 86_400),
        used_at: None,
        revoked_at: None,
    }
}

fn is_conflict<T: std::fmt::Debug>(r: assay_core::Result<T>) -> bool {
    matches!(r, Err(Error::Conflict(_)))
}

pub async fn oauth_clients(store: Arc<dyn Store>) {
    let cimd = client(
        "https://client.example/oauth/metadata.json",
        OAuthClientKind::MetadataDocument,
    );
    store.insert_oauth_client(&cimd).await.unwrap();
    let cli = client("assay-cli", OAuthClientKind::FirstParty);
    store.insert_oauth_client(&cli).await.unwrap();
    assert_eq!(
        store.get_oauth_client(&cimd.id).await.unwrap(),
        Some(cimd.clone())
    );
    assert_eq!(store.get_oauth_client(&cli.id).await.unwrap(), Some(cli));
    assert_eq!(store.get_oauth_client("nope").await.unwrap(), None);
    match store.insert_oauth_client(&cimd).await {
        Err(Error::Conflict(m)) => assert!(m.contains("client_id"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Touching keeps the latest use and reports unknown clients.
    assert!(store.touch_oauth_client(&cimd.id, at(20)).await.unwrap());
    assert!(store.touch_oauth_client(&cimd.id, at(10)).await.unwrap());
    let touched = store.get_oauth_client(&cimd.id).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(at(20)));
    assert!(!store.touch_oauth_client("nope", at(20)).await.unwrap());

    // Unused expired registrations go; used, unexpired, referenced or expiry-less stay.
    let (org, _) = org_env(store.as_ref()).await;
    let user = new_user(store.as_ref(), &org).await;
    let mut expired = client("dcr_expired", OAuthClientKind::Registered);
    expired.expires_at = Some(at(100));
    let mut boundary = client("dcr_boundary", OAuthClientKind::Registered);
    boundary.expires_at = Some(at(200));
    let mut later = client("dcr_later", OAuthClientKind::Registered);
    later.expires_at = Some(at(201));
    let mut used = client("dcr_used", OAuthClientKind::Registered);
    used.expires_at = Some(at(100));
    let mut granted = client("dcr_granted", OAuthClientKind::Registered);
    granted.expires_at = Some(at(100));
    let mut polled = client("dcr_device", OAuthClientKind::Registered);
    polled.expires_at = Some(at(100));
    for c in [&expired, &boundary, &later, &used, &granted, &polled] {
        store.insert_oauth_client(c).await.unwrap();
    }
    store.touch_oauth_client(&used.id, at(50)).await.unwrap();
    let w = World {
        org,
        user,
        client: granted.clone(),
    };
    store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    store
        .insert_device_authorization(&device(&polled.id, "WDJBMJHT", at(600)))
        .await
        .unwrap();

    assert_eq!(
        store.delete_expired_oauth_clients(at(200)).await.unwrap(),
        2
    );
    for (id, present) in [
        ("dcr_expired", false),
        ("dcr_boundary", false),
        ("dcr_later", true),
        ("dcr_used", true),
        ("dcr_granted", true),
        ("dcr_device", true),
        ("assay-cli", true),
        ("https://client.example/oauth/metadata.json", true),
    ] {
        assert_eq!(
            store.get_oauth_client(id).await.unwrap().is_some(),
            present,
            "{id}"
        );
    }
    assert_eq!(
        store.delete_expired_oauth_clients(at(200)).await.unwrap(),
        0
    );
}

pub async fn oauth_grants(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let first = grant_for(&w, "mcp:read mcp:run", RESOURCE, at(1));
    let stored = store.upsert_oauth_grant(&first).await.unwrap();
    assert_eq!(stored, first);
    assert_eq!(
        store.get_oauth_grant(first.id).await.unwrap(),
        Some(first.clone())
    );

    // Consenting again narrows the live grant in place: same ID and creation time.
    let again = grant_for(&w, "mcp:read", RESOURCE, at(5));
    let narrowed = store.upsert_oauth_grant(&again).await.unwrap();
    assert_eq!(
        narrowed,
        OAuthGrant {
            scope: "mcp:read".into(),
            ..first.clone()
        }
    );
    assert_eq!(store.get_oauth_grant(again.id).await.unwrap(), None);

    // Another resource is another grant; listing is newest first, live only.
    let base = grant_for(&w, "mcp:read", "https://assay.example", at(2));
    store.upsert_oauth_grant(&base).await.unwrap();
    let listed = store.list_oauth_grants(w.user.id).await.unwrap();
    assert_eq!(listed, vec![base.clone(), narrowed.clone()]);
    assert_eq!(
        store.list_oauth_grants(Uuid::now_v7()).await.unwrap(),
        vec![]
    );

    // Revoking one: reason recorded, gone from the list, second revoke is a no-op.
    assert!(
        store
            .revoke_oauth_grant(first.id, at(10), "user revoked")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_oauth_grant(first.id, at(11), "again")
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_oauth_grant(Uuid::now_v7(), at(11), "unknown")
            .await
            .unwrap()
    );
    let revoked = store.get_oauth_grant(first.id).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(10)));
    assert_eq!(revoked.revoked_reason.as_deref(), Some("user revoked"));
    assert_eq!(
        store.list_oauth_grants(w.user.id).await.unwrap(),
        vec![base.clone()]
    );

    // After revocation, consent creates a fresh grant.
    let fresh = grant_for(&w, "mcp:write", RESOURCE, at(20));
    assert_eq!(store.upsert_oauth_grant(&fresh).await.unwrap(), fresh);

    // The same ID for another triple clashes.
    let same_id = OAuthGrant {
        resource: "https://assay.example/elsewhere".into(),
        ..fresh.clone()
    };
    match store.upsert_oauth_grant(&same_id).await {
        Err(Error::Conflict(m)) => assert!(m.contains("ID"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }

    // Unknown user or client: the foreign keys answer Conflict.
    let mut orphan = grant_for(&w, "mcp:read", "https://other.example", T0);
    orphan.user_id = Uuid::now_v7();
    assert!(is_conflict(store.upsert_oauth_grant(&orphan).await));
    let mut orphan = grant_for(&w, "mcp:read", "https://other.example", T0);
    orphan.client_id = "unknown-client".into();
    assert!(is_conflict(store.upsert_oauth_grant(&orphan).await));
}

pub async fn oauth_grant_concurrent_consent(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for scope in ["mcp:read", "mcp:run"] {
        let (store, barrier) = (store.clone(), barrier.clone());
        let g = grant_for(&w, scope, RESOURCE, T0);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.upsert_oauth_grant(&g).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    // Both callers got the one live grant.
    assert_eq!(results[0].id, results[1].id);
    let live = store.list_oauth_grants(w.user.id).await.unwrap();
    assert_eq!(live.len(), 1);
    assert!(["mcp:read", "mcp:run"].contains(&live[0].scope.as_str()));
}

pub async fn oauth_revoke_grants_of_user(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let (other_org, _) = org_env(store.as_ref()).await;
    store
        .upsert_membership(&Membership {
            org_id: other_org.id,
            user_id: w.user.id,
            role: OrgRole::Member,
            grants: BTreeMap::new(),
        })
        .await
        .unwrap();
    let here = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let mut there = grant_for(&w, "mcp:read", "https://assay.example/other", T0);
    there.org_id = other_org.id;
    let there = store.upsert_oauth_grant(&there).await.unwrap();
    let bystander = World {
        user: new_user(store.as_ref(), &w.org).await,
        org: w.org.clone(),
        client: w.client.clone(),
    };
    let theirs = store
        .upsert_oauth_grant(&grant_for(&bystander, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let t_here = refresh_for(&here, Uuid::now_v7());
    let t_there = refresh_for(&there, Uuid::now_v7());
    let t_theirs = refresh_for(&theirs, Uuid::now_v7());
    for t in [&t_here, &t_there, &t_theirs] {
        store.insert_refresh_token(t).await.unwrap();
    }

    // Membership removed: only that organization's grants end.
    assert_eq!(
        store
            .revoke_oauth_grants_of_user(w.user.id, Some(w.org.id), at(5), "membership removed")
            .await
            .unwrap(),
        1
    );
    let g = store.get_oauth_grant(here.id).await.unwrap().unwrap();
    assert_eq!(g.revoked_reason.as_deref(), Some("membership removed"));
    assert!(matches!(
        store
            .use_refresh_token(&t_here.token_hash, at(6))
            .await
            .unwrap(),
        Some(RefreshRedemption::Revoked(_))
    ));
    assert_eq!(
        store.list_oauth_grants(w.user.id).await.unwrap(),
        vec![there.clone()]
    );

    // User disabled: everything else of theirs ends; the bystander keeps theirs.
    assert_eq!(
        store
            .revoke_oauth_grants_of_user(w.user.id, None, at(7), "user disabled")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_oauth_grants_of_user(w.user.id, None, at(8), "user disabled")
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.list_oauth_grants(w.user.id).await.unwrap(), vec![]);
    assert!(matches!(
        store.use_refresh_token(&t_there.token_hash, at(9)).await.unwrap(),
        Some(RefreshRedemption::Revoked(t)) if t.revoked_at == Some(at(7))
    ));
    assert_eq!(
        store.list_oauth_grants(bystander.user.id).await.unwrap(),
        vec![theirs]
    );
    assert!(matches!(
        store
            .use_refresh_token(&t_theirs.token_hash, at(9))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
}

pub async fn authorization_codes(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let code = code_for(&g, at(600));
    store.insert_authorization_code(&code).await.unwrap();
    match store.insert_authorization_code(&code).await {
        Err(Error::Conflict(m)) => assert!(!m.contains(&code.code_hash), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut orphan = code_for(&g, at(600));
    orphan.grant_id = Uuid::now_v7();
    assert!(is_conflict(store.insert_authorization_code(&orphan).await));

    assert_eq!(
        store
            .consume_authorization_code(&hash("unknown"), at(1))
            .await
            .unwrap(),
        None
    );
    let consumed = AuthorizationCode {
        consumed_at: Some(at(1)),
        ..code.clone()
    };
    assert_eq!(
        store
            .consume_authorization_code(&code.code_hash, at(1))
            .await
            .unwrap(),
        Some(CodeRedemption::First(consumed.clone()))
    );
    // The replay carries the first consumption's time.
    assert_eq!(
        store
            .consume_authorization_code(&code.code_hash, at(2))
            .await
            .unwrap(),
        Some(CodeRedemption::Replay(consumed))
    );

    // Expired codes are reported and left unconsumed, so they never count as replays.
    let late = code_for(&g, at(600));
    store.insert_authorization_code(&late).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store
                .consume_authorization_code(&late.code_hash, at(600))
                .await
                .unwrap(),
            Some(CodeRedemption::Expired(late.clone()))
        );
    }
}

pub async fn authorization_code_concurrent_consume(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    // Several rounds: each time, of two simultaneous presenters exactly one is first.
    for round in 0..10 {
        let code = code_for(&g, at(600));
        store.insert_authorization_code(&code).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for i in 0..2 {
            let (store, barrier, h) = (store.clone(), barrier.clone(), code.code_hash.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .consume_authorization_code(&h, at(round * 2 + i))
                    .await
                    .unwrap()
                    .unwrap()
            }));
        }
        let mut first = 0;
        let mut replay = 0;
        for t in tasks {
            match t.await.unwrap() {
                CodeRedemption::First(_) => first += 1,
                CodeRedemption::Replay(c) => {
                    assert!(c.consumed_at.is_some());
                    replay += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((first, replay), (1, 1), "round {round}");
    }
}

pub async fn refresh_tokens(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let family = Uuid::now_v7();
    let t1 = refresh_for(&g, family);
    store.insert_refresh_token(&t1).await.unwrap();
    assert!(is_conflict(store.insert_refresh_token(&t1).await));
    let mut orphan = refresh_for(&g, family);
    orphan.grant_id = Uuid::now_v7();
    assert!(is_conflict(store.insert_refresh_token(&orphan).await));
    assert_eq!(
        store
            .use_refresh_token(&hash("unknown"), at(1))
            .await
            .unwrap(),
        None
    );

    // Rotation: t1 used, t2 issued in the same family.
    let used = RefreshToken {
        used_at: Some(at(1)),
        ..t1.clone()
    };
    assert_eq!(
        store
            .use_refresh_token(&t1.token_hash, at(1))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(used.clone()))
    );
    let t2 = refresh_for(&g, family);
    store.insert_refresh_token(&t2).await.unwrap();

    // Presenting t1 again is a reuse; the caller revokes the family.
    assert_eq!(
        store
            .use_refresh_token(&t1.token_hash, at(2))
            .await
            .unwrap(),
        Some(RefreshRedemption::Reuse(used.clone()))
    );
    assert_eq!(store.revoke_refresh_family(family, at(3)).await.unwrap(), 2);
    assert_eq!(store.revoke_refresh_family(family, at(4)).await.unwrap(), 0);
    assert_eq!(
        store
            .use_refresh_token(&t2.token_hash, at(5))
            .await
            .unwrap(),
        Some(RefreshRedemption::Revoked(RefreshToken {
            revoked_at: Some(at(3)),
            ..t2.clone()
        }))
    );
    // Once the family has ended, the used t1 presented again is revoked, not a reuse:
    // no live session is at stake (see `refresh_used_after_the_family_ended`).
    assert_eq!(
        store
            .use_refresh_token(&t1.token_hash, at(6))
            .await
            .unwrap(),
        Some(RefreshRedemption::Revoked(RefreshToken {
            revoked_at: Some(at(3)),
            ..used.clone()
        }))
    );

    // Absolute and idle expiry; expired tokens stay unused.
    let mut absolute = refresh_for(&g, Uuid::now_v7());
    absolute.expires_at = at(100);
    absolute.idle_expires_at = at(200);
    let mut idle = refresh_for(&g, Uuid::now_v7());
    idle.idle_expires_at = at(100);
    for t in [&absolute, &idle] {
        store.insert_refresh_token(t).await.unwrap();
        for _ in 0..2 {
            assert_eq!(
                store
                    .use_refresh_token(&t.token_hash, at(100))
                    .await
                    .unwrap(),
                Some(RefreshRedemption::Expired(t.clone()))
            );
        }
    }
    let mut live = refresh_for(&g, Uuid::now_v7());
    live.idle_expires_at = at(100);
    store.insert_refresh_token(&live).await.unwrap();
    assert!(matches!(
        store
            .use_refresh_token(&live.token_hash, at(99))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));

    // Revoking by grant reaches every family of the grant, and only that grant.
    let other = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", "https://assay.example", T0))
        .await
        .unwrap();
    let t_other = refresh_for(&other, Uuid::now_v7());
    store.insert_refresh_token(&t_other).await.unwrap();
    let fresh = refresh_for(&g, Uuid::now_v7());
    store.insert_refresh_token(&fresh).await.unwrap();
    // Unrevoked: absolute, idle, fresh, and `live` (used tokens are revoked too).
    assert_eq!(
        store
            .revoke_refresh_tokens_of_grant(g.id, at(7))
            .await
            .unwrap(),
        4
    );
    assert!(matches!(
        store
            .use_refresh_token(&fresh.token_hash, at(8))
            .await
            .unwrap(),
        Some(RefreshRedemption::Revoked(_))
    ));
    assert!(matches!(
        store
            .use_refresh_token(&t_other.token_hash, at(8))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
}

/// A used token is a reuse while its family lives, and merely revoked once the family has
/// ended (its login signed out, its grant revoked): a stale copy presented after logout must
/// not end the grant's other sessions. A family that is live again (a successor inserted
/// after the revocation) makes it a reuse again.
pub async fn refresh_used_after_the_family_ended(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let (ended, other) = (Uuid::now_v7(), Uuid::now_v7());
    // Family `ended`: r1 rotated to r2, then signed out (family revoked).
    let r1 = refresh_for(&g, ended);
    store.insert_refresh_token(&r1).await.unwrap();
    assert!(matches!(
        store
            .use_refresh_token(&r1.token_hash, at(1))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
    let r2 = refresh_for(&g, ended);
    store.insert_refresh_token(&r2).await.unwrap();
    // Family `other`: another login of the same grant, o1 rotated to o2.
    let o1 = refresh_for(&g, other);
    store.insert_refresh_token(&o1).await.unwrap();
    assert!(matches!(
        store
            .use_refresh_token(&o1.token_hash, at(1))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
    let o2 = refresh_for(&g, other);
    store.insert_refresh_token(&o2).await.unwrap();

    assert_eq!(store.revoke_refresh_family(ended, at(2)).await.unwrap(), 2);
    let spent = RefreshToken {
        used_at: Some(at(1)),
        revoked_at: Some(at(2)),
        ..r1.clone()
    };
    for now in [at(3), at(4)] {
        assert_eq!(
            store.use_refresh_token(&r1.token_hash, now).await.unwrap(),
            Some(RefreshRedemption::Revoked(spent.clone()))
        );
    }
    // The other family is untouched: its used token is still a reuse, its successor live.
    assert!(matches!(
        store.use_refresh_token(&o1.token_hash, at(5)).await.unwrap(),
        Some(RefreshRedemption::Reuse(t)) if t.revoked_at.is_none()
    ));
    assert!(store.is_refresh_family_live(other).await.unwrap());

    // A successor of the ended family inserted after its revocation makes it live again:
    // r1 is a reuse once more.
    let r3 = refresh_for(&g, ended);
    store.insert_refresh_token(&r3).await.unwrap();
    assert_eq!(
        store
            .use_refresh_token(&r1.token_hash, at(6))
            .await
            .unwrap(),
        Some(RefreshRedemption::Reuse(spent))
    );
    // Nothing of this was a use: r3 is still unused.
    assert!(matches!(
        store
            .use_refresh_token(&r3.token_hash, at(7))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
}

pub async fn refresh_revoked_with_grant(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let t = refresh_for(&g, Uuid::now_v7());
    store.insert_refresh_token(&t).await.unwrap();
    assert!(
        store
            .revoke_oauth_grant(g.id, at(1), "refresh reuse")
            .await
            .unwrap()
    );
    assert_eq!(
        store.use_refresh_token(&t.token_hash, at(2)).await.unwrap(),
        Some(RefreshRedemption::Revoked(RefreshToken {
            revoked_at: Some(at(1)),
            ..t
        }))
    );
}

/// A family (one sign-in session) is live while any of its tokens is unrevoked: rotation
/// and expiry keep it live, revoking the family, the grant or the user's grants end it.
/// Also: finding a token by hash reads it without using it.
pub async fn refresh_family_liveness(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let live = |family| {
        let store = store.clone();
        async move { store.is_refresh_family_live(family).await.unwrap() }
    };
    assert!(!live(Uuid::now_v7()).await, "an unknown family is not live");

    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let a1 = refresh_for(&g, a);
    store.insert_refresh_token(&a1).await.unwrap();
    assert!(live(a).await);
    // Finding a token reads it without using it.
    assert_eq!(
        store.find_refresh_token(&hash("unknown")).await.unwrap(),
        None
    );
    for _ in 0..2 {
        assert_eq!(
            store.find_refresh_token(&a1.token_hash).await.unwrap(),
            Some(a1.clone())
        );
    }
    // Rotation: the used token is not revoked, and its successor joins the family.
    assert!(matches!(
        store
            .use_refresh_token(&a1.token_hash, at(1))
            .await
            .unwrap(),
        Some(RefreshRedemption::First(_))
    ));
    assert!(live(a).await);
    store
        .insert_refresh_token(&refresh_for(&g, a))
        .await
        .unwrap();
    assert!(live(a).await);
    store
        .insert_refresh_token(&refresh_for(&g, b))
        .await
        .unwrap();
    // Expiry revokes nothing (the access tokens it issued end at their own `exp`).
    let mut expired = refresh_for(&g, c);
    expired.expires_at = at(2);
    expired.idle_expires_at = at(2);
    store.insert_refresh_token(&expired).await.unwrap();
    assert!(matches!(
        store
            .use_refresh_token(&expired.token_hash, at(3))
            .await
            .unwrap(),
        Some(RefreshRedemption::Expired(_))
    ));
    assert!(live(c).await);

    // Revoking one family leaves the grant's other families live.
    assert_eq!(store.revoke_refresh_family(a, at(4)).await.unwrap(), 2);
    assert!(!live(a).await);
    assert_eq!(
        store.find_refresh_token(&a1.token_hash).await.unwrap(),
        Some(RefreshToken {
            used_at: Some(at(1)),
            revoked_at: Some(at(4)),
            ..a1.clone()
        })
    );
    assert!(live(b).await);
    assert!(live(c).await);

    // Revoking the grant ends all of them.
    assert!(
        store
            .revoke_oauth_grant(g.id, at(5), "revoked")
            .await
            .unwrap()
    );
    assert!(!live(b).await);
    assert!(!live(c).await);

    // So do revoking a grant's refresh tokens, and revoking the user's grants.
    let other = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", "https://assay.example", T0))
        .await
        .unwrap();
    let (d, e) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .insert_refresh_token(&refresh_for(&other, d))
        .await
        .unwrap();
    assert!(live(d).await);
    store
        .revoke_refresh_tokens_of_grant(other.id, at(6))
        .await
        .unwrap();
    assert!(!live(d).await);
    let third = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", "https://assay.example/x", T0))
        .await
        .unwrap();
    store
        .insert_refresh_token(&refresh_for(&third, e))
        .await
        .unwrap();
    assert!(live(e).await);
    store
        .revoke_oauth_grants_of_user(w.user.id, None, at(7), "user disabled")
        .await
        .unwrap();
    assert!(!live(e).await);
}

pub async fn refresh_concurrent_use(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    for round in 0..10 {
        let t = refresh_for(&g, Uuid::now_v7());
        store.insert_refresh_token(&t).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for i in 0..2 {
            let (store, barrier, h) = (store.clone(), barrier.clone(), t.token_hash.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .use_refresh_token(&h, at(round * 2 + i))
                    .await
                    .unwrap()
                    .unwrap()
            }));
        }
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(match task.await.unwrap() {
                RefreshRedemption::First(_) => "first",
                RefreshRedemption::Reuse(_) => "reuse",
                other => panic!("unexpected {other:?}"),
            });
        }
        outcomes.sort();
        assert_eq!(outcomes, ["first", "reuse"], "round {round}");
    }
}

pub async fn revoked_access_tokens(store: Arc<dyn Store>) {
    let jti = Uuid::now_v7().to_string();
    let other = Uuid::now_v7().to_string();
    assert!(!store.is_access_token_revoked(&jti).await.unwrap());
    store.revoke_access_token(&jti, at(600)).await.unwrap();
    // Idempotent; a later expiry extends the denial, an earlier one does not shorten it.
    store.revoke_access_token(&jti, at(300)).await.unwrap();
    store.revoke_access_token(&other, at(100)).await.unwrap();
    assert!(store.is_access_token_revoked(&jti).await.unwrap());
    assert!(store.is_access_token_revoked(&other).await.unwrap());
    assert_eq!(store.purge_revoked_access_tokens(at(100)).await.unwrap(), 1);
    assert!(!store.is_access_token_revoked(&other).await.unwrap());
    assert!(store.is_access_token_revoked(&jti).await.unwrap());
    assert_eq!(store.purge_revoked_access_tokens(at(599)).await.unwrap(), 0);
    store.revoke_access_token(&jti, at(900)).await.unwrap();
    assert_eq!(store.purge_revoked_access_tokens(at(600)).await.unwrap(), 0);
    assert_eq!(store.purge_revoked_access_tokens(at(900)).await.unwrap(), 1);
    assert!(!store.is_access_token_revoked(&jti).await.unwrap());
}

pub async fn signing_keys(store: Arc<dyn Store>) {
    let key = |kid: &str, created: i64| SigningKeyRecord {
        kid: kid.into(),
        private_pkcs8: (0..=255u8).chain([0, 1, 2]).collect(),
        created_at: at(created),
        retired_at: None,
    };
    let (k1, k2, k3) = (key("k1", 0), key("k2", 100), key("k3", 200));
    for k in [&k1, &k2, &k3] {
        store.insert_signing_key(k).await.unwrap();
    }
    match store.insert_signing_key(&k1).await {
        Err(Error::Conflict(m)) => assert!(m.contains("kid"), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        store.list_signing_keys(at(0)).await.unwrap(),
        vec![k3.clone(), k2.clone(), k1.clone()]
    );

    assert!(store.retire_signing_key("k1", at(150)).await.unwrap());
    assert!(!store.retire_signing_key("k1", at(160)).await.unwrap());
    assert!(!store.retire_signing_key("nope", at(160)).await.unwrap());
    assert!(store.retire_signing_key("k2", at(250)).await.unwrap());
    let k2_retired = SigningKeyRecord {
        retired_at: Some(at(250)),
        ..k2.clone()
    };
    // Current plus the recently retired one; k1 retired before the window.
    assert_eq!(
        store.list_signing_keys(at(200)).await.unwrap(),
        vec![k3.clone(), k2_retired]
    );
    assert_eq!(
        store.list_signing_keys(at(250)).await.unwrap(),
        vec![k3.clone()]
    );

    // Re-sealing replaces the private half only; retired keys too.
    let sealed = b"v1:sealed bytes".to_vec();
    assert!(
        store
            .update_signing_key_private("k3", &sealed)
            .await
            .unwrap()
    );
    assert!(
        store
            .update_signing_key_private("k1", &sealed)
            .await
            .unwrap()
    );
    assert!(
        !store
            .update_signing_key_private("nope", &sealed)
            .await
            .unwrap()
    );
    let all = store.list_signing_keys(at(-1)).await.unwrap();
    assert_eq!(all.len(), 3);
    let private = |kid: &str| {
        all.iter()
            .find(|k| k.kid == kid)
            .map(|k| k.private_pkcs8.clone())
    };
    assert_eq!(private("k1"), Some(sealed.clone()));
    assert_eq!(private("k2"), Some(k2.private_pkcs8.clone()));
    assert_eq!(
        all[0],
        SigningKeyRecord {
            private_pkcs8: sealed.clone(),
            ..k3
        }
    );
}

fn device(client_id: &str, user_code: &str, expires_at: Timestamp) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code_hash: hash("device"),
        user_code: user_code.into(),
        client_id: client_id.into(),
        scope: "mcp:read".into(),
        resource: RESOURCE.into(),
        created_at: T0,
        expires_at,
        interval_secs: 5,
        last_poll_at: None,
        status: DeviceStatus::Pending,
    }
}

pub async fn device_authorizations(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let d = device(&w.client.id, "BCDFGHJK", at(600));
    store.insert_device_authorization(&d).await.unwrap();
    assert_eq!(
        store
            .get_device_authorization(&d.device_code_hash)
            .await
            .unwrap(),
        Some(d.clone())
    );
    assert_eq!(
        store.get_device_authorization(&hash("x")).await.unwrap(),
        None
    );
    // The same device code, or the same user code while pending: Conflict.
    assert!(is_conflict(store.insert_device_authorization(&d).await));
    let clash = device(&w.client.id, "BCDFGHJK", at(600));
    assert!(is_conflict(store.insert_device_authorization(&clash).await));
    let unknown_client = device("unknown", "LMNPQRST", at(600));
    assert!(is_conflict(
        store.insert_device_authorization(&unknown_client).await
    ));

    // Found by user code while pending and unexpired.
    assert_eq!(
        store
            .find_pending_device_authorization("BCDFGHJK", at(599))
            .await
            .unwrap(),
        Some(d.clone())
    );
    assert_eq!(
        store
            .find_pending_device_authorization("BCDFGHJK", at(600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_pending_device_authorization("ZZZZZZZZ", at(1))
            .await
            .unwrap(),
        None
    );

    // Polls: each returns the state before it.
    assert_eq!(
        store
            .record_device_poll(&d.device_code_hash, at(5))
            .await
            .unwrap(),
        Some(d.clone())
    );
    let polled = store
        .record_device_poll(&d.device_code_hash, at(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(polled.last_poll_at, Some(at(5)));
    assert_eq!(
        store.record_device_poll(&hash("x"), at(7)).await.unwrap(),
        None
    );

    // Approval happens once; afterwards the user code is free and no longer found.
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let approved = DeviceStatus::Approved {
        user_id: w.user.id,
        org_id: w.org.id,
        grant_id: g.id,
    };
    assert!(
        store
            .set_device_status(&d.device_code_hash, approved)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_device_status(&d.device_code_hash, DeviceStatus::Denied)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_device_status(&hash("x"), DeviceStatus::Denied)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_device_authorization(&d.device_code_hash)
            .await
            .unwrap(),
        Some(DeviceAuthorization {
            status: approved,
            last_poll_at: Some(at(7)),
            ..d.clone()
        })
    );
    assert_eq!(
        store
            .find_pending_device_authorization("BCDFGHJK", at(1))
            .await
            .unwrap(),
        None
    );
    let reused_code = device(&w.client.id, "BCDFGHJK", at(900));
    store
        .insert_device_authorization(&reused_code)
        .await
        .unwrap();

    // Denial; approval naming an unknown grant is refused by the foreign key.
    let denied = device(&w.client.id, "VWXZBCDF", at(300));
    store.insert_device_authorization(&denied).await.unwrap();
    let bogus = DeviceStatus::Approved {
        user_id: w.user.id,
        org_id: w.org.id,
        grant_id: Uuid::now_v7(),
    };
    assert!(is_conflict(
        store
            .set_device_status(&denied.device_code_hash, bogus)
            .await
    ));
    assert!(
        store
            .set_device_status(&denied.device_code_hash, DeviceStatus::Denied)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_device_authorization(&denied.device_code_hash)
            .await
            .unwrap()
            .unwrap()
            .status,
        DeviceStatus::Denied
    );

    // Purge by expiry.
    assert_eq!(
        store
            .purge_expired_device_authorizations(at(600))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .get_device_authorization(&reused_code.device_code_hash)
            .await
            .unwrap(),
        Some(reused_code)
    );
}

pub async fn device_concurrent_decisions(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let d = device(&w.client.id, "HJKLMNPQ", at(600));
    store.insert_device_authorization(&d).await.unwrap();
    let approved = DeviceStatus::Approved {
        user_id: w.user.id,
        org_id: w.org.id,
        grant_id: g.id,
    };
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for status in [approved, DeviceStatus::Denied] {
        let (store, barrier, h) = (store.clone(), barrier.clone(), d.device_code_hash.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (status, store.set_device_status(&h, status).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (status, won) = t.await.unwrap();
        if won {
            winners.push(status);
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = store
        .get_device_authorization(&d.device_code_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, winners[0]);
}

pub async fn authorization_code_purge(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let consumed = code_for(&g, at(300));
    let expired = code_for(&g, at(300));
    let live = code_for(&g, at(301));
    for c in [&consumed, &expired, &live] {
        store.insert_authorization_code(c).await.unwrap();
    }
    store
        .consume_authorization_code(&consumed.code_hash, at(1))
        .await
        .unwrap();
    // Expired at or before `now`, consumed or not.
    assert_eq!(
        store
            .purge_expired_authorization_codes(at(300))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .purge_expired_authorization_codes(at(300))
            .await
            .unwrap(),
        0
    );
    for gone in [&consumed, &expired] {
        assert_eq!(
            store
                .consume_authorization_code(&gone.code_hash, at(2))
                .await
                .unwrap(),
            None
        );
    }
    assert!(matches!(
        store
            .consume_authorization_code(&live.code_hash, at(2))
            .await
            .unwrap(),
        Some(CodeRedemption::First(_))
    ));
}

pub async fn device_interval_and_take(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let g = store
        .upsert_oauth_grant(&grant_for(&w, "mcp:read", RESOURCE, T0))
        .await
        .unwrap();
    let d = device(&w.client.id, "BCDFGHJK", at(600));
    store.insert_device_authorization(&d).await.unwrap();
    assert!(!store.set_device_interval(&hash("x"), 10).await.unwrap());
    assert!(
        store
            .set_device_interval(&d.device_code_hash, 10)
            .await
            .unwrap()
    );
    let stored = store
        .get_device_authorization(&d.device_code_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.interval_secs, 10);
    // Only an approved authorization can be taken.
    assert!(
        !store
            .take_approved_device_authorization(&d.device_code_hash)
            .await
            .unwrap()
    );
    let approved = DeviceStatus::Approved {
        user_id: w.user.id,
        org_id: w.org.id,
        grant_id: g.id,
    };
    assert!(
        store
            .set_device_status(&d.device_code_hash, approved)
            .await
            .unwrap()
    );
    // The interval no longer changes once decided.
    assert!(
        !store
            .set_device_interval(&d.device_code_hash, 15)
            .await
            .unwrap()
    );

    // Concurrent takers: exactly one wins, and the record is gone.
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, barrier, hash) = (store.clone(), barrier.clone(), d.device_code_hash.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store
                .take_approved_device_authorization(&hash)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(
        store
            .get_device_authorization(&d.device_code_hash)
            .await
            .unwrap(),
        None
    );
    let denied = device(&w.client.id, "LMNPQRST", at(600));
    store.insert_device_authorization(&denied).await.unwrap();
    store
        .set_device_status(&denied.device_code_hash, DeviceStatus::Denied)
        .await
        .unwrap();
    assert!(
        !store
            .take_approved_device_authorization(&denied.device_code_hash)
            .await
            .unwrap()
    );
}

pub async fn browser_sessions(store: Arc<dyn Store>) {
    let w = world(store.as_ref()).await;
    let session = |expires_at| BrowserSessionRecord {
        secret_hash: hash("session"),
        user_id: w.user.id,
        method: "password".into(),
        created_at: T0,
        expires_at,
    };
    let s = session(at(3600));
    store.insert_browser_session(&s).await.unwrap();
    match store.insert_browser_session(&s).await {
        Err(Error::Conflict(m)) => assert!(!m.contains(&s.secret_hash), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let orphan = BrowserSessionRecord {
        secret_hash: hash("orphan"),
        user_id: Uuid::now_v7(),
        ..s.clone()
    };
    assert!(is_conflict(store.insert_browser_session(&orphan).await));

    // Found while unexpired, by hash only.
    assert_eq!(
        store
            .find_browser_session(&s.secret_hash, at(3599))
            .await
            .unwrap(),
        Some(s.clone())
    );
    assert_eq!(
        store
            .find_browser_session(&s.secret_hash, at(3600))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .find_browser_session(&hash("other"), at(1))
            .await
            .unwrap(),
        None
    );

    let other = session(at(7200));
    store.insert_browser_session(&other).await.unwrap();
    assert_eq!(
        store
            .purge_expired_browser_sessions(at(3600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .find_browser_session(&other.secret_hash, at(3600))
            .await
            .unwrap(),
        Some(other.clone())
    );
    assert!(
        store
            .delete_browser_session(&other.secret_hash)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_browser_session(&other.secret_hash)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .find_browser_session(&other.secret_hash, at(1))
            .await
            .unwrap(),
        None
    );
}
