//! In-process notification of new log lines, keyed by execution. Followers in the same
//! process wake as soon as lines are flushed; others poll the file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(crate) struct LiveLogs {
    writers: Mutex<HashMap<Uuid, Arc<watch::Sender<u64>>>>,
}

impl LiveLogs {
    /// A channel for a log being written; the value is the last flushed line number.
    pub(crate) fn register(&self, id: Uuid) -> Arc<watch::Sender<u64>> {
        let sender = Arc::new(watch::channel(0).0);
        if let Ok(mut map) = self.writers.lock() {
            map.insert(id, Arc::clone(&sender));
        }
        sender
    }

    pub(crate) fn subscribe(&self, id: Uuid) -> Option<watch::Receiver<u64>> {
        self.writers.lock().ok()?.get(&id).map(|s| s.subscribe())
    }

    /// The log is finished: wake every follower one last time and forget the channel.
    pub(crate) fn finish(&self, id: Uuid) {
        let sender = self.writers.lock().ok().and_then(|mut map| map.remove(&id));
        if let Some(sender) = sender {
            sender.send_modify(|_| {});
        }
    }
}
