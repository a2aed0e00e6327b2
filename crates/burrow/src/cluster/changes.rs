//! Config changes across nodes: every `device_changed` of this node is published with
//! PostgreSQL `NOTIFY`, and every node `LISTEN`s and wakes its own waiting long-polls, so a
//! tunnel changed through any node reaches an agent polling any other node at once instead
//! of at its poll timeout. A node also hears its own notifications: a spurious wake-up only
//! rebuilds an unchanged config.

use burrow_device::ConfigNotifier;
use tokio::task::JoinHandle;

use super::notify_relay;

pub const CHANNEL: &str = "burrow_device_changed";

/// Starts publishing this node's changes and delivering everyone's. The tasks end with the
/// returned handles.
pub async fn start(
    database_url: &str,
    notifier: &ConfigNotifier,
) -> anyhow::Result<[JoinHandle<()>; 2]> {
    let local = notifier.clone();
    let (publisher, tasks) =
        notify_relay::start(database_url, CHANNEL, move |payload| {
            match payload.parse::<i64>() {
                Ok(device_id) => local.notify_local(device_id),
                Err(_) => tracing::warn!(payload, "bad change notification"),
            }
        })
        .await?;
    // A change dropped from a full queue reaches other nodes' polls at their timeout.
    notifier.forward_to(std::sync::Arc::new(move |device_id| {
        publisher.publish(device_id.to_string())
    }));
    Ok(tasks)
}
