//! The one place HTTP clients are built, so TLS trust and proxies are the same for the
//! REST client and the login flows.

use assay_core::{Error, Result};
use std::path::PathBuf;
use std::time::Duration;

/// How server certificates are checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Extra trusted roots: PEM files, each holding one or more certificates. They are
    /// added to the platform's roots (which honour `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub ca_certs: Vec<PathBuf>,
    /// Accept any server certificate. For tests against throwaway servers only; the
    /// caller is expected to warn the user loudly.
    pub insecure: bool,
}

/// A `reqwest::Client` with Assay's TLS and proxy settings.
///
/// Trust: the platform roots (on Linux the system bundle, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set) plus every certificate in `tls.ca_certs`. Proxies:
/// `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case) from the
/// environment.
///
/// Errors: `Invalid` (field `ca-cert`) for an unreadable file or one without a PEM
/// certificate; `Internal` when the client cannot be built.
pub fn http_client(
    user_agent: &str,
    tls: &TlsOptions,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    build(
        user_agent,
        tls,
        connect_timeout,
        reqwest::redirect::Policy::default(),
    )
}

/// [`http_client`] for OAuth: redirects are never followed.
///
/// The login flows ([`crate::login`]) and [`crate::OAuthSession`] POST codes and refresh
/// tokens; a followed 307/308 would resend that body to wherever the `Location` points.
/// With this client a redirect is an error instead. Use it for every OAuth call,
/// discovery included.
///
/// Errors: as [`http_client`].
pub fn oauth_http_client(
    user_agent: &str,
    tls: &TlsOptions,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    build(
        user_agent,
        tls,
        connect_timeout,
        reqwest::redirect::Policy::none(),
    )
}

fn build(
    user_agent: &str,
    tls: &TlsOptions,
    connect_timeout: Duration,
    redirects: reqwest::redirect::Policy,
) -> Result<reqwest::Client> {
    crate::install_crypto_provider();
    let mut roots = Vec::new();
    for path in &tls.ca_certs {
        let pem = std::fs::read(path).map_err(|e| {
            Error::invalid("ca-cert", format!("cannot read {}: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            Error::invalid(
                "ca-cert",
                format!("{} is not a PEM certificate file: {e}", path.display()),
            )
        })?;
        if certs.is_empty() {
            return Err(Error::invalid(
                "ca-cert",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        roots.extend(certs);
    }
    // Never `.no_proxy()`: reqwest reads the proxy variables itself, which is what
    // users behind corporate proxies rely on.
    reqwest::Client::builder()
        .user_agent(user_agent)
        .connect_timeout(connect_timeout)
        // Merged with (not instead of) the platform roots.
        .tls_certs_merge(roots)
        .tls_danger_accept_invalid_certs(tls.insecure)
        .redirect(redirects)
        .build()
        .map_err(|e| Error::Internal(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn build(ca: PathBuf) -> Result<reqwest::Client> {
        let tls = TlsOptions {
            ca_certs: vec![ca],
            insecure: false,
        };
        http_client("t", &tls, Duration::from_secs(1))
    }

    #[test]
    fn unusable_ca_files_are_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("assay-net-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let err = build(missing.clone()).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "invalid input: ca-cert: cannot read {}: ",
                missing.display()
            )),
            "{err}"
        );
        let not_pem = dir.join("not.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let err = build(not_pem.clone()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "invalid input: ca-cert: {} holds no PEM certificate",
                not_pem.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_build() {
        http_client("t", &TlsOptions::default(), Duration::from_secs(1)).unwrap();
        let insecure = TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        };
        http_client("t", &insecure, Duration::from_secs(1)).unwrap();
    }
}
