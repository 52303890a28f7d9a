//! Redirect URIs: what may be registered, and whether a requested one matches.
//!
//! Matching is exact string comparison (OAuth 2.1, RFC 9700 §4.1.3) with one exception:
//! for `http` loopback URIs the port may differ (RFC 8252 §7.3), because native apps
//! listen on whatever port the OS gives them. Everything else — host spelling, path,
//! query, case — must be byte-identical to a registered value.
//!
//! Validation is deliberately stricter than URL parsing: browsers strip tabs/newlines and
//! leading control characters before parsing, so a check that parses first can be fooled
//! by `java\tscript:`. The dangerous-scheme check therefore looks at the string the way a
//! browser would, and anything a browser would rewrite is refused outright.

use url::Url;

pub const MAX_LEN: usize = 2000;

/// Hosts for which `http` is allowed and the port is flexible. Exactly these spellings:
/// `127.0.0.2`, `0x7f.1` or `[0:0:0:0:0:0:0:1]` are not loopback *redirects* here.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Schemes that run code, read local data or are otherwise never an OAuth callback.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "livescript",
    "data",
    "file",
    "blob",
    "about",
    "filesystem",
    "view-source",
    "jar",
    "resource",
    "chrome",
    "intent",
    "mailto",
    "tel",
    "sms",
    "ftp",
    "ws",
    "wss",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectUriError {
    #[error("the redirect URI is empty")]
    Empty,
    #[error("the redirect URI is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("the scheme {0:?} is not allowed for redirect URIs")]
    ForbiddenScheme(String),
    #[error("the redirect URI contains whitespace or control characters")]
    ControlOrWhitespace,
    #[error("the redirect URI contains non-ASCII characters; use punycode and percent-encoding")]
    NonAscii,
    #[error("the redirect URI contains a backslash")]
    Backslash,
    #[error("the redirect URI is not a valid absolute URI")]
    Malformed,
    #[error("the redirect URI must not contain a fragment")]
    Fragment,
    #[error("the redirect URI must not contain user information")]
    Userinfo,
    #[error("{0} redirect URIs must be written {0}://host/... (lowercase scheme, with //)")]
    NotCanonicalForm(&'static str),
    #[error("http is allowed only for loopback redirect URIs (127.0.0.1, [::1], localhost)")]
    HttpRequiresLoopback,
    #[error("the redirect URI does not match any registered redirect URI")]
    NotRegistered,
}

/// A redirect URI that passed [`validate`], kept exactly as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RedirectUri(String);

impl RedirectUri {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `http` to `127.0.0.1`, `[::1]` or `localhost`: any port matches at authorization.
    /// The consent page should warn about such clients (localhost impersonation).
    pub fn is_loopback(&self) -> bool {
        loopback_parts(&self.0).is_some()
    }

    /// The host to show the user on the consent page, if the URI has one.
    pub fn host(&self) -> Option<String> {
        Url::parse(&self.0)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }
}

impl std::fmt::Display for RedirectUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RedirectUri {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Validates a redirect URI for registration (and, via [`match_registered`], at
/// authorization). The URI is kept verbatim; nothing is normalised.
pub fn validate(uri: &str) -> Result<RedirectUri, RedirectUriError> {
    if uri.is_empty() {
        return Err(RedirectUriError::Empty);
    }
    if uri.len() > MAX_LEN {
        return Err(RedirectUriError::TooLong);
    }
    // First, the scheme as a browser would see it, so that a control character or a
    // percent-escape cannot smuggle `javascript:` past the checks below.
    if let Some(scheme) = browser_scheme(uri)
        && FORBIDDEN_SCHEMES.contains(&scheme.as_str())
    {
        return Err(RedirectUriError::ForbiddenScheme(scheme));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(RedirectUriError::ControlOrWhitespace);
    }
    if !uri.is_ascii() {
        return Err(RedirectUriError::NonAscii);
    }
    // WHATWG parsers read `\` as `/` in http(s) URLs; other parsers don't. A URI that two
    // parsers read differently has no place in an exact-match allow-list.
    if uri.contains('\\') {
        return Err(RedirectUriError::Backslash);
    }
    if uri.contains('#') {
        return Err(RedirectUriError::Fragment);
    }
    let url = Url::parse(uri).map_err(|_| RedirectUriError::Malformed)?;
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(RedirectUriError::ForbiddenScheme(scheme.to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectUriError::Userinfo);
    }
    // Any other scheme is a private-use scheme (RFC 8252 §7.1): `cursor://…`,
    // `vscode://…`, `com.example.app:/cb`; parsed above, so it is syntactically valid.
    let special = match scheme {
        "http" => Some("http"),
        "https" => Some("https"),
        _ => None,
    };
    if let Some(special) = special {
        // The url crate lowercases the scheme and tolerates `https:host`; the loopback
        // port rule and the exact match work on the string as written, so insist on it.
        if !uri.starts_with(special) || !uri[special.len()..].starts_with("://") {
            return Err(RedirectUriError::NotCanonicalForm(special));
        }
        if special == "http" && loopback_parts(uri).is_none() {
            return Err(RedirectUriError::HttpRequiresLoopback);
        }
    }
    Ok(RedirectUri(uri.to_owned()))
}

/// Checks a requested `redirect_uri` against the registered ones. Returns the matching
/// registered URI. The requested URI is validated first, so a dangerous value is
/// refused with the reason even if, somehow, it had been registered.
pub fn match_registered<'a, R: AsRef<str>>(
    registered: &'a [R],
    requested: &str,
) -> Result<&'a R, RedirectUriError> {
    validate(requested)?;
    if let Some(exact) = registered.iter().find(|r| r.as_ref() == requested) {
        return Ok(exact);
    }
    if let Some((host, rest)) = loopback_parts(requested) {
        let port_free = registered.iter().find(|r| {
            loopback_parts(r.as_ref())
                .is_some_and(|(r_host, r_rest)| r_host == host && r_rest == rest)
        });
        if let Some(found) = port_free {
            return Ok(found);
        }
    }
    Err(RedirectUriError::NotRegistered)
}

/// For `http://<loopback host>[:port]<rest>`, the host and the rest (path and query),
/// both as written. `None` for anything else, including an invalid port.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let end = after.find(['/', '?']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    // `port` is `None` without a colon, else the text after it.
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some("") => ("[::1]", None),
        Some(after) => ("[::1]", Some(after.strip_prefix(':')?)),
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if !LOOPBACK_HOSTS.contains(&host) {
        return None;
    }
    let port_ok = port.is_none_or(|digits| {
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u16>().is_ok()
    });
    port_ok.then_some((host, rest))
}

