//! burrow's credit-based flow control for [`crate::Subprotocol::Burrow1`], sans-IO.
//!
//! Why: the AWS protocol multiplexes many TCP connections over one WebSocket with no flow control
//! of its own, so a receiver whose local socket is slow must either buffer without limit or stop
//! reading the WebSocket, which stalls every other connection of the tunnel (head-of-line
//! blocking). With credit, each connection may have at most its window of bytes in flight; a slow
//! reader only stalls its own connection.
//!
//! The scheme, per connection and per direction: the sender starts with [`WINDOW_INITIAL`] bytes
//! of credit and spends it on DATA payloads; the receiver hands credit back in WINDOW_UPDATE
//! messages as its application consumes bytes, batched to one update per half window.

use crate::validate::ProtocolError;
use crate::WINDOW_INITIAL;

/// The sending side of one connection: how many payload bytes may still be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    available: u32,
}

impl Default for SendWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl SendWindow {
    /// A window of [`WINDOW_INITIAL`] bytes.
    pub fn new() -> Self {
        Self::with_initial(WINDOW_INITIAL)
    }

    pub fn with_initial(initial: u32) -> Self {
        SendWindow { available: initial }
    }

    /// Credit left, in bytes.
    pub fn available(&self) -> u32 {
        self.available
    }

    /// Takes credit for up to `n` bytes and returns how many may be sent now (possibly 0).
    /// The caller sends exactly that many bytes and keeps the rest for later.
    pub fn consume(&mut self, n: usize) -> usize {
        let granted = self.available.min(u32::try_from(n).unwrap_or(u32::MAX));
        self.available -= granted;
        granted as usize
    }

    /// Adds the credit of a WINDOW_UPDATE. Fails if the window would overflow a u32, which an
    /// honest receiver cannot cause (it only returns credit that was spent).
    pub fn on_window_update(&mut self, credit: u32) -> Result<(), ProtocolError> {
        self.available = self
            .available
            .checked_add(credit)
            .ok_or(ProtocolError::WindowOverflow)?;
        Ok(())
    }

    /// No credit left: stop reading the local socket until a WINDOW_UPDATE arrives.
    pub fn is_blocked(&self) -> bool {
        self.available == 0
    }
}

/// The receiving side of one connection: polices the peer's sending and produces credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecvWindow {
    initial: u32,
    /// Bytes the peer may still send before it exceeds its credit.
    remaining: u32,
    /// Bytes received but not yet consumed by the application.
    unconsumed: u32,
    /// Bytes consumed since the last WINDOW_UPDATE.
    pending_credit: u32,
}

impl Default for RecvWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvWindow {
    /// A window of [`WINDOW_INITIAL`] bytes.
    pub fn new() -> Self {
        Self::with_initial(WINDOW_INITIAL)
    }

    pub fn with_initial(initial: u32) -> Self {
        RecvWindow {
            initial,
            remaining: initial,
            unconsumed: 0,
            pending_credit: 0,
        }
    }

    /// Bytes the peer may still send.
    pub fn remaining(&self) -> u32 {
        self.remaining
    }

    /// Bytes received and not yet consumed.
    pub fn unconsumed(&self) -> u32 {
        self.unconsumed
    }

