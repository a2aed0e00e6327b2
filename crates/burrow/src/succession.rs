//! Make-before-break at the edge: while a rotated-out tunnel drains, requests for the new
//! tunnel go to the old one until the device's agent has connected to the new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Clone, Default)]
pub struct Succession(Arc<Mutex<HashMap<String, String>>>);

impl Succession {
    /// `new` replaces `old`; `old` stays usable until [`Succession::end`].
    pub fn begin(&self, new: &str, old: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(new.to_string(), old.to_string());
    }

    pub fn end(&self, new: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(new);
    }

    pub fn predecessor(&self, new: &str) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(new)
            .cloned()
    }
}
