//! RFC 8707 resources: which of this server's protected resources a request names, and
//! which organization a grant for it belongs to.
//!
//! A resource is the base resource (the public URL itself) or the MCP endpoint of an
//! existing environment, spelled exactly as `PublicBase::mcp_resource` spells it (so
//! the token audience equals what the endpoint's metadata published). Anything else is
//! `invalid_target`.

use super::{AuthorizationServer, OAuthError};
use assay_core::identity::{OrgRole, User};
use assay_core::{Environment, Organization};
use std::collections::HashSet;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// The server as a whole: the grant belongs to the user's organization.
    Base,
    Environment {
        org: Organization,
        env: Environment,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedResource {
    pub url: String,
    pub target: Target,
}

impl AuthorizationServer {
    /// The resource a request names (`None`: the base resource).
    pub(crate) async fn resolve_resource(
        &self,
        resource: Option<&str>,
    ) -> Result<ResolvedResource, OAuthError> {
        let public = self.public()?;
        let base = public.base_resource().url;
        let Some(resource) = resource else {
            return Ok(ResolvedResource {
                url: base,
                target: Target::Base,
            });
        };
        if resource == base {
            return Ok(ResolvedResource {
                url: base,
                target: Target::Base,
            });
        }
        let unknown = || {
            OAuthError::invalid_target(
                "resource must be this server's URL or the URL of one of its MCP endpoints",
            )
        };
        let (org_ref, env_ref) = resource
            .strip_prefix(&base)
            .and_then(|rest| rest.strip_prefix("/organizations/"))
            .and_then(|rest| rest.strip_suffix("/mcp"))
            .and_then(|rest| rest.split_once("/environments/"))
            .ok_or_else(unknown)?;
        // Slugs and IDs need no percent-encoding; whatever does is not one of ours.
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
        };
        if !plain(org_ref) || !plain(env_ref) {
            return Err(unknown());
        }
        let canonical = public
            .mcp_resource(org_ref, env_ref)
            .map_err(|_| unknown())?
            .url;
        if canonical != resource {
            return Err(unknown());
        }
        let org = self.store.find_org(org_ref).await?.ok_or_else(unknown)?;
        let env = self
            .store
            .find_env(org.id, env_ref)
            .await?
            .ok_or_else(unknown)?;
        Ok(ResolvedResource {
            url: canonical,
            target: Target::Environment { org, env },
        })
    }

    /// The organization a grant of `user` for `target` belongs to, when the user may
    /// reach the resource: a member of its organization with access to its environment
    /// (owners and admins reach every environment). For the base resource, the user's
    /// first organization — the oldest one they are a member of (memberships carry no
    /// creation time, so the organization's stands in).
    pub(crate) async fn grant_org(
        &self,
        user: &User,
        target: &Target,
    ) -> Result<Option<Uuid>, OAuthError> {
        match target {
            Target::Environment { org, env } => {
                let reach = self
                    .store
                    .find_membership(org.id, user.id)
                    .await?
                    .is_some_and(|m| match m.role {
                        OrgRole::Owner | OrgRole::Admin => true,
                        OrgRole::Member => m.grants.contains_key(&env.id),
                    });
                Ok(reach.then_some(org.id))
            }
            Target::Base => self.first_org_of(user.id).await,
        }
    }

    /// The oldest organization `user_id` is a member of.
    pub(crate) async fn first_org_of(&self, user_id: Uuid) -> Result<Option<Uuid>, OAuthError> {
        // Two queries, not one membership lookup per organization on the server.
        let member_of: HashSet<Uuid> = self
            .store
            .list_memberships_of_user(user_id)
            .await?
            .into_iter()
            .map(|m| m.org_id)
            .collect();
        if member_of.is_empty() {
            return Ok(None);
        }
        Ok(self
            .store
            .list_orgs()
            .await?
            .into_iter()
            .filter(|o| member_of.contains(&o.id))
            .min_by_key(|o| (o.created_at, o.id))
            .map(|o| o.id))
    }
}
