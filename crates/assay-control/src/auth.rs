//! Bearer credentials → principals: API tokens here, OAuth access tokens (JWTs) in
//! `jwt_auth`. The bearer's format (`assay_auth::secrets::kind_of`) picks the one
//! validator that can accept it: a JWT never reaches the API-token lookup, and anything
//! else never reaches JWT validation.
//!
//! API tokens:
//! Checks, cheapest first:
//! 1. shape and checksum (`tokens::is_well_formed`) — garbage and typos are rejected
//!    without a token lookup;
//! 2. the record by SHA-256 of the secret, from the bounded cache (`token_cache`) or the
//!    database; the presented hash is then compared with the stored one(s) in constant
//!    time, so which secret matched (current or pre-rotation) leaks nothing either;
//! 3. revoked → rotated away (pre-rotation secret past its grace) → expired → another
//!    organization than the one the request addresses. Expiry and grace ends are checked
//!    against the clock on every request, cached or not.
//!
//! Every failure is audited as `auth.failed` (outcome denied, with the reason): into the
//! token's organization when the token is known, else into the organization the request
//! addresses if it exists, else into the unscoped chain (organization ID nil). There is no
//! sampling or rate limit on those events — every attempt is on the record, and they go
//! through the group commit, so a burst of failures costs batched writes; volume limits
//! belong at the HTTP edge (per-IP request limits), before authentication is attempted.
//! Successful authentications are not audited separately: the operation that follows is.
//!
//! Last use (time, IP) is kept in memory and written in batches (`token_usage`).

use crate::audit;
use crate::audit_log::AuditLog;
use crate::grant_cache::GrantCache;
use crate::jwt_auth::{self, JwtFailure, OrgScope};
use crate::signing_keys::SigningKeys;
use crate::token_cache::{CachedToken, DEFAULT_CAPACITY, DEFAULT_TTL, TokenCache};
use crate::token_usage::TokenUsage;
use crate::tokens;
use assay_auth::metadata::PublicBase;
use assay_auth::secrets::{TokenKind, kind_of};
use assay_core::actor::{Access, AuthMethod, ClientInfo, Principal, PrincipalKind};
use assay_core::audit::Outcome;
use assay_core::identity::{ApiTokenKind, ApiTokenRecord};
use assay_core::ports::{Authenticator, Clock, Store};
use assay_core::{Error, Result, Timestamp};
use async_trait::async_trait;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use uuid::Uuid;

pub const AUTH_FAILED_ACTION: &str = "auth.failed";

pub const MALFORMED: &str = "the bearer token is not a valid Assay token";
pub const UNKNOWN: &str = "unknown or deleted API token";
pub const REVOKED: &str = "the API token has been revoked";
pub const EXPIRED: &str = "the API token has expired";
pub const ROTATED: &str =
    "the API token has been rotated: this secret was replaced and is no longer valid";
pub const OTHER_ORGANIZATION: &str = "the API token is not valid for this organization";

/// Why a credential was refused, and the token when it is known.
struct Failure {
    reason: &'static str,
    token: Option<Arc<ApiTokenRecord>>,
}

impl Failure {
    fn unknown(reason: &'static str) -> Self {
        Self {
            reason,
            token: None,
        }
    }
}

/// Authenticates `assay_…` API tokens and this server's OAuth access tokens.
pub struct ApiTokenAuthenticator {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    audit: Arc<AuditLog>,
    cache: TokenCache,
    usage: Arc<TokenUsage>,
    keys: Arc<SigningKeys>,
    /// The issuer and resources access tokens must name; `None`: no JWT is accepted.
    public: Option<PublicBase>,
    /// Liveness of the OAuth grants access tokens name (`gid`).
    grants: Arc<GrantCache>,
}

