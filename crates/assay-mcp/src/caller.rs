//! Who is calling, and in which environment. The transport that authenticated the request
//! puts an [`McpCaller`] into the HTTP request's extensions (rmcp hands the request parts
//! to every handler); stdio uses one fixed caller for the whole process.
//!
//! Also here: [`OwnerKey`], what binds an MCP session to its opener, and [`ClientNames`],
//! the memory that names stateless clients on the audit trail.

use assay_core::{Actor, EnvRef, PrincipalKind};
use rmcp::model::Implementation;
use rmcp::service::{RequestContext, RoleServer};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The authenticated actor and the environment an MCP endpoint serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCaller {
    pub actor: Actor,
    pub env: EnvRef,
}

/// Who may use an MCP session: the principal that opened it, at the endpoint (organization
/// and environment) it was opened at. `None` when the request carried no caller (the
/// credential-less conformance fixture): such sessions are shared by every such request.
///
/// The principal, not the credential: a user's OAuth token is refreshed (a new token, the
/// same principal) during a long session, and that must not end the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct OwnerKey(Option<Owner>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Owner {
    org_id: Uuid,
    kind: &'static str,
    principal: Uuid,
    endpoint: EnvRef,
}

impl OwnerKey {
    pub(crate) fn of(caller: Option<&McpCaller>) -> Self {
        Self(caller.map(|c| {
            let p = &c.actor.principal;
            Owner {
                org_id: p.org_id,
                kind: match p.kind {
                    PrincipalKind::User => "user",
                    PrincipalKind::ApiToken => "api_token",
                    PrincipalKind::System => "system",
                },
                principal: p.id,
                endpoint: c.env.clone(),
            }
        }))
    }
}

/// The caller of one request: the transport's, else the fixed one; with the MCP client's
/// name/version recorded for the audit trail — from the request's metadata (SEP-2575), the
/// session's `initialize`, or, for stateless clients, what [`ClientNames`] remembers.
pub(crate) fn resolve(
    context: &RequestContext<RoleServer>,
    fixed: Option<&McpCaller>,
    names: &ClientNames,
) -> Option<McpCaller> {
    let parts = context.extensions.get::<http::request::Parts>();
    let from_transport = parts.and_then(|p| p.extensions.get::<McpCaller>());
    let caller = from_transport.or(fixed)?.clone();
    // Stateless HTTP has no handshake: rmcp then reports its own build as the peer
    // (`Implementation::default()`), which must not be audited as the client. Such clients
    // name themselves per request in `_meta` (SEP-2575), or only in their `initialize`.
    let announced = context.meta.client_info().or_else(|| {
        context
            .client_info()
            .filter(|i| *i != Implementation::default())
    });
    Some(named(caller, announced, parts, names))
}

/// The caller of an HTTP request the transport decides before rmcp sees it (step-up):
/// named from the request's `_meta` (`announced`) or what [`ClientNames`] remembers.
pub(crate) fn of_request(
    parts: &http::request::Parts,
    announced: Option<Implementation>,
    names: &ClientNames,
) -> Option<McpCaller> {
    let caller = parts.extensions.get::<McpCaller>()?.clone();
    Some(named(caller, announced, Some(parts), names))
}

fn named(
    mut caller: McpCaller,
    announced: Option<Implementation>,
    parts: Option<&http::request::Parts>,
    names: &ClientNames,
) -> McpCaller {
    if caller.actor.client.mcp_client.is_some() {
        return caller;
    }
    caller.actor.client.mcp_client = match announced {
        Some(info) => Some(client_label(&info.name, &info.version)),
        None => parts.and_then(|p| names.recall(p)),
    };
    caller
}

/// `name/version`, bounded: the values come from the client and end up in audit events.
fn client_label(name: &str, version: &str) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .filter(|c| !c.is_control())
            .take(max)
            .collect::<String>()
    };
    let name = clean(name, 100);
    let version = clean(version, 50);
    if version.is_empty() {
        name
    } else {
        format!("{name}/{version}")
    }
}

/// The names stateless clients gave in `initialize`, for their later calls.
///
/// A 2025-11-25 client served statelessly names itself only in `initialize`; its tool calls
/// carry no client info. The heuristic: the same credential (principal, endpoint and
/// credential id) sending the same `User-Agent` is the same client, so its calls get the
/// name from its last `initialize`. It can be wrong when one credential drives two clients
/// with identical User-Agents — then the most recent `initialize` wins. The name is an audit
/// annotation, never an authorization input, so a wrong guess misleads nobody about *who*
/// acted (that is the principal).
///
/// Bounded: at most [`ClientNames::CAPACITY`] entries, each forgotten [`ClientNames::TTL`]
/// after its `initialize`; when full, the oldest goes. Shared by all clones of the handler.
pub(crate) struct ClientNames {
    map: Mutex<RecentMap<NameKey, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NameKey {
    owner: OwnerKey,
    credential: Option<String>,
    user_agent: String,
}

/// Longest User-Agent kept in a key: enough to tell clients apart, bounded memory.
const MAX_USER_AGENT: usize = 256;

impl ClientNames {
    pub(crate) const CAPACITY: usize = 10_000;
    pub(crate) const TTL: Duration = Duration::from_secs(24 * 60 * 60);

