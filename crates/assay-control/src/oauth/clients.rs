//! Who a `client_id` is: the first-party CLI, a dynamically registered client (both
//! stored), or a Client ID Metadata Document URL (fetched behind the SSRF guard, its row
//! upserted so grants can refer to it). There are no client secrets: every client is
//! public, identified by its ID and bound by its redirect URIs and PKCE.

use super::events::{self, OAuthEvent};
use super::{AuthorizationServer, CLI_CLIENT_ID, ClientView, OAuthError, RequestContext};
use assay_auth::cimd::{CimdError, is_metadata_document_url};
use assay_auth::redirect;
use assay_core::oauth::{OAuthClient, OAuthClientKind};
use assay_core::{Error, Result};
use uuid::Uuid;

pub const CLI_CLIENT_NAME: &str = "Assay CLI";
/// RFC 8252 §7.3: the CLI listens on a loopback port the OS picks; any port matches.
pub const CLI_REDIRECT_URIS: [&str; 2] = ["http://127.0.0.1/callback", "http://localhost/callback"];

/// A client as the authorization server works with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedClient {
    pub id: String,
    pub kind: OAuthClientKind,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub client_id_host: Option<String>,
}

impl ResolvedClient {
    fn from_stored(c: OAuthClient) -> Self {
        Self {
            id: c.id,
            kind: c.kind,
            name: c.client_name,
            redirect_uris: c.redirect_uris,
            client_id_host: None,
        }
    }

    /// Only the CLI may use the device grant: DCR clients register for the code grant
    /// only, and metadata documents are not trusted to ask for it.
    pub fn may_use_device_grant(&self) -> bool {
        self.kind == OAuthClientKind::FirstParty
    }

    /// Every registered redirect is loopback.
    pub fn localhost_only(&self) -> bool {
        !self.redirect_uris.is_empty()
            && self
                .redirect_uris
                .iter()
                .all(|r| redirect::validate(r).is_ok_and(|u| u.is_loopback()))
    }

    /// The view for the consent page, for a request redirecting to `redirect_uri`.
    pub fn view(&self, redirect_uri: &str) -> ClientView {
        let redirect_host = redirect::validate(redirect_uri)
            .ok()
            .and_then(|u| u.host())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                // A private-use scheme without a host (`com.example.app:/cb`).
                redirect_uri
                    .split_once(':')
                    .map(|(scheme, _)| format!("{scheme}:"))
                    .unwrap_or_default()
            });
        ClientView {
            client_id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            client_id_host: self.client_id_host.clone(),
            redirect_host,
            localhost_only: self.localhost_only(),
        }
    }
}

/// The first-party CLI client as inserted at start.
pub(crate) fn cli_client(now: assay_core::Timestamp) -> OAuthClient {
    OAuthClient {
        id: CLI_CLIENT_ID.into(),
        kind: OAuthClientKind::FirstParty,
        client_name: CLI_CLIENT_NAME.into(),
        redirect_uris: CLI_REDIRECT_URIS.iter().map(|s| (*s).to_owned()).collect(),
        created_at: now,
        last_used_at: None,
        expires_at: None,
    }
}

