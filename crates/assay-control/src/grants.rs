//! A user's own OAuth grants: list them, revoke one (issue 5: "grants remembered per
//! (user, client), and users can list and revoke them").
//!
//! - Only users have grants; `access::authorize_org` refuses API tokens (`Refused`).
//! - A user sees and revokes only their own grants in the addressed organization: another
//!   user's grant, one of another organization, an already revoked one and a missing one
//!   are all the same `NotFound`, so a grant ID reveals nothing about its owner.
//! - Any scope may do this (a `mcp:read` token too): it only ever takes power away from
//!   the user's own clients.
//! - Revoking goes through `Store::revoke_oauth_grant`, which ends the grant's refresh
//!   tokens in the same transaction; its access tokens stop where `jwt_auth` checks the
//!   grant named by their `gid` claim.

use crate::LocalControlPlane;
use crate::audit::Call;
use assay_core::oauth::{GrantInfo, OAuthClientKind, OAuthGrant};
use assay_core::{Error, Organization, Result};
use std::collections::HashMap;
use uuid::Uuid;

/// Recorded on the grant as why it ended.
pub(crate) const REVOKED_BY_USER: &str = "revoked by the user";

pub(crate) fn grant_ref(id: Uuid) -> String {
    format!("grant:{id}")
}

fn hidden(id: Uuid) -> Error {
    Error::not_found("grant", id.to_string())
}

impl LocalControlPlane {
    pub(crate) async fn list_my_grants_in(
        &self,
        call: &Call<'_>,
        org: &Organization,
    ) -> Result<Vec<GrantInfo>> {
        let user = call.actor.principal.id;
        let grants: Vec<OAuthGrant> = self
            .store
            .list_oauth_grants(user)
            .await?
            .into_iter()
            .filter(|g| g.org_id == org.id && g.revoked_at.is_none())
            .collect();
        // One lookup per distinct client (a user has few).
        let mut clients = HashMap::new();
        for grant in &grants {
            if !clients.contains_key(&grant.client_id) {
                let client = self.store.get_oauth_client(&grant.client_id).await?;
                clients.insert(grant.client_id.clone(), client);
            }
        }
        Ok(grants
            .into_iter()
            .map(|g| {
                let client = clients.get(&g.client_id).and_then(Option::as_ref);
                GrantInfo {
                    id: g.id,
                    // A client row outlives its grants (the store refuses to delete a
                    // client with grants), so the fallbacks are defensive only.
                    client_name: client
                        .map(|c| c.client_name.clone())
                        .unwrap_or_else(|| g.client_id.clone()),
                    client_kind: client.map_or(OAuthClientKind::Registered, |c| c.kind),
                    client_id: g.client_id,
                    scope: g.scope,
                    resource: g.resource,
                    created_at: g.created_at,
                }
            })
            .collect())
    }

    pub(crate) async fn revoke_my_grant_in(
        &self,
        call: &mut Call<'_>,
        org: &Organization,
        id: Uuid,
    ) -> Result<()> {
        let user = call.actor.principal.id;
        let grant = match self.store.get_oauth_grant(id).await? {
            Some(g) if g.user_id == user && g.org_id == org.id && g.revoked_at.is_none() => g,
            _ => {
                call.denied = true;
                return Err(hidden(id));
            }
        };
        call.add(format!("client:{}", grant.client_id));
        let now = crate::stamp::now(self.clock.as_ref());
        // `false`: revoked concurrently in between; the outcome is the same.
        let revoked = self
            .store
            .revoke_oauth_grant(grant.id, now, REVOKED_BY_USER)
            .await;
        // Its access tokens stop here at once, even if the store failed part-way.
        self.authenticator.forget_grant(grant.id);
        if !revoked? {
            return Err(hidden(id));
        }
        Ok(())
    }
}