    pub(crate) fn new() -> Self {
        Self {
            map: Mutex::new(RecentMap::new(Self::CAPACITY, Self::TTL)),
        }
    }

    /// Records the client of an `initialize` that came with an authenticated caller.
    pub(crate) fn remember(&self, parts: &http::request::Parts, client: &Implementation) {
        let Some(key) = Self::key(parts) else {
            return;
        };
        let label = client_label(&client.name, &client.version);
        if let Ok(mut map) = self.map.lock() {
            map.insert(key, label, Instant::now());
        }
    }

    fn recall(&self, parts: &http::request::Parts) -> Option<String> {
        let key = Self::key(parts)?;
        self.map.lock().ok()?.get(&key, Instant::now()).cloned()
    }

    fn key(parts: &http::request::Parts) -> Option<NameKey> {
        let caller = parts.extensions.get::<McpCaller>()?;
        let user_agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .unwrap_or_default()
            .chars()
            .take(MAX_USER_AGENT)
            .collect();
        Some(NameKey {
            owner: OwnerKey::of(Some(caller)),
            credential: caller.actor.principal.credential_id.clone(),
            user_agent,
        })
    }
}

/// A map that forgets entries `ttl` after their insertion and, when full, the oldest.
struct RecentMap<K, V> {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<K, (V, Instant, u64)>,
    /// Insertion order: (sequence number, key). A re-inserted key leaves a stale item
    /// behind (its sequence number no longer matches); stale items are skipped, and the
    /// queue is rebuilt when they make up half of it.
    order: VecDeque<(u64, K)>,
    next_seq: u64,
}

impl<K: std::hash::Hash + Eq + Clone, V> RecentMap<K, V> {
    fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity: capacity.max(1),
            ttl,
            entries: HashMap::new(),
            order: VecDeque::new(),
            next_seq: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn insert(&mut self, key: K, value: V, now: Instant) {
        self.expire(now);
        let seq = self.next_seq;
        self.next_seq += 1;
        if self
            .entries
            .insert(key.clone(), (value, now, seq))
            .is_none()
        {
            while self.entries.len() > self.capacity {
                self.evict_oldest();
            }
        }
        self.order.push_back((seq, key));
        if self.order.len() > 2 * self.capacity {
            self.compact();
        }
    }

    fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        self.expire(now);
        self.entries.get(key).map(|(v, _, _)| v)
    }

    /// Drops entries older than the TTL; they are at the front of the queue.
    fn expire(&mut self, now: Instant) {
        while let Some((seq, key)) = self.order.front() {
            match self.entries.get(key) {
                Some((_, at, current)) if current == seq => {
                    if now.saturating_duration_since(*at) < self.ttl {
                        return;
                    }
                    self.entries.remove(key);
                }
                // Stale: the key was re-inserted later (or is gone).
                _ => {}
            }
            self.order.pop_front();
        }
    }

    fn evict_oldest(&mut self) {
        while let Some((seq, key)) = self.order.pop_front() {
            if self.entries.get(&key).is_some_and(|(_, _, s)| *s == seq) {
                self.entries.remove(&key);
                return;
            }
        }
    }

