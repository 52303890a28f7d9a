//! Signing in through an upstream identity provider (OIDC, GitHub) from the OAuth sign-in
//! pages: the HTTP half of `assay_control::upstream_login` (which holds every rule).
//!
//! - `GET /oauth/upstream/{provider}/start?<authorization request>` — linked from the
//!   login page, one link per provider. Validates the request again and shows the
//!   per-client consent (client, hosts, resource, scopes) **before** the browser leaves
//!   Assay: consent is never implied by a login at the provider.
//! - `POST /oauth/upstream/{provider}/start` — that page's form (the request's parameters,
//!   the CSRF token and `granted_scope`): CSRF and the request are checked again, the
//!   pending login is kept server-side bound to this browser's CSRF cookie, and the
//!   browser is sent to the provider (`303`).
//! - `GET /oauth/upstream/{provider}/callback` — the provider's redirect back (register
//!   `<public URL>/oauth/upstream/<id>/callback` there). On success the session cookie is
//!   set and the browser goes on to the client's redirect URI with `code`, `state` and
//!   `iss` (`303`); a consent that cannot become a code goes back to the client as an
//!   OAuth error, like a password login's; anything else is an error page.
//!
//! The pages carry the same headers as every sign-in page (`responses::Page`). The
//! callback URL holds the provider's code and state: its answers are never cached and
//! send no referrer, and request logs show the route template only.

use crate::oauth::OAuthState;
use crate::oauth::authorize::{
    begin, granted_scope, hidden_request, rejected, request_query, resume_url,
};
use crate::oauth::cookies::Cookie;
use crate::oauth::form::Form;
use crate::oauth::pages::{self, ClientFacts, escape, layout};
use crate::oauth::request_context;
use crate::oauth::responses::{Page, error_page, see_other};
use crate::oauth::session::{checked_form, csrf_token, session_cookie};
use assay_auth::upstream::{CallbackParams, UpstreamError};
use assay_control::oauth::{AuthorizeRequest, ConsentDecision};
use assay_control::upstream_login::{
    ProviderView, UpstreamLoginError, UpstreamLogins, callback_path, start_path,
};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;

/// The routes, to merge into the OAuth router (they share its state).
pub(crate) fn routes() -> Router<OAuthState> {
    Router::new()
        .route(&start_path("{provider}"), get(show).post(start))
        .route(&callback_path("{provider}"), get(callback))
}

/// The login page's links, one per provider: `(label, href)`, carrying the authorization
/// request (`form`: the request's query or form) to the provider's consent page.
pub(crate) fn sign_in_links(st: &OAuthState, form: &Form) -> Vec<(String, String)> {
    let Some(logins) = &st.upstream else {
        return Vec::new();
    };
    let query = request_query(form);
    logins
        .providers()
        .into_iter()
        .map(|p| {
            let href = format!("{}?{query}", st.path(&start_path(&p.id)));
            (format!("Sign in with {}", p.display_name), href)
        })
        .collect()
}

/// The service and the provider named in the path, when both exist.
fn provider(st: &OAuthState, id: &str) -> Option<(Arc<UpstreamLogins>, ProviderView)> {
    let logins = st.upstream.clone()?;
    let provider = logins.provider(id)?;
    Some((logins, provider))
}

fn unknown_provider() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "Unknown sign-in provider",
        "This server has no sign-in provider under this name.",
    )
}

