//! Issue 3 audit operations: group commit, filtered export pages, the activity report,
//! and retention with checkpoints.

use super::audit::event;
use super::support::*;
use assay_core::Timestamp;
use assay_core::actor::PrincipalKind;
use assay_core::audit::{ActorActivity, AuditEvent, AuditFilter, Outcome};
use assay_core::audit_chain::{self, GENESIS_PREV_HASH};
use assay_core::ports::Store;
use std::sync::Arc;
use uuid::Uuid;

fn all_events(store: &Arc<dyn Store>, org: Uuid) -> impl Future<Output = Vec<AuditEvent>> {
    let store = store.clone();
    async move { store.audit_events(org, 0, 100_000).await.unwrap() }
}

fn seqs(events: &[AuditEvent]) -> Vec<i64> {
    events.iter().map(|e| e.seq).collect()
}

// ----- group commit ------------------------------------------------------------------

pub async fn append_batch_two_orgs(store: Arc<dyn Store>) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut first = event(a, "before.batch");
    store.append_audit(&mut first).await.unwrap();

    let mut batch: Vec<AuditEvent> = (0..100)
        .map(|i| event(if i % 3 == 0 { b } else { a }, &format!("batch.{i}")))
        .collect();
    let originals = batch.clone();
    store.append_audit_batch(&mut batch).await.unwrap();

    // Positions are assigned in slice order within each organization.
    let (mut next_a, mut next_b) = (2, 1);
    let (mut prev_a, mut prev_b) = (first.hash.clone(), GENESIS_PREV_HASH.to_string());
    for (i, (ev, orig)) in batch.iter().zip(&originals).enumerate() {
        let (next, prev) = if i % 3 == 0 {
            (&mut next_b, &mut prev_b)
        } else {
            (&mut next_a, &mut prev_a)
        };
        assert_eq!((ev.seq, &ev.prev_hash), (*next, &*prev), "event {i}");
        assert_eq!(ev.hash, audit_chain::chain_hash(ev));
        assert_eq!(
            AuditEvent {
                seq: 0,
                prev_hash: String::new(),
                hash: String::new(),
                ..ev.clone()
            },
            *orig
        );
        *next += 1;
        *prev = ev.hash.clone();
    }
    assert_eq!((next_a, next_b), (68, 35)); // 66 events for a (after `first`), 34 for b

    let chain_a = all_events(&store, a).await;
    let mut expected_a = vec![first.clone()];
    expected_a.extend(batch.iter().filter(|e| e.org_id == a).cloned());
    assert_eq!(chain_a, expected_a);
    audit_chain::verify(&chain_a, None).unwrap();
    let chain_b = all_events(&store, b).await;
    assert_eq!(
        chain_b,
        batch
            .iter()
            .filter(|e| e.org_id == b)
            .cloned()
            .collect::<Vec<_>>()
    );
    audit_chain::verify(&chain_b, None).unwrap();

    // A single append continues each chain; an empty batch is a no-op.
    let mut after = event(b, "after.batch");
    store.append_audit(&mut after).await.unwrap();
    assert_eq!((after.seq, &after.prev_hash), (35, &chain_b[33].hash));
    store.append_audit_batch(&mut []).await.unwrap();
    assert_eq!(all_events(&store, a).await.len(), 67);
}

pub async fn append_batch_all_or_nothing(store: Arc<dyn Store>) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut first = event(a, "first");
    store.append_audit(&mut first).await.unwrap();

    // The last event reuses an existing event's ID: nothing of the batch is stored.
    let mut batch = vec![event(a, "x"), event(b, "y"), event(a, "z")];
    batch[2].id = first.id;
    let before = batch.clone();
    assert_conflict(store.append_audit_batch(&mut batch).await);
    assert_eq!(batch, before, "a failed batch leaves the events untouched");
    assert_eq!(all_events(&store, a).await, vec![first.clone()]);
    assert_eq!(all_events(&store, b).await, vec![]);

    // Two events with one ID inside the same batch: the same.
    let mut batch = vec![event(b, "p"), event(b, "q")];
    batch[1].id = batch[0].id;
    let before = batch.clone();
    assert_conflict(store.append_audit_batch(&mut batch).await);
    assert_eq!(batch, before);
    assert_eq!(all_events(&store, b).await, vec![]);

    // The heads did not move: the next events take the next positions.
    let mut batch = vec![event(b, "ok.b"), event(a, "ok.a")];
    store.append_audit_batch(&mut batch).await.unwrap();
    assert_eq!(
        (batch[0].seq, batch[0].prev_hash.as_str()),
        (1, GENESIS_PREV_HASH)
    );
    assert_eq!((batch[1].seq, &batch[1].prev_hash), (2, &first.hash));
    audit_chain::verify(&all_events(&store, a).await, None).unwrap();
    audit_chain::verify(&all_events(&store, b).await, None).unwrap();
}

