//! A bounded, short-lived cache of environment resolution (organization and environment
//! reference → organization ID and environment), so an environment operation costs no
//! database reads before its own query.
//!
//! It caches *resolution*, never a decision: `access::authorize` re-checks every hit
//! against the caller's principal (organization, grants, scope) exactly as it checks a
//! fresh lookup. And it cannot widen what anyone learns:
//! - only successful resolutions are cached: an unknown organization or environment goes to
//!   the database on every call, so one created a moment ago is found at once;
//! - entries are keyed by the principal and filled only when that principal may see the
//!   environment, so a principal for whom it is hidden (another organization, no grant)
//!   never hits and answers exactly as before, timing included.
//!
//! Staleness bound: organizations and environments are never renamed or deleted through
//! the control plane (there is no such operation, so nothing to invalidate). If one is
//! removed or re-slugged in the database by other means, principals who resolved it in the
//! last TTL (5 s by default) may still resolve the old reference for at most that long.

use crate::ttl_map::TtlMap;
use assay_core::{EnvRef, Environment, Principal};
use std::time::Duration;
use uuid::Uuid;

pub(crate) const DEFAULT_CAPACITY: usize = 10_000;
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// Who asked (organization, principal ID: the system principal's ID is the same in every
/// organization) and the references exactly as written (ID or slug).
type Key = (Uuid, Uuid, String, String);

pub(crate) struct ScopeCache {
    map: TtlMap<Key, Environment>,
}

fn key(principal: &Principal, env_ref: &EnvRef) -> Key {
    (
        principal.org_id,
        principal.id,
        env_ref.org.clone(),
        env_ref.env.clone(),
    )
}

impl ScopeCache {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            map: TtlMap::new(capacity, ttl),
        }
    }

    /// Take this before resolving in the database.
    pub(crate) fn generation(&self) -> u64 {
        self.map.generation()
    }

    /// The environment (its `org_id` is its organization's) the principal resolved
    /// `env_ref` to within the TTL, if any.
    pub(crate) fn get(&self, principal: &Principal, env_ref: &EnvRef) -> Option<Environment> {
        self.map.get(&key(principal, env_ref))
    }

    /// Only for an environment the principal may see (the caller checks).
    pub(crate) fn insert(
        &self,
        principal: &Principal,
        env_ref: &EnvRef,
        env: Environment,
        generation: u64,
    ) {
        self.map.insert(key(principal, env_ref), env, generation);
    }
}