/// `GET /oauth/upstream/{provider}/start`: the consent page shown before leaving.
async fn show(
    State(st): State<OAuthState>,
    Path(provider_id): Path<String>,
    req: Request,
) -> Response {
    let Some((logins, provider)) = provider(&st, &provider_id) else {
        return unknown_provider();
    };
    let (parts, _) = req.into_parts();
    let query = Form::query(&parts.uri);
    let ctx = request_context(&parts);
    let request = match begin(&st, &query, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let (token, cookie) = match csrf_token(&st, &parts.headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    // The form's redirect goes to the provider: `form-action` must allow its origin.
    let upstream_origin = match logins.authorization_origin(&provider.id).await {
        Ok(origin) => origin,
        Err(e) => return failure(&e),
    };
    let hidden = hidden_request(&query, &token);
    let back = resume_url(&st, &query);
    let html = consent_before_leaving(&ConsentBeforeLeaving {
        action: &st.path(&start_path(&provider.id)),
        back: &back,
        hidden: &hidden,
        provider: &provider.display_name,
        request: &request,
    });
    let mut page = Page::new(StatusCode::OK, html).with_cookie(cookie);
    page.form_targets.push(upstream_origin);
    page.into_response()
}

/// `POST /oauth/upstream/{provider}/start`: consent given, off to the provider.
async fn start(
    State(st): State<OAuthState>,
    Path(provider_id): Path<String>,
    req: Request,
) -> Response {
    let (parts, form) = match checked_form(&st, req).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let Some((logins, _)) = provider(&st, &provider_id) else {
        return unknown_provider();
    };
    let ctx = request_context(&parts);
    let request = match begin(&st, &form, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let scope = match granted_scope(&form) {
        Ok(scope) => scope,
        Err(e) => return e.into_response(),
    };
    // `checked_form` compared it with the form's token, so it is there.
    let browser = st
        .cookies
        .read(&parts.headers, Cookie::Csrf)
        .unwrap_or_default();
    match logins
        .begin(
            &provider_id,
            &request,
            ConsentDecision::Approve { scope },
            &browser,
        )
        .await
    {
        Ok(url) => see_other(url.as_str(), Vec::new()),
        Err(e) => failure(&e),
    }
}

/// `GET /oauth/upstream/{provider}/callback`: the provider's answer.
async fn callback(
    State(st): State<OAuthState>,
    Path(provider_id): Path<String>,
    req: Request,
) -> Response {
    // An unknown provider still reaches `finish`, which audits the attempt.
    let Some(logins) = st.upstream.clone() else {
        return unknown_provider();
    };
    let (parts, _) = req.into_parts();
    let query = Form::query(&parts.uri);
    let params = CallbackParams {
        code: query.get("code").map(str::to_owned),
        state: query.get("state").map(str::to_owned),
        error: query.get("error").map(str::to_owned),
        error_description: query.get("error_description").map(str::to_owned),
        iss: query.get("iss").map(str::to_owned),
    };
    let browser = st.cookies.read(&parts.headers, Cookie::Csrf);
    let ctx = request_context(&parts);
    match logins
        .finish(&provider_id, &params, browser.as_deref(), &ctx)
        .await
    {
        Ok(done) => match session_cookie(&st, &done.session) {
            Some(cookie) => see_other(&done.location, vec![cookie]),
            None => {
                st.server.end_session(done.session.secret()).await;
                failure(&UpstreamLoginError::Internal(
                    "the session cookie could not be built".into(),
                ))
            }
        },
        Err(UpstreamLoginError::Rejected(rejection)) => rejected(rejection),
        Err(e) => failure(&e),
    }
}

/// An error page for a failed upstream login: the error's own (secret-free) message.
fn failure(e: &UpstreamLoginError) -> Response {
    let (status, title) = match e {
        UpstreamLoginError::UnknownProvider => return unknown_provider(),
        UpstreamLoginError::NotApproved
        | UpstreamLoginError::UnknownLogin
        | UpstreamLoginError::OtherBrowser
        | UpstreamLoginError::WrongProvider => (StatusCode::BAD_REQUEST, "Sign-in not completed"),
        UpstreamLoginError::LoginFailed(cause) if unreachable(cause) => {
            (StatusCode::BAD_GATEWAY, "Sign-in provider unavailable")
        }
        UpstreamLoginError::LoginFailed(UpstreamError::Denied { .. }) => {
            (StatusCode::FORBIDDEN, "Sign-in cancelled")
        }
        UpstreamLoginError::LoginFailed(_) => (StatusCode::BAD_REQUEST, "Sign-in not completed"),
        UpstreamLoginError::EmailNotAdmitted(_)
        | UpstreamLoginError::NoAccount
        | UpstreamLoginError::AccountDisabled => (StatusCode::FORBIDDEN, "Sign-in refused"),
        UpstreamLoginError::ProviderUnavailable(_) => {
            (StatusCode::BAD_GATEWAY, "Sign-in provider unavailable")
        }
        UpstreamLoginError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "Try again later"),
        UpstreamLoginError::NotConfigured
        | UpstreamLoginError::Provisioning(_)
        | UpstreamLoginError::Internal(_)
        | UpstreamLoginError::Rejected(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong")
        }
    };
    if status.is_server_error() {
        tracing::warn!(error = %e, "upstream sign-in failed");
    }
    error_page(status, title, &e.to_string())
}

/// The provider could not be reached or answered garbage at the transport level.
fn unreachable(e: &UpstreamError) -> bool {
    matches!(
        e,
        UpstreamError::Timeout { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::Status { .. }
            | UpstreamError::TooLarge { .. }
    )
}

struct ConsentBeforeLeaving<'a> {
    action: &'a str,
    /// The login page of the same request.
    back: &'a str,
    hidden: pages::Hidden<'a>,
    provider: &'a str,
    request: &'a AuthorizeRequest,
}

/// The consent page shown before the browser goes to the provider. The same facts as the
/// consent page of a signed-in user; the user is not known yet, so the page says where
/// they will sign in instead.
fn consent_before_leaving(page: &ConsentBeforeLeaving<'_>) -> String {
    let r = page.request;
    let c = &r.client;
    let mut body = format!(
        "<h1>Allow <strong>{}</strong> to use Assay as you?</h1>",
        escape(&c.name)
    );
    let facts = ClientFacts {
        name: &c.name,
        client_id: &c.client_id,
        client_id_host: c.client_id_host.as_deref(),
        redirect_host: &c.redirect_host,
        redirect_uri: Some(&r.redirect_uri),
        localhost_only: c.localhost_only,
    };
    pages::client_facts(&mut body, &facts, &r.resource);
    let _ = write!(
        body,
        "<dt>You sign in with</dt><dd>{}</dd></dl>",
        escape(page.provider)
    );
    pages::consent_form_start(
        &mut body,
        &c.client_id,
        c.localhost_only,
        page.action,
        page.hidden,
        r.scope,
    );
    let _ = write!(
        body,
        "<p class=\"muted\">You will sign in at {provider}. {client} gets this access once you \
         have; the client stays connected until you revoke its access or stop using it.</p>\
         <button type=\"submit\">Allow and continue with {provider}</button></form>\
         <p><a href=\"{back}\">Back</a></p>",
        provider = escape(page.provider),
        client = escape(&c.name),
        back = escape(page.back),
    );
    layout("Allow access", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_auth::scope::McpScope;
    use assay_control::oauth::ClientView;
    use assay_core::oauth::OAuthClientKind;

    fn request() -> AuthorizeRequest {
        AuthorizeRequest {
            client: ClientView {
                client_id: "assay_client_x".into(),
                name: "<img src=x onerror=alert(1)>".into(),
                kind: OAuthClientKind::Registered,
                client_id_host: None,
                redirect_host: "127.0.0.1".into(),
                localhost_only: true,
            },
            redirect_uri: "http://127.0.0.1:9/cb?a=\"b\"".into(),
            state: Some("\"><script>x</script>".into()),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
            scope: McpScope::Run,
            offline_access: false,
            resource: "http://127.0.0.1:1/".into(),
        }
    }

    #[test]
    fn the_page_before_leaving_shows_the_client_and_escapes_everything() {
        let r = request();
        let hidden = [("state", "\"><script>x</script>"), ("csrf", "t")];
        let html = consent_before_leaving(&ConsentBeforeLeaving {
            action: "/oauth/upstream/corp/start",
            back: "/oauth/authorize?client_id=a&state=%22",
            hidden: &hidden,
            provider: "Corp <SSO>",
            request: &r,
        });
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("Corp &lt;SSO&gt;"));
        // The same client facts as the signed-in consent page, then who signs in where.
        assert!(html.contains(
            "<dt>Sends you back to</dt><dd><code>127.0.0.1</code> <span class=\"muted\">\
             (<code>http://127.0.0.1:9/cb?a=&quot;b&quot;</code>)</span></dd>\
             <dt>For</dt><dd><code>http://127.0.0.1:1/</code></dd>\
             <dt>You sign in with</dt><dd>Corp &lt;SSO&gt;</dd></dl>"
        ));
        assert!(html.contains("class=\"warning\""));
        assert!(html.contains("<form method=\"post\" action=\"/oauth/upstream/corp/start\">"));
        assert!(html.contains("value=\"mcp:read\">"));
        assert!(html.contains("value=\"mcp:run\" checked>"));
        assert!(!html.contains("mcp:write"));
        assert!(html.contains("href=\"/oauth/authorize?client_id=a&amp;state=%22\""));
    }
}
