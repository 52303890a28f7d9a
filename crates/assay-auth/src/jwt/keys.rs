//! Ed25519 signing keys for access tokens: generation, PKCS#8 for storage, RFC 7638
//! key ids, and the JWKS that publishes the public halves.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("the stored signing key is not an Ed25519 PKCS#8 document")]
    InvalidPkcs8,
    #[error("cannot encode the signing key as PKCS#8: {0}")]
    Encode(String),
}

/// One Ed25519 key pair. `Debug` shows the key id only.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    public: [u8; 32],
    pkcs8: Zeroizing<Vec<u8>>,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(seed.as_mut())
            .map_err(|e| KeyError::Random(e.to_string()))?;
        Self::from_dalek(&ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// A key stored earlier with [`Self::to_pkcs8_der`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let key =
            ed25519_dalek::SigningKey::from_pkcs8_der(der).map_err(|_| KeyError::InvalidPkcs8)?;
        Self::from_dalek(&key)
    }

    fn from_dalek(key: &ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| KeyError::Encode(e.to_string()))?;
        let pkcs8 = Zeroizing::new(pkcs8.as_bytes().to_vec());
        let public = key.verifying_key().to_bytes();
        let x = URL_SAFE_NO_PAD.encode(public);
        let decoding =
            DecodingKey::from_ed_components(&x).map_err(|e| KeyError::Encode(e.to_string()))?;
        Ok(Self {
            kid: thumbprint(&x),
            public,
            encoding: EncodingKey::from_ed_der(&pkcs8),
            decoding,
            pkcs8,
        })
    }

    /// The private key as PKCS#8 DER, for the caller to store (encrypted at rest).
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        self.pkcs8.clone()
    }

    /// RFC 7638 thumbprint of the public key: stable across restarts, so it is not stored.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK (RFC 8037).
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public),
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }
}

/// RFC 7638 §3 for an OKP key: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The keys the server signs and verifies with: new tokens are signed with `current`;
/// tokens signed with `previous` stay valid until they expire, so a rotation does not
/// log anyone out.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: SigningKey,
    previous: Option<SigningKey>,
}

impl KeyRing {
    pub fn new(current: SigningKey, previous: Option<SigningKey>) -> Self {
        Self { current, previous }
    }

    /// A ring with one freshly generated key.
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self::new(SigningKey::generate()?, None))
    }

    /// Makes a new current key; the old current becomes previous and the old previous
    /// is dropped. The caller stores both keys afterwards.
    pub fn rotate(&mut self) -> Result<(), KeyError> {
        let next = SigningKey::generate()?;
        self.previous = Some(std::mem::replace(&mut self.current, next));
        Ok(())
    }

    pub fn current(&self) -> &SigningKey {
        &self.current
    }

    pub fn previous(&self) -> Option<&SigningKey> {
        self.previous.as_ref()
    }

    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.kid == kid)
    }

    /// The JWKS document (RFC 7517 §5) with every public key of the ring.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .map(SigningKey::public_jwk)
            .collect();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    // RFC 8037 Appendix A.1 private key (seed) and A.3 thumbprint.
    const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
    const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
    const RFC_KID: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

    fn rfc_key() -> SigningKey {
        let seed: [u8; 32] = URL_SAFE_NO_PAD.decode(RFC_D).unwrap().try_into().unwrap();
        SigningKey::from_dalek(&ed25519_dalek::SigningKey::from_bytes(&seed)).unwrap()
    }

    #[test]
    fn rfc_8037_public_key_and_thumbprint() {
        let key = rfc_key();
        assert_eq!(key.public_jwk()["x"], RFC_X);
        assert_eq!(key.kid(), RFC_KID);
        assert_eq!(
            key.public_jwk(),
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": RFC_KID, "use": "sig", "alg": "EdDSA"
            })
        );
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_kid() {
        let key = SigningKey::generate().unwrap();
        let der = key.to_pkcs8_der();
        let back = SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(back.kid(), key.kid());
        assert_eq!(back.public, key.public);
        assert_eq!(
            SigningKey::from_pkcs8_der(b"not a key").unwrap_err(),
            KeyError::InvalidPkcs8
        );
        assert_ne!(SigningKey::generate().unwrap().kid(), key.kid());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = rfc_key();
        let debug = format!("{key:?} {:?}", KeyRing::new(key.clone(), None));
        assert!(debug.contains(RFC_KID));
        assert!(!debug.contains(RFC_D));
        assert!(!debug.contains("pkcs8"));
    }

    #[test]
    fn rotation_keeps_one_previous_key_and_jwks_lists_both() {
        let mut ring = KeyRing::generate().unwrap();
        let first = ring.current().kid().to_owned();
        assert_eq!(ring.jwks()["keys"].as_array().unwrap().len(), 1);
        ring.rotate().unwrap();
        let second = ring.current().kid().to_owned();
        assert_ne!(first, second);
        assert_eq!(ring.previous().unwrap().kid(), first);
        let kids: Vec<_> = ring.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kids, [second.clone(), first.clone()]);
        assert!(ring.find(&first).is_some() && ring.find(&second).is_some());
        ring.rotate().unwrap();
        assert!(ring.find(&first).is_none());
        assert_eq!(ring.previous().unwrap().kid(), second);
        // No private material in the published set.
        let jwks = ring.jwks().to_string();
        assert!(!jwks.contains("\"d\""));
    }
}
