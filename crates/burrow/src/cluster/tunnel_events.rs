//! Tunnel events across nodes (PostgreSQL `NOTIFY` on `burrow_tunnel_events`): a tunnel
//! closed through one node disconnects its peers on every node, and each step of a
//! rotation's hand-over reaches every node's router, so that make-before-break and the drain
//! hold whichever node the device is connected to.
//!
//! Payload: `<origin node> closed <tunnel>` | `<origin node> begin <new> <old>` |
//! `<origin node> end <new> <old>`. A node skips its own.

use std::sync::Arc;

use burrow_broker::Broker;
use tokio::task::JoinHandle;

use super::notify_relay;
use crate::succession::{Step, Succession};

pub const CHANNEL: &str = "burrow_tunnel_events";
// A dropped event (full publish queue): closed tunnels still refuse new handshakes through
// the store; a lost hand-over step costs a 503 window.

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
    let (me, b, s) = (node.to_string(), broker.clone(), succession.clone());
    let (publisher, tasks) =
        notify_relay::start(database_url, CHANNEL, move |payload| {
            match decode(payload) {
                Some((origin, _)) if origin == me => {}
                Some((_, Event::Closed(t))) => b.disconnect_local(&t),
                Some((_, Event::Step(step))) => s.apply(&step),
                None => tracing::warn!(payload, "bad tunnel event"),
            }
        })
        .await?;
    let origin = node.to_string();
    let send = move |e: Event| publisher.publish(encode(&origin, &e));
    let closed = send.clone();
    broker.on_closed(Arc::new(move |t| closed(Event::Closed(t.to_string()))));
    succession.publish_to(Arc::new(move |step| send(Event::Step(step.clone()))));
    Ok(tasks)
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
