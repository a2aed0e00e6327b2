//! Device presence: "online" means the device called its config endpoint recently.

use burrow_store::{Device, Timestamp};

/// A window that fits the agent's long-poll: a live agent calls at least every `max_wait`
/// (60 s) and right after each answer, so 90 s covers one poll plus network slack.
pub fn default_online_window() -> chrono::Duration {
    chrono::Duration::seconds(90)
}

/// Whether `device` was last seen within `window` before `now`.
pub fn is_online(device: &Device, now: Timestamp, window: chrono::Duration) -> bool {
    // A timestamp slightly ahead of `now` (clocks of several nodes) counts as online.
    device.last_seen_at.is_some_and(|seen| now - seen <= window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn online_within_window_only() {
        let now = Utc::now();
        let mut d = Device {
            id: 1,
            project_id: 1,
            dsn: "X".into(),
            name: "x".into(),
            created_at: now,
            last_seen_at: None,
            cert_serial: None,
            cert_not_after: None,
            revoked_at: None,
        };
        let w = default_online_window();
        assert!(!is_online(&d, now, w));
        d.last_seen_at = Some(now - chrono::Duration::seconds(30));
        assert!(is_online(&d, now, w));
        d.last_seen_at = Some(now - chrono::Duration::seconds(91));
        assert!(!is_online(&d, now, w));
    }
}