impl AuthorizationServer {
    /// Inserts the CLI client unless it exists (several replicas may race: a conflict
    /// means another one did it).
    pub(crate) async fn ensure_first_party_client(&self) -> Result<()> {
        if self.store.get_oauth_client(CLI_CLIENT_ID).await?.is_some() {
            return Ok(());
        }
        match self
            .store
            .insert_oauth_client(&cli_client(self.now()))
            .await
        {
            Ok(()) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether `client_id` is meant as a metadata document URL under this server's
    /// fetch policy (plain `http` only when the policy allows it, for loopback tests).
    pub(crate) fn is_metadata_document_id(&self, client_id: &str) -> bool {
        is_metadata_document_url(client_id)
            || (self.config.cimd_policy.allows_plain_http_to_loopback()
                && client_id.starts_with("http://"))
    }

    /// The client behind `client_id`; `invalid_client` when there is none, or its
    /// metadata document cannot be used (the description says why).
    pub(crate) async fn resolve_client(
        &self,
        client_id: &str,
        ctx: &RequestContext,
    ) -> std::result::Result<ResolvedClient, OAuthError> {
        if self.is_metadata_document_id(client_id) {
            return self.resolve_metadata_document(client_id, ctx).await;
        }
        let unknown = || OAuthError::invalid_client("unknown client_id");
        let stored = self
            .store
            .get_oauth_client(client_id)
            .await?
            .ok_or_else(unknown)?;
        let now = self.now();
        // An unused registration past its expiry is as good as deleted (the sweep may
        // not have run yet).
        let lapsed = stored.last_used_at.is_none() && stored.expires_at.is_some_and(|e| e <= now);
        if lapsed || stored.kind == OAuthClientKind::MetadataDocument {
            return Err(unknown());
        }
        Ok(ResolvedClient::from_stored(stored))
    }

    async fn resolve_metadata_document(
        &self,
        client_id: &str,
        ctx: &RequestContext,
    ) -> std::result::Result<ResolvedClient, OAuthError> {
        let metadata = match self.cimd.fetch(client_id).await {
            Ok(m) => m,
            Err(e) => {
                if matches!(e, CimdError::Ssrf(_)) {
                    let event = OAuthEvent::new(
                        events::CIMD_REFUSED,
                        Uuid::nil(),
                        events::client_actor(Some(client_id), Uuid::nil()),
                    )
                    .denied(e.to_string());
                    self.record_refusal(ctx, event).await;
                }
                tracing::info!(error = %e, "refused a client metadata document");
                return Err(OAuthError::invalid_client(format!(
                    "the client metadata document cannot be used: {e}"
                )));
            }
        };
        let client = ResolvedClient {
            id: metadata.client_id.clone(),
            kind: OAuthClientKind::MetadataDocument,
            name: metadata.client_name.clone(),
            redirect_uris: metadata
                .redirect_uris
                .iter()
                .map(|r| r.as_str().to_owned())
                .collect(),
            client_id_host: metadata.client_id_host(),
        };
        self.upsert_metadata_client(&client).await?;
        Ok(client)
    }

    /// Grants refer to clients by ID, so a document client gets a row the first time it
    /// is seen. Its redirect URIs are always taken fresh from the document, never from
    /// the row.
    async fn upsert_metadata_client(&self, client: &ResolvedClient) -> Result<()> {
        if self.store.get_oauth_client(&client.id).await?.is_some() {
            return Ok(());
        }
        let row = OAuthClient {
            id: client.id.clone(),
            kind: OAuthClientKind::MetadataDocument,
            client_name: client.name.clone(),
            redirect_uris: client.redirect_uris.clone(),
            created_at: self.now(),
            last_used_at: None,
            expires_at: None,
        };
        match self.store.insert_oauth_client(&row).await {
            Ok(()) | Err(Error::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(redirects: &[&str]) -> ResolvedClient {
        ResolvedClient {
            id: "c".into(),
            kind: OAuthClientKind::Registered,
            name: "C".into(),
            redirect_uris: redirects.iter().map(|s| (*s).to_owned()).collect(),
            client_id_host: None,
        }
    }

    #[test]
    fn views_name_the_redirect_host_and_warn_for_loopback_only() {
        let cli = client(&CLI_REDIRECT_URIS);
        let v = cli.view("http://127.0.0.1:53682/callback");
        assert_eq!(v.redirect_host, "127.0.0.1");
        assert!(v.localhost_only);
        let web = client(&["https://app.example/cb", "http://localhost/cb"]);
        let v = web.view("https://app.example/cb");
        assert_eq!(v.redirect_host, "app.example");
        assert!(!v.localhost_only);
        let native = client(&["com.example.app:/cb"]);
        assert_eq!(
            native.view("com.example.app:/cb").redirect_host,
            "com.example.app:"
        );
        assert!(!native.localhost_only());
        assert!(!client(&[]).localhost_only());
    }

    #[test]
    fn only_the_first_party_client_may_use_the_device_grant() {
        let mut c = client(&CLI_REDIRECT_URIS);
        assert!(!c.may_use_device_grant());
        c.kind = OAuthClientKind::FirstParty;
        assert!(c.may_use_device_grant());
        let stored = cli_client(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(stored.id, "assay-cli");
        assert_eq!(stored.kind, OAuthClientKind::FirstParty);
        assert_eq!(stored.expires_at, None);
    }
}
