//! The access-token signing keys: sealed at rest, held as a [`KeyRing`] of the current and
//! previous key, rotated on a schedule and reloaded from the store so every replica signs
//! and validates with the same ring.
//!
//! The store holds each private key sealed with the key-encryption key (KEK, see
//! `assay_auth::key_seal`), which never lives in the database. Keys written before sealing
//! existed are re-sealed when this process first meets them.
//!
//! Lifecycle of a key: current (signs) for `rotation`; then previous (validates, in the
//! JWKS) until every token it signed has expired, also on replicas that have not reloaded
//! yet — `access_token_ttl + reload_interval` after its successor was created; then
//! retired in the store. The newest unretired key is current, the next one previous.

use assay_auth::jwt::{KeyRing, SigningKey};
use assay_auth::key_seal::{self, KeyEncryptionKey};
use assay_core::oauth::SigningKeyRecord;
use assay_core::ports::{Clock, Store};
use assay_core::{Error, Result, Timestamp};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// When keys rotate and retire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Schedule {
    /// A current key older than this is replaced.
    pub rotation: Duration,
    /// How long a previous key keeps validating after its successor was created.
    pub previous_grace: Duration,
}

/// The ring the authenticator validates with and the server publishes as its JWKS.
pub struct SigningKeys {
    ring: RwLock<Arc<KeyRing>>,
    kek: KeyEncryptionKey,
    schedule: Schedule,
    /// One refresh or rotation at a time in this process.
    updating: tokio::sync::Mutex<()>,
}

impl SigningKeys {
    /// Loads the ring (re-sealing plain legacy records, rotating or retiring what is due);
    /// with no key, a new one is generated and stored. A key the KEK cannot open stops
    /// the start with an error that names the KEK setting.
    pub(crate) async fn load_or_create(
        store: &dyn Store,
        clock: &dyn Clock,
        kek: KeyEncryptionKey,
        schedule: Schedule,
    ) -> Result<Self> {
        seal_legacy_records(store, &kek).await?;
        let ring = build_ring(store, &kek, &current_records(store, clock).await?, None).await?;
        let keys = Self {
            ring: RwLock::new(Arc::new(ring)),
            kek,
            schedule,
            updating: tokio::sync::Mutex::new(()),
        };
        keys.refresh(store, clock).await?;
        Ok(keys)
    }