/// Batches and single appends racing on the same two organizations (opposite
/// organization order in alternate batches, which would deadlock on PostgreSQL without
/// a fixed lock order): every event gets a unique position, each batch's events of one
/// organization are consecutive, and both chains verify.
pub async fn concurrent_batches_and_appends(store: Arc<dyn Store>) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let (x, y) = if t % 2 == 0 { (a, b) } else { (b, a) };
            let mut batch: Vec<AuditEvent> = (0..10)
                .map(|i| event(if i < 5 { x } else { y }, &format!("batch.{t}.{i}")))
                .collect();
            store.append_audit_batch(&mut batch).await.unwrap();
            batch
        }));
    }
    let mut singles = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        singles.push(tokio::spawn(async move {
            let mut ev = event(if t % 2 == 0 { a } else { b }, &format!("single.{t}"));
            store.append_audit(&mut ev).await.unwrap();
            ev
        }));
    }
    let mut all: Vec<AuditEvent> = Vec::new();
    for t in tasks {
        let batch = t.await.unwrap();
        for org in [a, b] {
            let s: Vec<i64> = batch
                .iter()
                .filter(|e| e.org_id == org)
                .map(|e| e.seq)
                .collect();
            assert_eq!(s.len(), 5);
            assert!(
                s.windows(2).all(|w| w[1] == w[0] + 1),
                "not consecutive: {s:?}"
            );
        }
        all.extend(batch);
    }
    for t in singles {
        all.push(t.await.unwrap());
    }
    for org in [a, b] {
        let chain = all_events(&store, org).await;
        assert_eq!(seqs(&chain), (1..=88).collect::<Vec<i64>>());
        audit_chain::verify(&chain, None).unwrap();
        let mut mine: Vec<AuditEvent> = all.iter().filter(|e| e.org_id == org).cloned().collect();
        mine.sort_by_key(|e| e.seq);
        assert_eq!(chain, mine, "what appends returned is what was stored");
    }
}

// ----- export queries ----------------------------------------------------------------

struct Dataset {
    org: Uuid,
    events: Vec<AuditEvent>,
    ada: Uuid,
    env1: Uuid,
}

const ACTIONS: [&str; 5] = [
    "workflow.create",
    "token.created",
    "Token.revoked",
    "auth.failed",
    "token_created",
];

/// 30 events, one minute apart (seq = i + 1), over three actors, five actions, two
/// environments and none, three outcomes; plus look-alike events in another organization.
async fn dataset(store: &Arc<dyn Store>) -> Dataset {
    let org = Uuid::now_v7();
    let noise_org = Uuid::now_v7();
    let (ada, bob, ci) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let (env1, env2) = (Uuid::now_v7(), Uuid::now_v7());
    let mut events = Vec::new();
    for i in 0..30i64 {
        let n = usize::try_from(i).unwrap();
        let mut e = event(org, ACTIONS[n % 5]);
        e.time = at(i * 60);
        (e.actor.kind, e.actor.id, e.actor.name) = match n % 3 {
            0 => (PrincipalKind::User, ada, "Ada".to_string()),
            1 => (PrincipalKind::User, bob, "Bob".to_string()),
            _ => (PrincipalKind::ApiToken, ci, "ci-token".to_string()),
        };
        e.env_id = [Some(env1), Some(env2), None, Some(env1)][n % 4];
        e.outcome = [Outcome::Success, Outcome::Denied, Outcome::Error][n % 7 % 3];
        events.push(e);
    }
    store.append_audit_batch(&mut events).await.unwrap();
    let mut noise: Vec<AuditEvent> = events
        .iter()
        .map(|e| AuditEvent {
            id: Uuid::now_v7(),
            org_id: noise_org,
            ..e.clone()
        })
        .collect();
    store.append_audit_batch(&mut noise).await.unwrap();
    Dataset {
        org,
        events,
        ada,
        env1,
    }
}

