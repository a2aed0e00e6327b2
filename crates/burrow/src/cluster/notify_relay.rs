//! One PostgreSQL `NOTIFY` channel between nodes: what this node queues is published (a
//! bounded queue: past it, a burst is dropped with a warning rather than held without
//! bound), and every payload on the channel — this node's own included — is handed to
//! `deliver`. Config changes and tunnel events each run one.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Payloads waiting to be published.
const QUEUE: usize = 1024;

/// Queues payloads for the channel; never waits.
#[derive(Clone)]
pub struct Publisher {
    channel: &'static str,
    tx: mpsc::Sender<String>,
}

impl Publisher {
    pub fn publish(&self, payload: String) {
        if self.tx.try_send(payload).is_err() {
            tracing::warn!(
                channel = self.channel,
                "publish queue full; a notification is dropped"
            );
        }
    }
}

/// Connects, `LISTEN`s on `channel`, and starts the publishing and delivering tasks (they
/// end with the returned handles).
pub async fn start(
    database_url: &str,
    channel: &'static str,
    deliver: impl Fn(&str) + Send + 'static,
) -> anyhow::Result<(Publisher, [JoinHandle<()>; 2])> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await
        .with_context(|| format!("connecting the {channel} publisher"))?;
    let mut listener = PgListener::connect(database_url)
        .await
        .with_context(|| format!("connecting the {channel} listener"))?;
    listener
        .listen(channel)
        .await
        .with_context(|| format!("LISTEN {channel}"))?;
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    let publish = tokio::spawn(async move {
        while let Some(payload) = rx.recv().await {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(channel)
                .bind(&payload)
                .execute(&pool)
                .await;
            if let Err(e) = sent {
                tracing::warn!(channel, error = %e, "could not publish a notification");
            }
        }
    });
    let deliver = tokio::spawn(async move {
        loop {
            // `recv` reconnects by itself after a lost connection.
            match listener.recv().await {
                Ok(n) => deliver(n.payload()),
                Err(e) => {
                    tracing::warn!(channel, error = %e, "listener failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok((Publisher { channel, tx }, [publish, deliver]))
}
