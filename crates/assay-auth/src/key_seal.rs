//! Sealing private keys at rest with a key-encryption key (KEK) that lives outside the
//! database, so a database dump alone cannot sign tokens.
//!
//! Envelope (bytes): `v1:` ‖ 12-byte random nonce ‖ ChaCha20-Poly1305 ciphertext and
//! tag. The associated data binds the version and the key id, so a sealed key copied onto
//! another record (another kid) does not open. The `v1:` prefix leaves room for another
//! format (or a KMS) later; a PKCS#8 DER document starts with `0x30` and is never taken
//! for an envelope.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::TryRngCore as _;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

const V1: &[u8] = b"v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Domain separation: this KEK's envelopes are for signing keys only.
const AAD_CONTEXT: &[u8] = b"assay signing key v1:";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    /// The KEK text is not 32 bytes in hex or base64. Never carries the text.
    #[error("a key-encryption key must be 32 bytes written as 64 hex digits or base64")]
    KeyFormat,
    /// Wrong KEK, a tampered envelope or an envelope of another key id: not told apart.
    #[error("the sealed key cannot be opened with this key-encryption key")]
    Open,
    #[error("the sealed key has an unknown format")]
    UnknownFormat,
}

/// A 256-bit key-encryption key. `Debug` never shows it; equality is constant-time.
#[derive(Clone)]
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

impl PartialEq for KeyEncryptionKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for KeyEncryptionKey {}

impl KeyEncryptionKey {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(key.as_mut())
            .map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self(key))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// 32 bytes as 64 hex digits or base64 (standard or URL-safe, padded or not);
    /// surrounding whitespace (a file's trailing newline) is ignored.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(text).ok())
        };
        let decoded = Zeroizing::new(decoded.ok_or(SealError::KeyFormat)?);
        let bytes: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| SealError::KeyFormat)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as 64 hex digits, for writing a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_slice()))
    }

    /// Seals `plaintext` (a private key) for the record of `kid`, with a fresh nonce.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| SealError::Random(e.to_string()))?;
        let aad = aad(kid);
        let sealed = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            // Only fails for plaintexts beyond 256 GiB.
            .map_err(|_| SealError::UnknownFormat)?;
        let mut out = Vec::with_capacity(V1.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens an envelope made by [`Self::seal`] for the same `kid`.
    pub fn open(&self, kid: &str, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let body = envelope.strip_prefix(V1).ok_or(SealError::UnknownFormat)?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(SealError::Open);
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Open)?;
        let aad = aad(kid);
        self.cipher()
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Open)
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&(*self.0).into())
    }
}

/// Whether a stored value is an envelope (of any version) rather than a plain key
/// written before sealing existed.
pub fn is_sealed(stored: &[u8]) -> bool {
    let mut parts = stored.splitn(2, |&b| b == b':');
    match (parts.next(), parts.next()) {
        (Some(version), Some(_)) => {
            version.len() >= 2
                && version.len() <= 4
                && version[0] == b'v'
                && version[1..].iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn aad(kid: &str) -> Vec<u8> {
    [AAD_CONTEXT, kid.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const PKCS8: &[u8] = b"\x30\x2e\x02\x01\x00 a private key stands here";

    #[test]
    fn round_trip_with_a_fresh_nonce_each_time() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let a = kek.seal("kid-1", PKCS8).unwrap();
        let b = kek.seal("kid-1", PKCS8).unwrap();
        assert!(a.starts_with(b"v1:"));
        assert_ne!(a, b, "each seal draws its own nonce");
        assert_eq!(a.len(), 3 + NONCE_LEN + PKCS8.len() + TAG_LEN);
        assert!(
            !a.windows(PKCS8.len()).any(|w| w == PKCS8),
            "the plaintext must not appear in the envelope"
        );
        assert_eq!(kek.open("kid-1", &a).unwrap().as_slice(), PKCS8);
        assert_eq!(kek.open("kid-1", &b).unwrap().as_slice(), PKCS8);
        assert!(is_sealed(&a));
        assert!(!is_sealed(PKCS8));
    }

    #[test]
    fn a_wrong_kek_does_not_open() {
        let sealed = KeyEncryptionKey::generate()
            .unwrap()
            .seal("kid-1", PKCS8)
            .unwrap();
        let other = KeyEncryptionKey::generate().unwrap();
        assert_eq!(other.open("kid-1", &sealed).unwrap_err(), SealError::Open);
    }

    #[test]
    fn every_tampered_byte_is_detected() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let sealed = kek.seal("kid-1", PKCS8).unwrap();
        for i in V1.len()..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(kek.open("kid-1", &bad).unwrap_err(), SealError::Open, "{i}");
        }
        assert_eq!(
            kek.open("kid-1", &sealed[..sealed.len() - 1]).unwrap_err(),
            SealError::Open
        );
        assert_eq!(
            kek.open("kid-1", &sealed[..V1.len() + 4]).unwrap_err(),
            SealError::Open
        );
        let mut other_version = sealed.clone();
        other_version[1] = b'2';
        assert_eq!(
            kek.open("kid-1", &other_version).unwrap_err(),
            SealError::UnknownFormat
        );
    }

    #[test]
    fn an_envelope_moved_to_another_kid_does_not_open() {
        let kek = KeyEncryptionKey::generate().unwrap();
        let sealed = kek.seal("kid-1", PKCS8).unwrap();
        assert_eq!(kek.open("kid-2", &sealed).unwrap_err(), SealError::Open);
        assert_eq!(kek.open("", &sealed).unwrap_err(), SealError::Open);
    }

    #[test]
    fn parses_hex_and_base64_and_refuses_anything_else() {
        let bytes: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let kek = KeyEncryptionKey::from_bytes(bytes);
        assert_eq!(KeyEncryptionKey::parse(&hex::encode(bytes)).unwrap(), kek);
        assert_eq!(
            KeyEncryptionKey::parse(&format!("{}\n", hex::encode_upper(bytes))).unwrap(),
            kek
        );
        assert_eq!(
            KeyEncryptionKey::parse(&STANDARD.encode(bytes)).unwrap(),
            kek
        );
        assert_eq!(
            KeyEncryptionKey::parse(&URL_SAFE_NO_PAD.encode(bytes)).unwrap(),
            kek
        );
        assert_eq!(KeyEncryptionKey::parse(&kek.to_hex()).unwrap(), kek);
        for bad in [
            "",
            "not a key",
            &hex::encode([1u8; 31]),
            &STANDARD.encode([1u8; 33]),
        ] {
            assert_eq!(
                KeyEncryptionKey::parse(bad).unwrap_err(),
                SealError::KeyFormat,
                "{bad}"
            );
        }
        assert_eq!(format!("{kek:?}"), "KeyEncryptionKey(<redacted>)");
        assert_ne!(kek, KeyEncryptionKey::from_bytes([0; 32]));
    }
}