impl ApiTokenAuthenticator {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        audit: Arc<AuditLog>,
        keys: Arc<SigningKeys>,
        public: Option<PublicBase>,
        grants: Arc<GrantCache>,
    ) -> Self {
        Self {
            store,
            clock,
            audit,
            cache: TokenCache::new(DEFAULT_CAPACITY, DEFAULT_TTL),
            usage: Arc::new(TokenUsage::default()),
            keys,
            public,
            grants,
        }
    }

    pub(crate) fn usage(&self) -> Arc<TokenUsage> {
        self.usage.clone()
    }

    /// Called after a token was revoked or rotated, before the call returns.
    pub(crate) fn forget_token(&self, id: Uuid) {
        self.cache.forget_token(id);
    }

    /// Called after a member was disabled or removed, before the call returns.
    pub(crate) fn forget_created_by(&self, user_id: Uuid) {
        self.cache.forget_created_by(user_id);
    }

    /// Called after a user's OAuth grants were revoked, before the call returns.
    pub(crate) fn forget_grants_of(&self, user_id: Uuid) {
        self.grants.forget_user(user_id);
    }

    /// Called after one OAuth grant was revoked, before the call returns.
    pub(crate) fn forget_grant(&self, grant_id: Uuid) {
        self.grants.forget(grant_id);
    }

    /// Called after a user or one of their memberships changed, before the call returns:
    /// the principals of their access tokens are read again.
    pub(crate) fn forget_principals_of(&self, user_id: Uuid) {
        self.grants.forget_principals_of(user_id);
    }

    /// Writes pending last-use times now (normally every few seconds and at shutdown).
    pub async fn flush_usage(&self) -> Result<usize> {
        self.usage.flush(self.store.as_ref()).await
    }

    async fn check(
        &self,
        bearer: &str,
        client: &ClientInfo,
        org: Option<&str>,
    ) -> Result<std::result::Result<Principal, Failure>> {
        if !tokens::is_well_formed(bearer) {
            return Ok(Err(Failure::unknown(MALFORMED)));
        }
        let presented = tokens::hash(bearer);
        let token = match self.cache.get(&presented) {
            Some(token) => token,
            None => {
                let generation = self.cache.generation();
                let Some(record) = self.store.find_api_token_by_hash(&presented).await? else {
                    return Ok(Err(Failure::unknown(UNKNOWN)));
                };
                let Some(owner) = self.store.find_org(&record.org_id.to_string()).await? else {
                    return Ok(Err(Failure::unknown(UNKNOWN)));
                };
                let token = CachedToken {
                    record: Arc::new(record),
                    org_slug: owner.slug.into(),
                };
                self.cache
                    .insert(presented.clone(), token.clone(), generation);
                token
            }
        };
        let now = self.clock.now();
        if let Err(reason) = validate(&token, &presented, now, org) {
            return Ok(Err(Failure {
                reason,
                token: Some(token.record),
            }));
        }
        self.usage.record(token.record.id, now, client.ip.clone());
        Ok(Ok(principal(&token.record)))
    }

    /// Audits a refusal and returns the error for the caller.
    async fn reject(&self, failure: Failure, client: &ClientInfo, org: Option<&str>) -> Error {
        let chain = self
            .refusal_chain(failure.token.as_ref().map(|t| t.org_id), org)
            .await;
        tracing::info!(
            reason = failure.reason,
            token = ?failure.token.as_ref().map(|t| t.id),
            ip = ?client.ip,
            "refused a bearer token"
        );
        let (actor, resources) = match &failure.token {
            Some(token) => (principal(token), vec![format!("token:{}", token.id)]),
            None => (unknown_token(chain), Vec::new()),
        };
        self.refuse(&actor, client, chain, resources, failure.reason)
            .await
    }

    /// The audit chain a refusal goes to: the credential's organization when it is known,
    /// else the one the URL names, else the unscoped chain.
    async fn refusal_chain(&self, known: Option<Uuid>, org: Option<&str>) -> Uuid {
        match (known, org) {
            (Some(id), _) => id,
            (None, Some(org)) => match self.store.find_org(org).await {
                Ok(Some(found)) => found.id,
                _ => Uuid::nil(),
            },
            (None, None) => Uuid::nil(),
        }
    }

    /// Records `auth.failed` and returns the error for the caller.
    async fn refuse(
        &self,
        actor: &Principal,
        client: &ClientInfo,
        chain: Uuid,
        resources: Vec<String>,
        reason: &str,
    ) -> Error {
        let event = audit::event(
            actor,
            client,
            chain,
            None,
            AUTH_FAILED_ACTION,
            resources,
            Outcome::Denied,
            Some(reason.to_owned()),
            self.clock.as_ref(),
        );
        // The credential is refused either way; a failed append is logged by the writer.
        let _ = self.audit.append(event).await;
        Error::Unauthenticated(reason.to_owned())
    }
}

