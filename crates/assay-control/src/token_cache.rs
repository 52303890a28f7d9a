//! A bounded, short-lived cache of API token records by secret hash, so a request does not
//! cost a database read to authenticate.
//!
//! It can never make a revoked or rotated-away token work in this process:
//! - revocation, rotation and disabling a member remove the affected entries *before* the
//!   control-plane call returns;
//! - an entry filled from a database read that raced with such a removal is not stored
//!   (every removal bumps a generation; a fill carries the generation it started under);
//! - every hit is re-checked (revocation, expiry and grace ends against the clock) by the
//!   authenticator, exactly as a fresh record would be.
//!
//! Several server replicas do not tell each other: another replica may accept a token
//! revoked elsewhere for at most the TTL (5 s by default).

use crate::ttl_map::TtlMap;
use assay_core::identity::ApiTokenRecord;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub(crate) const DEFAULT_CAPACITY: usize = 10_000;
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// A token as cached: its record and its organization's slug (to check the addressed
/// organization without a lookup).
#[derive(Debug, Clone)]
pub(crate) struct CachedToken {
    pub record: Arc<ApiTokenRecord>,
    pub org_slug: Arc<str>,
}

/// Keyed by secret hash (current and previous secret of a token are two keys).
pub(crate) struct TokenCache {
    map: TtlMap<String, CachedToken>,
}

impl TokenCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            map: TtlMap::new(capacity, ttl),
        }
    }

    /// Take this before reading the database for a fill.
    pub(crate) fn generation(&self) -> u64 {
        self.map.generation()
    }

    /// A fresh entry for the secret hash, if any (stale ones are dropped).
    pub(crate) fn get(&self, secret_hash: &str) -> Option<CachedToken> {
        self.map.get(secret_hash)
    }

    /// Stores a fill unless something was invalidated since `generation` was taken.
    pub(crate) fn insert(&self, secret_hash: String, token: CachedToken, generation: u64) {
        self.map.insert(secret_hash, token, generation);
    }

    /// After a revocation or rotation: every entry of the token (current and previous
    /// secret).
    pub(crate) fn forget_token(&self, id: Uuid) {
        self.map.forget_where(|t| t.record.id == id);
    }

    /// After a member was disabled or removed: every token they created.
    pub(crate) fn forget_created_by(&self, user_id: Uuid) {
        self.map
            .forget_where(|t| t.record.created_by == Some(user_id));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_core::identity::ApiTokenKind;
    use std::collections::BTreeMap;

    fn token(created_by: Option<Uuid>) -> CachedToken {
        CachedToken {
            record: Arc::new(ApiTokenRecord {
                id: Uuid::now_v7(),
                org_id: Uuid::nil(),
                name: "t".into(),
                description: String::new(),
                kind: ApiTokenKind::Admin,
                grants: BTreeMap::new(),
                secret_hash: "h".into(),
                created_by,
                created_at: time::OffsetDateTime::UNIX_EPOCH,
                expires_at: None,
                last_used_at: None,
                last_used_ip: None,
                revoked_at: None,
                previous_secret_hash: None,
                previous_valid_until: None,
            }),
            org_slug: "acme".into(),
        }
    }

    #[test]
    fn a_fill_that_raced_with_an_invalidation_is_not_stored() {
        let cache = TokenCache::new(10, DEFAULT_TTL);
        let t = token(None);
        let before = cache.generation();
        cache.forget_token(Uuid::now_v7());
        cache.insert("a".into(), t.clone(), before);
        assert!(cache.get("a").is_none());
        cache.insert("a".into(), t.clone(), cache.generation());
        assert_eq!(cache.get("a").unwrap().record.id, t.record.id);
    }

    #[test]
    fn forgetting_removes_every_key_of_the_token_and_by_creator() {
        let cache = TokenCache::new(10, DEFAULT_TTL);
        let user = Uuid::now_v7();
        let a = token(Some(user));
        let b = token(None);
        let g = cache.generation();
        cache.insert("a-current".into(), a.clone(), g);
        cache.insert("a-previous".into(), a.clone(), g);
        cache.insert("b".into(), b.clone(), g);
        cache.forget_token(a.record.id);
        assert!(cache.get("a-current").is_none() && cache.get("a-previous").is_none());
        assert!(cache.get("b").is_some());
        let c = token(Some(user));
        cache.insert("c".into(), c, cache.generation());
        cache.forget_created_by(user);
        assert!(cache.get("c").is_none());
        assert!(cache.get("b").is_some());
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = TokenCache::new(10, Duration::from_millis(30));
        cache.insert("a".into(), token(None), cache.generation());
        assert!(cache.get("a").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("a").is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn capacity_is_a_hard_bound_and_the_oldest_go_first() {
        let cache = TokenCache::new(20, DEFAULT_TTL);
        for i in 0..100 {
            cache.insert(format!("k{i}"), token(None), cache.generation());
            assert!(cache.len() <= 20);
        }
        assert!(cache.get("k99").is_some());
        assert!(cache.get("k0").is_none());
    }
}
