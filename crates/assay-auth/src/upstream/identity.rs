//! Who the provider says signed in, and whether that is enough to find or create an
//! Assay account.

use super::UpstreamError;
use super::config::EmailPolicy;

/// The result of a completed upstream login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    pub provider_id: String,
    /// Stable per provider: the OIDC `sub`, or the numeric GitHub user ID (logins can be
    /// renamed and reused; IDs cannot). Link accounts on (provider_id, subject).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

impl UpstreamIdentity {
    /// The email to provision or link with, lowercased, if the provider's policy
    /// accepts it: present, verified (unless the provider is configured to accept
    /// unverified addresses) and in an allowed domain. Linking an existing account by
    /// an unverified address would let anyone who can type that address at the
    /// provider take the account over.
    pub fn admitted_email(&self, policy: &EmailPolicy) -> Result<String, UpstreamError> {
        let email = self
            .email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .ok_or(UpstreamError::EmailMissing)?;
        let (local, domain) = email
            .rsplit_once('@')
            .filter(|(l, d)| !l.is_empty() && !d.is_empty())
            .ok_or(UpstreamError::EmailMissing)?;
        if !self.email_verified && !policy.allow_unverified {
            return Err(UpstreamError::EmailUnverified);
        }
        let domain = domain.to_ascii_lowercase();
        if !policy.allowed_domains.is_empty() && !policy.allowed_domains.contains(&domain) {
            return Err(UpstreamError::EmailDomainNotAllowed { domain });
        }
        Ok(format!("{}@{domain}", local.to_lowercase()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn identity(email: Option<&str>, verified: bool) -> UpstreamIdentity {
        UpstreamIdentity {
            provider_id: "corp".into(),
            subject: "42".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            name: None,
        }
    }

    #[test]
    fn verified_emails_in_allowed_domains_are_admitted() {
        let policy = EmailPolicy {
            allowed_domains: vec!["example.com".into()],
            allow_unverified: false,
        };
        assert_eq!(
            identity(Some("Ada@Example.COM"), true).admitted_email(&policy),
            Ok("ada@example.com".into())
        );
        assert_eq!(
            identity(Some("ada@example.org"), true).admitted_email(&policy),
            Err(UpstreamError::EmailDomainNotAllowed {
                domain: "example.org".into()
            })
        );
        // A subdomain is another domain.
        assert_eq!(
            identity(Some("ada@evil.example.com"), true).admitted_email(&policy),
            Err(UpstreamError::EmailDomainNotAllowed {
                domain: "evil.example.com".into()
            })
        );
    }

    #[test]
    fn unverified_or_missing_emails_are_refused_unless_configured() {
        let strict = EmailPolicy::default();
        assert_eq!(
            identity(Some("ada@example.com"), false).admitted_email(&strict),
            Err(UpstreamError::EmailUnverified)
        );
        assert_eq!(
            identity(None, true).admitted_email(&strict),
            Err(UpstreamError::EmailMissing)
        );
        assert_eq!(
            identity(Some("not-an-address"), true).admitted_email(&strict),
            Err(UpstreamError::EmailMissing)
        );
        let lenient = EmailPolicy {
            allowed_domains: vec![],
            allow_unverified: true,
        };
        assert_eq!(
            identity(Some("ada@example.com"), false).admitted_email(&lenient),
            Ok("ada@example.com".into())
        );
    }
}
