//! PKCE (RFC 7636), S256 only.
//!
//! `plain` exposes the verifier to anyone who sees the authorization request, and a
//! missing method means `plain` by RFC 7636's default, so both are refused: the only
//! accepted method is `S256` (OAuth 2.1, MCP authorization).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of `BASE64URL(SHA-256(verifier))` without padding.
pub const CHALLENGE_LEN: usize = 43;
pub const VERIFIER_MIN_LEN: usize = 43;
pub const VERIFIER_MAX_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChallengeMethod {
    S256,
}

impl CodeChallengeMethod {
    pub fn as_str(self) -> &'static str {
        "S256"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// No `code_challenge_method`; RFC 7636 would default to `plain`, which is refused.
    #[error("code_challenge_method is required and must be S256")]
    MissingMethod,
    #[error("code_challenge_method {0:?} is not supported; only S256 is")]
    UnsupportedMethod(String),
    #[error("code_challenge must be 43 characters of base64url without padding")]
    InvalidChallenge,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    InvalidVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

/// Parses `code_challenge_method` from an authorization request. Case-sensitive, as
/// RFC 7636 defines the value `S256` exactly.
pub fn parse_method(method: Option<&str>) -> Result<CodeChallengeMethod, PkceError> {
    match method {
        None | Some("") => Err(PkceError::MissingMethod),
        Some("S256") => Ok(CodeChallengeMethod::S256),
        Some(other) => Err(PkceError::UnsupportedMethod(other.to_owned())),
    }
}

/// Checks the form of a `code_challenge` at the authorization endpoint, so a malformed
/// one is refused before a code is issued rather than at the token endpoint.
pub fn validate_challenge(challenge: &str) -> Result<(), PkceError> {
    if challenge.len() != CHALLENGE_LEN {
        return Err(PkceError::InvalidChallenge);
    }
    // The strict decoder also refuses non-canonical trailing bits, so a challenge has
    // exactly one spelling and the comparison below can be on strings.
    match URL_SAFE_NO_PAD.decode(challenge) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(PkceError::InvalidChallenge),
    }
}

/// Checks the form of a `code_verifier` (RFC 7636 §4.1).
pub fn validate_verifier(verifier: &str) -> Result<(), PkceError> {
    let len_ok = (VERIFIER_MIN_LEN..=VERIFIER_MAX_LEN).contains(&verifier.len());
    let chars_ok = verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if len_ok && chars_ok {
        Ok(())
    } else {
        Err(PkceError::InvalidVerifier)
    }
}

/// `BASE64URL(SHA-256(ASCII(verifier)))`, the S256 challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Verifies a `code_verifier` from a token request against the stored `code_challenge`.
/// The comparison is constant-time so the response time says nothing about how much of
/// a guessed challenge matched.
pub fn verify(challenge: &str, verifier: &str) -> Result<(), PkceError> {
    validate_challenge(challenge)?;
    validate_verifier(verifier)?;
    let computed = s256_challenge(verifier);
    if bool::from(computed.as_bytes().ct_eq(challenge.as_bytes())) {
        Ok(())
    } else {
        Err(PkceError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    // RFC 7636 Appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b_vector() {
        assert_eq!(s256_challenge(RFC_VERIFIER), RFC_CHALLENGE);
        assert_eq!(verify(RFC_CHALLENGE, RFC_VERIFIER), Ok(()));
    }

    #[test]
    fn method_s256_only() {
        let cases: &[(Option<&str>, Result<CodeChallengeMethod, PkceError>)] = &[
            (Some("S256"), Ok(CodeChallengeMethod::S256)),
            (None, Err(PkceError::MissingMethod)),
            (Some(""), Err(PkceError::MissingMethod)),
            (
                Some("plain"),
                Err(PkceError::UnsupportedMethod("plain".into())),
            ),
            (
                Some("PLAIN"),
                Err(PkceError::UnsupportedMethod("PLAIN".into())),
            ),
            (
                Some("s256"),
                Err(PkceError::UnsupportedMethod("s256".into())),
            ),
            (
                Some("S256 "),
                Err(PkceError::UnsupportedMethod("S256 ".into())),
            ),
            (
                Some("S512"),
                Err(PkceError::UnsupportedMethod("S512".into())),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(&parse_method(*input), expected, "{input:?}");
        }
        assert_eq!(CodeChallengeMethod::S256.as_str(), "S256");
    }

    #[test]
    fn verifier_form() {
        let ok = [
            "a".repeat(43),
            "a".repeat(128),
            format!("{}-._~", "Z9".repeat(20)),
        ];
        for v in &ok {
            assert_eq!(validate_verifier(v), Ok(()), "{v}");
        }
        let bad = [
            String::new(),
            "a".repeat(42),
            "a".repeat(129),
            format!("{}$", "a".repeat(42)),
            format!("{}=", "a".repeat(42)),
            format!("{} ", "a".repeat(42)),
            format!("{}+", "a".repeat(42)),
            format!("{}/", "a".repeat(42)),
            format!("{}é", "a".repeat(41)),
            format!("{}\n", "a".repeat(42)),
        ];
        for v in &bad {
            assert_eq!(
                validate_verifier(v),
                Err(PkceError::InvalidVerifier),
                "{v:?}"
            );
        }
    }

    #[test]
    fn challenge_form() {
        let bad = [
            "",
            // 42 and 44 characters.
            &RFC_CHALLENGE[..42],
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cMA",
            // Padding.
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c=",
            // Standard alphabet instead of base64url.
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw/cM",
            // Non-canonical trailing bits (M = 0b001100 → N sets a low bit).
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN",
            // A plain-method "challenge" (the verifier itself) is not a SHA-256 value.
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjX$",
        ];
        for c in bad {
            assert_eq!(
                validate_challenge(c),
                Err(PkceError::InvalidChallenge),
                "{c:?}"
            );
        }
    }

    #[test]
    fn verify_outcomes() {
        let other_verifier = "a".repeat(43);
        let cases: &[(&str, &str, Result<(), PkceError>)] = &[
            (RFC_CHALLENGE, RFC_VERIFIER, Ok(())),
            (RFC_CHALLENGE, &other_verifier, Err(PkceError::Mismatch)),
            // Plain-method downgrade: the verifier sent as its own challenge.
            (RFC_VERIFIER, RFC_VERIFIER, Err(PkceError::Mismatch)),
            (RFC_CHALLENGE, "short", Err(PkceError::InvalidVerifier)),
            ("short", RFC_VERIFIER, Err(PkceError::InvalidChallenge)),
        ];
        for (challenge, verifier, expected) in cases {
            assert_eq!(
                &verify(challenge, verifier),
                expected,
                "{challenge} {verifier}"
            );
        }
    }
}
