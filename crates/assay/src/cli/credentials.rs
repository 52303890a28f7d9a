//! Where `assay login` keeps secrets: the OS keyring (service "assay", account
//! `CONTEXT@HASH`, see [`keyring_account`]) when there is one that answers, else
//! `credentials.json` (0600) in the config directory. `ASSAY_CREDENTIAL_STORE=file|keyring|auto`
//! (default auto) decides.
//!
//! Refresh tokens rotate, and presenting a spent one revokes the whole grant; so every
//! read-change-write of a credential happens under `credentials.lock` (an exclusive file
//! lock shared by every assay process), and [`ContextTokenStore`] hands that lock to
//! assay-client's `OAuthSession` for its refreshes.

use super::config::{ConfigDir, write_private};
use anyhow::{Context as _, bail};
use assay_client::{TokenSet, TokenStore};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The keyring service name.
pub const KEYRING_SERVICE: &str = "assay";

/// How long one keyring operation may take before the keyring counts as unavailable (a
/// locked keyring may wait for a password prompt nobody sees).
const KEYRING_TIME_BOX: Duration = Duration::from_secs(2);

/// How long to wait for another assay process holding the credentials lock.
const LOCK_WAIT: Duration = Duration::from_secs(60);

/// A context's secret, as stored (JSON, in the keyring or in `credentials.json`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum StoredCredential {
    #[serde(rename = "oauth")]
    OAuth {
        tokens: TokenSet,
        client_id: String,
        /// Where to refresh and revoke, from the server's metadata at login.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_endpoint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revocation_endpoint: Option<String>,
    },
    #[serde(rename = "api-token")]
    ApiToken { token: String },
}

/// Never shows a secret.
impl std::fmt::Debug for StoredCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OAuth {
                tokens, client_id, ..
            } => f
                .debug_struct("OAuth")
                .field("tokens", tokens)
                .field("client_id", client_id)
                .finish_non_exhaustive(),
            Self::ApiToken { .. } => f.write_str("ApiToken(***)"),
        }
    }
}

/// A stored credential and when it was written: when the keyring and the file both hold
/// one (the keyring failed once), the newer wins — an older one may hold a spent refresh
/// token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    credential: StoredCredential,
    #[serde(with = "time::serde::rfc3339")]
    saved_at: OffsetDateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    File,
    Keyring,
    Auto,
}

impl StoreMode {
    /// `ASSAY_CREDENTIAL_STORE`.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::parse(std::env::var("ASSAY_CREDENTIAL_STORE").ok().as_deref())
    }

    pub fn parse(value: Option<&str>) -> anyhow::Result<Self> {
        match value.map(str::trim).unwrap_or("") {
            "" | "auto" => Ok(Self::Auto),
            "file" => Ok(Self::File),
            "keyring" => Ok(Self::Keyring),
            other => bail!("ASSAY_CREDENTIAL_STORE={other:?}: expected file, keyring or auto"),
        }
    }
}

/// Where a credential was found or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    Keyring,
    File,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Keyring => "OS keyring",
            Self::File => "file",
        })
    }
}

/// Why the keyring did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyringUnavailable(pub String);

/// The OS keyring, reduced to what the CLI needs (a fake stands in for it in tests).
pub trait Keyring: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<String>, KeyringUnavailable>;
    fn set(&self, account: &str, secret: &str) -> Result<(), KeyringUnavailable>;
    fn delete(&self, account: &str) -> Result<(), KeyringUnavailable>;
}

/// The platform keyring through the `keyring` crate, each operation time-boxed.
pub struct OsKeyring;

impl OsKeyring {
    fn boxed<T: Send + 'static>(
        op: impl FnOnce() -> Result<T, KeyringUnavailable> + Send + 'static,
    ) -> Result<T, KeyringUnavailable> {
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread of its own so a keyring that never answers cannot hang the command;
        // such a thread is abandoned (the process ends soon after anyway).
        std::thread::Builder::new()
            .name("assay-keyring".into())
            .spawn(move || {
                let _ = tx.send(op());
            })
            .map_err(|e| KeyringUnavailable(format!("cannot start a thread: {e}")))?;
        match rx.recv_timeout(KEYRING_TIME_BOX) {
            Ok(result) => result,
            Err(_) => Err(KeyringUnavailable(format!(
                "the OS keyring did not answer within {} s",
                KEYRING_TIME_BOX.as_secs()
            ))),
        }
    }

    fn entry(account: &str) -> Result<keyring::Entry, KeyringUnavailable> {
        keyring::Entry::new(KEYRING_SERVICE, account).map_err(unavailable)
    }
}

