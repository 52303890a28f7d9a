//! OAuth access tokens (JWTs this server issued) → principals. `auth` sends a bearer here
//! only when it has the JWT format (`assay_auth::secrets::kind_of`), never on a guess.
//!
//! Checks, cheapest first: the JWS itself (`KeyRing::validate`: EdDSA only, a kid of our
//! ring, `typ` at+jwt, no `jku`/`x5u`/… header, signature, `iss` exact, `aud` one of the
//! addressed MCP endpoint's resource and the base resource, `exp`/`nbf`/`iat` with
//! [`LEEWAY`]); then the scope; then the store: `jti` not denied, the grant named by
//! `gid` live and of this user and client, the session named by `sid` (when present)
//! live, the user exists and is not disabled, and the addressed organization exists and
//! the user is a member of it. A request that addresses no organization is refused
//! ([`NO_ORGANIZATION`]: a route whose `{org}` could not be read, say) — except at
//! `GET /v1/me` ([`OrgScope::NotRequired`], the one authenticated route outside
//! `/v1/organizations/{org}`), where the token yields an org-less principal
//! ([`orgless_principal`]): organization ID nil and no environment, so every
//! organization-scoped check of the control plane refuses it.
//!
//! Tokens of the first-party CLI client ([`CLI_CLIENT_ID`]) authenticate as
//! `AuthMethod::CliLogin`, and their top scope (`mcp:write`) means "the user's own level"
//! (`scope_cap` none), so an org admin who ran `assay login` can manage members, tokens and
//! audit; a narrower CLI grant stays capped like any OAuth client's.
//!
//! Grant liveness goes through `grant_cache` (TTL `OAuthConfig::grant_check_ttl`, 2 s by
//! default): a grant revoked through this process (revocation, refresh reuse, code
//! replay, a member disabled or removed) ends its access tokens here at once; one
//! revoked through another replica, within that TTL. The same holds for the sign-in
//! session named by `sid` (the refresh-token family the token came from): logging one
//! `assay login` out ends its access tokens, not those of the user's other logins under
//! the same grant. Tokens without `sid` (signed before it existed) skip that check.
//!
//! The rest of an accepted token's principal — not denied, the organization, the user
//! and their membership — is cached in `grant_cache` too, for the same TTL, keyed by
//! `jti` and the addressed organization, and only after the JWS and its claims passed
//! on this request (`exp`/`nbf` are checked on every request; refusals are never
//! cached). Denying the access token, revoking its grant or session, and adding,
//! changing, disabling or removing a member through this process forget it at once; a
//! change made through another replica takes effect here within that TTL, the bound
//! grants already have.

use crate::grant_cache::{CachedPrincipal, GrantCache, GrantState, PrincipalKey};
use crate::oauth::CLI_CLIENT_ID;
use assay_auth::jwt::{AccessTokenClaims, JwtError, KeyRing};
use assay_auth::metadata::PublicBase;
use assay_auth::scope::McpScope;
use assay_core::actor::{Access, AuthMethod, Principal, PrincipalKind};
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::permission::Level;
use assay_core::ports::Store;
use assay_core::{Result, Timestamp};
use std::time::Duration;
use uuid::Uuid;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(60);

pub const NOT_CONFIGURED: &str =
    "this server accepts no OAuth access tokens: it has no public URL to be their issuer";
pub const NO_ORGANIZATION: &str =
    "an OAuth access token is valid only at an organization's endpoints";
pub const REVOKED: &str = "the access token has been revoked";
pub const GRANT_REVOKED: &str = "the grant of the access token has been revoked";
pub const SESSION_ENDED: &str = "the sign-in session of the access token has ended";
pub const NO_SCOPE: &str = "the access token grants no MCP scope";
pub const UNKNOWN_USER: &str = "the user of the access token does not exist";
pub const DISABLED_USER: &str = "the user of the access token is disabled";
pub const OTHER_ORGANIZATION: &str = "the access token is not valid for this organization";

/// The organization a request addresses, as a JWT sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OrgScope<'a> {
    /// The URL names this organization (ID or slug).
    Addressed(&'a str),
    /// The URL names none, or its `{org}` could not be read: a JWT is refused
    /// ([`NO_ORGANIZATION`]).
    Missing,
    /// `GET /v1/me`: no organization is needed; a JWT yields an org-less principal.
    NotRequired,
}

