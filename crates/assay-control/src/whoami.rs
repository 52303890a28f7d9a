//! `whoami`: who the caller is and, per organization it belongs to, what it may reach
//! (`GET /v1/me`; `assay login` picks the organization and environment from it, and
//! `assay mcp serve` the principal it acts as).
//!
//! - A user sees every organization they are a member of, whatever organization (if any)
//!   they authenticated at: the principal of each is the user's role there, still bounded
//!   by the credential's scope, with the same method and credential.
//! - An API token sees its own organization only.
//! - Environments appear only where the effective level (role capped by scope) is some
//!   level; the rest are not mentioned, as everywhere else.
//! - The call is audited as `identity.whoami` in each listed organization's chain, or in
//!   the caller's own chain (nil for a user in no organization) when none is listed.

use crate::LocalControlPlane;
use crate::audit::{self, Call};
use crate::jwt_auth::membership_access;
use crate::permissions::Operation;
use assay_core::actor::{Actor, PrincipalKind};
use assay_core::identity::{EnvironmentAccess, Identity, IdentityMembership, OrgSummary};
use assay_core::{Error, Organization, Principal, Result};
use uuid::Uuid;

impl LocalControlPlane {
    pub(crate) async fn whoami_audited(&self, actor: &Actor) -> Result<Identity> {
        let result = self.identity_of(&actor.principal).await;
        let chains: Vec<Uuid> = match &result {
            Ok(identity) if !identity.memberships.is_empty() => identity
                .memberships
                .iter()
                .map(|m| m.organization.id)
                .collect(),
            _ => vec![actor.principal.org_id],
        };
        // Every event is committed before the answer is returned (fail closed).
        let calls: Vec<Call<'_>> = chains
            .into_iter()
            .map(|org_id| {
                let mut call = Call::new(actor, Operation::Whoami);
                call.org_id = org_id;
                call
            })
            .collect();
        for call in &calls {
            let outcome = audit::outcome_of(call, &result);
            audit::record(&self.audit, self.clock.as_ref(), call, outcome).await?;
        }
        result
    }

    async fn identity_of(&self, principal: &Principal) -> Result<Identity> {
        if principal.kind != PrincipalKind::User {
            // An API token: its own organization, as it is.
            let memberships = match self.store.find_org(&principal.org_id.to_string()).await? {
                Some(org) => vec![self.membership_view(&org, None, principal.clone()).await?],
                None => Vec::new(),
            };
            return Ok(Identity {
                kind: principal.kind,
                id: principal.id,
                display_name: principal.display_name.clone(),
                email: None,
                auth_method: principal.auth_method,
                memberships,
            });
        }
        // Authentication found the user moments ago; gone since is the same refusal.
        let user = self
            .store
            .find_user(principal.id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| Error::Unauthenticated("the user no longer exists".into()))?;
        let mut memberships = Vec::new();
        for membership in self.store.list_memberships_of_user(user.id).await? {
            let Some(org) = self.store.find_org(&membership.org_id.to_string()).await? else {
                continue;
            };
            let in_org = Principal {
                kind: PrincipalKind::User,
                id: user.id,
                display_name: user.display_name.clone(),
                org_id: org.id,
                access: membership_access(&membership),
                scope_cap: principal.scope_cap,
                auth_method: principal.auth_method,
                credential_id: principal.credential_id.clone(),
            };
            memberships.push(
                self.membership_view(&org, Some(membership.role), in_org)
                    .await?,
            );
        }
        Ok(Identity {
            kind: PrincipalKind::User,
            id: user.id,
            display_name: user.display_name,
            email: Some(user.email),
            auth_method: principal.auth_method,
            memberships,
        })
    }

    async fn membership_view(
        &self,
        org: &Organization,
        role: Option<assay_core::identity::OrgRole>,
        principal: Principal,
    ) -> Result<IdentityMembership> {
        let environments = self
            .store
            .list_envs(org.id)
            .await?
            .into_iter()
            .filter_map(|env| {
                let level = principal.level_in(org.id, env.id)?;
                Some(EnvironmentAccess {
                    id: env.id,
                    slug: env.slug,
                    name: env.name,
                    level,
                })
            })
            .collect();
        Ok(IdentityMembership {
            organization: OrgSummary {
                id: org.id,
                slug: org.slug.clone(),
                name: org.name.clone(),
            },
            role,
            principal,
            environments,
        })
    }
}