    /// The ring as it is now.
    pub fn ring(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A new current key now; the current one becomes previous (its tokens still
    /// validate) and any older key is retired in the store.
    pub(crate) async fn rotate(&self, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
        let _guard = self.updating.lock().await;
        let mut records = current_records(store, clock).await?;
        records.insert(0, self.insert_new_key(store, clock).await?);
        self.settle(store, clock, records).await
    }

    /// One scheduled pass: reload the keys from the store (a rotation made by another
    /// replica shows here), rotate the current key when it is due, retire the previous
    /// one once nothing it signed can still be live.
    pub(crate) async fn refresh(&self, store: &dyn Store, clock: &dyn Clock) -> Result<()> {
        let _guard = self.updating.lock().await;
        let now = crate::stamp::now(clock);
        let mut records = current_records(store, clock).await?;
        let due = match records.first() {
            None => true,
            Some(current) => past(current.created_at, self.schedule.rotation, now),
        };
        if due {
            records.insert(0, self.insert_new_key(store, clock).await?);
        }
        self.settle(store, clock, records).await
    }

    /// Retires what is no longer needed, then installs the ring of the newest two keys.
    async fn settle(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
        mut records: Vec<SigningKeyRecord>,
    ) -> Result<()> {
        let now = crate::stamp::now(clock);
        let keep = match records.first() {
            Some(current) if past(current.created_at, self.schedule.previous_grace, now) => 1,
            _ => 2,
        };
        for old in records.iter().skip(keep) {
            store.retire_signing_key(&old.kid, now).await?;
        }
        records.truncate(keep);
        let ring = build_ring(store, &self.kek, &records, Some(&self.ring())).await?;
        let ring = Arc::new(ring);
        match self.ring.write() {
            Ok(mut slot) => *slot = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    async fn insert_new_key(
        &self,
        store: &dyn Store,
        clock: &dyn Clock,
    ) -> Result<SigningKeyRecord> {
        let key = SigningKey::generate().map_err(internal)?;
        let record = SigningKeyRecord {
            kid: key.kid().to_owned(),
            private_pkcs8: self
                .kek
                .seal(key.kid(), &key.to_pkcs8_der())
                .map_err(|e| Error::Internal(format!("signing key: {e}")))?,
            created_at: crate::stamp::now(clock),
            retired_at: None,
        };
        store.insert_signing_key(&record).await?;
        Ok(record)
    }
}

/// The background task: [`SigningKeys::refresh`] every `every`. A failure (database
/// away, a key sealed with another KEK) is logged; the ring in use stays.
pub(crate) async fn run(
    keys: Arc<SigningKeys>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {
                if let Err(e) = keys.refresh(store.as_ref(), clock.as_ref()).await {
                    tracing::warn!(error = %e, "could not refresh the signing keys; keeping the current ones");
                }
            }
        }
    }
}

/// Seals every key, retired ones too, that was stored before sealing existed.
async fn seal_legacy_records(store: &dyn Store, kek: &KeyEncryptionKey) -> Result<()> {
    // Retired after the epoch: every key.
    for record in store.list_signing_keys(Timestamp::UNIX_EPOCH).await? {
        if !key_seal::is_sealed(&record.private_pkcs8) {
            seal_legacy(store, kek, &record).await?;
        }
    }
    Ok(())
}

async fn seal_legacy(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    record: &SigningKeyRecord,
) -> Result<SigningKey> {
    let key = SigningKey::from_pkcs8_der(&record.private_pkcs8).map_err(internal)?;
    let sealed = kek
        .seal(&record.kid, &record.private_pkcs8)
        .map_err(|e| Error::Internal(format!("signing key: {e}")))?;
    store
        .update_signing_key_private(&record.kid, &sealed)
        .await?;
    tracing::info!(kid = %record.kid, "sealed a signing key stored before sealing existed");
    Ok(key)
}

/// Unretired keys, newest first.
async fn current_records(store: &dyn Store, clock: &dyn Clock) -> Result<Vec<SigningKeyRecord>> {
    let now = crate::stamp::now(clock);
    let mut records = store.list_signing_keys(now).await?;
    records.retain(|r| r.retired_at.is_none());
    Ok(records)
}

/// The ring of `records[0]` (current) and `records[1]` (previous). Keys already in
/// `known` are reused, the rest are opened with the KEK.
async fn build_ring(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    records: &[SigningKeyRecord],
    known: Option<&KeyRing>,
) -> Result<KeyRing> {
    let mut keys = Vec::with_capacity(2);
    for record in records.iter().take(2) {
        let key = match known.and_then(|ring| ring.find(&record.kid)) {
            Some(key) => key.clone(),
            None => open(store, kek, record).await?,
        };
        keys.push(key);
    }
    let mut keys = keys.into_iter();
    match keys.next() {
        Some(current) => Ok(KeyRing::new(current, keys.next())),
        // Only before the first key was created (load_or_create refreshes right after).
        None => KeyRing::generate().map_err(internal),
    }
}

/// The record's key; a plain legacy record is sealed in the store on the way.
async fn open(
    store: &dyn Store,
    kek: &KeyEncryptionKey,
    record: &SigningKeyRecord,
) -> Result<SigningKey> {
    if !key_seal::is_sealed(&record.private_pkcs8) {
        // Written by a replica that predates sealing (a rolling upgrade).
        return seal_legacy(store, kek, record).await;
    }
    let pkcs8 = kek.open(&record.kid, &record.private_pkcs8).map_err(|e| {
        Error::Internal(format!(
            "signing key {kid}: {e}. Start the server with the key-encryption key it was \
             sealed with (--key-encryption-key-file or ASSAY_KEY_ENCRYPTION_KEY_FILE; by \
             default <data-dir>/signing-kek)",
            kid = record.kid
        ))
    })?;
    let key = SigningKey::from_pkcs8_der(&pkcs8).map_err(internal)?;
    if key.kid() != record.kid {
        return Err(Error::Internal(format!(
            "signing key {}: the stored key does not match its key id",
            record.kid
        )));
    }
    Ok(key)
}

/// Whether `since + span` is at or before `now` (never, when that overflows).
fn past(since: Timestamp, span: Duration, now: Timestamp) -> bool {
    time::Duration::try_from(span)
        .ok()
        .and_then(|span| since.checked_add(span))
        .is_some_and(|due| due <= now)
}

fn internal(e: assay_auth::jwt::KeyError) -> Error {
    Error::Internal(format!("signing key: {e}"))
}
