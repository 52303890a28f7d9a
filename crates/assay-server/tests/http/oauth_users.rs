//! Set-up shared by the OAuth user tests (grants, step-up): stored users with a role,
//! a stored client, stored grants, and access tokens from the server's own key ring
//! whose `gid` names a real grant.

use crate::support::TestApp;
use assay_auth::jwt::AccessTokenRequest;
use assay_auth::scope::McpScope;
use assay_core::Level;
use assay_core::identity::{Membership, OrgRole, User};
use assay_core::oauth::{OAuthClient, OAuthClientKind, OAuthGrant, RefreshToken};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

pub const CLIENT_ID: &str = "https://client.example/oauth.json";
pub const CLIENT_NAME: &str = "Example MCP Client";

/// A stored user, member of the bootstrapped organization with `level` on `dev`.
pub async fn member(app: &TestApp, email: &str, level: Level) -> User {
    let user = User {
        id: Uuid::now_v7(),
        email: email.into(),
        display_name: email.into(),
        password_hash: None,
        disabled: false,
        created_at: OffsetDateTime::now_utc(),
    };
    app.store.insert_user(&user).await.unwrap();
    let dev = app
        .store
        .find_env(app.org_id, "dev")
        .await
        .unwrap()
        .unwrap();
    app.store
        .upsert_membership(&Membership {
            org_id: app.org_id,
            user_id: user.id,
            role: OrgRole::Member,
            grants: BTreeMap::from([(dev.id, level)]),
        })
        .await
        .unwrap();
    user
}

/// Stores `CLIENT_ID` (once) and a grant of `user` for it on `resource`.
pub async fn grant(app: &TestApp, user: Uuid, resource: &str, scope: McpScope) -> OAuthGrant {
    if app
        .store
        .get_oauth_client(CLIENT_ID)
        .await
        .unwrap()
        .is_none()
    {
        app.store
            .insert_oauth_client(&OAuthClient {
                id: CLIENT_ID.into(),
                kind: OAuthClientKind::MetadataDocument,
                client_name: CLIENT_NAME.into(),
                redirect_uris: vec!["https://client.example/callback".into()],
                created_at: OffsetDateTime::now_utc(),
                last_used_at: None,
                expires_at: None,
            })
            .await
            .unwrap();
    }
    app.store
        .upsert_oauth_grant(&OAuthGrant {
            id: Uuid::now_v7(),
            org_id: app.org_id,
            user_id: user,
            client_id: CLIENT_ID.into(),
            scope: scope.to_scope_string(),
            resource: resource.into(),
            created_at: OffsetDateTime::now_utc(),
            revoked_at: None,
            revoked_reason: None,
        })
        .await
        .unwrap()
}

/// An access token of `grant` for its user and resource, with `scope`.
pub fn token(app: &TestApp, grant: &OAuthGrant, scope: McpScope) -> String {
    let subject = grant.user_id.to_string();
    let grant_id = grant.id.to_string();
    app.plane
        .key_ring()
        .issue(
            &app.base,
            &AccessTokenRequest {
                subject: &subject,
                audience: &grant.resource,
                client_id: &grant.client_id,
                scope,
                lifetime: Duration::from_secs(600),
                grant_id: &grant_id,
                session_id: None,
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap()
        .0
}

/// A stored refresh token of `grant` (its hash only; the secret is never needed here).
pub async fn refresh_token(app: &TestApp, grant: &OAuthGrant) -> RefreshToken {
    let now = OffsetDateTime::now_utc();
    let token = RefreshToken {
        token_hash: format!("{:064x}", grant.id.as_u128()),
        family_id: Uuid::now_v7(),
        grant_id: grant.id,
        client_id: grant.client_id.clone(),
        resource: grant.resource.clone(),
        scope: grant.scope.clone(),
        created_at: now,
        expires_at: now + time::Duration::days(30),
        idle_expires_at: now + time::Duration::days(14),
        used_at: None,
        revoked_at: None,
    };
    app.store.insert_refresh_token(&token).await.unwrap();
    token
}

/// The MCP endpoint path of `dev` and its resource URL (the token audience).
pub fn dev_mcp(app: &TestApp) -> (String, String) {
    let path = "/organizations/default/environments/dev/mcp".to_owned();
    let resource = format!("{}{path}", app.base);
    (path, resource)
}