impl<'a> OrgScope<'a> {
    pub(crate) fn from_addressed(org: Option<&'a str>) -> Self {
        org.map_or(Self::Missing, Self::Addressed)
    }

    /// The addressed organization, if any.
    pub(crate) fn org(self) -> Option<&'a str> {
        match self {
            Self::Addressed(org) => Some(org),
            Self::Missing | Self::NotRequired => None,
        }
    }
}

/// Why a JWT was refused, and what is known of it for the audit trail.
pub(crate) struct JwtFailure {
    pub reason: &'static str,
    /// The addressed organization when it exists.
    pub org_id: Option<Uuid>,
    /// The user the token names when the signature held.
    pub user: Option<(Uuid, String)>,
    pub client_id: Option<String>,
}

impl JwtFailure {
    fn new(reason: &'static str) -> Self {
        Self {
            reason,
            org_id: None,
            user: None,
            client_id: None,
        }
    }
}

/// The refusal reason for a token `KeyRing::validate` rejected. Fixed strings: the header
/// values an attacker chose (alg, kid, member names) are never echoed back.
pub(crate) fn reason(error: &JwtError) -> &'static str {
    match error {
        JwtError::TooLarge => "the access token is too large",
        JwtError::Malformed => "the access token is not a well-formed JWS",
        JwtError::UnsupportedAlgorithm(_) => {
            "the access token algorithm is not accepted; only EdDSA is"
        }
        JwtError::WrongType(_) => "the access token type is not at+jwt",
        JwtError::ForbiddenHeader(_) => "the access token header has a member that is not accepted",
        JwtError::MissingKid => "the access token header has no key id",
        JwtError::UnknownKid(_) => "the access token was not signed by a key of this server",
        JwtError::BadSignature => "the access token signature is invalid",
        JwtError::InvalidClaims(_) => "the access token claims are invalid",
        JwtError::WrongIssuer => "the access token was issued by another issuer",
        JwtError::WrongAudience => "the access token is for another resource",
        JwtError::Expired => "the access token has expired",
        JwtError::NotYetValid => "the access token is not valid yet",
        JwtError::IssuedInFuture => "the access token was issued in the future",
        JwtError::InvalidLifetime | JwtError::Sign(_) => "the access token is invalid",
    }
}

/// The audiences a request accepts: the base resource always, the addressed MCP
/// endpoint's resource when the request is to one.
pub(crate) fn audiences<'a>(base: &'a str, resource: Option<&'a str>) -> Vec<&'a str> {
    std::iter::once(base).chain(resource).collect()
}

/// Validates the JWS and its claims (no store access).
pub(crate) fn check_token(
    ring: &KeyRing,
    public: Option<&PublicBase>,
    bearer: &str,
    resource: Option<&str>,
    now: Timestamp,
) -> std::result::Result<AccessTokenClaims, JwtFailure> {
    let public = public.ok_or(JwtFailure::new(NOT_CONFIGURED))?;
    let base = public.base_resource().url;
    let claims = ring
        .validate(
            bearer,
            &public.issuer(),
            &audiences(&base, resource),
            now,
            LEEWAY,
        )
        .map_err(|e| JwtFailure::new(reason(&e)))?;
    Ok(claims)
}