fn unavailable(e: keyring::Error) -> KeyringUnavailable {
    KeyringUnavailable(match e {
        keyring::Error::NoDefaultStore => "no OS keyring (secret service) is available".into(),
        other => other.to_string(),
    })
}

impl Keyring for OsKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, KeyringUnavailable> {
        let account = account.to_owned();
        Self::boxed(move || match Self::entry(&account)?.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(unavailable(e)),
        })
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), KeyringUnavailable> {
        let (account, secret) = (
            account.to_owned(),
            zeroize::Zeroizing::new(secret.to_owned()),
        );
        Self::boxed(move || {
            Self::entry(&account)?
                .set_password(&secret)
                .map_err(unavailable)
        })
    }

    fn delete(&self, account: &str) -> Result<(), KeyringUnavailable> {
        let account = account.to_owned();
        Self::boxed(move || match Self::entry(&account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(unavailable(e)),
        })
    }
}

/// The keyring account of a context: `CONTEXT@HASH`, HASH naming the config directory
/// (12 hex digits of the SHA-256 of its canonical path). The keyring is one per user, the
/// config directories are many (`ASSAY_CONFIG_DIR` per project, profile or test): a
/// context name alone would let one directory's login read or overwrite another's.
pub fn keyring_account(dir: &Path, context: &str) -> String {
    use sha2::Digest as _;
    let canonical = canonical_path(dir);
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        canonical.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = canonical.to_string_lossy().as_bytes().to_vec();
    let digest = sha2::Sha256::digest(&bytes);
    let hash: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{context}@{hash}")
}

/// `path` with symbolic links, `.` and `..` resolved as far as it exists, the rest
/// appended: the same directory gets the same name before and after it is created.
fn canonical_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<Component<'_>> = absolute.components().collect();
    for split in (1..=parts.len()).rev() {
        let Ok(mut canonical) = std::fs::canonicalize(parts[..split].iter().collect::<PathBuf>())
        else {
            continue;
        };
        for part in &parts[split..] {
            match part {
                Component::ParentDir => {
                    canonical.pop();
                }
                Component::CurDir => {}
                other => canonical.push(other),
            }
        }
        return canonical;
    }
    absolute
}

/// The credentials of every context. Reads and writes do not lock; callers that change
/// a credential hold [`CredentialStore::lock`] around the read and the write.
pub struct CredentialStore {
    dir: ConfigDir,
    mode: StoreMode,
    keyring: Arc<dyn Keyring>,
    /// Auto mode: why the keyring failed in this process; it is not waited for again.
    keyring_failed: OnceLock<String>,
}

/// What [`CredentialStore::delete`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    /// Whether a credential was removed.
    pub had: bool,
    /// Auto mode without a usable keyring: why it could not be checked, and the account
    /// where a copy saved earlier may remain.
    pub keyring_unchecked: Option<(String, String)>,
}

impl Deletion {
    /// The warning to print when the keyring may still hold a copy.
    pub fn warning(&self) -> Option<String> {
        self.keyring_unchecked.as_ref().map(|(why, account)| {
            format!(
                "warning: the OS keyring could not be checked ({why}); if it holds a copy of \
                 this credential, remove it there (service \"{KEYRING_SERVICE}\", account \
                 \"{account}\")"
            )
        })
    }
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialStore")
            .field("dir", &self.dir)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The held credentials lock; dropping it releases the lock.
#[derive(Debug)]
pub struct CredentialLock {
    _file: File,
}

impl CredentialStore {
    pub fn new(dir: ConfigDir, mode: StoreMode, keyring: Arc<dyn Keyring>) -> Self {
        Self {
            dir,
            mode,
            keyring,
            keyring_failed: OnceLock::new(),
        }
    }

    /// This store's keyring account for `context`.
    pub fn account(&self, context: &str) -> String {
        keyring_account(self.dir.path(), context)
    }

    /// The store for this machine: `ASSAY_CREDENTIAL_STORE` and the OS keyring.
    pub fn open(dir: ConfigDir) -> anyhow::Result<Self> {
        Ok(Self::new(dir, StoreMode::from_env()?, Arc::new(OsKeyring)))
    }

