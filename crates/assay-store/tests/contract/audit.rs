//! The audit log: per-organization sequence and hash chain, also under concurrency.

use super::support::*;
use assay_core::actor::{AuthMethod, ClientInfo, PrincipalKind};
use assay_core::audit::{AuditActor, AuditEvent, Outcome};
use assay_core::ports::Store;
use assay_store::audit_chain::{self, ChainError, GENESIS_PREV_HASH};
use std::collections::HashSet;
use std::sync::Arc;
use time::macros::datetime;
use uuid::Uuid;

pub fn event(org_id: Uuid, action: &str) -> AuditEvent {
    AuditEvent {
        id: Uuid::now_v7(),
        // Nanosecond precision: the event JSON must keep it for the hash to verify.
        time: datetime!(2025-06-01 12:00:00.123456789 UTC),
        org_id,
        env_id: Some(Uuid::now_v7()),
        actor: AuditActor {
            kind: PrincipalKind::User,
            id: Uuid::now_v7(),
            name: "Ada".into(),
            auth_method: AuthMethod::OAuth,
            credential_id: Some("client-1".into()),
        },
        client: ClientInfo {
            ip: Some("198.51.100.4".into()),
            user_agent: Some("claude-code/1.0".into()),
            mcp_client: Some("claude-code 1.0".into()),
            request_id: Some("req-1".into()),
        },
        action: action.into(),
        resources: vec!["workflow:smoke".into()],
        outcome: Outcome::Success,
        reason: None,
        seq: 0,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

pub async fn audit_append_and_read(store: Arc<dyn Store>) {
    let org_a = Uuid::now_v7();
    let org_b = Uuid::now_v7();
    let mut appended = Vec::new();
    for i in 0..3 {
        let mut ev = event(org_a, &format!("workflow.action{i}"));
        if i == 1 {
            ev.outcome = Outcome::Denied;
            ev.reason = Some("needs write".into());
            ev.env_id = None;
        }
        let before = ev.clone();
        store.append_audit(&mut ev).await.unwrap();
        assert_eq!(ev.seq, i + 1);
        assert_eq!(ev.hash.len(), 64);
        assert_eq!(ev.hash, audit_chain::chain_hash(&ev));
        // Nothing but the chain fields changed.
        assert_eq!(
            AuditEvent {
                seq: 0,
                prev_hash: String::new(),
                hash: String::new(),
                ..ev.clone()
            },
            before
        );
        appended.push(ev);
    }
    assert_eq!(appended[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(appended[1].prev_hash, appended[0].hash);
    assert_eq!(appended[2].prev_hash, appended[1].hash);

    let mut other = event(org_b, "token.created");
    store.append_audit(&mut other).await.unwrap();
    assert_eq!(
        (other.seq, other.prev_hash.as_str()),
        (1, GENESIS_PREV_HASH)
    );

    // The head is kept apart from the events: (seq, hash) of the last append.
    assert_eq!(
        store.audit_head(org_a).await.unwrap(),
        Some((3, appended[2].hash.clone()))
    );
    assert_eq!(store.audit_head(Uuid::now_v7()).await.unwrap(), None);

    let read = store.audit_events(org_a, 0, 100).await.unwrap();
    assert_eq!(read, appended);
    audit_chain::verify(&read, None).unwrap();
    assert_eq!(
        store.audit_events(org_a, 1, 1).await.unwrap(),
        vec![appended[1].clone()]
    );
    assert_eq!(
        store.audit_events(org_a, 1, 100).await.unwrap(),
        appended[1..].to_vec()
    );
    audit_chain::verify(&appended[1..], Some((1, &appended[0].hash))).unwrap();
    assert!(store.audit_events(org_a, 3, 100).await.unwrap().is_empty());
    assert!(store.audit_events(org_a, 0, 0).await.unwrap().is_empty());
    assert_eq!(
        store.audit_events(org_b, 0, 100).await.unwrap(),
        vec![other]
    );
    assert!(
        store
            .audit_events(Uuid::now_v7(), 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn concurrent_append_audit(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let noise_org = Uuid::now_v7();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ev = event(org, &format!("run.{i}"));
            store.append_audit(&mut ev).await.unwrap();
            // Interleave another organization's chain.
            if i % 10 == 0 {
                let mut n = event(noise_org, "noise");
                store.append_audit(&mut n).await.unwrap();
            }
            ev
        }));
    }
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap().seq);
    }
    seqs.sort();
    assert_eq!(seqs, (1..=100).collect::<Vec<i64>>());
    let read = store.audit_events(org, 0, 1000).await.unwrap();
    assert_eq!(read.len(), 100);
    assert_eq!(
        read.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=100).collect::<Vec<i64>>()
    );
    audit_chain::verify(&read, None).unwrap();
    let actions: HashSet<_> = read.iter().map(|e| e.action.clone()).collect();
    assert_eq!(actions.len(), 100);
    let noise = store.audit_events(noise_org, 0, 1000).await.unwrap();
    assert_eq!(noise.len(), 10);
    audit_chain::verify(&noise, None).unwrap();
}

pub async fn audit_duplicate_and_tamper(store: Arc<dyn Store>) {
    let org = Uuid::now_v7();
    let mut first = event(org, "a");
    store.append_audit(&mut first).await.unwrap();
    // Appending the same event (same id) again is refused and changes nothing.
    let mut dup = event(org, "b");
    dup.id = first.id;
    let before = dup.clone();
    assert_conflict(store.append_audit(&mut dup).await);
    assert_eq!(dup, before, "a failed append leaves the event untouched");
    let mut second = event(org, "c");
    store.append_audit(&mut second).await.unwrap();
    assert_eq!(second.seq, 2, "the failed append did not consume a seq");
    assert_eq!(second.prev_hash, first.hash);

    // Verification catches edits, deletions and reordering.
    let mut third = event(org, "d");
    store.append_audit(&mut third).await.unwrap();
    let chain = store.audit_events(org, 0, 10).await.unwrap();
    audit_chain::verify(&chain, None).unwrap();
    let mut edited = chain.clone();
    edited[1].action = "something.else".into();
    assert_eq!(
        audit_chain::verify(&edited, None),
        Err(ChainError::BadHash { seq: 2 })
    );
    let removed = vec![chain[0].clone(), chain[2].clone()];
    assert_eq!(
        audit_chain::verify(&removed, None),
        Err(ChainError::Gap {
            seq: 3,
            expected: 2
        })
    );
    let mut relinked = chain.clone();
    relinked[2].prev_hash = chain[0].hash.clone();
    assert_eq!(
        audit_chain::verify(&relinked, None),
        Err(ChainError::BrokenLink { seq: 3 })
    );
}