/// Looks the token's subject up in the addressed organization (in none at `GET /v1/me`).
/// Call only with claims `check_token` accepted on this request: the principal the store
/// yields is cached for them (see the module doc), the grant and session checks are not
/// skipped on a hit.
pub(crate) async fn principal_for(
    store: &dyn Store,
    grants: &GrantCache,
    claims: &AccessTokenClaims,
    org: OrgScope<'_>,
) -> Result<std::result::Result<Principal, JwtFailure>> {
    let fail = |reason, org_id, user: Option<&User>| JwtFailure {
        reason,
        org_id,
        user: user.map(|u| (u.id, u.display_name.clone())),
        client_id: Some(claims.client_id.clone()),
    };
    let scope = match claims.mcp_scope() {
        Ok(Some(scope)) => scope,
        _ => return Ok(Err(fail(NO_SCOPE, None, None))),
    };
    let key = principal_key(claims, org);
    let cached = key
        .as_ref()
        .and_then(|key| grants.principal(key))
        .filter(|c| {
            c.sub == claims.sub && c.client_id == claims.client_id && c.scope == claims.scope
        });
    // Taken before the first store read: a revocation from here on voids this fill.
    let generation = grants.principal_generation();
    if cached.is_none() && store.is_access_token_revoked(&claims.jti).await? {
        return Ok(Err(fail(REVOKED, None, None)));
    }
    if !grant_is_live(store, grants, claims).await? {
        return Ok(Err(fail(GRANT_REVOKED, None, None)));
    }
    if !session_is_live(store, grants, claims).await? {
        return Ok(Err(fail(SESSION_ENDED, None, None)));
    }
    if let Some(cached) = cached {
        return Ok(Ok(cached.principal));
    }
    match principal_from_store(store, claims, org, scope).await? {
        Ok(principal) => {
            if let Some(key) = key {
                let entry = CachedPrincipal {
                    sub: claims.sub.clone(),
                    client_id: claims.client_id.clone(),
                    scope: claims.scope.clone(),
                    principal: principal.clone(),
                };
                grants.insert_principal(key, entry, generation);
            }
            Ok(Ok(principal))
        }
        Err((reason, org_id, user)) => Ok(Err(fail(reason, org_id, user.as_ref()))),
    }
}

/// The cache key of a token at the addressed organization; `None` where no organization
/// is addressed though one is needed (refused anyway).
fn principal_key(claims: &AccessTokenClaims, org: OrgScope<'_>) -> Option<PrincipalKey> {
    match org {
        OrgScope::Addressed(org) => Some((claims.jti.clone(), Some(org.to_owned()))),
        OrgScope::NotRequired => Some((claims.jti.clone(), None)),
        OrgScope::Missing => None,
    }
}

