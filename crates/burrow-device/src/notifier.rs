//! Wakes a device's waiting long-polls when its tunnel configuration changes.
//!
//! One `watch` channel per device that has a poll waiting: a change wakes only that device's
//! polls (a broadcast of ids would wake every waiting device on each change). With several
//! nodes, [`ConfigNotifier::forward_to`] hands every change to the other nodes too (the
//! server uses PostgreSQL NOTIFY), which deliver it with [`ConfigNotifier::notify_local`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::watch;

/// Where a node sends its changes for the other nodes.
pub type Forward = Arc<dyn Fn(i64) + Send + Sync>;

#[derive(Clone, Default)]
pub struct ConfigNotifier {
    channels: Arc<Mutex<HashMap<i64, watch::Sender<u64>>>>,
    forward: Arc<OnceLock<Forward>>,
    /// Set when this node shuts down: polls answer 503 so that agents move to another
    /// device URL (see [`ConfigNotifier::drain`]).
    draining: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for ConfigNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigNotifier").finish_non_exhaustive()
    }
}

impl ConfigNotifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Call after any change that alters what a device's config endpoint answers: a tunnel
    /// of the device created, updated, enabled/disabled, deleted, rotated or closed, and the
    /// device revoked or re-enrolled.
    pub fn device_changed(&self, device_id: i64) {
        self.notify_local(device_id);
        if let Some(forward) = self.forward.get() {
            forward(device_id);
        }
    }

    /// Sends every later [`ConfigNotifier::device_changed`] to `forward` as well (set once).
    pub fn forward_to(&self, forward: Forward) {
        let _ = self.forward.set(forward);
    }

    /// Wakes this process's polls of `device_id` only (a change another node announced).
    pub fn notify_local(&self, device_id: i64) {
        let mut map = self.channels.lock().expect("notifier lock poisoned");
        if let Some(tx) = map.get(&device_id) {
            if tx.receiver_count() == 0 {
                // Nobody waits: forget it rather than keep one channel per device forever.
                map.remove(&device_id);
            } else {
                tx.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// This node is going away: every poll waiting here answers at once (503), and so does
    /// every later one, so that agents move to another device URL while their tunnels
    /// still work through this node.
    pub fn drain(&self) {
        self.draining
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let map = self.channels.lock().expect("notifier lock poisoned");
        for tx in map.values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A receiver that sees every `device_changed(device_id)` made after this call. Subscribe
    /// *before* reading the config, so that a change in between is not lost.
    pub fn subscribe(&self, device_id: i64) -> watch::Receiver<u64> {
        let mut map = self.channels.lock().expect("notifier lock poisoned");
        match map.get(&device_id) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                map.insert(device_id, tx);
                rx
            }
        }
    }

    /// How many polls of this device are subscribed now (tests, metrics).
    pub fn waiting(&self, device_id: i64) -> usize {
        let map = self.channels.lock().expect("notifier lock poisoned");
        map.get(&device_id).map_or(0, |tx| tx.receiver_count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_only_the_changed_device() {
        let n = ConfigNotifier::new();
        let mut a = n.subscribe(1);
        let b = n.subscribe(2);
        n.device_changed(1);
        assert!(a.has_changed().unwrap());
        assert!(!b.has_changed().unwrap());
        a.changed().await.unwrap();
        assert_eq!(n.waiting(1), 1);
        drop(a);
        drop(b);
        assert_eq!(n.waiting(1), 0);
        n.device_changed(1); // forgets the idle channel
        assert!(n.channels.lock().unwrap().get(&1).is_none());
    }

    #[tokio::test]
    async fn change_between_subscribe_and_wait_is_not_lost() {
        let n = ConfigNotifier::new();
        let mut rx = n.subscribe(7);
        n.device_changed(7);
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed())
            .await
            .expect("woken")
            .unwrap();
    }
}
