//! Config changes across nodes: every `device_changed` of this node is published with
//! PostgreSQL `NOTIFY`, and every node `LISTEN`s and wakes its own waiting long-polls, so a
//! tunnel changed through any node reaches an agent polling any other node at once instead
//! of at its poll timeout. A node also hears its own notifications: a spurious wake-up only
//! rebuilds an unchanged config.

use std::time::Duration;

use anyhow::Context;
use burrow_device::ConfigNotifier;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub const CHANNEL: &str = "burrow_device_changed";
/// Changes waiting to be published; past this a burst is dropped (polls still see it at
/// their timeout) rather than queued without bound.
const QUEUE: usize = 1024;

/// Starts publishing this node's changes and delivering everyone's. The tasks end with the
/// returned handles.
pub async fn start(
    database_url: &str,
    notifier: &ConfigNotifier,
) -> anyhow::Result<[JoinHandle<()>; 2]> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await
        .context("connecting the change publisher")?;
    let mut listener = PgListener::connect(database_url)
        .await
        .context("connecting the change listener")?;
    listener
        .listen(CHANNEL)
        .await
        .context("LISTEN burrow_device_changed")?;

    let (tx, mut rx) = mpsc::channel::<i64>(QUEUE);
    notifier.forward_to(std::sync::Arc::new(move |device_id| {
        if tx.try_send(device_id).is_err() {
            tracing::warn!(
                device_id,
                "change queue full; other nodes see it at their poll timeout"
            );
        }
    }));
    let publish = tokio::spawn(async move {
        while let Some(device_id) = rx.recv().await {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(device_id.to_string())
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(device_id, error = %e, "could not publish a config change");
            }
        }
    });
    let local = notifier.clone();
    let deliver = tokio::spawn(async move {
        loop {
            // `recv` reconnects by itself after a lost connection.
            match listener.recv().await {
                Ok(n) => match n.payload().parse::<i64>() {
                    Ok(device_id) => local.notify_local(device_id),
                    Err(_) => tracing::warn!(payload = n.payload(), "bad change notification"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok([publish, deliver])
}
