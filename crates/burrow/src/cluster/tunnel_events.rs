//! Tunnel events across nodes (PostgreSQL `NOTIFY` on `burrow_tunnel_events`): a tunnel
//! closed through one node disconnects its peers on every node, and each step of a
//! rotation's hand-over reaches every node's router, so that make-before-break and the drain
//! hold whichever node the device is connected to.
//!
//! Payload: `<origin node> closed <tunnel>` | `<origin node> begin <new> <old>` |
//! `<origin node> end <new> <old>`. A node skips its own.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burrow_broker::Broker;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::succession::{Step, Succession};

pub const CHANNEL: &str = "burrow_tunnel_events";
/// Events waiting to be published; past this a burst is dropped with a warning (closed
/// tunnels still refuse new handshakes through the store; a lost step costs a 503 window).
const QUEUE: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Closed(String),
    Step(Step),
}

fn encode(origin: &str, e: &Event) -> String {
    match e {
        Event::Closed(t) => format!("{origin} closed {t}"),
        Event::Step(Step::Begin { new, old }) => format!("{origin} begin {new} {old}"),
        Event::Step(Step::End { new, old }) => format!("{origin} end {new} {old}"),
    }
}

fn decode(payload: &str) -> Option<(&str, Event)> {
    let w: Vec<&str> = payload.split(' ').collect();
    match w.as_slice() {
        [origin, "closed", t] => Some((origin, Event::Closed(t.to_string()))),
        [origin, "begin", new, old] => Some((
            origin,
            Event::Step(Step::Begin {
                new: new.to_string(),
                old: old.to_string(),
            }),
        )),
        [origin, "end", new, old] => Some((
            origin,
            Event::Step(Step::End {
                new: new.to_string(),
                old: old.to_string(),
            }),
        )),
        _ => None,
    }
}

/// Starts publishing this node's closes and hand-over steps, and applying everyone else's.
pub async fn start(
    database_url: &str,
    node: &str,
    broker: &Arc<Broker>,
    succession: &Succession,
) -> anyhow::Result<[JoinHandle<()>; 2]> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect(database_url)
        .await
        .context("connecting the tunnel event publisher")?;
    let mut listener = PgListener::connect(database_url)
        .await
        .context("connecting the tunnel event listener")?;
    listener
        .listen(CHANNEL)
        .await
        .context("LISTEN burrow_tunnel_events")?;

    let (tx, mut rx) = mpsc::channel::<Event>(QUEUE);
    let send = move |e: Event| {
        if tx.try_send(e).is_err() {
            tracing::warn!("tunnel event queue full; an event is not told to other nodes");
        }
    };
    let closed = send.clone();
    broker.on_closed(Arc::new(move |t| closed(Event::Closed(t.to_string()))));
    succession.publish_to(Arc::new(move |step| send(Event::Step(step.clone()))));

    let origin = node.to_string();
    let publish = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            let sent = sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(encode(&origin, &e))
                .execute(&pool)
                .await;
            if let Err(err) = sent {
                tracing::warn!(error = %err, "could not publish a tunnel event");
            }
        }
    });
    let (me, broker, succession) = (node.to_string(), broker.clone(), succession.clone());
    let deliver = tokio::spawn(async move {
        loop {
            match listener.recv().await {
                Ok(n) => match decode(n.payload()) {
                    Some((origin, _)) if origin == me => {}
                    Some((_, Event::Closed(t))) => broker.disconnect_local(&t),
                    Some((_, Event::Step(step))) => succession.apply(&step),
                    None => tracing::warn!(payload = n.payload(), "bad tunnel event"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "tunnel event listener failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Ok([publish, deliver])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip() {
        let events = [
            Event::Closed("t1".into()),
            Event::Step(Step::Begin {
                new: "n".into(),
                old: "o".into(),
            }),
            Event::Step(Step::End {
                new: "n".into(),
                old: "o".into(),
            }),
        ];
        for e in events {
            let text = encode("node-1", &e);
            assert_eq!(decode(&text), Some(("node-1", e)));
        }
        assert_eq!(decode("node-1 closed"), None);
        assert_eq!(decode("node-1 rotate a b"), None);
    }
}
