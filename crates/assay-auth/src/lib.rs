//! Assay's authorization-server building blocks, free of any HTTP server: the server
//! crate wires them to routes.
//!
//! - [`pkce`]: S256 code challenges.
//! - [`redirect`]: which redirect URIs may be registered and which requested one matches.
//! - [`ssrf`]: the address policy for fetches the server makes on a client's say-so.
//! - [`cimd`]: Client ID Metadata Documents, fetched through the SSRF guard and cached.
//! - [`jwt`]: EdDSA access tokens (RFC 9068 shape), the signing-key ring and its JWKS.
//! - [`scope`]: the `mcp:read` ⊂ `mcp:run` ⊂ `mcp:write` scopes and their permission levels.
//! - [`metadata`]: resource URLs and the RFC 9728 / RFC 8414 / OIDC discovery documents.
//! - [`secrets`]: opaque authorization codes, refresh tokens and device codes; bearer formats.
//! - [`device`]: RFC 8628 user codes and polling-rate bookkeeping.
//! - [`upstream`]: signing in through an upstream OpenID Connect provider or GitHub.

mod capped_body;
pub mod cimd;
pub mod device;
pub mod jwt;
pub mod key_seal;
pub mod metadata;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod secrets;
pub mod ssrf;
pub mod upstream;

/// Makes ring the process-wide rustls provider unless one is installed already.
///
/// reqwest is built with `rustls-no-provider` (no aws-lc); this crate builds its own
/// clients, so it installs the provider itself, the same way assay-client does.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
