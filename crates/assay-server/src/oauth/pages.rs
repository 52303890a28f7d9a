//! The HTML of the sign-in pages: login, consent, device code entry, device consent and
//! plain messages (errors, "done", "signed out").
//!
//! Every value that did not come from this file goes through [`escape`] — client names and
//! redirect URIs are chosen by whoever registered the client, and `state` by whoever wrote
//! the link. Attributes are always double-quoted, so escaping `"` keeps a value inside its
//! attribute. The pages load nothing from anywhere (no scripts, images or fonts); the one
//! stylesheet is inline and allowed by its hash ([`style_hash`]).

use assay_auth::scope::McpScope;
use assay_control::jwt_auth::scope_is_uncapped;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::sync::OnceLock;

/// Escapes text for HTML element content and double- or single-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Invisible controls have no business on a page; they could hide text.
            c if c.is_control() && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;\
padding:0 1rem;color:#1b1b1b;line-height:1.45}h1{font-size:1.4rem}\
label{display:block;margin:.8rem 0 .2rem}input[type=email],input[type=password],\
input[type=text]{width:100%;padding:.45rem;box-sizing:border-box;font-size:1rem}\
button{padding:.5rem 1.1rem;margin:.9rem .5rem 0 0;font-size:1rem;cursor:pointer}\
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6rem .8rem}\
.warning{background:#fff6dd;border:1px solid #e2c46b;padding:.6rem .8rem}\
.muted{color:#555;font-size:.9rem}code{word-break:break-all}\
fieldset{border:1px solid #ccc;padding:.4rem .9rem}\
.scope{display:flex;gap:.5rem;align-items:baseline;margin:.5rem 0}\
.scope label{display:inline;margin:0}";

/// The CSP source that allows [`STYLE`] and nothing else: `'sha256-…'`.
pub(crate) fn style_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let digest = Sha256::digest(STYLE.as_bytes());
        format!("'sha256-{}'", STANDARD.encode(digest))
    })
}

/// Name/value pairs carried through a form as hidden inputs (the authorization request,
/// the CSRF token, a device user code).
pub(crate) type Hidden<'a> = &'a [(&'a str, &'a str)];

pub(crate) fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"referrer\" content=\"no-referrer\">\
<title>{title} · Assay</title><style>{STYLE}</style></head>\
<body><main>\n{body}\n</main></body></html>\n",
        title = escape(title),
    )
}

/// Opens a POST form to `action` carrying `hidden` through.
fn form_start(out: &mut String, action: &str, hidden: Hidden<'_>) {
    let _ = write!(out, "<form method=\"post\" action=\"{}\">", escape(action));
    hidden_inputs(out, hidden);
}

fn hidden_inputs(out: &mut String, hidden: Hidden<'_>) {
    for (name, value) in hidden {
        let _ = write!(
            out,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
}

fn error_box(out: &mut String, error: Option<&str>) {
    if let Some(error) = error {
        let _ = write!(
            out,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape(error)
        );
    }
}

/// What a login form is for: shown above it so the user knows who asks.
pub(crate) struct LoginPage<'a> {
    /// Where the form posts (a path under the public URL).
    pub action: &'a str,
    pub hidden: Hidden<'a>,
    /// Other ways to sign in (upstream identity providers): `(label, href)`.
    pub links: &'a [(String, String)],
    /// "to continue to <client>", if a client asks.
    pub client_name: Option<&'a str>,
    pub email: &'a str,
    pub error: Option<&'a str>,
}

pub(crate) fn login(page: &LoginPage<'_>) -> String {
    let mut body = String::from("<h1>Sign in to Assay</h1>");
    if let Some(name) = page.client_name {
        let _ = write!(
            body,
            "<p>to continue to <strong>{}</strong></p>",
            escape(name)
        );
    }
    error_box(&mut body, page.error);
    form_start(&mut body, page.action, page.hidden);
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"action\" value=\"login\">\
<label for=\"email\">Email</label>\
<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{}\">\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        escape(page.email)
    );
    for (label, href) in page.links {
        let _ = write!(
            body,
            "<p><a href=\"{}\">{}</a></p>",
            escape(href),
            escape(label)
        );
    }
    layout("Sign in", &body)
}

/// What the first-party CLI's top scope lets it do: the user's own level, uncapped
/// (`assay login` stands for the user at a terminal, org admin work included).
pub(crate) const CLI_WRITE_MEANING: &str = "everything you can do yourself: also create, \
change and delete workflows and templates, and administer the organization (members, API \
tokens, audit) if your role allows it";

/// What each scope lets `client_id` do, in the user's words.
fn scope_meaning(scope: McpScope, client_id: &str) -> &'static str {
    if scope_is_uncapped(scope, client_id) {
        return CLI_WRITE_MEANING;
    }
    match scope {
        McpScope::Read => "see workflows, templates, executions, logs and artifacts",
        McpScope::Run => "also start and abort executions",
        McpScope::Write => "also create, change and delete workflows and templates",
    }
}

