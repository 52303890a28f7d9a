//! A short-lived cache of OAuth grant and sign-in session liveness for the access-token
//! validator (`jwt_auth`): a token's `gid` must name a live grant of its user and client,
//! and its `sid` a live refresh-token family (one login), and looking those up on every
//! request would cost queries per MCP call.
//!
//! Staleness bound: an entry lives `OAuthConfig::grant_check_ttl` (2 s by default). A
//! grant or session revoked through this process (token revocation, refresh reuse, code
//! replay, disabling or removing a member) is forgotten at once, so its tokens stop here
//! immediately; one revoked through another replica stops them here within the TTL.
//! Revoking a grant ends its sessions in the store too, so a session entry still cached
//! live after its grant was revoked lets nothing through: the grant check refuses first.
//!
//! It also holds the principals of accepted access tokens (`jwt_auth::principal_for`),
//! keyed by `jti` and the addressed organization: what the denylist, the organization, the
//! user and the membership said, for the same TTL. Only successes are cached. Anything
//! that can change such an answer through this process — an access token denied, a
//! member added, changed, disabled or removed, a grant or session revoked — forgets them
//! at once (these events are rare, so most forget every principal).

use crate::ttl_map::TtlMap;
use assay_core::Principal;
use std::time::Duration;
use uuid::Uuid;

const CAPACITY: usize = 10_000;

/// What the validator needs of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantState {
    pub grant_id: Uuid,
    pub user_id: Uuid,
    pub client_id: String,
    pub live: bool,
}

/// Which accepted access token, addressing which organization (as the URL names it: ID
/// or slug; `None` at the org-less route).
pub(crate) type PrincipalKey = (String, Option<String>);

/// The store-derived principal of an accepted access token, with the claims it was
/// derived from: a hit is used only when they match the token presented (a `jti` is
/// random per token, so they always do unless something is very wrong).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CachedPrincipal {
    pub sub: String,
    pub client_id: String,
    pub scope: String,
    pub principal: Principal,
}

pub(crate) struct GrantCache {
    map: TtlMap<Uuid, GrantState>,
    /// Refresh-token family ID → (that ID, live); the ID is in the value so a
    /// revocation can forget it with `forget_where`, which also voids fills in flight.
    sessions: TtlMap<Uuid, (Uuid, bool)>,
    /// Accepted access tokens → their principals.
    principals: TtlMap<PrincipalKey, CachedPrincipal>,
}

