//! [`StreamIds`]: how a source client numbers its streams and connections (spec section 6).
//!
//! Stream ids count separately for each serviceId, start at 1, and wrap at `i32::MAX` back to 1:
//! 0 means "unset" on the wire, and negative ids would cost 10 bytes per message and are never
//! produced by localproxy. Connection ids restart at 1 with each new stream, because a connection
//! is named by serviceId + streamId + connectionId and the spec's first connection of a stream
//! is 1; they wrap at `u32::MAX` back to 1 (0 means "absent").

use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counters {
    /// The last stream id handed out; 0 before the first.
    stream: i32,
    /// The last connection id handed out on that stream; 0 before the first.
    connection: u32,
}

/// Per-service stream and connection id allocation for a source client.
#[derive(Debug, Clone, Default)]
pub struct StreamIds {
    services: HashMap<String, Counters>,
}

impl StreamIds {
    pub fn new() -> Self {
        Self::default()
    }

    /// Allocates the id of a new stream of `service` ("" for V1 style) and restarts its
    /// connection ids, so that the next [`StreamIds::next_connection`] returns 1.
    pub fn next_stream(&mut self, service: &str) -> i32 {
        let counters = self.counters(service);
        counters.stream = match counters.stream {
            i32::MAX => 1,
            n => n + 1,
        };
        counters.connection = 0;
        counters.stream
    }

    /// Allocates the id of a new connection on the current stream of `service`: 1 for the
    /// STREAM_START, then 2, 3, ... for each CONNECTION_START.
    pub fn next_connection(&mut self, service: &str) -> u32 {
        let counters = self.counters(service);
        counters.connection = match counters.connection {
            u32::MAX => 1,
            n => n + 1,
        };
        counters.connection
    }

    /// The last stream id allocated for `service`, if any.
    pub fn current_stream(&self, service: &str) -> Option<i32> {
        self.services
            .get(service)
            .map(|c| c.stream)
            .filter(|&id| id != 0)
    }

    fn counters(&mut self, service: &str) -> &mut Counters {
        self.services.entry(service.to_owned()).or_insert(Counters {
            stream: 0,
            connection: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_count_per_service_from_one() {
        let mut ids = StreamIds::new();
        assert_eq!(ids.current_stream("SSH1"), None);
        assert_eq!(ids.next_stream("SSH1"), 1);
        assert_eq!(ids.next_stream("SSH1"), 2);
        assert_eq!(ids.next_stream("RDP"), 1);
        assert_eq!(ids.next_stream(""), 1);
        assert_eq!(ids.current_stream("SSH1"), Some(2));
    }

    #[test]
    fn stream_ids_wrap_to_one_never_zero() {
        let mut ids = StreamIds::new();
        ids.next_stream("SSH1");
        ids.counters("SSH1").stream = i32::MAX - 1;
        assert_eq!(ids.next_stream("SSH1"), i32::MAX);
        assert_eq!(ids.next_stream("SSH1"), 1);
    }

    #[test]
    fn connection_ids_restart_with_each_stream() {
        let mut ids = StreamIds::new();
        ids.next_stream("SSH1");
        assert_eq!(ids.next_connection("SSH1"), 1);
        assert_eq!(ids.next_connection("SSH1"), 2);
        assert_eq!(ids.next_connection("RDP"), 1);
        ids.next_stream("SSH1");
        assert_eq!(ids.next_connection("SSH1"), 1);
    }

    #[test]
    fn connection_ids_wrap_to_one_never_zero() {
        let mut ids = StreamIds::new();
        ids.counters("SSH1").connection = u32::MAX - 1;
        assert_eq!(ids.next_connection("SSH1"), u32::MAX);
        assert_eq!(ids.next_connection("SSH1"), 1);
    }
}