    pub fn mode(&self) -> StoreMode {
        self.mode
    }

    #[cfg(test)]
    pub fn dir(&self) -> &ConfigDir {
        &self.dir
    }

    /// Takes `credentials.lock`, waiting for another assay process that holds it.
    pub fn lock(&self) -> anyhow::Result<CredentialLock> {
        self.dir.ensure()?;
        let path = self.dir.lock_file();
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(CredentialLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(std::fs::TryLockError::WouldBlock) => bail!(
                    "another assay process has held {} for {} s; is one stuck?",
                    path.display(),
                    LOCK_WAIT.as_secs()
                ),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
    }

    fn use_keyring(&self) -> bool {
        match self.mode {
            StoreMode::File => false,
            StoreMode::Keyring => true,
            StoreMode::Auto => self.keyring_failed.get().is_none(),
        }
    }

    /// In auto mode a keyring failure means "use the file"; in keyring mode it is an error.
    fn keyring_failed(&self, why: KeyringUnavailable) -> anyhow::Result<()> {
        if self.mode == StoreMode::Keyring {
            bail!(
                "the OS keyring is not usable ({}); set ASSAY_CREDENTIAL_STORE=file to keep credentials in a 0600 file",
                why.0
            );
        }
        tracing::debug!(reason = %why.0, "OS keyring unavailable; using the credentials file");
        let _ = self.keyring_failed.set(why.0);
        Ok(())
    }

    /// The credential of `context` and where it was, if there is one.
    pub fn load(&self, context: &str) -> anyhow::Result<Option<(StoredCredential, Location)>> {
        let mut found: Vec<(Entry, Location)> = Vec::new();
        if self.use_keyring() {
            match self.keyring.get(&self.account(context)) {
                Ok(Some(text)) => {
                    let text = zeroize::Zeroizing::new(text);
                    let entry: Entry = serde_json::from_str(&text).with_context(|| {
                        format!(
                            "the OS keyring entry of context {context:?} is not an assay credential"
                        )
                    })?;
                    found.push((entry, Location::Keyring));
                }
                Ok(None) => {}
                Err(why) => self.keyring_failed(why)?,
            }
        }
        if self.mode != StoreMode::Keyring
            && let Some(entry) = self.read_file()?.remove(context)
        {
            found.push((entry, Location::File));
        }
        Ok(found
            .into_iter()
            .max_by_key(|(entry, _)| entry.saved_at)
            .map(|(entry, at)| (entry.credential, at)))
    }

    /// Stores the credential of `context` (replacing any other copy) and says where.
    pub fn save(&self, context: &str, credential: &StoredCredential) -> anyhow::Result<Location> {
        let entry = Entry {
            credential: credential.clone(),
            saved_at: OffsetDateTime::now_utc(),
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_string(&entry).context("cannot encode the credential")?,
        );
        if self.use_keyring() {
            match self.keyring.set(&self.account(context), &json) {
                Ok(()) => {
                    if self.mode == StoreMode::Auto {
                        self.remove_from_file(context)?;
                    }
                    return Ok(Location::Keyring);
                }
                Err(why) => self.keyring_failed(why)?,
            }
        }
        let mut all = self.read_file()?;
        all.insert(context.to_owned(), entry);
        self.write_file(&all)?;
        Ok(Location::File)
    }

    /// Forgets the credential of `context` everywhere it can look; see [`Deletion`] for
    /// a keyring that could not be asked.
    pub fn delete(&self, context: &str) -> anyhow::Result<Deletion> {
        let mut had = false;
        let account = self.account(context);
        if self.use_keyring() {
            match self.keyring.get(&account) {
                Ok(Some(_)) => {
                    had = true;
                    if let Err(why) = self.keyring.delete(&account) {
                        bail!(
                            "cannot remove the credential of context {context:?} from the OS keyring: {}",
                            why.0
                        );
                    }
                }
                Ok(None) => {}
                Err(why) => self.keyring_failed(why)?,
            }
        }
        if self.mode != StoreMode::Keyring {
            had |= self.remove_from_file(context)?;
        }
        let keyring_unchecked = match self.mode {
            StoreMode::Auto => self.keyring_failed.get().map(|why| (why.clone(), account)),
            _ => None,
        };
        Ok(Deletion {
            had,
            keyring_unchecked,
        })
    }

    fn remove_from_file(&self, context: &str) -> anyhow::Result<bool> {
        let mut all = self.read_file()?;
        if all.remove(context).is_none() {
            return Ok(false);
        }
        self.write_file(&all)?;
        Ok(true)
    }

    fn read_file(&self) -> anyhow::Result<BTreeMap<String, Entry>> {
        let path = self.dir.credentials_file();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a credentials file", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn write_file(&self, all: &BTreeMap<String, Entry>) -> anyhow::Result<()> {
        self.dir.ensure()?;
        let path = self.dir.credentials_file();
        if all.is_empty() {
            return match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
            };
        }
        let bytes = zeroize::Zeroizing::new(
            serde_json::to_vec_pretty(all).context("cannot encode the credentials")?,
        );
        write_private(&path, &bytes)
    }

