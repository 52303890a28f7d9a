//! A bounded map whose entries expire after a short TTL, for caches in front of the
//! store (`token_cache`, `scope_cache`).
//!
//! Invalidation is race-free: every removal bumps a generation, and a fill carries the
//! generation taken before its database read, so a fill that raced with a removal is
//! dropped instead of resurrecting what was just removed.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

struct Entry<V> {
    value: V,
    cached_at: Instant,
}

struct State<K, V> {
    entries: HashMap<K, Entry<V>>,
    generation: u64,
}

pub(crate) struct TtlMap<K, V> {
    state: Mutex<State<K, V>>,
    capacity: usize,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            state: Mutex::new(State {
                entries: HashMap::new(),
                generation: 0,
            }),
            capacity: capacity.max(1),
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K, V>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take this before reading the database for a fill.
    pub(crate) fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// A fresh entry for the key, if any (a stale one is dropped).
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut state = self.lock();
        let fresh = state
            .entries
            .get(key)
            .map(|e| e.cached_at.elapsed() < self.ttl)?;
        if fresh {
            state.entries.get(key).map(|e| e.value.clone())
        } else {
            state.entries.remove(key);
            None
        }
    }

    /// Stores a fill unless something was invalidated since `generation` was taken.
    pub(crate) fn insert(&self, key: K, value: V, generation: u64) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            self.evict(&mut state);
        }
        state.entries.insert(
            key,
            Entry {
                value,
                cached_at: Instant::now(),
            },
        );
    }

    /// Drops stale entries; if that is not enough, the oldest tenth. Amortized: only
    /// things that exist are cached, so a full map is rare.
    fn evict(&self, state: &mut State<K, V>) {
        let ttl = self.ttl;
        state.entries.retain(|_, e| e.cached_at.elapsed() < ttl);
        if state.entries.len() < self.capacity {
            return;
        }
        let mut ages: Vec<(Instant, K)> = state
            .entries
            .iter()
            .map(|(k, e)| (e.cached_at, k.clone()))
            .collect();
        ages.sort_by_key(|(at, _)| *at);
        let drop = (self.capacity / 10).max(1);
        for (_, key) in ages.into_iter().take(drop) {
            state.entries.remove(&key);
        }
    }

    /// Removes every entry whose value matches, and makes in-flight fills void.
    pub(crate) fn forget_where(&self, doomed: impl Fn(&V) -> bool) {
        let mut state = self.lock();
        state.generation = state.generation.wrapping_add(1);
        state.entries.retain(|_, e| !doomed(&e.value));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_raced_with_an_invalidation_is_not_stored() {
        let map = TtlMap::new(10, Duration::from_secs(5));
        let before = map.generation();
        map.forget_where(|_: &u32| false);
        map.insert("a", 1, before);
        assert!(map.get(&"a").is_none());
        map.insert("a", 1, map.generation());
        assert_eq!(map.get(&"a"), Some(1));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let map = TtlMap::new(10, Duration::from_millis(30));
        map.insert("a", 1, map.generation());
        assert!(map.get(&"a").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(map.get(&"a").is_none());
        assert_eq!(map.len(), 0);
    }

    #[test]
    fn capacity_is_a_hard_bound_and_the_oldest_go_first() {
        let map = TtlMap::new(20, Duration::from_secs(5));
        for i in 0..100 {
            map.insert(format!("k{i}"), i, map.generation());
            assert!(map.len() <= 20);
        }
        assert!(map.get("k99").is_some());
        assert!(map.get("k0").is_none());
    }
}
