//! The tunnel wire protocol of burrow: the AWS IoT Secure Tunneling data plane (V1, V2, V3) plus
//! burrow's own flow-control extension (`burrow.tunnel-1.0`).
//!
//! This crate has no sockets, no async runtime and no clock, in the style of `quinn-proto`: callers
//! push bytes in and get messages, verdicts and credit out. Why: the broker, the agent and the
//! `burrow connect` client all speak the same protocol over different I/O stacks, and a pure crate
//! can be tested exhaustively (property tests, fuzzing) without spinning up a network.
//!
//! Modules, one responsibility each:
//! - [`batch`]: [`Batch`], several encoded frames gathered into one WebSocket message.
//! - [`message`]: the protobuf `Message` (hand-written prost derive, no protoc) and its constructors.
//! - [`codec`]: the 2-byte length-prefixed framing and a bounded, zero-copy frame reassembler.
//! - [`validate`]: the stateless rules of spec section 6 and [`ProtocolError`].
//! - [`session`]: [`PeerState`], the broker-side state machine for one connected peer.
//! - [`flow`]: burrow's credit-based flow control ([`SendWindow`], [`RecvWindow`]).
//! - [`ids`]: [`StreamIds`], stream/connection id allocation for clients.
//! - [`handshake`]: [`Role`] and [`Subprotocol`], the two things fixed at WebSocket upgrade time.
//!
//! The protocol itself is specified in `shared/docs/tunnel-protocol.md`; burrow's choices on top of
//! it are in `docs/protocol.md`.

pub mod batch;
pub mod codec;
pub mod flow;
pub mod handshake;
pub mod ids;
pub mod message;
pub mod session;
pub mod validate;

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;

pub use batch::Batch;
pub use codec::{decode_message, decode_message_bytes, encode, Frame, FrameDecoder, FrameError};
pub use flow::{RecvWindow, SendWindow};
pub use handshake::{Role, Subprotocol};
pub use ids::StreamIds;
pub use message::{Message, MessageType};
pub use session::{PeerState, Verdict};
pub use validate::{check, Checked, ProtocolError};

/// Largest DATA payload: localproxy rejects more, and so does AWS (63 KiB).
pub const MAX_PAYLOAD: usize = 64_512;

/// Largest encoded protobuf body of one tunnel frame: the cap of its u16 length prefix.
pub const MAX_MESSAGE: usize = 65_535;

/// Largest WebSocket frame payload that AWS sends or accepts; brokers re-chunk up to this size.
pub const MAX_WS_FRAME: usize = 131_076;

/// Initial flow-control window of one connection under [`Subprotocol::Burrow1`], in bytes.
///
/// Sixteen maximum-size DATA frames: enough to keep a fast link busy for one round trip
/// (in `scripts/bench`, 1 MiB moved bulk transfers 40 % faster than 256 KiB), while a stalled
/// reader pins at most this much of the receiver's memory per connection.
pub const WINDOW_INITIAL: u32 = 1024 * 1024;

/// Most connections the broker tracks on one stream of one peer before it disconnects the peer.
///
/// Why a cap at all: connection ids are chosen by the peer, so without one a hostile peer could
/// make the broker's per-peer state grow without bound.
pub const MAX_CONNECTIONS_PER_STREAM: usize = 1024;

// Two maximal tunnel frames fit in one maximal WebSocket frame, so a broker that re-chunks never
// has to split a frame it could have sent whole.
const _: () = assert!(2 * (MAX_MESSAGE + 2) <= MAX_WS_FRAME);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_consistent() {
        // A maximal DATA frame, with room for the other fields, must fit the u16 prefix.
        let msg = Message::data(i32::MIN, "x".repeat(64), u32::MAX, vec![0u8; MAX_PAYLOAD]);
        let mut buf = bytes::BytesMut::new();
        encode(&msg, &mut buf).expect("a maximal DATA message fits one frame");
        assert!(buf.len() <= MAX_MESSAGE + 2);
    }
}
