//! The access-token signing keys: loaded from the store at start (one is generated and
//! persisted on first start), held as a [`KeyRing`] of the current and previous key.
//!
//! Rotation is by [`SigningKeys::rotate`] only; a schedule (rotate every N days, retire
//! the previous key once no token it signed can still be live) is a later step. A key is
//! stored as PKCS#8; sealing it at rest is out of scope here (see `SigningKeyRecord`).

use assay_auth::jwt::{KeyRing, SigningKey};
use assay_core::oauth::SigningKeyRecord;
use assay_core::ports::{Clock, Store};
use assay_core::{Error, Result};
use std::sync::{Arc, RwLock};

/// The ring the authenticator validates with and the server publishes as its JWKS.
pub struct SigningKeys {
    ring: RwLock<Arc<KeyRing>>,
}

impl SigningKeys {
    /// The newest unretired key is current, the next one previous; with none, a new key
    /// is generated and stored.
    pub(crate) async fn load_or_create(store: &dyn Store, clock: &dyn Clock) -> Result<Self> {
        let now = crate::stamp::now(clock);
        let records = store.list_signing_keys(now).await?;
        let mut keys = records
            .iter()
            .filter(|r| r.retired_at.is_none())
            .map(|r| SigningKey::from_pkcs8_der(&r.private_pkcs8).map_err(internal));
        let ring = match (keys.next().transpose()?, keys.next().transpose()?) {
            (Some(current), previous) => KeyRing::new(current, previous),
            (None, _) => {
                let key = SigningKey::generate().map_err(internal)?;
                store.insert_signing_key(&record(&key, clock)).await?;
                KeyRing::new(key, None)
            }
        };
        Ok(Self {
            ring: RwLock::new(Arc::new(ring)),
        })
    }

    /// The ring as it is now.
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A new current key; the current one becomes previous (its tokens still validate)
    /// and the previous one is retired in the store.
    pub(crate) async fn rotate(&self, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
        let old = self.ring();
        let mut next = KeyRing::clone(&old);
        next.rotate().map_err(internal)?;
        store
            .insert_signing_key(&record(next.current(), clock))
            .await?;
        if let Some(retired) = old.previous() {
            store
                .retire_signing_key(retired.kid(), crate::stamp::now(clock))
                .await?;
        }
        let next = Arc::new(next);
        match self.ring.write() {
            Ok(mut ring) => *ring = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        Ok(())
    }
}

fn record(key: &SigningKey, clock: &dyn Clock) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: key.kid().to_owned(),
        private_pkcs8: key.to_pkcs8_der().to_vec(),
        created_at: crate::stamp::now(clock),
        retired_at: None,
    }
}

fn internal(e: assay_auth::jwt::KeyError) -> Error {
    Error::Internal(format!("signing key: {e}"))
}