    /// Accounts for a received DATA payload of `n` bytes. Sending more than the credit given is
    /// a protocol violation: the peer is disconnected rather than buffered without limit.
    pub fn on_data(&mut self, n: usize) -> Result<(), ProtocolError> {
        let n = u32::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining)
            .ok_or(ProtocolError::WindowExceeded)?;
        self.remaining -= n;
        self.unconsumed += n;
        Ok(())
    }

    /// Accounts for `n` bytes handed to the application (written to the local socket). Returns
    /// the credit to send back in a WINDOW_UPDATE, once at least half a window has been consumed:
    /// batching keeps updates to a few per window instead of one per DATA message.
    pub fn on_consumed(&mut self, n: usize) -> Option<u32> {
        let n = self.unconsumed.min(u32::try_from(n).unwrap_or(u32::MAX));
        self.unconsumed -= n;
        self.pending_credit += n;
        if self.pending_credit == 0 || self.pending_credit < (self.initial / 2).max(1) {
            return None;
        }
        let credit = std::mem::take(&mut self.pending_credit);
        self.remaining += credit;
        Some(credit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_PAYLOAD;

    #[test]
    fn send_window_grants_at_most_the_credit() {
        let mut w = SendWindow::with_initial(100);
        assert_eq!(w.consume(60), 60);
        assert_eq!(w.consume(60), 40);
        assert!(w.is_blocked());
        assert_eq!(w.consume(1), 0);
        w.on_window_update(10).unwrap();
        assert!(!w.is_blocked());
        assert_eq!(w.available(), 10);
        assert_eq!(
            w.on_window_update(u32::MAX),
            Err(ProtocolError::WindowOverflow)
        );
    }

    #[test]
    fn recv_window_rejects_a_peer_that_exceeds_it() {
        let mut w = RecvWindow::with_initial(100);
        w.on_data(100).unwrap();
        assert_eq!(w.on_data(1), Err(ProtocolError::WindowExceeded));
        assert_eq!(w.on_data(usize::MAX), Err(ProtocolError::WindowExceeded));
    }

    #[test]
    fn credit_is_batched_by_half_windows() {
        let mut w = RecvWindow::new();
        let half = (WINDOW_INITIAL / 2) as usize;
        // Consume full DATA payloads up to just under half a window: no update yet.
        let mut consumed = 0;
        while consumed + MAX_PAYLOAD < half {
            w.on_data(MAX_PAYLOAD).unwrap();
            assert_eq!(w.on_consumed(MAX_PAYLOAD), None, "under half a window");
            consumed += MAX_PAYLOAD;
        }
        // The payload that crosses half a window returns all the credit consumed so far.
        w.on_data(MAX_PAYLOAD).unwrap();
        let credit = w.on_consumed(MAX_PAYLOAD).expect("past half a window");
        assert!(credit as usize >= half);
        assert_eq!(credit as usize, consumed + MAX_PAYLOAD);
        assert_eq!(w.remaining(), WINDOW_INITIAL);
        assert_eq!(w.unconsumed(), 0);
    }

    #[test]
    fn consuming_more_than_received_is_clamped() {
        let mut w = RecvWindow::with_initial(10);
        w.on_data(4).unwrap();
        assert_eq!(w.on_consumed(100), None);
        assert_eq!(w.on_consumed(100), None, "nothing left to consume");
        w.on_data(6).unwrap();
        assert_eq!(w.on_consumed(6), Some(10));
    }

    /// A sender and a receiver exchanging a large transfer never deadlock and never exceed the
    /// window, whatever the consumer's pace.
    #[test]
    fn sender_and_receiver_agree_over_a_long_transfer() {
        let mut tx = SendWindow::new();
        let mut rx = RecvWindow::new();
        let mut to_send = 10 * WINDOW_INITIAL as usize + 12_345;
        let mut in_flight = std::collections::VecDeque::new();
        let mut steps = 0;
        while to_send > 0 || !in_flight.is_empty() {
            steps += 1;
            assert!(steps < 100_000, "transfer stalled");
            let n = tx.consume(to_send.min(MAX_PAYLOAD));
            if n > 0 {
                to_send -= n;
                in_flight.push_back(n);
            }
            // The receiver drains one message per step, at a slower pace than it arrives.
            if steps % 2 == 0 || tx.is_blocked() || to_send == 0 {
                if let Some(n) = in_flight.pop_front() {
                    rx.on_data(n).unwrap();
                    if let Some(credit) = rx.on_consumed(n) {
                        tx.on_window_update(credit).unwrap();
                    }
                }
            }
            assert!(tx.available() <= WINDOW_INITIAL);
        }
    }
}