/// What every consent page shows after the facts about the client: the warning for a
/// client that only returns to loopback, then the opened form with the scope choices —
/// every scope up to the requested one, which is checked (the user may grant less). The
/// caller closes the form with its own buttons.
pub(crate) fn consent_form_start(
    out: &mut String,
    client_id: &str,
    localhost_only: bool,
    action: &str,
    hidden: Hidden<'_>,
    requested: McpScope,
) {
    if localhost_only {
        out.push_str(
            "<p class=\"warning\">This client only returns to <strong>this computer</strong> \
             (localhost). Any program running on your computer could claim this name: \
             allow it only if you just started the sign-in from an app you trust.</p>",
        );
    }
    form_start(out, action, hidden);
    out.push_str("<fieldset><legend>Access to grant (you may grant less than asked)</legend>");
    for scope in McpScope::ALL.into_iter().filter(|s| *s <= requested) {
        let id = format!("scope-{}", &scope.as_str()[4..]);
        let checked = if scope == requested { " checked" } else { "" };
        let _ = write!(
            out,
            "<div class=\"scope\"><input type=\"radio\" id=\"{id}\" name=\"granted_scope\" \
             value=\"{value}\"{checked}><label for=\"{id}\"><code>{value}</code> — {meaning}\
             </label></div>",
            value = scope.as_str(),
            meaning = scope_meaning(scope, client_id),
        );
    }
    out.push_str(
        "<p class=\"muted\">Your role still limits what the client can do in each \
         environment.</p></fieldset>",
    );
}

pub(crate) struct ClientFacts<'a> {
    pub name: &'a str,
    pub client_id: &'a str,
    /// The host of a URL client id (a Client ID Metadata Document).
    pub client_id_host: Option<&'a str>,
    pub redirect_host: &'a str,
    pub redirect_uri: Option<&'a str>,
    /// Only loopback redirects: any program on the user's machine could be this client.
    pub localhost_only: bool,
}

/// What every consent page lists about the client and the grant: who, published by
/// whom, where it sends the user back to, what for. Opens the `<dl>` and leaves it open
/// for the caller's last entry (who signs in).
pub(crate) fn client_facts(out: &mut String, c: &ClientFacts<'_>, resource: &str) {
    let _ = write!(
        out,
        "<dl><dt>Client</dt><dd>{} <span class=\"muted\">(<code>{}</code>)</span></dd>",
        escape(c.name),
        escape(c.client_id)
    );
    if let Some(host) = c.client_id_host {
        let _ = write!(
            out,
            "<dt>Published by</dt><dd><code>{}</code></dd>",
            escape(host)
        );
    }
    if !c.redirect_host.is_empty() {
        let _ = write!(
            out,
            "<dt>Sends you back to</dt><dd><code>{}</code>",
            escape(c.redirect_host)
        );
        if let Some(uri) = c.redirect_uri {
            let _ = write!(
                out,
                " <span class=\"muted\">(<code>{}</code>)</span>",
                escape(uri)
            );
        }
        out.push_str("</dd>");
    }
    let _ = write!(
        out,
        "<dt>For</dt><dd><code>{}</code></dd>",
        escape(resource)
    );
}

pub(crate) struct ConsentPage<'a> {
    pub action: &'a str,
    pub hidden: Hidden<'a>,
    pub client: ClientFacts<'a>,
    pub requested: McpScope,
    /// The resource (an MCP endpoint URL or the server's base URL) the grant is for.
    pub resource: &'a str,
    pub user_email: &'a str,
    pub user_name: &'a str,
    /// Shown on the device flow page: the code the user typed, to compare with the device.
    pub user_code: Option<&'a str>,
    pub error: Option<&'a str>,
}

pub(crate) fn consent(page: &ConsentPage<'_>) -> String {
    let c = &page.client;
    let mut body = format!(
        "<h1>Allow <strong>{}</strong> to use Assay as you?</h1>",
        escape(c.name)
    );
    error_box(&mut body, page.error);
    if let Some(code) = page.user_code {
        let _ = write!(
            body,
            "<p>Device code <strong><code>{}</code></strong> — make sure it matches the code \
             your device shows.</p>",
            escape(code)
        );
    }
    client_facts(&mut body, c, page.resource);
    let _ = write!(
        body,
        "<dt>Signed in as</dt><dd>{} &lt;{}&gt;</dd></dl>",
        escape(page.user_name),
        escape(page.user_email)
    );
    consent_form_start(
        &mut body,
        c.client_id,
        c.localhost_only,
        page.action,
        page.hidden,
        page.requested,
    );
    // Every grant comes with a refresh token (MCP clients expect one).
    body.push_str(
        "<p class=\"muted\">The client stays connected until you revoke its access or \
         stop using it.</p>",
    );
    body.push_str(
        "<button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
<button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
<button type=\"submit\" name=\"action\" value=\"switch_user\">Not you? Sign out</button>\
</form>",
    );
    layout("Allow access", &body)
}