/// The scheme of `uri` after the rewriting a browser does before parsing: leading and
/// trailing C0 controls and spaces removed, tabs and newlines removed anywhere, percent
/// escapes decoded, ASCII lowercased. `None` when there is no `:`.
fn browser_scheme(uri: &str) -> Option<String> {
    let trimmed = uri.trim_matches(|c: char| c <= ' ');
    let stripped: String = trimmed
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let decoded = percent_encoding::percent_decode_str(&stripped).decode_utf8_lossy();
    let cleaned: String = decoded
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace())
        .collect();
    let (scheme, _) = cleaned.split_once(':')?;
    Some(scheme.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use RedirectUriError as E;

    fn forbidden(s: &str) -> Result<(), E> {
        Err(E::ForbiddenScheme(s.to_owned()))
    }

    #[test]
    fn accepted_at_registration() {
        let ok = [
            "https://client.example/callback",
            "https://client.example/cb?x=1&y=2",
            "https://client.example:8443/cb",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:33418/callback",
            "http://127.0.0.1:33418",
            "http://[::1]:8080/cb",
            "http://localhost:3000/oauth/callback",
            "cursor://anysphere.cursor-retrieval/oauth/user-mcp/callback",
            "vscode://vscode.github-authentication/did-authenticate",
            "com.example.app:/oauth2redirect/example-provider",
            "com.example.app:cb",
        ];
        for uri in ok {
            let v = validate(uri).unwrap_or_else(|e| panic!("{uri}: {e}"));
            assert_eq!(v.as_str(), uri);
        }
    }

    #[test]
    fn dangerous_schemes_in_every_spelling() {
        let cases: &[(&str, Result<(), E>)] = &[
            ("javascript:alert(1)", forbidden("javascript")),
            ("JavaScript:alert(1)", forbidden("javascript")),
            ("JAVASCRIPT:alert(1)", forbidden("javascript")),
            (
                "javascript://client.example/%0Aalert(1)",
                forbidden("javascript"),
            ),
            (" javascript:alert(1)", forbidden("javascript")),
            ("javascript:alert(1) ", forbidden("javascript")),
            ("\u{0}javascript:alert(1)", forbidden("javascript")),
            ("\u{1f}javascript:alert(1)", forbidden("javascript")),
            ("java\tscript:alert(1)", forbidden("javascript")),
            ("java\nscript:alert(1)", forbidden("javascript")),
            ("java\rscript:alert(1)", forbidden("javascript")),
            ("\tjavas\r\ncript:alert(1)", forbidden("javascript")),
            ("%6Aavascript:alert(1)", forbidden("javascript")),
            ("%4A%41%56%41script:alert(1)", forbidden("javascript")),
            ("javascript%3Aalert(1)", forbidden("javascript")),
            ("vbscript:msgbox(1)", forbidden("vbscript")),
            ("VBScript:msgbox(1)", forbidden("vbscript")),
            (
                "data:text/html,<script>alert(1)</script>",
                forbidden("data"),
            ),
            ("DATA:text/html;base64,PHNjcmlwdD4=", forbidden("data")),
            ("file:///etc/passwd", forbidden("file")),
            ("FILE://host/share", forbidden("file")),
            ("blob:https://client.example/uuid", forbidden("blob")),
            ("about:blank", forbidden("about")),
            (
                "filesystem:https://client.example/temporary/x",
                forbidden("filesystem"),
            ),
            (
                "view-source:https://client.example/",
                forbidden("view-source"),
            ),
            ("mailto:a@client.example", forbidden("mailto")),
            ("wss://client.example/cb", forbidden("wss")),
            (
                "Intent://scan/#Intent;scheme=zxing;end",
                forbidden("intent"),
            ),
        ];
        for (uri, expected) in cases {
            assert_eq!(&validate(uri).map(|_| ()), expected, "{uri:?}");
        }
    }

    #[test]
    fn structural_rules() {
        let long = format!("https://client.example/{}", "a".repeat(MAX_LEN));
        let cases: &[(&str, E)] = &[
            ("", E::Empty),
            (&long, E::TooLong),
            ("https://client.example/cb#frag", E::Fragment),
            ("https://client.example/cb#", E::Fragment),
            ("cursor://cb#x", E::Fragment),
            ("https://user@client.example/cb", E::Userinfo),
            ("https://user:pw@client.example/cb", E::Userinfo),
            ("https://:pw@client.example/cb", E::Userinfo),
            ("http://user@127.0.0.1/cb", E::Userinfo),
            ("cursor://user@host/cb", E::Userinfo),
            ("/relative/cb", E::Malformed),
            ("client.example/cb", E::Malformed),
            ("//client.example/cb", E::Malformed),
            ("https://", E::Malformed),
            ("https://client.example/c b", E::ControlOrWhitespace),
            ("https://client.example/cb\u{7f}", E::ControlOrWhitespace),
            ("https://client.example/cb\u{85}", E::ControlOrWhitespace),
            ("https://client.example/cb\u{a0}", E::ControlOrWhitespace),
            (" https://client.example/cb", E::ControlOrWhitespace),
            ("https://client.example/cb\n", E::ControlOrWhitespace),
            ("https://clіent.example/cb", E::NonAscii),
            ("https://client.example\\@evil.example/cb", E::Backslash),
            ("https:client.example/cb", E::NotCanonicalForm("https")),
            ("https:/client.example/cb", E::NotCanonicalForm("https")),
            ("HTTPS://client.example/cb", E::NotCanonicalForm("https")),
            ("http:127.0.0.1/cb", E::NotCanonicalForm("http")),
            ("http://client.example/cb", E::HttpRequiresLoopback),
            ("http://127.0.0.2/cb", E::HttpRequiresLoopback),
            ("http://0x7f.1/cb", E::HttpRequiresLoopback),
            ("http://2130706433/cb", E::HttpRequiresLoopback),
            ("http://[0:0:0:0:0:0:0:1]/cb", E::HttpRequiresLoopback),
            ("http://[::ffff:127.0.0.1]/cb", E::HttpRequiresLoopback),
            ("http://localhost.evil.example/cb", E::HttpRequiresLoopback),
            ("http://localhosts/cb", E::HttpRequiresLoopback),
            ("http://LOCALHOST/cb", E::HttpRequiresLoopback),
            ("http://127.0.0.1.nip.io/cb", E::HttpRequiresLoopback),
            ("http://127.0.0.1:99999/cb", E::Malformed),
            ("http://127.0.0.1:/cb", E::HttpRequiresLoopback),
        ];
        for (uri, expected) in cases {
            assert_eq!(validate(uri).map(|_| ()), Err(expected.clone()), "{uri:?}");
        }
    }

    #[test]
    fn exact_match_or_loopback_port() {
        let registered = [
            "https://client.example/cb",
            "http://127.0.0.1/callback",
            "http://[::1]:1234/cb?mode=a",
            "http://localhost:5000/cb",
            "cursor://anysphere.cursor-retrieval/oauth/callback",
        ];
        let ok: &[(&str, &str)] = &[
            ("https://client.example/cb", "https://client.example/cb"),
            ("http://127.0.0.1/callback", "http://127.0.0.1/callback"),
            (
                "http://127.0.0.1:49152/callback",
                "http://127.0.0.1/callback",
            ),
            ("http://127.0.0.1:1/callback", "http://127.0.0.1/callback"),
            ("http://[::1]/cb?mode=a", "http://[::1]:1234/cb?mode=a"),
            (
                "http://[::1]:65535/cb?mode=a",
                "http://[::1]:1234/cb?mode=a",
            ),
            ("http://localhost:8080/cb", "http://localhost:5000/cb"),
            ("http://localhost/cb", "http://localhost:5000/cb"),
            (
                "cursor://anysphere.cursor-retrieval/oauth/callback",
                "cursor://anysphere.cursor-retrieval/oauth/callback",
            ),
        ];
        for (requested, expected) in ok {
            let got = match_registered(&registered, requested)
                .unwrap_or_else(|e| panic!("{requested}: {e}"));
            assert_eq!(got, expected, "{requested}");
        }
        let refused: &[(&str, E)] = &[
            // Case, trailing slash, extra path, query, port on https: all differ.
            ("https://Client.example/cb", E::NotRegistered),
            ("https://client.example/CB", E::NotRegistered),
            ("https://client.example/cb/", E::NotRegistered),
            ("https://client.example/cb/../cb", E::NotRegistered),
            ("https://client.example/cb?x=1", E::NotRegistered),
            ("https://client.example:443/cb", E::NotRegistered),
            ("https://client.example:8443/cb", E::NotRegistered),
            ("https://client.example.evil.example/cb", E::NotRegistered),
            // Loopback: any port, but host spelling, path and query must match.
            ("http://127.0.0.1:5000/callback/", E::NotRegistered),
            ("http://127.0.0.1:5000/Callback", E::NotRegistered),
            ("http://127.0.0.1:5000/callback?x=1", E::NotRegistered),
            ("http://localhost:5000/callback", E::NotRegistered),
            ("http://[::1]:5000/callback", E::NotRegistered),
            ("http://127.0.0.1:5000/cb", E::NotRegistered),
            ("http://[::1]:1234/cb?mode=b", E::NotRegistered),
            ("http://[::1]:1234/cb", E::NotRegistered),
            ("http://127.0.0.1:8080/cb", E::NotRegistered),
            ("http://127.0.0.2:5000/callback", E::HttpRequiresLoopback),
            // https to a loopback host has no port flexibility.
            ("https://127.0.0.1:5000/callback", E::NotRegistered),
            (
                "cursor://anysphere.cursor-retrieval/oauth/callback2",
                E::NotRegistered,
            ),
            (
                "javascript:alert(1)//https://client.example/cb",
                E::ForbiddenScheme("javascript".into()),
            ),
            ("https://client.example/cb#x", E::Fragment),
        ];
        for (requested, expected) in refused {
            assert_eq!(
                match_registered(&registered, requested),
                Err(expected.clone()),
                "{requested}"
            );
        }
        let none: [&str; 0] = [];
        assert_eq!(
            match_registered(&none, "https://client.example/cb"),
            Err(E::NotRegistered)
        );
    }

    #[test]
    fn loopback_flag_and_host() {
        assert!(validate("http://127.0.0.1:9/cb").unwrap().is_loopback());
        assert!(validate("http://localhost/cb").unwrap().is_loopback());
        assert!(!validate("https://127.0.0.1/cb").unwrap().is_loopback());
        assert!(!validate("cursor://cb").unwrap().is_loopback());
        assert_eq!(
            validate("https://client.example/cb")
                .unwrap()
                .host()
                .as_deref(),
            Some("client.example")
        );
        assert_eq!(validate("com.example.app:/cb").unwrap().host(), None);
    }
}