/// A refusal found in the store: reason, organization, user.
type StoreRefusal = (&'static str, Option<Uuid>, Option<User>);

/// The store-derived part of the principal: the organization, the user, the membership.
async fn principal_from_store(
    store: &dyn Store,
    claims: &AccessTokenClaims,
    org: OrgScope<'_>,
    scope: McpScope,
) -> Result<std::result::Result<Principal, StoreRefusal>> {
    let org = match org {
        OrgScope::Addressed(org) => match store.find_org(org).await? {
            Some(org) => Some(org),
            None => return Ok(Err((OTHER_ORGANIZATION, None, None))),
        },
        OrgScope::Missing => return Ok(Err((NO_ORGANIZATION, None, None))),
        OrgScope::NotRequired => None,
    };
    let org_id = org.as_ref().map(|o| o.id);
    let user = match Uuid::parse_str(&claims.sub) {
        Ok(id) => store.find_user(id).await?,
        Err(_) => None,
    };
    let Some(user) = user else {
        return Ok(Err((UNKNOWN_USER, org_id, None)));
    };
    if user.disabled {
        return Ok(Err((DISABLED_USER, org_id, Some(user))));
    }
    let Some(org) = org else {
        return Ok(Ok(orgless_principal(&user, scope, &claims.client_id)));
    };
    let Some(membership) = store.find_membership(org.id, user.id).await? else {
        return Ok(Err((OTHER_ORGANIZATION, Some(org.id), Some(user))));
    };
    Ok(Ok(principal(&user, &membership, scope, &claims.client_id)))
}

/// Whether `gid` names a live grant of the token's user and client (cached briefly).
async fn grant_is_live(
    store: &dyn Store,
    grants: &GrantCache,
    claims: &AccessTokenClaims,
) -> Result<bool> {
    let Ok(grant_id) = Uuid::parse_str(&claims.gid) else {
        return Ok(false);
    };
    let state = match grants.get(grant_id) {
        Some(state) => state,
        None => {
            let generation = grants.generation();
            let state = match store.get_oauth_grant(grant_id).await? {
                Some(g) => GrantState {
                    grant_id,
                    user_id: g.user_id,
                    client_id: g.client_id,
                    live: g.revoked_at.is_none(),
                },
                // Unknown grants are remembered too: only this server signs tokens, so
                // one naming no grant can only be from before its grant was deleted.
                None => GrantState {
                    grant_id,
                    user_id: Uuid::nil(),
                    client_id: String::new(),
                    live: false,
                },
            };
            grants.insert(grant_id, state.clone(), generation);
            state
        }
    };
    let same_user = Uuid::parse_str(&claims.sub).is_ok_and(|sub| sub == state.user_id);
    Ok(state.live && same_user && state.client_id == claims.client_id)
}

/// Whether `sid` names a live refresh-token family (cached briefly). A token without
/// `sid` was signed before the claim existed: only its grant binds it.
async fn session_is_live(
    store: &dyn Store,
    grants: &GrantCache,
    claims: &AccessTokenClaims,
) -> Result<bool> {
    let Some(sid) = claims.sid.as_deref() else {
        return Ok(true);
    };
    let Ok(family_id) = Uuid::parse_str(sid) else {
        return Ok(false);
    };
    if let Some(live) = grants.session(family_id) {
        return Ok(live);
    }
    let generation = grants.session_generation();
    let live = store.is_refresh_family_live(family_id).await?;
    grants.insert_session(family_id, live, generation);
    Ok(live)
}

/// What a membership lets its user do: owners and admins administer every environment,
/// members reach the environments granted to them.
pub(crate) fn membership_access(membership: &Membership) -> Access {
    match membership.role {
        OrgRole::Owner | OrgRole::Admin => Access::OrgAdmin,
        OrgRole::Member => Access::PerEnvironment {
            grants: membership.grants.clone(),
        },
    }
}

/// How a token of `client_id` authenticates: the first-party CLI logs in, every other
/// client is an OAuth client.
pub(crate) fn auth_method(client_id: &str) -> AuthMethod {
    if client_id == CLI_CLIENT_ID {
        AuthMethod::CliLogin
    } else {
        AuthMethod::OAuth
    }
}

/// The level a token's scope caps the user at. For the CLI the top scope is the user's
/// own level (no cap): `assay login` stands for the user at a terminal, including org
/// admin work that no MCP scope names; a narrower CLI grant stays capped. Every other
/// client is capped by its scope.
pub(crate) fn scope_cap(scope: McpScope, client_id: &str) -> Option<Level> {
    if scope_is_uncapped(scope, client_id) {
        None
    } else {
        Some(scope.level())
    }
}

/// Whether `scope` granted to `client_id` leaves the user uncapped, at their own level:
/// the CLI's top scope. The consent pages word that scope by this rule too.
pub fn scope_is_uncapped(scope: McpScope, client_id: &str) -> bool {
    client_id == CLI_CLIENT_ID && scope == McpScope::Write
}

/// A user acting through an OAuth client (or the CLI): their role in the organization,
/// capped by the token's scope.
pub(crate) fn principal(
    user: &User,
    membership: &Membership,
    scope: McpScope,
    client_id: &str,
) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: user.id,
        display_name: user.display_name.clone(),
        org_id: membership.org_id,
        access: membership_access(membership),
        scope_cap: scope_cap(scope, client_id),
        auth_method: auth_method(client_id),
        credential_id: Some(client_id.to_owned()),
    }
}

/// The user of a token at a route that addresses no organization (`GET /v1/me`): in no
/// organization (ID nil) and with no environment, so it reaches nothing organization-
/// scoped; the control plane looks the memberships up itself.
pub(crate) fn orgless_principal(user: &User, scope: McpScope, client_id: &str) -> Principal {
    Principal {
        kind: PrincipalKind::User,
        id: user.id,
        display_name: user.display_name.clone(),
        org_id: Uuid::nil(),
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: scope_cap(scope, client_id),
        auth_method: auth_method(client_id),
        credential_id: Some(client_id.to_owned()),
    }
}

