//! CSRF protection for every form of the sign-in pages: a double-submit token (a random
//! value in the CSRF cookie and the same value in a hidden form field, compared in
//! constant time) plus, when the browser sends one, an `Origin` that must be this server's
//! own. A cross-site page can make a browser POST here, but it can neither read the cookie
//! to copy it into the form nor (with `__Host-` on https) plant a cookie of its own.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq as _;

/// The hidden form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

const TOKEN_BYTES: usize = 32;
/// base64url without padding of [`TOKEN_BYTES`].
const TOKEN_LEN: usize = 43;

/// A new token from the OS CSPRNG; `None` if the OS cannot give randomness (the caller
/// answers 500 rather than render a form without protection).
pub(crate) fn new_token() -> Option<String> {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng.try_fill_bytes(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether `token` looks like one of ours (so a cookie of another shape is replaced).
pub(crate) fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Why a form submission was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CsrfFailure {
    /// `Origin` names another site (or is `null`, as from a sandboxed frame).
    CrossOrigin,
    /// No token in the cookie or in the form.
    Missing,
    /// Cookie and form disagree.
    Mismatch,
}

/// Checks a form POST: `origin` is this server's public origin
/// (`scheme://host[:port]`), `cookie` the CSRF cookie's value, `field` the form's.
pub(crate) fn check(
    headers: &HeaderMap,
    origin: &str,
    cookie: Option<&str>,
    field: Option<&str>,
) -> Result<(), CsrfFailure> {
    if let Some(sent) = headers.get(header::ORIGIN)
        && sent.as_bytes() != origin.as_bytes()
    {
        return Err(CsrfFailure::CrossOrigin);
    }
    let (Some(cookie), Some(field)) = (cookie, field) else {
        return Err(CsrfFailure::Missing);
    };
    if !is_well_formed(cookie) || !is_well_formed(field) {
        return Err(CsrfFailure::Mismatch);
    }
    if bool::from(cookie.as_bytes().ct_eq(field.as_bytes())) {
        Ok(())
    } else {
        Err(CsrfFailure::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use axum::http::HeaderValue;

    const ORIGIN: &str = "https://assay.example.com";

    #[test]
    fn tokens_are_fresh_and_well_formed() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert!(is_well_formed(&a), "{a}");
        assert!(!is_well_formed("short"));
        assert!(!is_well_formed(&format!("{}=", &a[..42])));
    }

    #[test]
    fn matching_tokens_pass_without_or_with_the_own_origin() {
        let t = new_token().unwrap();
        assert_eq!(check(&HeaderMap::new(), ORIGIN, Some(&t), Some(&t)), Ok(()));
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, HeaderValue::from_static(ORIGIN));
        assert_eq!(check(&h, ORIGIN, Some(&t), Some(&t)), Ok(()));
    }

    #[test]
    fn foreign_origin_missing_or_different_tokens_fail() {
        let t = new_token().unwrap();
        let u = new_token().unwrap();
        let none = HeaderMap::new();
        assert_eq!(
            check(&none, ORIGIN, None, Some(&t)),
            Err(CsrfFailure::Missing)
        );
        assert_eq!(
            check(&none, ORIGIN, Some(&t), None),
            Err(CsrfFailure::Missing)
        );
        assert_eq!(
            check(&none, ORIGIN, Some(&t), Some(&u)),
            Err(CsrfFailure::Mismatch)
        );
        for origin in [
            "https://evil.example",
            "null",
            "https://assay.example.com:444",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
            assert_eq!(
                check(&h, ORIGIN, Some(&t), Some(&t)),
                Err(CsrfFailure::CrossOrigin),
                "{origin}"
            );
        }
    }
}
