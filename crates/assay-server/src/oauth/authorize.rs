//! `/oauth/authorize`: the authorization endpoint and its pages.
//!
//! `GET` validates the request (the control plane decides everything), then shows the
//! login page when the browser has no session, the consent page when it has one, or —
//! when a live grant already covers the request — redirects straight back to the client.
//! Every page's form posts back here carrying the original request parameters, which are
//! validated again on each POST; nothing about a pending request is kept server-side.
//! Every POST answers `303 See Other` (to the client, or back to `GET` with the request),
//! except a failed login, which shows the form again with its error.
//!
//! An invalid client or redirect URI gets an error page (400) and never a redirect: the
//! browser must not be sent anywhere the client did not register.

use super::form::Form;
use super::pages::{self, ClientFacts, ConsentPage, LoginPage};
use super::responses::{Page, error_page, see_other};
use super::session::{self, LoginFailure, checked_form, csrf_token, login_answer, password_login};
use super::{OAuthState, csrf, request_context};
use assay_auth::metadata::AUTHORIZATION_PATH;
use assay_auth::scope::McpScope;
use assay_control::oauth::RequestContext;
use assay_control::oauth::{
    AuthorizeParams, AuthorizeRejection, AuthorizeRequest, BrowserSession, ConsentDecision,
};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// The parameters of an authorization request, carried through the pages.
pub(crate) const REQUEST_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

fn params_of(form: &Form) -> AuthorizeParams {
    AuthorizeParams::from_pairs(form.only(&REQUEST_PARAMS))
}

/// Validates the authorization request `form` carries (the query of a `GET`, the fields
/// of a page's `POST`); a refused one comes back as its answer, a page or a redirect.
pub(crate) async fn begin(
    st: &OAuthState,
    form: &Form,
    ctx: &RequestContext,
) -> Result<AuthorizeRequest, Response> {
    st.server
        .begin_authorization(&params_of(form), ctx)
        .await
        .map_err(rejected)
}

/// The user's answer on a consent page: `action` is `approve` or `deny`, and an approval
/// names the access granted (`granted_scope`).
pub(crate) fn consent_decision(
    action: &str,
    form: &Form,
) -> Result<ConsentDecision, NoScopeChosen> {
    if action == "deny" {
        return Ok(ConsentDecision::Deny);
    }
    granted_scope(form).map(|scope| ConsentDecision::Approve { scope })
}

/// The access chosen on a consent form.
pub(crate) fn granted_scope(form: &Form) -> Result<McpScope, NoScopeChosen> {
    form.get("granted_scope")
        .and_then(McpScope::from_token)
        .ok_or(NoScopeChosen)
}

/// A consent form approved without naming the access to grant: a 400 page asking to
/// choose.
pub(crate) struct NoScopeChosen;

impl IntoResponse for NoScopeChosen {
    fn into_response(self) -> Response {
        error_page(
            StatusCode::BAD_REQUEST,
            "Choose the access to grant",
            "The form did not say which access to grant. Go back and choose one.",
        )
    }
}

/// `GET /oauth/authorize`.
pub(crate) async fn show(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let query = Form::query(&parts.uri);
    let ctx = request_context(&parts);
    let request = match begin(&st, &query, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let Some(user) = session::current(&st, &parts.headers).await else {
        return login_page(&st, &parts.headers, &query, &request, None);
    };
    if st.server.consent_remembered(&user, &request).await {
        let approve = ConsentDecision::Approve {
            scope: request.scope,
        };
        return match st.server.decide(&user, &request, approve, &ctx).await {
            Ok(location) => see_other(&location, Vec::new()),
            Err(rejection) => rejected(rejection),
        };
    }
    consent_page(&st, &parts.headers, &query, &request, &user)
}

/// `POST /oauth/authorize`: `action` is `login`, `approve`, `deny` or `switch_user`.
pub(crate) async fn submit(State(st): State<OAuthState>, req: Request) -> Response {
    let (parts, form) = match checked_form(&st, req).await {
        Ok(f) => f,
        Err(res) => return res,
    };
    let ctx = request_context(&parts);
    let request = match begin(&st, &form, &ctx).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let back_here = resume_url(&st, &form);
    match form.get("action") {
        Some("login") => match password_login(&st, &form, &ctx).await {
            Ok(cookie) => see_other(&back_here, vec![cookie]),
            Err(failure) => login_page(&st, &parts.headers, &form, &request, Some(&failure)),
        },
        Some(action @ ("approve" | "deny")) => {
            // A session that ended while the page was open: sign in again, then consent.
            let Some(user) = session::current(&st, &parts.headers).await else {
                return see_other(&back_here, Vec::new());
            };
            let decision = match consent_decision(action, &form) {
                Ok(d) => d,
                Err(e) => return e.into_response(),
            };
            match st.server.decide(&user, &request, decision, &ctx).await {
                Ok(location) => see_other(&location, Vec::new()),
                Err(rejection) => rejected(rejection),
            }
        }
        Some("switch_user") => {
            let clear = session::end(&st, &parts.headers).await;
            see_other(&back_here, vec![clear])
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "This form cannot be used",
            "The form did not say what to do.",
        ),
    }
}

/// `GET /oauth/authorize?<the same request>`: where a POST that did not finish the
/// request sends the browser.
pub(crate) fn resume_url(st: &OAuthState, form: &Form) -> String {
    format!("{}?{}", st.path(AUTHORIZATION_PATH), request_query(form))
}

/// The authorization request's parameters (of a query or a form) as a query string.
pub(crate) fn request_query(form: &Form) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in form.only(&REQUEST_PARAMS) {
        query.append_pair(name, value);
    }
    query.finish()
}