/// Whether the presented secret (by hash) of a known token is good now for `org`.
fn validate(
    token: &CachedToken,
    presented: &str,
    now: Timestamp,
    org: Option<&str>,
) -> std::result::Result<(), &'static str> {
    let record = &token.record;
    let current: bool = presented
        .as_bytes()
        .ct_eq(record.secret_hash.as_bytes())
        .into();
    let previous: bool = record
        .previous_secret_hash
        .as_ref()
        .is_some_and(|h| presented.as_bytes().ct_eq(h.as_bytes()).into());
    if !current && !previous {
        // The store matched on something else; never trust that.
        return Err(UNKNOWN);
    }
    if record.revoked_at.is_some() {
        return Err(REVOKED);
    }
    if !current && record.previous_valid_until.is_none_or(|until| now >= until) {
        return Err(ROTATED);
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return Err(EXPIRED);
    }
    if let Some(org) = org {
        let addressed = match Uuid::parse_str(org) {
            Ok(id) => id == record.org_id,
            Err(_) => org == &*token.org_slug,
        };
        if !addressed {
            return Err(OTHER_ORGANIZATION);
        }
    }
    Ok(())
}

/// The principal an API token stands for.
pub fn principal(token: &ApiTokenRecord) -> Principal {
    let access = match token.kind {
        ApiTokenKind::Admin => Access::OrgAdmin,
        ApiTokenKind::OrgRead => Access::ReadAll,
        ApiTokenKind::Member => Access::PerEnvironment {
            grants: token.grants.clone(),
        },
    };
    Principal {
        kind: PrincipalKind::ApiToken,
        id: token.id,
        display_name: token.name.clone(),
        org_id: token.org_id,
        access,
        scope_cap: None,
        auth_method: AuthMethod::ApiToken,
        credential_id: Some(token.id.to_string()),
    }
}

/// The actor recorded for a credential that matches no token.
fn unknown_token(org_id: Uuid) -> Principal {
    Principal {
        kind: PrincipalKind::ApiToken,
        id: Uuid::nil(),
        display_name: "unknown".into(),
        org_id,
        access: Access::PerEnvironment {
            grants: Default::default(),
        },
        scope_cap: None,
        auth_method: AuthMethod::ApiToken,
        credential_id: None,
    }
}

impl ApiTokenAuthenticator {
    async fn authenticate_jwt(
        &self,
        bearer: &str,
        client: &ClientInfo,
        org: OrgScope<'_>,
        resource: Option<&str>,
    ) -> Result<Principal> {
        let ring = self.keys.ring();
        let checked = match jwt_auth::check_token(
            &ring,
            self.public.as_ref(),
            bearer,
            resource,
            self.clock.now(),
        ) {
            Ok(claims) => {
                jwt_auth::principal_for(self.store.as_ref(), &self.grants, &claims, org).await?
            }
            Err(failure) => Err(failure),
        };
        match checked {
            Ok(principal) => Ok(principal),
            Err(failure) => Err(self.reject_jwt(failure, client, org.org()).await),
        }
    }

    /// A JWT is looked up within `org`; an API token is checked against the addressed
    /// organization, if any (it always belongs to exactly one).
    async fn authenticate_in(
        &self,
        bearer: &str,
        client: &ClientInfo,
        org: OrgScope<'_>,
        resource: Option<&str>,
    ) -> Result<Principal> {
        let bearer = bearer.trim();
        if kind_of(bearer) == TokenKind::Jwt {
            return self.authenticate_jwt(bearer, client, org, resource).await;
        }
        match self.check(bearer, client, org.org()).await? {
            Ok(principal) => Ok(principal),
            Err(failure) => Err(self.reject(failure, client, org.org()).await),
        }
    }