/// The events at the given 0-based indexes (seq = index + 1).
fn pick(d: &Dataset, pred: impl Fn(usize) -> bool) -> Vec<AuditEvent> {
    d.events
        .iter()
        .enumerate()
        .filter(|(i, _)| pred(*i))
        .map(|(_, e)| e.clone())
        .collect()
}

pub async fn query_audit_filters(store: Arc<dyn Store>) {
    let d = dataset(&store).await;
    let q = |filter: AuditFilter| {
        let store = store.clone();
        let org = d.org;
        async move { store.query_audit(org, &filter, 0, 1000).await.unwrap() }
    };

    assert_eq!(q(AuditFilter::default()).await, d.events);
    // since/until are inclusive.
    let window = AuditFilter {
        since: Some(at(5 * 60)),
        until: Some(at(9 * 60)),
        ..Default::default()
    };
    assert_eq!(seqs(&q(window).await), vec![6, 7, 8, 9, 10]);
    let open_end = AuditFilter {
        since: Some(at(27 * 60 + 1)),
        ..Default::default()
    };
    assert_eq!(seqs(&q(open_end).await), vec![29, 30]);
    let open_start = AuditFilter {
        until: Some(at(60) - time::Duration::microseconds(1)),
        ..Default::default()
    };
    assert_eq!(seqs(&q(open_start).await), vec![1]);

    // Actor by ID or by exact name.
    let by = |actor: &str| AuditFilter {
        actor: Some(actor.into()),
        ..Default::default()
    };
    let ada = pick(&d, |i| i % 3 == 0);
    assert_eq!(ada.len(), 10);
    assert_eq!(q(by(&d.ada.to_string())).await, ada);
    assert_eq!(q(by("Ada")).await, ada);
    assert_eq!(q(by("ci-token")).await, pick(&d, |i| i % 3 == 2));
    assert_eq!(q(by("ada")).await, vec![]);
    assert_eq!(q(by(&Uuid::now_v7().to_string())).await, vec![]);

    // Action: exact, or a case-sensitive literal prefix with a trailing `*`.
    let action = |a: &str| AuditFilter {
        action: Some(a.into()),
        ..Default::default()
    };
    assert_eq!(q(action("token.created")).await, pick(&d, |i| i % 5 == 1));
    assert_eq!(q(action("token.*")).await, pick(&d, |i| i % 5 == 1));
    let token_any = q(action("token*")).await;
    assert_eq!(token_any.len(), 12);
    assert_eq!(token_any, pick(&d, |i| i % 5 == 1 || i % 5 == 4));
    // `_` and `%` are literal, not wildcards.
    assert_eq!(q(action("token_*")).await, pick(&d, |i| i % 5 == 4));
    assert_eq!(q(action("token%")).await, vec![]);
    assert_eq!(q(action("%*")).await, vec![]);
    assert_eq!(q(action("Token.*")).await, pick(&d, |i| i % 5 == 2));
    assert_eq!(q(action("*")).await, d.events);
    assert_eq!(q(action("token")).await, vec![]);

    // Environment by ID; anything else names no environment.
    let env = |e: &str| AuditFilter {
        env: Some(e.into()),
        ..Default::default()
    };
    assert_eq!(
        q(env(&d.env1.to_string())).await,
        pick(&d, |i| i % 4 == 0 || i % 4 == 3)
    );
    assert_eq!(q(env("dev")).await, vec![]);
    assert_eq!(q(env(&Uuid::now_v7().to_string())).await, vec![]);

    for (outcome, k) in [
        (Outcome::Success, 0),
        (Outcome::Denied, 1),
        (Outcome::Error, 2),
    ] {
        let filter = AuditFilter {
            outcome: Some(outcome),
            ..Default::default()
        };
        assert_eq!(q(filter).await, pick(&d, |i| i % 7 % 3 == k));
    }

    // Everything at once: Ada, token.*/auth actions of minutes 3..=27, succeeded or not.
    let combined = AuditFilter {
        since: Some(at(3 * 60)),
        until: Some(at(27 * 60)),
        actor: Some("Ada".into()),
        action: Some("token.*".into()),
        env: None,
        outcome: Some(Outcome::Denied),
    };
    // Ada (i % 3 == 0) and token.* (i % 5 == 1) → i ∈ {6, 21} within 3..=27; both succeeded.
    assert_eq!(q(combined.clone()).await, vec![]);
    let combined = AuditFilter {
        outcome: Some(Outcome::Success),
        ..combined
    };
    assert_eq!(seqs(&q(combined).await), vec![7, 22]);
    let with_env = AuditFilter {
        actor: Some("Bob".into()),
        env: Some(d.env1.to_string()),
        outcome: Some(Outcome::Error),
        ..Default::default()
    };
    // Bob (i % 3 == 1) in env1 (i % 4 ∈ {0, 3}) with an error (i % 7 % 3 == 2): i ∈ {16, 19}.
    assert_eq!(seqs(&q(with_env).await), vec![17, 20]);
}

