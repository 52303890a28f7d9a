//! Local account passwords: Argon2id, never stored or logged in clear.

use argon2::Argon2;
use argon2::password_hash::PasswordHasher;
use assay_core::{Error, Result};

/// Shortest password accepted for a local account.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted (bounds the hashing work an input can cause).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Argon2id PHC string with the crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// Why a new password is refused, if it is.
pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if chars > MAX_PASSWORD_CHARS {
        Some(format!("must be at most {MAX_PASSWORD_CHARS} characters"))
    } else {
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordVerifier;
    use argon2::password_hash::phc::PasswordHash;

    #[test]
    fn password_hash_verifies_and_is_argon2id() {
        let phc = hash_password("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
    }

    #[test]
    fn password_length_bounds() {
        assert_eq!(
            password_problem("short"),
            Some("must be at least 12 characters".into())
        );
        assert_eq!(password_problem("twelve chars"), None);
        assert_eq!(
            password_problem(&"x".repeat(1025)),
            Some("must be at most 1024 characters".into())
        );
    }
}