/// The actor recorded for a refused JWT.
pub(crate) fn failed_actor(failure: &JwtFailure, org_id: Uuid) -> Principal {
    let (id, display_name) = failure
        .user
        .clone()
        .unwrap_or_else(|| (Uuid::nil(), "unknown".into()));
    Principal {
        kind: PrincipalKind::User,
        id,
        display_name,
        org_id,
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: None,
        auth_method: failure
            .client_id
            .as_deref()
            .map_or(AuthMethod::OAuth, auth_method),
        credential_id: failure.client_id.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use assay_auth::jwt::AccessTokenRequest;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    const NOW: Timestamp = datetime!(2026-01-01 12:00 UTC);

    fn public() -> PublicBase {
        PublicBase::new(&url::Url::parse("https://assay.example/").unwrap()).unwrap()
    }

    fn token(ring: &KeyRing, audience: &str, issued: Timestamp) -> String {
        let request = AccessTokenRequest {
            subject: "u",
            audience,
            client_id: "c",
            scope: McpScope::Run,
            lifetime: Duration::from_secs(600),
            grant_id: "g",
            session_id: None,
        };
        ring.issue("https://assay.example", &request, issued)
            .unwrap()
            .0
    }

    #[test]
    fn audiences_are_the_base_and_the_addressed_endpoint() {
        assert_eq!(audiences("b", None), ["b"]);
        assert_eq!(audiences("b", Some("m")), ["b", "m"]);
    }

    #[test]
    fn check_token_accepts_the_endpoint_or_the_base_resource_only() {
        let ring = KeyRing::generate().unwrap();
        let p = public();
        let dev = p.mcp_resource("acme", "dev").unwrap().url;
        let prod = p.mcp_resource("acme", "prod").unwrap().url;
        let base = p.base_resource().url;
        let at_dev = token(&ring, &dev, NOW);
        let claims = check_token(&ring, Some(&p), &at_dev, Some(&dev), NOW)
            .ok()
            .unwrap();
        assert_eq!(claims.aud, dev);
        let refused = |t: &str, resource: Option<&str>| {
            check_token(&ring, Some(&p), t, resource, NOW)
                .err()
                .unwrap()
                .reason
        };
        assert_eq!(
            refused(&at_dev, Some(&prod)),
            reason(&JwtError::WrongAudience)
        );
        assert_eq!(refused(&at_dev, None), reason(&JwtError::WrongAudience));
        let at_base = token(&ring, &base, NOW);
        assert!(check_token(&ring, Some(&p), &at_base, None, NOW).is_ok());
        assert!(check_token(&ring, Some(&p), &at_base, Some(&dev), NOW).is_ok());
        // Without a public URL there is no issuer, so no token at all.
        let none = check_token(&ring, None, &at_base, None, NOW).err().unwrap();
        assert_eq!(none.reason, NOT_CONFIGURED);
    }

    #[test]
    fn the_leeway_is_sixty_seconds() {
        let ring = KeyRing::generate().unwrap();
        let p = public();
        let base = p.base_resource().url;
        let t = token(&ring, &base, NOW);
        let at = |secs: i64| {
            check_token(
                &ring,
                Some(&p),
                &t,
                None,
                NOW + time::Duration::seconds(secs),
            )
        };
        assert!(at(600 + 59).is_ok());
        assert_eq!(
            at(600 + 60).err().unwrap().reason,
            reason(&JwtError::Expired)
        );
        let early = token(&ring, &base, NOW + time::Duration::seconds(60));
        assert!(check_token(&ring, Some(&p), &early, None, NOW).is_ok());
        let too_early = token(&ring, &base, NOW + time::Duration::seconds(61));
        assert_eq!(
            check_token(&ring, Some(&p), &too_early, None, NOW)
                .err()
                .unwrap()
                .reason,
            reason(&JwtError::IssuedInFuture)
        );
    }

    #[test]
    fn refusal_reasons_never_echo_attacker_input() {
        for e in [
            JwtError::UnsupportedAlgorithm("<script>".into()),
            JwtError::UnknownKid("<script>".into()),
            JwtError::ForbiddenHeader("<script>".into()),
            JwtError::WrongType(Some("<script>".into())),
            JwtError::InvalidClaims("<script>".into()),
        ] {
            assert!(!reason(&e).contains("<script>"));
        }
    }

    fn ada() -> User {
        User {
            id: Uuid::now_v7(),
            email: "a@example.com".into(),
            display_name: "Ada".into(),
            password_hash: None,
            disabled: false,
            created_at: NOW,
        }
    }

    #[test]
    fn the_principal_is_the_member_capped_by_the_scope() {
        let env = Uuid::now_v7();
        let user = ada();
        let mut membership = Membership {
            org_id: Uuid::now_v7(),
            user_id: user.id,
            role: OrgRole::Owner,
            grants: BTreeMap::new(),
        };
        let p = principal(&user, &membership, McpScope::Read, "client");
        assert_eq!(p.kind, PrincipalKind::User);
        assert_eq!(p.auth_method, AuthMethod::OAuth);
        assert_eq!(p.credential_id.as_deref(), Some("client"));
        assert_eq!(p.level_in(membership.org_id, env), Some(Level::Read));
        // Another client's top scope still caps an owner below admin.
        let p = principal(&user, &membership, McpScope::Write, "client");
        assert_eq!(p.scope_cap, Some(Level::Write));
        assert_eq!(p.level_in(membership.org_id, env), Some(Level::Write));
        membership.role = OrgRole::Member;
        membership.grants.insert(env, Level::Run);
        let p = principal(&user, &membership, McpScope::Write, "client");
        assert_eq!(p.level_in(membership.org_id, env), Some(Level::Run));
        assert_eq!(p.level_in(membership.org_id, Uuid::now_v7()), None);
    }

    #[test]
    fn the_cli_logs_in_with_the_users_own_level_at_its_top_scope() {
        let env = Uuid::now_v7();
        let user = ada();
        let mut membership = Membership {
            org_id: Uuid::now_v7(),
            user_id: user.id,
            role: OrgRole::Admin,
            grants: BTreeMap::new(),
        };
        let p = principal(&user, &membership, McpScope::Write, CLI_CLIENT_ID);
        assert_eq!(p.auth_method, AuthMethod::CliLogin);
        assert_eq!(p.credential_id.as_deref(), Some("assay-cli"));
        assert_eq!(p.scope_cap, None);
        assert_eq!(p.level_in(membership.org_id, env), Some(Level::Admin));
        // A narrower CLI grant stays capped.
        for (scope, level) in [(McpScope::Read, Level::Read), (McpScope::Run, Level::Run)] {
            let p = principal(&user, &membership, scope, CLI_CLIENT_ID);
            assert_eq!(p.auth_method, AuthMethod::CliLogin);
            assert_eq!(p.scope_cap, Some(level));
            assert_eq!(p.level_in(membership.org_id, env), Some(level));
        }
        // No cap is still only the user's own level.
        membership.role = OrgRole::Member;
        membership.grants.insert(env, Level::Read);
        let p = principal(&user, &membership, McpScope::Write, CLI_CLIENT_ID);
        assert_eq!(p.level_in(membership.org_id, env), Some(Level::Read));
    }

    #[test]
    fn an_orgless_principal_reaches_no_organization() {
        let user = ada();
        for client in ["client", CLI_CLIENT_ID] {
            let p = orgless_principal(&user, McpScope::Write, client);
            assert_eq!(p.org_id, Uuid::nil());
            assert_eq!(p.id, user.id);
            assert_eq!(p.level_in(Uuid::nil(), Uuid::nil()), None);
            assert_eq!(p.level_in(Uuid::now_v7(), Uuid::now_v7()), None);
            assert_eq!(p.auth_method, auth_method(client));
        }
    }

    #[test]
    fn refusals_of_cli_tokens_are_recorded_as_cli_logins() {
        let mut failure = JwtFailure::new(REVOKED);
        assert_eq!(
            failed_actor(&failure, Uuid::nil()).auth_method,
            AuthMethod::OAuth
        );
        failure.client_id = Some(CLI_CLIENT_ID.into());
        assert_eq!(
            failed_actor(&failure, Uuid::nil()).auth_method,
            AuthMethod::CliLogin
        );
        failure.client_id = Some("https://client.example/oauth.json".into());
        assert_eq!(
            failed_actor(&failure, Uuid::nil()).auth_method,
            AuthMethod::OAuth
        );
    }
}