pub async fn query_audit_paging(store: Arc<dyn Store>) {
    let d = dataset(&store).await;
    for filter in [
        AuditFilter::default(),
        AuditFilter {
            actor: Some(d.ada.to_string()),
            ..Default::default()
        },
        AuditFilter {
            action: Some("token*".into()),
            since: Some(at(4 * 60)),
            ..Default::default()
        },
    ] {
        let full = store.query_audit(d.org, &filter, 0, 1000).await.unwrap();
        assert!(full.len() >= 8, "{}", full.len());
        let mut paged = Vec::new();
        let mut after = 0;
        let mut pages = 0;
        loop {
            let page = store.query_audit(d.org, &filter, after, 3).await.unwrap();
            assert!(page.len() <= 3);
            let Some(last) = page.last() else { break };
            after = last.seq;
            paged.extend(page);
            pages += 1;
        }
        assert_eq!(paged, full);
        assert_eq!(pages, full.len().div_ceil(3));
    }
    // after_seq is exclusive; limit 0 returns nothing.
    let page = store
        .query_audit(d.org, &AuditFilter::default(), 7, 2)
        .await
        .unwrap();
    assert_eq!(seqs(&page), vec![8, 9]);
    let ada_after = store
        .query_audit(
            d.org,
            &AuditFilter {
                actor: Some("Ada".into()),
                ..Default::default()
            },
            7,
            2,
        )
        .await
        .unwrap();
    assert_eq!(seqs(&ada_after), vec![10, 13]);
    assert_eq!(
        store
            .query_audit(d.org, &AuditFilter::default(), 0, 0)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .query_audit(d.org, &AuditFilter::default(), 30, 10)
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .query_audit(Uuid::now_v7(), &AuditFilter::default(), 0, 10)
            .await
            .unwrap(),
        vec![]
    );
}

// ----- activity report ---------------------------------------------------------------