    fn compact(&mut self) {
        let mut live: Vec<(u64, K)> = self
            .entries
            .iter()
            .map(|(k, (_, _, seq))| (*seq, k.clone()))
            .collect();
        live.sort_unstable_by_key(|(seq, _)| *seq);
        self.order = live.into();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use assay_core::actor::{Access, AuthMethod};
    use assay_core::{ClientInfo, Principal};

    #[test]
    fn client_labels_are_bounded_and_printable() {
        assert_eq!(client_label("claude-code", "2.1.0"), "claude-code/2.1.0");
        assert_eq!(client_label("x", ""), "x");
        assert_eq!(client_label("a\nb\u{7}", "1"), "ab/1");
        assert_eq!(client_label(&"n".repeat(500), "1").len(), 102);
    }

    fn caller(kind: PrincipalKind, id: Uuid, org: Uuid, env: &str) -> McpCaller {
        McpCaller {
            actor: Actor::new(
                Principal {
                    kind,
                    id,
                    display_name: "p".into(),
                    org_id: org,
                    access: Access::OrgAdmin,
                    scope_cap: None,
                    auth_method: AuthMethod::ApiToken,
                    credential_id: None,
                },
                ClientInfo::default(),
            ),
            env: EnvRef::new("acme", env),
        }
    }

    #[test]
    fn owners_are_equal_only_for_the_same_principal_at_the_same_endpoint() {
        let (org, id) = (Uuid::new_v4(), Uuid::new_v4());
        let a = caller(PrincipalKind::ApiToken, id, org, "dev");
        assert_eq!(OwnerKey::of(Some(&a)), OwnerKey::of(Some(&a.clone())));
        // Another request of the same principal (other client details) is the same owner.
        let mut same = a.clone();
        same.actor.client.user_agent = Some("other".into());
        same.actor.principal.credential_id = Some("refreshed".into());
        assert_eq!(OwnerKey::of(Some(&a)), OwnerKey::of(Some(&same)));
        let others = [
            caller(PrincipalKind::ApiToken, Uuid::new_v4(), org, "dev"),
            caller(PrincipalKind::User, id, org, "dev"),
            caller(PrincipalKind::ApiToken, id, Uuid::new_v4(), "dev"),
            caller(PrincipalKind::ApiToken, id, org, "prod"),
        ];
        for other in &others {
            assert_ne!(
                OwnerKey::of(Some(&a)),
                OwnerKey::of(Some(other)),
                "{other:?}"
            );
        }
        assert_ne!(OwnerKey::of(Some(&a)), OwnerKey::of(None));
        assert_eq!(OwnerKey::of(None), OwnerKey::of(None));
    }

    #[test]
    fn client_names_are_keyed_by_credential_and_user_agent() {
        let names = ClientNames::new();
        let a = caller(
            PrincipalKind::ApiToken,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "dev",
        );
        let parts = |caller: Option<&McpCaller>, ua: Option<&str>| {
            let mut b = http::Request::builder();
            if let Some(ua) = ua {
                b = b.header("user-agent", ua);
            }
            let (mut parts, ()) = b.body(()).unwrap().into_parts();
            if let Some(c) = caller {
                parts.extensions.insert(c.clone());
            }
            parts
        };
        names.remember(
            &parts(Some(&a), Some("agent/1")),
            &Implementation::new("claude-code", "2.1.0"),
        );
        assert_eq!(
            names.recall(&parts(Some(&a), Some("agent/1"))).as_deref(),
            Some("claude-code/2.1.0")
        );
        assert_eq!(names.recall(&parts(Some(&a), Some("agent/2"))), None);
        assert_eq!(names.recall(&parts(Some(&a), None)), None);
        let b = caller(
            PrincipalKind::ApiToken,
            Uuid::new_v4(),
            Uuid::new_v4(),
            "dev",
        );
        assert_eq!(names.recall(&parts(Some(&b), Some("agent/1"))), None);
        // Without a caller nothing is remembered or recalled.
        names.remember(&parts(None, None), &Implementation::new("x", "1"));
        assert_eq!(names.recall(&parts(None, None)), None);
    }

    #[test]
    fn the_recent_map_keeps_at_most_its_capacity_evicting_the_oldest() {
        let t0 = Instant::now();
        let mut m = RecentMap::new(3, Duration::from_secs(100));
        for i in 0..3 {
            m.insert(i, i * 10, t0);
        }
        // Re-inserting 0 makes it the newest: 1 is now the oldest.
        m.insert(0, 1, t0);
        m.insert(3, 30, t0);
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(&1, t0), None);
        assert_eq!(m.get(&0, t0), Some(&1));
        assert_eq!(m.get(&2, t0), Some(&20));
        assert_eq!(m.get(&3, t0), Some(&30));
        // Many re-insertions of one key keep the order queue bounded too.
        for i in 0..1000 {
            m.insert(3, i, t0);
        }
        assert!(m.order.len() <= 6, "{}", m.order.len());
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn the_recent_map_forgets_entries_after_their_ttl() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(10);
        let mut m = RecentMap::new(10, ttl);
        m.insert("a", 1, t0);
        m.insert("b", 2, t0 + Duration::from_secs(5));
        assert_eq!(m.get(&"a", t0 + Duration::from_secs(9)), Some(&1));
        assert_eq!(m.get(&"a", t0 + ttl), None);
        assert_eq!(m.get(&"b", t0 + ttl), Some(&2));
        // A re-insertion restarts the clock.
        m.insert("b", 3, t0 + Duration::from_secs(12));
        assert_eq!(m.get(&"b", t0 + Duration::from_secs(20)), Some(&3));
        assert_eq!(m.get(&"b", t0 + Duration::from_secs(22)), None);
        assert_eq!(m.len(), 0);
    }
}