impl GrantCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            map: TtlMap::new(CAPACITY, ttl),
            sessions: TtlMap::new(CAPACITY, ttl),
            principals: TtlMap::new(CAPACITY, ttl),
        }
    }

    pub(crate) fn get(&self, grant_id: Uuid) -> Option<GrantState> {
        self.map.get(&grant_id)
    }

    /// Take before reading the store for a fill.
    pub(crate) fn generation(&self) -> u64 {
        self.map.generation()
    }

    pub(crate) fn insert(&self, grant_id: Uuid, state: GrantState, generation: u64) {
        self.map.insert(grant_id, state, generation);
    }

    /// After a grant was revoked (or its scope replaced).
    pub(crate) fn forget(&self, grant_id: Uuid) {
        // `forget_where` also voids fills in flight, which a plain remove would not.
        self.map.forget_where(|s| s.grant_id == grant_id);
        self.forget_principals();
    }

    /// After a user's grants were revoked (disabled, removed from an organization).
    pub(crate) fn forget_user(&self, user_id: Uuid) {
        self.map.forget_where(|s| s.user_id == user_id);
        self.forget_principals_of(user_id);
    }

    /// The principal cached for an accepted access token, if fresh.
    pub(crate) fn principal(&self, key: &PrincipalKey) -> Option<CachedPrincipal> {
        self.principals.get(key)
    }

    /// Take before the first store read of a principal fill.
    pub(crate) fn principal_generation(&self) -> u64 {
        self.principals.generation()
    }

    pub(crate) fn insert_principal(
        &self,
        key: PrincipalKey,
        principal: CachedPrincipal,
        generation: u64,
    ) {
        self.principals.insert(key, principal, generation);
    }

    /// After the user, or one of their memberships, changed.
    pub(crate) fn forget_principals_of(&self, user_id: Uuid) {
        self.principals.forget_where(|p| p.principal.id == user_id);
    }

    /// After an access token was denied, or anything else rare that may change a
    /// principal: every one is read again.
    pub(crate) fn forget_principals(&self) {
        self.principals.forget_where(|_| true);
    }

    /// Whether the refresh-token family is live, if known.
    pub(crate) fn session(&self, family_id: Uuid) -> Option<bool> {
        self.sessions.get(&family_id).map(|(_, live)| live)
    }

    /// Take before reading the store for a session fill.
    pub(crate) fn session_generation(&self) -> u64 {
        self.sessions.generation()
    }

    pub(crate) fn insert_session(&self, family_id: Uuid, live: bool, generation: u64) {
        self.sessions
            .insert(family_id, (family_id, live), generation);
    }

    /// After a refresh-token family (one login) was revoked.
    pub(crate) fn forget_session(&self, family_id: Uuid) {
        self.sessions.forget_where(|(id, _)| *id == family_id);
        self.forget_principals();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn state(grant_id: Uuid, user_id: Uuid) -> GrantState {
        GrantState {
            grant_id,
            user_id,
            client_id: "c".into(),
            live: true,
        }
    }

    #[test]
    fn forgetting_a_grant_or_a_user_drops_their_entries() {
        let cache = GrantCache::new(Duration::from_secs(60));
        let (g1, g2, g3) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        for (g, u) in [(g1, alice), (g2, alice), (g3, bob)] {
            cache.insert(g, state(g, u), cache.generation());
        }
        cache.forget(g1);
        assert!(cache.get(g1).is_none());
        assert!(cache.get(g2).is_some());
        cache.forget_user(alice);
        assert!(cache.get(g2).is_none());
        assert_eq!(cache.get(g3), Some(state(g3, bob)));
        // A fill that started before a revocation is not stored.
        let before = cache.generation();
        cache.forget(g3);
        cache.insert(g3, state(g3, bob), before);
        assert!(cache.get(g3).is_none());
    }

    fn cached(user_id: Uuid) -> CachedPrincipal {
        CachedPrincipal {
            sub: user_id.to_string(),
            client_id: "c".into(),
            scope: "mcp:run".into(),
            principal: Principal {
                kind: assay_core::actor::PrincipalKind::User,
                id: user_id,
                display_name: "Ada".into(),
                org_id: Uuid::now_v7(),
                access: assay_core::actor::Access::OrgAdmin,
                scope_cap: None,
                auth_method: assay_core::actor::AuthMethod::CliLogin,
                credential_id: Some("c".into()),
            },
        }
    }

    fn key(jti: &str, org: Option<&str>) -> PrincipalKey {
        (jti.to_owned(), org.map(str::to_owned))
    }

    #[test]
    fn principals_are_keyed_by_token_and_organization() {
        let cache = GrantCache::new(Duration::from_secs(60));
        let ada = cached(Uuid::now_v7());
        cache.insert_principal(
            key("j1", Some("acme")),
            ada.clone(),
            cache.principal_generation(),
        );
        assert_eq!(cache.principal(&key("j1", Some("acme"))), Some(ada));
        assert_eq!(cache.principal(&key("j1", Some("other"))), None);
        assert_eq!(cache.principal(&key("j1", None)), None);
        assert_eq!(cache.principal(&key("j2", Some("acme"))), None);
    }

    #[test]
    fn every_revocation_forgets_principals_and_voids_fills_in_flight() {
        let cache = GrantCache::new(Duration::from_secs(60));
        let (ada, bob) = (cached(Uuid::now_v7()), cached(Uuid::now_v7()));
        let fill = |jti: &str, p: &CachedPrincipal| {
            cache.insert_principal(key(jti, None), p.clone(), cache.principal_generation());
        };
        let cached_now = |jti: &str| cache.principal(&key(jti, None)).is_some();

        // A user changed: only their principals go.
        fill("a", &ada);
        fill("b", &bob);
        cache.forget_principals_of(ada.principal.id);
        assert!(!cached_now("a"));
        assert!(cached_now("b"));
        // Their grants revoked: the same.
        fill("a", &ada);
        cache.forget_user(ada.principal.id);
        assert!(!cached_now("a"));
        assert!(cached_now("b"));
        // A grant, a session or an access token: every principal.
        for forget in [
            &(|c: &GrantCache| c.forget(Uuid::now_v7())) as &dyn Fn(&GrantCache),
            &|c: &GrantCache| c.forget_session(Uuid::now_v7()),
            &|c: &GrantCache| c.forget_principals(),
        ] {
            fill("a", &ada);
            fill("b", &bob);
            forget(&cache);
            assert!(!cached_now("a"));
            assert!(!cached_now("b"));
        }
        // A fill that read the store before a revocation is not stored.
        let before = cache.principal_generation();
        cache.forget_principals_of(bob.principal.id);
        cache.insert_principal(key("a", None), ada.clone(), before);
        assert!(!cached_now("a"));
    }

    #[test]
    fn forgetting_a_session_drops_it_and_voids_fills_in_flight() {
        let cache = GrantCache::new(Duration::from_secs(60));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert_eq!(cache.session(a), None);
        for f in [a, b] {
            cache.insert_session(f, true, cache.session_generation());
        }
        assert_eq!(cache.session(a), Some(true));
        let before = cache.session_generation();
        cache.forget_session(a);
        assert_eq!(cache.session(a), None);
        assert_eq!(cache.session(b), Some(true));
        cache.insert_session(a, true, before);
        assert_eq!(cache.session(a), None);
        // Sessions and grants are separate: forgetting one leaves the other.
        cache.insert(a, state(a, Uuid::now_v7()), cache.generation());
        cache.forget_session(a);
        assert!(cache.get(a).is_some());
        cache.insert_session(a, false, cache.session_generation());
        cache.forget(a);
        assert_eq!(cache.session(a), Some(false));
    }
}
