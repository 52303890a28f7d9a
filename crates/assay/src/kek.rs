//! The key-encryption key that seals the signing keys in the database: from
//! `--key-encryption-key-file`, else `<data-dir>/signing-kek`, created at first start so an
//! embedded install needs no setup. It never goes into the database, so a dump of it alone
//! cannot sign tokens.

use anyhow::{Context, bail};
use assay_auth::key_seal::KeyEncryptionKey;
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

const DEFAULT_FILE: &str = "signing-kek";

pub fn load(file: Option<&Path>, data_dir: &Path) -> anyhow::Result<KeyEncryptionKey> {
    match file {
        Some(path) => read(path, "--key-encryption-key-file"),
        None => read_or_create(&data_dir.join(DEFAULT_FILE)),
    }
}

fn read(path: &Path, flag: &str) -> anyhow::Result<KeyEncryptionKey> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the key-encryption key {} ({flag} / ASSAY_KEY_ENCRYPTION_KEY_FILE)",
            path.display()
        )
    })?);
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            "the key-encryption key file is readable by other users; chmod 600 it"
        );
    }
    // The parse error never carries the file's content.
    KeyEncryptionKey::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "{flag} {}: {e} (e.g. from `openssl rand -hex 32`)",
            path.display()
        )
    })
}

/// The default file: read it, or create it with a fresh key (mode 0600, exclusive create
/// so two servers starting at once end with one key).
fn read_or_create(path: &Path) -> anyhow::Result<KeyEncryptionKey> {
    let flag = "--key-encryption-key-file (default <data-dir>/signing-kek)";
    let kek = KeyEncryptionKey::generate().context("cannot make a key-encryption key")?;
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match created {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return read(path, flag),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot create the key-encryption key {}; pass {flag}",
                    path.display()
                )
            });
        }
    };
    let mut text = kek.to_hex();
    text.push('\n');
    if let Err(e) = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
    {
        // A half-written key must not be read back at the next start.
        let _ = std::fs::remove_file(path);
        bail!(
            "cannot write the key-encryption key {}: {e}; pass {flag}",
            path.display()
        );
    }
    tracing::info!(path = %path.display(), "created the key-encryption key for the signing keys; back it up apart from the database");
    Ok(kek)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_default_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, dir.path()).unwrap();
        let path = dir.path().join(DEFAULT_FILE);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
        assert_eq!(load(None, dir.path()).unwrap(), first);
        // An explicit file wins over the default one.
        let other = dir.path().join("kek");
        std::fs::write(&other, format!("{}\n", "ab".repeat(32))).unwrap();
        let explicit = load(Some(&other), dir.path()).unwrap();
        assert_eq!(explicit, KeyEncryptionKey::from_bytes([0xab; 32]));
        assert_ne!(explicit, first);
    }

    #[test]
    fn a_bad_file_names_the_flag_and_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("kek");
        std::fs::write(&bad, "secret-but-not-a-key").unwrap();
        let err = load(Some(&bad), dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--key-encryption-key-file {}: a key-encryption key must be 32 bytes written \
                 as 64 hex digits or base64 (e.g. from `openssl rand -hex 32`)",
                bad.display()
            )
        );
        let missing = dir.path().join("missing");
        let err = load(Some(&missing), dir.path()).unwrap_err().to_string();
        assert!(
            err.starts_with("cannot read the key-encryption key"),
            "{err}"
        );
        assert!(err.contains("--key-encryption-key-file"), "{err}");
    }
}