pub async fn audit_actors(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let (ada, bob, token) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let mk = |kind, id, name: &str, minute: i64| {
        let mut e = event(org, "x");
        e.actor.kind = kind;
        e.actor.id = id;
        e.actor.name = name.into();
        e.time = at(minute * 60);
        e
    };
    let mut events = vec![
        mk(PrincipalKind::User, ada, "Ada", 0), // before the window
        mk(PrincipalKind::User, ada, "Ada", 10),
        mk(PrincipalKind::User, bob, "Bob", 11),
        mk(PrincipalKind::ApiToken, token, "ci", 12),
        // Out of time order: still counted, and first/last are by time.
        mk(PrincipalKind::User, ada, "Ada", 9),
        mk(PrincipalKind::User, bob, "Bob", 20),
        mk(PrincipalKind::System, Uuid::nil(), "assay", 15),
        // Renamed: the report shows the name on the latest event.
        mk(PrincipalKind::User, ada, "Ada L.", 18),
        mk(PrincipalKind::ApiToken, token, "ci", 30), // after the window
    ];
    store.append_audit_batch(&mut events).await.unwrap();
    let mut other = vec![mk(PrincipalKind::User, ada, "Ada", 10)];
    other[0].org_id = Uuid::now_v7();
    store.append_audit_batch(&mut other).await.unwrap();

    let activity = |kind, id, name: &str, events, first: i64, last: i64| ActorActivity {
        kind,
        id,
        name: name.into(),
        events,
        first_seen: at(first * 60),
        last_seen: at(last * 60),
    };
    assert_eq!(
        store
            .audit_actors(org, at(9 * 60), at(20 * 60))
            .await
            .unwrap(),
        vec![
            activity(PrincipalKind::ApiToken, token, "ci", 1, 12, 12),
            activity(PrincipalKind::System, Uuid::nil(), "assay", 1, 15, 15),
            activity(PrincipalKind::User, ada, "Ada L.", 3, 9, 18),
            activity(PrincipalKind::User, bob, "Bob", 2, 11, 20),
        ]
    );
    assert_eq!(
        store.audit_actors(org, at(0), at(60 * 60)).await.unwrap(),
        vec![
            activity(PrincipalKind::ApiToken, token, "ci", 2, 12, 30),
            activity(PrincipalKind::System, Uuid::nil(), "assay", 1, 15, 15),
            activity(PrincipalKind::User, ada, "Ada L.", 4, 0, 18),
            activity(PrincipalKind::User, bob, "Bob", 2, 11, 20),
        ]
    );
    assert_eq!(
        store.audit_actors(org, at(0), at(9 * 60)).await.unwrap(),
        vec![activity(PrincipalKind::User, ada, "Ada", 2, 0, 9)]
    );
    assert_eq!(
        store
            .audit_actors(org, at(31 * 60), at(99 * 60))
            .await
            .unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .audit_actors(Uuid::now_v7(), at(0), at(99 * 60))
            .await
            .unwrap(),
        vec![]
    );
}

// ----- retention ---------------------------------------------------------------------

async fn appended(store: &Arc<dyn Store>, org: Uuid, minutes: &[i64]) -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = minutes
        .iter()
        .map(|m| {
            let mut e = event(org, &format!("minute.{m}"));
            e.time = at(m * 60);
            e
        })
        .collect();
    store.append_audit_batch(&mut events).await.unwrap();
    events
}

pub async fn purge_audit_before(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let bystander = Uuid::now_v7();
    // seq 6 is newer than its neighbours: the purge must stop there.
    let events = appended(&store, org, &[0, 1, 2, 3, 4, 100, 5, 6, 7, 8]).await;
    let others = appended(&store, bystander, &[0, 1, 2]).await;
    let now: Timestamp = at(1000 * 60);

    // Nothing older than the cut: nothing purged, no checkpoint.
    assert_eq!(
        store.purge_audit_before(org, at(0), now).await.unwrap(),
        None
    );
    assert_eq!(store.audit_checkpoint(org).await.unwrap(), None);
    // An organization without events.
    assert_eq!(
        store
            .purge_audit_before(Uuid::now_v7(), now, now)
            .await
            .unwrap(),
        None
    );

    let cp = store
        .purge_audit_before(org, at(7 * 60), now)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!((cp.org_id, cp.seq, &cp.hash), (org, 5, &events[4].hash));
    assert_eq!((cp.purged_before, cp.created_at), (at(7 * 60), now));
    assert_eq!(store.audit_checkpoint(org).await.unwrap(), Some(cp.clone()));
    let remaining = all_events(&store, org).await;
    assert_eq!(remaining, events[5..].to_vec());
    audit_chain::verify(&remaining, Some((cp.seq, cp.hash.as_str()))).unwrap();
    // Without the checkpoint the remainder does not verify from genesis.
    assert!(audit_chain::verify(&remaining, None).is_err());
    // Exports page on from where retention cut.
    assert_eq!(
        seqs(
            &store
                .query_audit(org, &AuditFilter::default(), 0, 3)
                .await
                .unwrap()
        ),
        vec![6, 7, 8]
    );

    // The newer seq 6 still blocks the same cut: nothing moves.
    assert_eq!(
        store
            .purge_audit_before(org, at(8 * 60), at(2000 * 60))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.audit_checkpoint(org).await.unwrap(), Some(cp.clone()));

    // A later cut passes it and moves the checkpoint.
    let later = at(2000 * 60);
    let cp2 = store
        .purge_audit_before(org, at(101 * 60), later)
        .await
        .unwrap()
        .expect("a second checkpoint");
    assert_eq!((cp2.seq, &cp2.hash), (10, &events[9].hash));
    assert_eq!((cp2.purged_before, cp2.created_at), (at(101 * 60), later));
    assert_eq!(
        store.audit_checkpoint(org).await.unwrap(),
        Some(cp2.clone())
    );
    assert_eq!(all_events(&store, org).await, vec![]);

    // Appends continue the chain from the (untouched) head.
    let mut next = event(org, "after.purge");
    store.append_audit(&mut next).await.unwrap();
    assert_eq!((next.seq, &next.prev_hash), (11, &cp2.hash));
    let mut more = vec![event(org, "a"), event(org, "b")];
    store.append_audit_batch(&mut more).await.unwrap();
    let remaining = all_events(&store, org).await;
    assert_eq!(seqs(&remaining), vec![11, 12, 13]);
    audit_chain::verify(&remaining, Some((cp2.seq, cp2.hash.as_str()))).unwrap();

    // Other organizations are untouched.
    assert_eq!(all_events(&store, bystander).await, others);
    assert_eq!(store.audit_checkpoint(bystander).await.unwrap(), None);
}

