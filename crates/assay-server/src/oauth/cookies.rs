//! The two cookies of the sign-in pages — the browser login session and the CSRF token —
//! and their attributes.
//!
//! On an https public URL they are `__Host-` cookies: `Secure`, `Path=/`, no `Domain`, so
//! no other host (not even a sibling subdomain) can set or overwrite them. Browsers refuse
//! `__Host-` without `Secure`, and a `Secure` cookie is never sent over plain http, so on an
//! http public URL (loopback development) the same cookies go without the prefix and
//! without `Secure`. Both are `HttpOnly` (no page script needs them; there is none) and
//! `SameSite=Lax` (sent on the top-level GET a client's redirect causes, withheld from
//! cross-site POSTs).

use axum::http::{HeaderMap, HeaderValue, header};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CookiePolicy {
    secure: bool,
}

/// Which cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cookie {
    Session,
    Csrf,
}

impl CookiePolicy {
    pub(crate) fn for_public_url(public_url: &url::Url) -> Self {
        Self {
            secure: public_url.scheme() == "https",
        }
    }

    pub(crate) fn name(self, cookie: Cookie) -> &'static str {
        match (cookie, self.secure) {
            (Cookie::Session, true) => "__Host-assay_session",
            (Cookie::Session, false) => "assay_session",
            (Cookie::Csrf, true) => "__Host-assay_csrf",
            (Cookie::Csrf, false) => "assay_csrf",
        }
    }

    /// `Set-Cookie` for `value`; `max_age` in seconds, `None` for a browser-session cookie.
    /// `None` when `value` holds anything but cookie-safe characters (it never should: the
    /// values are our own base64url secrets), so no attribute can be smuggled in.
    pub(crate) fn set(
        self,
        cookie: Cookie,
        value: &str,
        max_age: Option<u64>,
    ) -> Option<HeaderValue> {
        if value.is_empty() || !value.bytes().all(is_cookie_octet) {
            return None;
        }
        let mut text = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Lax",
            self.name(cookie)
        );
        if self.secure {
            text.push_str("; Secure");
        }
        if let Some(age) = max_age {
            text.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&text).ok()
    }

    /// `Set-Cookie` that deletes the cookie (same name and attributes, `Max-Age=0`).
    pub(crate) fn clear(self, cookie: Cookie) -> HeaderValue {
        let mut text = format!(
            "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
            self.name(cookie)
        );
        if self.secure {
            text.push_str("; Secure");
        }
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The value of `cookie` in the request's `Cookie` headers (the first one, as browsers
    /// send the most specific first). Empty values count as absent.
    pub(crate) fn read(self, headers: &HeaderMap, cookie: Cookie) -> Option<String> {
        let name = self.name(cookie);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    }
}

/// RFC 6265 §4.1.1 cookie-octet.
fn is_cookie_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn policy(url: &str) -> CookiePolicy {
        CookiePolicy::for_public_url(&url::Url::parse(url).unwrap())
    }

    #[test]
    fn https_cookies_are_host_prefixed_and_secure() {
        let p = policy("https://assay.example.com/");
        assert_eq!(
            p.set(Cookie::Session, "abc", Some(60)).unwrap(),
            "__Host-assay_session=abc; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=60"
        );
        assert_eq!(
            p.clear(Cookie::Csrf),
            "__Host-assay_csrf=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
        );
    }

    #[test]
    fn plain_http_cookies_have_neither_prefix_nor_secure() {
        let p = policy("http://127.0.0.1:7357/");
        assert_eq!(
            p.set(Cookie::Csrf, "abc", None).unwrap(),
            "assay_csrf=abc; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn values_that_could_add_attributes_are_refused() {
        let p = policy("https://a.example/");
        assert!(p.set(Cookie::Session, "a; Domain=evil", None).is_none());
        assert!(p.set(Cookie::Session, "a,b", None).is_none());
        assert!(p.set(Cookie::Session, "", None).is_none());
    }

    #[test]
    fn reading_finds_the_exact_name_only() {
        let p = policy("https://a.example/");
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("assay_csrf=plain; x=1"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("__Host-assay_csrf=t0k; __Host-assay_session="),
        );
        assert_eq!(p.read(&h, Cookie::Csrf).as_deref(), Some("t0k"));
        assert_eq!(p.read(&h, Cookie::Session), None);
    }
}