    /// Audits a refused JWT like a refused API token.
    async fn reject_jwt(
        &self,
        failure: JwtFailure,
        client: &ClientInfo,
        org: Option<&str>,
    ) -> Error {
        let chain = self.refusal_chain(failure.org_id, org).await;
        tracing::info!(
            reason = failure.reason,
            user = ?failure.user.as_ref().map(|u| u.0),
            client_id = ?failure.client_id,
            ip = ?client.ip,
            "refused an OAuth access token"
        );
        let actor = jwt_auth::failed_actor(&failure, chain);
        let resources = failure
            .user
            .as_ref()
            .map(|(id, _)| vec![format!("user:{id}")])
            .unwrap_or_default();
        self.refuse(&actor, client, chain, resources, failure.reason)
            .await
    }
}

#[async_trait]
impl Authenticator for ApiTokenAuthenticator {
    async fn authenticate(
        &self,
        bearer: &str,
        client: &ClientInfo,
        org: Option<&str>,
    ) -> Result<Principal> {
        self.authenticate_for_resource(bearer, client, org, None)
            .await
    }

    async fn authenticate_for_resource(
        &self,
        bearer: &str,
        client: &ClientInfo,
        org: Option<&str>,
        resource: Option<&str>,
    ) -> Result<Principal> {
        self.authenticate_in(bearer, client, OrgScope::from_addressed(org), resource)
            .await
    }

    async fn authenticate_orgless(&self, bearer: &str, client: &ClientInfo) -> Result<Principal> {
        self.authenticate_in(bearer, client, OrgScope::NotRequired, None)
            .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use time::macros::datetime;

    fn cached(adjust: impl FnOnce(&mut ApiTokenRecord)) -> CachedToken {
        let mut record = ApiTokenRecord {
            id: Uuid::now_v7(),
            org_id: Uuid::now_v7(),
            name: "ci".into(),
            description: String::new(),
            kind: ApiTokenKind::Admin,
            grants: BTreeMap::new(),
            secret_hash: tokens::hash("current"),
            created_by: None,
            created_at: datetime!(2025-01-01 0:00 UTC),
            expires_at: Some(datetime!(2025-02-01 0:00 UTC)),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            previous_secret_hash: Some(tokens::hash("previous")),
            previous_valid_until: Some(datetime!(2025-01-10 0:00 UTC)),
        };
        adjust(&mut record);
        CachedToken {
            record: Arc::new(record),
            org_slug: "acme".into(),
        }
    }

    #[test]
    fn validation_order_and_reasons() {
        let now = datetime!(2025-01-05 0:00 UTC);
        let current = tokens::hash("current");
        let previous = tokens::hash("previous");
        let t = cached(|_| {});
        assert_eq!(validate(&t, &current, now, None), Ok(()));
        assert_eq!(validate(&t, &previous, now, Some("acme")), Ok(()));
        assert_eq!(
            validate(&t, &t.record.org_id.to_string(), now, None),
            Err(UNKNOWN)
        );
        // Grace over: only the pre-rotation secret stops.
        let later = datetime!(2025-01-10 0:00 UTC);
        assert_eq!(validate(&t, &previous, later, None), Err(ROTATED));
        assert_eq!(validate(&t, &current, later, None), Ok(()));
        // Expiry.
        let expired = datetime!(2025-02-01 0:00 UTC);
        assert_eq!(validate(&t, &current, expired, None), Err(EXPIRED));
        // Organization by slug or ID.
        let id = t.record.org_id.to_string();
        assert_eq!(validate(&t, &current, now, Some(&id)), Ok(()));
        assert_eq!(
            validate(&t, &current, now, Some("other")),
            Err(OTHER_ORGANIZATION)
        );
        assert_eq!(
            validate(&t, &current, now, Some(&Uuid::now_v7().to_string())),
            Err(OTHER_ORGANIZATION)
        );
        // Revocation wins over everything.
        let revoked = cached(|r| r.revoked_at = Some(datetime!(2025-01-02 0:00 UTC)));
        assert_eq!(
            validate(&revoked, &current, now, Some("other")),
            Err(REVOKED)
        );
        // A rotation without grace leaves no window at all.
        let immediate = cached(|r| r.previous_valid_until = None);
        assert_eq!(validate(&immediate, &previous, now, None), Err(ROTATED));
    }
}