/// An invalid request: an error page (never a redirect) or the redirect to the client.
pub(crate) fn rejected(rejection: AuthorizeRejection) -> Response {
    match rejection {
        AuthorizeRejection::Page { error, description } => {
            let detail = format!("Error: {error}");
            Page::new(
                StatusCode::BAD_REQUEST,
                pages::message(&pages::MessagePage {
                    title: "This sign-in request cannot be used",
                    message: &description,
                    detail: Some(&detail),
                    form: None,
                }),
            )
            .into_response()
        }
        AuthorizeRejection::Redirect { location } => see_other(&location, Vec::new()),
    }
}

/// The `form-action` source that lets the browser follow our 303 to the client's
/// redirect URI after a form submission: its origin, or `scheme:` for a private-use
/// scheme (`cursor://…`).
fn redirect_target(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => {
            let origin = url.origin();
            origin.is_tuple().then(|| origin.ascii_serialization())
        }
        scheme => Some(format!("{scheme}:")),
    }
}

/// The hidden inputs of a page's form: the authorization request and the CSRF token.
pub(crate) fn hidden_request<'a>(form: &'a Form, token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut hidden = form.only(&REQUEST_PARAMS);
    hidden.push((csrf::FIELD, token));
    hidden
}

/// The login form for `request`; `failure` shows the last attempt's error (and its status).
fn login_page(
    st: &OAuthState,
    headers: &HeaderMap,
    form: &Form,
    request: &AuthorizeRequest,
    failure: Option<&LoginFailure>,
) -> Response {
    let (token, cookie) = match csrf_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(AUTHORIZATION_PATH);
    let hidden = hidden_request(form, &token);
    let links = crate::oauth_upstream::sign_in_links(st, form);
    let html = pages::login(&LoginPage {
        action: &action,
        hidden: &hidden,
        links: &links,
        client_name: Some(&request.client.name),
        email: failure.map_or("", |f| f.email.as_str()),
        error: failure.map(|f| f.message.as_str()),
    });
    with_targets(login_answer(html, cookie, failure), request).into_response()
}

fn consent_page(
    st: &OAuthState,
    headers: &HeaderMap,
    form: &Form,
    request: &AuthorizeRequest,
    user: &BrowserSession,
) -> Response {
    let (token, cookie) = match csrf_token(st, headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let action = st.path(AUTHORIZATION_PATH);
    let hidden = hidden_request(form, &token);
    let client = &request.client;
    let html = pages::consent(&ConsentPage {
        action: &action,
        hidden: &hidden,
        client: ClientFacts {
            name: &client.name,
            client_id: &client.client_id,
            client_id_host: client.client_id_host.as_deref(),
            redirect_host: &client.redirect_host,
            redirect_uri: Some(&request.redirect_uri),
            localhost_only: client.localhost_only,
        },
        requested: request.scope,
        resource: &request.resource,
        user_email: &user.email,
        user_name: &user.display_name,
        user_code: None,
        error: None,
    });
    with_targets(Page::new(StatusCode::OK, html).with_cookie(cookie), request).into_response()
}

fn with_targets(mut page: Page, request: &AuthorizeRequest) -> Page {
    page.form_targets
        .extend(redirect_target(&request.redirect_uri));
    page
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::redirect_target;

    #[test]
    fn form_targets_are_origins_or_schemes() {
        assert_eq!(
            redirect_target("http://127.0.0.1:53682/callback?x=1").as_deref(),
            Some("http://127.0.0.1:53682")
        );
        assert_eq!(
            redirect_target("https://app.example.com/cb").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            redirect_target("cursor://anysphere.cursor-mcp/oauth/callback").as_deref(),
            Some("cursor:")
        );
        assert_eq!(redirect_target("not a url"), None);
    }
}