    pub fn credentials_file(&self) -> PathBuf {
        self.dir.credentials_file()
    }
}

/// One context's OAuth tokens as assay-client's `TokenStore`: what an `OAuthSession`
/// reloads before refreshing, saves after, and locks around both.
///
/// Only the login the session started from counts: a credential stored meanwhile for
/// another token endpoint (the context deleted and signed in to another server) is not
/// this session's — adopting its tokens would send them, and its refresh token, to the
/// wrong server.
pub struct ContextTokenStore {
    store: Arc<CredentialStore>,
    context: String,
    /// The token endpoint of the credential the session was built from, as stored.
    token_endpoint: Option<String>,
}

impl ContextTokenStore {
    pub fn new(
        store: Arc<CredentialStore>,
        context: impl Into<String>,
        token_endpoint: Option<String>,
    ) -> Self {
        Self {
            store,
            context: context.into(),
            token_endpoint,
        }
    }

    /// The stored OAuth credential when it is still this session's login.
    fn ours(&self) -> assay_core::Result<Option<(TokenSet, String, Option<String>)>> {
        Ok(match self.store.load(&self.context).map_err(internal)? {
            Some((
                StoredCredential::OAuth {
                    tokens,
                    client_id,
                    token_endpoint,
                    revocation_endpoint,
                },
                _,
            )) if token_endpoint == self.token_endpoint => {
                Some((tokens, client_id, revocation_endpoint))
            }
            _ => None,
        })
    }
}

fn internal(e: anyhow::Error) -> assay_core::Error {
    assay_core::Error::Internal(format!("{e:#}"))
}

impl TokenStore for ContextTokenStore {
    fn load(&self) -> assay_core::Result<Option<TokenSet>> {
        Ok(self.ours()?.map(|(tokens, ..)| tokens))
    }

    fn save(&self, tokens: &TokenSet) -> assay_core::Result<()> {
        let credential = match self.ours()? {
            Some((_, client_id, revocation_endpoint)) => StoredCredential::OAuth {
                tokens: tokens.clone(),
                client_id,
                token_endpoint: self.token_endpoint.clone(),
                revocation_endpoint,
            },
            // Logged out, replaced by an API token or by a login to another server
            // meanwhile: the user's latest decision stands; the refreshed tokens are not
            // brought back.
            _ => {
                return Err(assay_core::Error::Unauthenticated(format!(
                    "context {:?} was logged out (or signed in again elsewhere); run `assay \
                     login` again",
                    self.context
                )));
            }
        };
        self.store
            .save(&self.context, &credential)
            .map(|_| ())
            .map_err(internal)
    }

    fn lock(&self) -> assay_core::Result<Box<dyn std::any::Any + Send>> {
        let lock = self.store.lock().map_err(internal)?;
        Ok(Box::new(lock))
    }
}

/// Runs `f` (credentials lock, keyring, files: all blocking) on tokio's blocking pool, so
/// a wait for the lock or a slow keyring never stalls the async workers.
pub async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .context("a credential store task failed")?
}