/// Purges racing with appends on the same organization. Every purge cuts before the
/// newer appended events; the widest cut (all 20 old events) always runs, so whatever the
/// interleaving the checkpoint ends at seq 20 and the rest verifies from it.
pub async fn purge_during_appends(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let old = appended(&store, org, &(0..20).collect::<Vec<_>>()).await;
    let mut tasks = Vec::new();
    for i in 0..10i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut e = event(org, "late");
            e.time = at(10_000 * 60);
            store.append_audit(&mut e).await.unwrap();
            store
                .purge_audit_before(org, at((i + 1) * 2 * 60), at(10_000 * 60))
                .await
                .unwrap()
        }));
    }
    let mut cuts = Vec::new();
    for t in tasks {
        cuts.extend(t.await.unwrap().map(|cp| cp.seq));
    }
    // Each purge that cut something moved the checkpoint forward.
    cuts.sort();
    assert!(cuts.windows(2).all(|w| w[0] < w[1]), "{cuts:?}");
    assert_eq!(cuts.last(), Some(&20), "{cuts:?}");
    let cp = store
        .audit_checkpoint(org)
        .await
        .unwrap()
        .expect("checkpoint");
    assert_eq!((cp.seq, &cp.hash), (20, &old[19].hash));
    let remaining = all_events(&store, org).await;
    assert_eq!(seqs(&remaining), (21..=30).collect::<Vec<i64>>());
    audit_chain::verify(&remaining, Some((cp.seq, cp.hash.as_str()))).unwrap();
    assert_eq!(
        store
            .purge_audit_before(org, at(9_999 * 60), at(10_000 * 60))
            .await
            .unwrap(),
        None
    );
}

/// Chains longer than one step of the purge's walk along the chain (1000 rows).
pub async fn purge_long_chain(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let events = appended(&store, org, &(0..2000).collect::<Vec<_>>()).await;
    let now = at(10_000 * 60);
    let cp = store
        .purge_audit_before(org, at(1500 * 60), now)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!((cp.seq, &cp.hash), (1500, &events[1499].hash));
    let remaining = all_events(&store, org).await;
    assert_eq!(remaining, events[1500..].to_vec());
    audit_chain::verify(&remaining, Some((cp.seq, cp.hash.as_str()))).unwrap();
    // Everything older than the cut, exactly a multiple of the step away.
    let cp = store
        .purge_audit_before(org, at(2000 * 60), now)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!((cp.seq, &cp.hash), (2000, &events[1999].hash));
    assert_eq!(all_events(&store, org).await, vec![]);
}
