//! API token secrets: `assay_` + 43 base62 characters of randomness (≥ 256 bits) + a
//! 6-character base62 CRC32 of the random part.
//!
//! The prefix makes leaked tokens easy to find by secret scanners; the checksum lets us
//! reject typos and garbage without touching the database. Only the SHA-256 of a secret is
//! stored: secrets have full entropy, so a fast hash is enough (no password hashing).

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "assay_";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A new secret and its SHA-256 hex hash (the only part that is stored).
pub fn generate() -> (String, String) {
    // 43 uniform draws from 62 symbols: 43 × log2(62) ≈ 256.03 bits, from the thread-local
    // CSPRNG (ChaCha, seeded and periodically reseeded from the OS).
    let random: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(RANDOM_LEN)
        .map(char::from)
        .collect();
    let secret = format!("{PREFIX}{random}{}", checksum(&random));
    let hashed = hash(&secret);
    (secret, hashed)
}

/// Hex SHA-256 of a secret, as stored in `ApiTokenRecord::secret_hash`.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` has our shape and a correct checksum.
pub fn is_well_formed(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (random, sum) = rest.split_at(RANDOM_LEN);
    checksum(random) == sum
}

fn checksum(random: &str) -> String {
    let mut value = u64::from(crc32(random.as_bytes()));
    let mut out = [b'0'; CHECKSUM_LEN];
    // 62^6 > 2^32, so six digits always suffice.
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|b| char::from(*b)).collect()
}

/// CRC-32 (IEEE 802.3, reflected), bitwise: tokens are short, a table is not worth it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let (a, ha) = generate();
        let (b, hb) = generate();
        assert_eq!(a.len(), PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN);
        assert!(a.starts_with("assay_"));
        assert!(is_well_formed(&a));
        assert!(is_well_formed(&b));
        assert_ne!(a, b);
        assert_ne!(ha, hb);
        assert_eq!(ha, hash(&a));
        assert_eq!(ha.len(), 64);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn bad_checksum_prefix_length_or_alphabet_is_rejected() {
        let (secret, _) = generate();
        // Change one character of the random part: the checksum no longer matches.
        let mut chars: Vec<char> = secret.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert!(!is_well_formed(&tampered));

        let random = "A".repeat(RANDOM_LEN);
        let good = format!("assay_{random}{}", checksum(&random));
        assert!(is_well_formed(&good));
        assert!(!is_well_formed(&good.replacen("assay_", "asay_", 1)));
        assert!(!is_well_formed(&good[..good.len() - 1]));
        assert!(!is_well_formed(&format!("{good}0")));
        let wrong_alphabet = format!("assay_{}-{}", "A".repeat(RANDOM_LEN - 1), checksum(&random));
        assert!(!is_well_formed(&wrong_alphabet));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed("assay_"));
    }

    #[test]
    fn checksum_is_six_base62_digits_of_the_crc() {
        // crc32("hello") = 0x3610A686 = 907 060 870, which is "0zNvy2" in base62
        // (computed independently with Python's zlib.crc32).
        assert_eq!(crc32(b"hello"), 0x3610_A686);
        assert_eq!(checksum("hello"), "0zNvy2");
    }
}
