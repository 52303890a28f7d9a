//! How long a fetched document may be reused (HTTP caching, bounded), and the small
//! in-memory cache that holds it. Only valid documents are ever inserted: an error or
//! an invalid document is fetched again next time (CIMD §6.x: no caching of errors).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AGE, CACHE_CONTROL, HeaderMap};

use super::ClientMetadata;

/// What the response's `Cache-Control` says about reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// `no-store`, `no-cache` (we never revalidate), or an unreadable `max-age`.
    DoNotStore,
    /// `max-age` minus `Age`.
    For(Duration),
    /// No cache directive: the configured default applies.
    Unspecified,
}

pub(crate) fn freshness(headers: &HeaderMap) -> Freshness {
    let mut max_age: Option<u64> = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else {
            return Freshness::DoNotStore;
        };
        for directive in value.split(',') {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive.trim(), None),
            };
            let name = name.to_ascii_lowercase();
            match (name.as_str(), arg) {
                ("no-store" | "no-cache", _) => return Freshness::DoNotStore,
                ("max-age", Some(secs)) => match secs.parse::<u64>() {
                    // Several max-age directives: the most conservative wins.
                    Ok(secs) => max_age = Some(max_age.map_or(secs, |m| m.min(secs))),
                    Err(_) => return Freshness::DoNotStore,
                },
                ("max-age", None) => return Freshness::DoNotStore,
                _ => {}
            }
        }
    }
    match max_age {
        None => Freshness::Unspecified,
        Some(secs) => {
            let age = headers
                .get(AGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            Freshness::For(Duration::from_secs(secs.saturating_sub(age)))
        }
    }
}

/// The time to keep a document: what the response allows, never more than `max`.
pub(crate) fn time_to_live(freshness: Freshness, default: Duration, max: Duration) -> Duration {
    match freshness {
        Freshness::DoNotStore => Duration::ZERO,
        Freshness::For(d) => d.min(max),
        Freshness::Unspecified => default.min(max),
    }
}

struct Entry {
    expires: Instant,
    metadata: Arc<ClientMetadata>,
}

/// Bounded map from `client_id` to document. When full, expired entries go first, then
/// the one closest to expiry.
pub(crate) struct MetadataCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
}

impl MetadataCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
        }
    }

    pub(crate) fn get(&mut self, client_id: &str, now: Instant) -> Option<Arc<ClientMetadata>> {
        match self.entries.get(client_id) {
            Some(e) if e.expires > now => Some(Arc::clone(&e.metadata)),
            Some(_) => {
                self.entries.remove(client_id);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&mut self, metadata: Arc<ClientMetadata>, expires: Instant, now: Instant) {
        if self.capacity == 0 || expires <= now {
            return;
        }
        if !self.entries.contains_key(&metadata.client_id) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= self.capacity
                && let Some(soonest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
            {
                self.entries.remove(&soonest);
            }
        }
        self.entries
            .insert(metadata.client_id.clone(), Entry { expires, metadata });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cache_control() {
        let s = Duration::from_secs;
        let cases: &[(&[(&'static str, &str)], Freshness)] = &[
            (&[], Freshness::Unspecified),
            (&[("cache-control", "public")], Freshness::Unspecified),
            (&[("cache-control", "max-age=600")], Freshness::For(s(600))),
            (
                &[("cache-control", "public, max-age=600")],
                Freshness::For(s(600)),
            ),
            (
                &[("cache-control", "Max-Age=\"60\"")],
                Freshness::For(s(60)),
            ),
            (
                &[("cache-control", "max-age=600, max-age=30")],
                Freshness::For(s(30)),
            ),
            (
                &[
                    ("cache-control", "max-age=600"),
                    ("cache-control", "max-age=5"),
                ],
                Freshness::For(s(5)),
            ),
            (
                &[("cache-control", "max-age=600"), ("age", "100")],
                Freshness::For(s(500)),
            ),
            (
                &[("cache-control", "max-age=60"), ("age", "100")],
                Freshness::For(s(0)),
            ),
            (&[("cache-control", "max-age=0")], Freshness::For(s(0))),
            (&[("cache-control", "no-store")], Freshness::DoNotStore),
            (
                &[("cache-control", "max-age=600, no-store")],
                Freshness::DoNotStore,
            ),
            (&[("cache-control", "NO-STORE")], Freshness::DoNotStore),
            (&[("cache-control", "no-cache")], Freshness::DoNotStore),
            (&[("cache-control", "max-age=abc")], Freshness::DoNotStore),
            (&[("cache-control", "max-age=-1")], Freshness::DoNotStore),
            (&[("cache-control", "max-age")], Freshness::DoNotStore),
        ];
        for (pairs, expected) in cases {
            assert_eq!(freshness(&headers(pairs)), *expected, "{pairs:?}");
        }
    }

    #[test]
    fn ttl_is_bounded() {
        let s = Duration::from_secs;
        let day = s(86_400);
        assert_eq!(
            time_to_live(Freshness::For(s(10 * 86_400)), s(300), day),
            day
        );
        assert_eq!(time_to_live(Freshness::For(s(60)), s(300), day), s(60));
        assert_eq!(time_to_live(Freshness::Unspecified, s(300), day), s(300));
        assert_eq!(
            time_to_live(Freshness::DoNotStore, s(300), day),
            Duration::ZERO
        );
    }

    fn meta(id: &str) -> Arc<ClientMetadata> {
        Arc::new(ClientMetadata {
            client_id: id.to_owned(),
            client_name: "n".into(),
            redirect_uris: vec![],
            client_uri: None,
            logo_uri: None,
            scope: None,
        })
    }

    #[test]
    fn entries_expire() {
        let t0 = Instant::now();
        let mut c = MetadataCache::new(10);
        c.insert(meta("a"), t0 + Duration::from_secs(60), t0);
        assert!(c.get("a", t0 + Duration::from_secs(59)).is_some());
        assert!(c.get("a", t0 + Duration::from_secs(60)).is_none());
        assert_eq!(c.len(), 0);
        // Already expired or zero capacity: not stored.
        c.insert(meta("b"), t0, t0);
        assert!(c.get("b", t0).is_none());
        let mut none = MetadataCache::new(0);
        none.insert(meta("a"), t0 + Duration::from_secs(60), t0);
        assert!(none.get("a", t0).is_none());
    }

    #[test]
    fn capacity_is_bounded() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = MetadataCache::new(2);
        c.insert(meta("a"), t0 + s(100), t0);
        c.insert(meta("b"), t0 + s(50), t0);
        c.insert(meta("c"), t0 + s(200), t0);
        assert_eq!(c.len(), 2);
        assert!(c.get("b", t0).is_none(), "the entry closest to expiry goes");
        assert!(c.get("a", t0).is_some() && c.get("c", t0).is_some());
        // Expired entries are evicted before live ones.
        c.insert(meta("d"), t0 + s(300), t0 + s(150));
        assert!(c.get("a", t0 + s(150)).is_none());
        assert!(c.get("c", t0 + s(150)).is_some() && c.get("d", t0 + s(150)).is_some());
        // Replacing an existing key does not evict another.
        c.insert(meta("c"), t0 + s(400), t0 + s(150));
        assert_eq!(c.len(), 2);
    }
}