pub(crate) struct DeviceEntryPage<'a> {
    pub action: &'a str,
    pub hidden: Hidden<'a>,
    pub user_email: &'a str,
    pub code: &'a str,
    pub error: Option<&'a str>,
}

pub(crate) fn device_entry(page: &DeviceEntryPage<'_>) -> String {
    let mut body = String::from(
        "<h1>Connect a device</h1><p>Enter the code your device or terminal shows.</p>",
    );
    error_box(&mut body, page.error);
    form_start(&mut body, page.action, page.hidden);
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"action\" value=\"enter\">\
<label for=\"user_code\">Code</label>\
<input id=\"user_code\" name=\"user_code\" type=\"text\" autocomplete=\"off\" \
autocapitalize=\"characters\" spellcheck=\"false\" required value=\"{}\">\
<button type=\"submit\">Continue</button></form>\
<p class=\"muted\">Signed in as {}.</p>",
        escape(page.code),
        escape(page.user_email)
    );
    layout("Connect a device", &body)
}

/// A page that only says something: an error, a result, "signed out". `form` adds a
/// single-button form (e.g. "Sign out").
pub(crate) struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub detail: Option<&'a str>,
    pub form: Option<ButtonForm<'a>>,
}

pub(crate) struct ButtonForm<'a> {
    pub action: &'a str,
    pub hidden: Hidden<'a>,
    pub button: &'a str,
}

pub(crate) fn message(page: &MessagePage<'_>) -> String {
    let mut body = format!(
        "<h1>{}</h1><p>{}</p>",
        escape(page.title),
        escape(page.message)
    );
    if let Some(detail) = page.detail {
        let _ = write!(body, "<p class=\"muted\">{}</p>", escape(detail));
    }
    if let Some(form) = &page.form {
        form_start(&mut body, form.action, form.hidden);
        let _ = write!(
            body,
            "<button type=\"submit\">{}</button></form>",
            escape(form.button)
        );
    }
    layout(page.title, &body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn escaping_covers_markup_quotes_and_controls() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(escape("a\u{0}b\u{202e}c"), "a\u{FFFD}b\u{202e}c");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn a_hostile_client_name_and_state_stay_text() {
        let hidden = [("state", "\"><script>x</script>"), ("csrf", "t")];
        let html = consent(&ConsentPage {
            action: "/oauth/authorize",
            hidden: &hidden,
            client: ClientFacts {
                name: "<img src=x onerror=alert(1)>",
                client_id: "assay_client_x",
                client_id_host: None,
                redirect_host: "127.0.0.1",
                redirect_uri: Some("http://127.0.0.1:9/cb?a=\"b\""),
                localhost_only: true,
            },
            requested: McpScope::Run,
            resource: "http://127.0.0.1:1/",
            user_email: "o@example.com",
            user_name: "Owner",
            user_code: None,
            error: None,
        });
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\""));
        assert!(html.contains("class=\"warning\""));
        // Only scopes up to the requested one are offered; the requested one is preselected.
        assert!(html.contains("value=\"mcp:read\">"));
        assert!(html.contains("value=\"mcp:run\" checked>"));
        assert!(!html.contains("mcp:write"));
    }

    #[test]
    fn the_clis_top_scope_is_worded_as_the_users_own_level() {
        let form = |client_id: &str, requested: McpScope| {
            let mut out = String::new();
            consent_form_start(&mut out, client_id, false, "/a", &[], requested);
            out
        };
        let cli = form("assay-cli", McpScope::Write);
        assert!(cli.contains(&format!(
            "<code>mcp:write</code> — {CLI_WRITE_MEANING}</label>"
        )));
        assert!(!cli.contains(&format!(
            "— {}</label>",
            scope_meaning(McpScope::Write, "other")
        )));
        assert!(cli.contains("administer the organization (members, API tokens, audit)"));
        // Another client's top scope, and the CLI's narrower ones, read as before.
        let other = form("https://client.example/oauth.json", McpScope::Write);
        assert!(other.contains(
            "<code>mcp:write</code> — also create, change and delete workflows and templates</label>"
        ));
        assert!(!other.contains("administer"));
        let narrower = form("assay-cli", McpScope::Run);
        assert!(
            narrower.contains("<code>mcp:run</code> — also start and abort executions</label>")
        );
        assert!(!narrower.contains("administer"));
    }

    #[test]
    fn the_style_hash_is_the_sha256_of_the_inline_stylesheet() {
        let expected = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(STYLE)));
        assert_eq!(style_hash(), expected);
        assert!(
            login(&LoginPage {
                action: "/oauth/authorize",
                hidden: &[],
                links: &[],
                client_name: None,
                email: "",
                error: None,
            })
            .contains(&format!("<style>{STYLE}</style>"))
        );
    }
}