/// Whether `path` is readable by its owner only (0600).
#[cfg(all(unix, test))]
pub fn is_private(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// An in-memory keyring that works, or fails every call.
    #[derive(Default)]
    struct FakeKeyring {
        entries: Mutex<BTreeMap<String, String>>,
        broken: AtomicBool,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl FakeKeyring {
        fn check(&self) -> Result<(), KeyringUnavailable> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if self.broken.load(Ordering::Relaxed) {
                Err(KeyringUnavailable("no secret service".into()))
            } else {
                Ok(())
            }
        }
    }

    impl Keyring for FakeKeyring {
        fn get(&self, account: &str) -> Result<Option<String>, KeyringUnavailable> {
            self.check()?;
            Ok(self.entries.lock().unwrap().get(account).cloned())
        }
        fn set(&self, account: &str, secret: &str) -> Result<(), KeyringUnavailable> {
            self.check()?;
            self.entries
                .lock()
                .unwrap()
                .insert(account.into(), secret.into());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<(), KeyringUnavailable> {
            self.check()?;
            self.entries.lock().unwrap().remove(account);
            Ok(())
        }
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            refresh_token: Some(format!("refresh-{access}")),
            expires_at: Some(time::macros::datetime!(2030-01-01 00:00:00 UTC)),
            scope: Some("mcp:write".into()),
            lifetime_secs: None,
        }
    }

    fn oauth(access: &str) -> StoredCredential {
        StoredCredential::OAuth {
            tokens: tokens(access),
            client_id: "assay-cli".into(),
            token_endpoint: Some("http://127.0.0.1:7357/oauth/token".into()),
            revocation_endpoint: None,
        }
    }

    fn store(mode: StoreMode, keyring: Arc<FakeKeyring>) -> (tempfile::TempDir, CredentialStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(ConfigDir::at(dir.path().join("assay")), mode, keyring);
        (dir, store)
    }

    #[test]
    fn the_stored_shape_is_the_documented_one() {
        let json = serde_json::to_value(oauth("a")).unwrap();
        assert_eq!(json["kind"], "oauth");
        assert_eq!(json["client_id"], "assay-cli");
        assert_eq!(json["tokens"]["access_token"], "a");
        assert_eq!(json["tokens"]["expires_at"], "2030-01-01T00:00:00Z");
        let api = serde_json::to_value(StoredCredential::ApiToken {
            token: "assay_x".into(),
        })
        .unwrap();
        assert_eq!(
            api,
            serde_json::json!({"kind": "api-token", "token": "assay_x"})
        );
        assert_eq!(
            format!(
                "{:?}",
                StoredCredential::ApiToken {
                    token: "assay_x".into()
                }
            ),
            "ApiToken(***)"
        );
        assert!(!format!("{:?}", oauth("secret-access")).contains("secret-access"));
    }

    #[test]
    fn the_file_store_is_0600_in_a_0700_directory() {
        let (_dir, store) = store(StoreMode::File, Arc::new(FakeKeyring::default()));
        assert_eq!(store.load("a").unwrap(), None);
        assert_eq!(store.save("a", &oauth("1")).unwrap(), Location::File);
        assert_eq!(
            store
                .save(
                    "b",
                    &StoredCredential::ApiToken {
                        token: "assay_b".into()
                    }
                )
                .unwrap(),
            Location::File
        );
        assert_eq!(store.load("a").unwrap(), Some((oauth("1"), Location::File)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&store.credentials_file()), 0o600);
            assert_eq!(mode(store.dir().path()), 0o700);
            assert!(is_private(&store.credentials_file()));
        }
        assert!(store.delete("a").unwrap().had);
        assert!(!store.delete("a").unwrap().had);
        assert_eq!(store.load("a").unwrap(), None);
        assert!(store.load("b").unwrap().is_some());
        let deleted = store.delete("b").unwrap();
        assert_eq!(
            deleted,
            Deletion {
                had: true,
                keyring_unchecked: None
            }
        );
        assert_eq!(deleted.warning(), None);
        assert!(
            !store.credentials_file().exists(),
            "an empty store leaves no file"
        );
    }

    #[test]
    fn auto_mode_uses_a_working_keyring_and_no_file() {
        let keyring = Arc::new(FakeKeyring::default());
        let (_dir, store) = store(StoreMode::Auto, keyring.clone());
        assert_eq!(store.save("a", &oauth("1")).unwrap(), Location::Keyring);
        assert!(!store.credentials_file().exists());
        assert!(
            keyring.entries.lock().unwrap()[&store.account("a")].contains("\"kind\":\"oauth\"")
        );
        assert_eq!(
            store.load("a").unwrap(),
            Some((oauth("1"), Location::Keyring))
        );
        assert!(store.delete("a").unwrap().had);
        assert!(keyring.entries.lock().unwrap().is_empty());
    }

    #[test]
    fn keyring_accounts_name_the_config_directory() {
        let root = tempfile::tempdir().unwrap();
        let (one, two) = (root.path().join("one"), root.path().join("two"));
        std::fs::create_dir(&one).unwrap();
        let a = keyring_account(&one, "prod");
        let b = keyring_account(&two, "prod");
        assert_ne!(a, b, "two config directories, two accounts");
        let (context, hash) = a.split_once('@').unwrap();
        assert_eq!(context, "prod");
        assert_eq!(hash.len(), 12);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{hash}");
        // One directory however it is spelled, and before and after it exists.
        assert_eq!(
            keyring_account(&one.join(".").join("x").join(".."), "prod"),
            a
        );
        std::fs::create_dir(&two).unwrap();
        assert_eq!(keyring_account(&two, "prod"), b);
        #[cfg(unix)]
        {
            let link = root.path().join("link");
            std::os::unix::fs::symlink(&one, &link).unwrap();
            assert_eq!(keyring_account(&link, "prod"), a);
        }
        assert_ne!(keyring_account(&one, "dev"), a);

        // Two stores on one keyring keep their logins apart.
        let keyring = Arc::new(FakeKeyring::default());
        let first = CredentialStore::new(ConfigDir::at(&one), StoreMode::Auto, keyring.clone());
        let second = CredentialStore::new(ConfigDir::at(&two), StoreMode::Auto, keyring.clone());
        first.save("prod", &oauth("1")).unwrap();
        assert_eq!(second.load("prod").unwrap(), None);
        second.save("prod", &oauth("2")).unwrap();
        assert_eq!(
            first.load("prod").unwrap(),
            Some((oauth("1"), Location::Keyring))
        );
        assert_eq!(keyring.entries.lock().unwrap().len(), 2);
    }

    #[test]
    fn deleting_without_a_usable_keyring_names_the_leftover() {
        let keyring = Arc::new(FakeKeyring::default());
        let (_dir, auto) = store(StoreMode::Auto, keyring.clone());
        auto.save("a", &oauth("1")).unwrap();
        keyring.broken.store(true, Ordering::Relaxed);
        let deleted = auto.delete("a").unwrap();
        assert!(!deleted.had, "nothing was removed");
        let account = auto.account("a");
        assert_eq!(
            deleted.keyring_unchecked,
            Some(("no secret service".to_owned(), account.clone()))
        );
        assert_eq!(
            deleted.warning().unwrap(),
            format!(
                "warning: the OS keyring could not be checked (no secret service); if it holds a \
                 copy of this credential, remove it there (service \"assay\", account \
                 \"{account}\")"
            )
        );
        // File mode never looked at the keyring: nothing to warn about.
        let (_dir, file) = store(StoreMode::File, keyring);
        assert_eq!(file.delete("a").unwrap().warning(), None);
    }

    #[test]
    fn auto_mode_falls_back_to_the_file_when_the_keyring_is_unavailable() {
        let keyring = Arc::new(FakeKeyring::default());
        keyring.broken.store(true, Ordering::Relaxed);
        let (_dir, store) = store(StoreMode::Auto, keyring.clone());
        assert_eq!(store.save("a", &oauth("1")).unwrap(), Location::File);
        assert_eq!(store.load("a").unwrap(), Some((oauth("1"), Location::File)));
        // Once failed, the keyring is not asked (and waited for) again in this process.
        assert_eq!(keyring.calls.load(Ordering::Relaxed), 1);
        assert!(store.credentials_file().exists());
    }

    #[test]
    fn keyring_mode_fails_instead_of_writing_a_file() {
        let keyring = Arc::new(FakeKeyring::default());
        keyring.broken.store(true, Ordering::Relaxed);
        let (_dir, store) = store(StoreMode::Keyring, keyring);
        let err = store.save("a", &oauth("1")).unwrap_err();
        assert!(
            err.to_string().contains("ASSAY_CREDENTIAL_STORE=file"),
            "{err}"
        );
        assert!(!store.credentials_file().exists());
    }

    #[test]
    fn the_newer_copy_wins_when_keyring_and_file_disagree() {
        let keyring = Arc::new(FakeKeyring::default());
        let dir = tempfile::tempdir().unwrap();
        let config = ConfigDir::at(dir.path());
        // The keyring got the first tokens, then failed; the rotated ones went to the file.
        let first = CredentialStore::new(config.clone(), StoreMode::Auto, keyring.clone());
        first.save("a", &oauth("old")).unwrap();
        let file_only = CredentialStore::new(config.clone(), StoreMode::File, keyring.clone());
        file_only.save("a", &oauth("new")).unwrap();
        let later = CredentialStore::new(config, StoreMode::Auto, keyring);
        assert_eq!(
            later.load("a").unwrap(),
            Some((oauth("new"), Location::File))
        );
        // Saving again puts the newest in the keyring and clears the file copy.
        later.save("a", &oauth("newer")).unwrap();
        assert_eq!(
            later.load("a").unwrap(),
            Some((oauth("newer"), Location::Keyring))
        );
        assert!(!later.credentials_file().exists());
    }

    #[test]
    fn store_modes_parse() {
        assert_eq!(StoreMode::parse(None).unwrap(), StoreMode::Auto);
        assert_eq!(StoreMode::parse(Some("file")).unwrap(), StoreMode::File);
        assert_eq!(
            StoreMode::parse(Some("keyring")).unwrap(),
            StoreMode::Keyring
        );
        assert!(StoreMode::parse(Some("vault")).is_err());
    }

    #[test]
    fn the_lock_is_exclusive_across_open_files() {
        let (_dir, store) = store(StoreMode::File, Arc::new(FakeKeyring::default()));
        let held = store.lock().unwrap();
        // A second open file description (as another process would have) cannot take it.
        let other = File::options()
            .read(true)
            .write(true)
            .open(store.dir().lock_file())
            .unwrap();
        assert!(matches!(
            other.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ));
        drop(held);
        other.try_lock().unwrap();
        drop(other);
        drop(store.lock().unwrap());
    }

    #[test]
    fn the_token_store_keeps_the_rest_of_the_credential() {
        let store = {
            let (dir, store) = store(StoreMode::File, Arc::new(FakeKeyring::default()));
            (dir, Arc::new(store))
        };
        let (_dir, store) = store;
        let endpoint = Some("http://127.0.0.1:7357/oauth/token".to_owned());
        let tokens_of = ContextTokenStore::new(store.clone(), "a", endpoint);
        assert_eq!(tokens_of.load().unwrap(), None);
        store.save("a", &oauth("1")).unwrap();
        assert_eq!(tokens_of.load().unwrap(), Some(tokens("1")));
        {
            let _lock = tokens_of.lock().unwrap();
            tokens_of.save(&tokens("2")).unwrap();
        }
        let Some((
            StoredCredential::OAuth {
                tokens: t,
                token_endpoint,
                client_id,
                ..
            },
            _,
        )) = store.load("a").unwrap()
        else {
            panic!("expected OAuth");
        };
        assert_eq!(t, tokens("2"));
        assert_eq!(client_id, "assay-cli");
        assert_eq!(
            token_endpoint.as_deref(),
            Some("http://127.0.0.1:7357/oauth/token")
        );
        // After a logout, a refresh in a still-running process does not resurrect it.
        store.delete("a").unwrap();
        assert!(matches!(
            tokens_of.save(&tokens("3")),
            Err(assay_core::Error::Unauthenticated(_))
        ));
        assert_eq!(store.load("a").unwrap(), None);
    }

    #[test]
    fn the_token_store_ignores_a_login_to_another_server() {
        let (_dir, store) = store(StoreMode::File, Arc::new(FakeKeyring::default()));
        let store = Arc::new(store);
        store.save("a", &oauth("1")).unwrap();
        let tokens_of = ContextTokenStore::new(
            store.clone(),
            "a",
            Some("http://127.0.0.1:7357/oauth/token".to_owned()),
        );
        assert_eq!(tokens_of.load().unwrap(), Some(tokens("1")));
        // The context is deleted and signed in to another server meanwhile.
        let other = StoredCredential::OAuth {
            tokens: tokens("other"),
            client_id: "assay-cli".into(),
            token_endpoint: Some("https://elsewhere.example.com/oauth/token".into()),
            revocation_endpoint: None,
        };
        store.save("a", &other).unwrap();
        assert_eq!(tokens_of.load().unwrap(), None, "not this session's login");
        assert!(matches!(
            tokens_of.save(&tokens("2")),
            Err(assay_core::Error::Unauthenticated(_))
        ));
        assert_eq!(store.load("a").unwrap().unwrap().0, other, "left alone");
    }
}
