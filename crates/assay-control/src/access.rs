//! Resolution and authorization, in one place used by every operation (DESIGN.md §3):
//! environments for environment operations, organizations for organization operations.
//! Anything the principal may not see is answered exactly like something that does not
//! exist: same error, same message.

use crate::audit::Call;
use crate::permissions::Requirement;
use crate::scope_cache::ScopeCache;
use assay_auth::scope::McpScope;
use assay_core::actor::{Access, PrincipalKind};
use assay_core::ports::Store;
use assay_core::{EnvRef, Environment, Error, Level, Organization, Principal, Result};

/// A resolved environment the caller may act in (at least at the operation's level).
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub env: Environment,
}

/// `cache` holds earlier successful resolutions by the same principal; a hit is checked
/// exactly like a fresh lookup (see `scope_cache` for why that changes nobody's view).
pub(crate) async fn authorize(
    store: &dyn Store,
    cache: &ScopeCache,
    call: &mut Call<'_>,
    env_ref: &EnvRef,
) -> Result<Scope> {
    let hidden = || Error::NotFound {
        kind: "environment",
        name: format!("{}/{}", env_ref.org, env_ref.env),
    };
    let Some(needed) = call.operation.required_level() else {
        return Err(Error::internal(format!(
            "{:?} is not an environment operation",
            call.operation
        )));
    };
    let principal = &call.actor.principal;
    let env = match cache.get(principal, env_ref) {
        Some(env) => env,
        None => {
            let generation = cache.generation();
            let org = match store.find_org(&env_ref.org).await? {
                Some(org) if org.id == principal.org_id => org,
                // Unknown, or another organization: the event goes to the principal's own chain.
                _ => {
                    call.denied = true;
                    return Err(hidden());
                }
            };
            call.org_id = org.id;
            let Some(env) = store.find_env(org.id, &env_ref.env).await? else {
                call.denied = true;
                return Err(hidden());
            };
            if principal.level_in(org.id, env.id).is_some() {
                cache.insert(principal, env_ref, env.clone(), generation);
            }
            env
        }
    };
    // A hit was filled for this principal in its own organization; checked again anyway.
    if env.org_id != principal.org_id {
        call.denied = true;
        return Err(hidden());
    }
    call.org_id = env.org_id;
    call.env_id = Some(env.id);
    let Some(level) = principal.level_in(env.org_id, env.id) else {
        call.denied = true;
        return Err(hidden());
    };
    if level < needed {
        call.denied = true;
        return Err(refusal(principal, env.org_id, env.id, needed));
    }
    Ok(Scope { env })
}

/// Why a principal below `needed` is refused: `InsufficientScope` when only its
/// credential's scope is too narrow — the role allows the operation and a scope can reach
/// `needed` (an OAuth scope reaches write at most) — so the client can ask the user for
/// the wider scope (step-up); `Forbidden` when the role itself falls short.
fn refusal(principal: &Principal, org_id: uuid::Uuid, env_id: uuid::Uuid, needed: Level) -> Error {
    let role = principal.role_level_in(org_id, env_id);
    let scope_can_reach = McpScope::for_level(needed).is_some();
    if principal.scope_cap.is_some() && scope_can_reach && role.is_some_and(|r| r >= needed) {
        Error::InsufficientScope { needed }
    } else {
        Error::Forbidden { needed }
    }
}

/// What an API token is told when it asks for a user's own things (their OAuth grants).
pub(crate) const USERS_ONLY: &str = "OAuth grants belong to users, and an API token acts for no user: \
     sign in as yourself (OAuth or `assay login`) to list or revoke your grants";

/// Whether the principal administers its organization: owner/admin users and admin API
/// tokens, unless a credential scope narrows it below admin.
pub(crate) fn is_org_admin(principal: &Principal) -> bool {
    principal.access == Access::OrgAdmin && principal.scope_cap.is_none_or(|c| c >= Level::Admin)
}

/// Resolves the organization of an organization operation (by ID or slug) and checks the
/// operation's requirement. Another organization is `NotFound`, like a missing one.
pub(crate) async fn authorize_org(
    store: &dyn Store,
    call: &mut Call<'_>,
    org_ref: &str,
) -> Result<Organization> {
    let principal = &call.actor.principal;
    let org = match store.find_org(org_ref).await? {
        Some(org) if org.id == principal.org_id => org,
        _ => {
            call.denied = true;
            return Err(Error::not_found("organization", org_ref));
        }
    };
    call.org_id = org.id;
    let allowed = match call.operation.requirement() {
        Requirement::OrgAdmin => is_org_admin(principal),
        // Users manage their own tokens; of API tokens only admin tokens manage tokens.
        Requirement::Member => principal.kind != PrincipalKind::ApiToken || is_org_admin(principal),
        Requirement::User => {
            if principal.kind != PrincipalKind::User {
                call.denied = true;
                return Err(Error::Refused(USERS_ONLY.into()));
            }
            true
        }
        Requirement::Env(_) | Requirement::Caller => {
            return Err(Error::internal(format!(
                "{:?} is not an organization operation",
                call.operation
            )));
        }
    };
    if !allowed {
        call.denied = true;
        return Err(Error::Forbidden {
            needed: Level::Admin,
        });
    }
    Ok(org)
}
