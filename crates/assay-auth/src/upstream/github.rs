//! GitHub OAuth apps: the web flow with `state` and PKCE S256 (which GitHub accepts),
//! then `GET /user` for the stable numeric ID and `GET /user/emails` for the primary
//! address and whether GitHub verified it. (`/user`'s `email` is the *public* address,
//! which may be absent or unverified, so it is not used.)

use serde::Deserialize;
use url::Url;

use super::http::{Auth, UpstreamHttp};
use super::{PendingLogin, ProviderSettings, UpstreamError, UpstreamIdentity};
use crate::pkce;

/// Media type of GitHub's REST API, and the API version this code was written for.
const GITHUB_JSON: &str = "application/vnd.github+json";

#[derive(Debug)]
pub(crate) struct GitHubFlow {
    authorize: Url,
    access_token: Url,
    user: Url,
    emails: Url,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

/// `base` + `path`, keeping any path prefix of `base` (GitHub Enterprise's `/api/v3`).
fn join(base: &Url, path: &str) -> Result<Url, UpstreamError> {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    url.set_path(&format!("{prefix}{path}"));
    url.set_query(None);
    if url.cannot_be_a_base() {
        return Err(UpstreamError::Internal(format!(
            "{base} cannot be a base URL"
        )));
    }
    Ok(url)
}

impl GitHubFlow {
    pub fn new(web: &Url, api: &Url) -> Result<Self, UpstreamError> {
        Ok(Self {
            authorize: join(web, "/login/oauth/authorize")?,
            access_token: join(web, "/login/oauth/access_token")?,
            user: join(api, "/user")?,
            emails: join(api, "/user/emails")?,
        })
    }

    pub fn authorization_endpoint(&self) -> &Url {
        &self.authorize
    }

    pub fn authorization_url(&self, settings: &ProviderSettings, pending: &PendingLogin) -> Url {
        let mut url = self.authorize.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &settings.client_id)
            .append_pair("redirect_uri", &pending.redirect_uri)
            .append_pair("scope", &settings.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair(
                "code_challenge",
                &pkce::s256_challenge(&pending.code_verifier),
            )
            .append_pair("code_challenge_method", "S256")
            // Do not offer sign-up in the middle of a login.
            .append_pair("allow_signup", "false");
        url
    }

    pub async fn finish(
        &self,
        http: &UpstreamHttp,
        settings: &ProviderSettings,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let form = [
            ("client_id", settings.client_id.as_str()),
            ("client_secret", settings.client_secret.expose()),
            ("code", code),
            ("redirect_uri", pending.redirect_uri.as_str()),
            ("code_verifier", pending.code_verifier.as_str()),
        ];
        let response = http
            .post_form("token", &self.access_token, &form, Auth::None)
            .await?;
        if response.status != 200 {
            return Err(super::token_refusal(&response));
        }
        let tokens: TokenResponse = response.json("token")?;
        // GitHub reports a bad code with 200 and an error body; it is read as any
        // refusal is, so the description is truncated alike.
        if tokens.error.is_some() {
            return Err(super::token_refusal(&response));
        }
        let access_token = zeroize::Zeroizing::new(tokens.access_token.ok_or_else(|| {
            UpstreamError::InvalidResponse {
                what: "token",
                detail: "no access_token".into(),
            }
        })?);
        if !tokens
            .token_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(UpstreamError::InvalidResponse {
                what: "token",
                detail: "token_type is not bearer".into(),
            });
        }

        let user: User = api_get(http, "user", &self.user, &access_token).await?;
        let emails: Vec<Email> = api_get(http, "user emails", &self.emails, &access_token).await?;
        let primary = emails
            .into_iter()
            .find(|e| e.primary)
            .ok_or(UpstreamError::NoPrimaryEmail)?;
        Ok(UpstreamIdentity {
            provider_id: settings.id.clone(),
            subject: user.id.to_string(),
            email: Some(primary.email),
            email_verified: primary.verified,
            name: Some(
                user.name
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or(user.login),
            ),
        })
    }
}

async fn api_get<T: serde::de::DeserializeOwned>(
    http: &UpstreamHttp,
    what: &'static str,
    url: &Url,
    token: &str,
) -> Result<T, UpstreamError> {
    let response = http
        .get(what, url, GITHUB_JSON, Auth::Bearer(token))
        .await?;
    if response.status != 200 {
        return Err(UpstreamError::Status {
            what,
            status: response.status,
        });
    }
    response.json(what)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn endpoints_keep_the_enterprise_api_prefix() {
        let flow = GitHubFlow::new(
            &Url::parse("https://ghe.example").unwrap(),
            &Url::parse("https://ghe.example/api/v3/").unwrap(),
        )
        .unwrap();
        assert_eq!(
            flow.authorize.as_str(),
            "https://ghe.example/login/oauth/authorize"
        );
        assert_eq!(
            flow.access_token.as_str(),
            "https://ghe.example/login/oauth/access_token"
        );
        assert_eq!(flow.user.as_str(), "https://ghe.example/api/v3/user");
        assert_eq!(
            flow.emails.as_str(),
            "https://ghe.example/api/v3/user/emails"
        );
    }
}
