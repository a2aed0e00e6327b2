//! The session recorded in spec section 10 (AWS localproxy v3.3.1, services = [SSH1], two client
//! connections, one 200 KB echo), as a message sequence that tests can replay.
//!
//! Available to this crate's tests and, with the `fixtures` feature, to other crates' tests, so
//! that the broker can be checked against exactly the traffic a real localproxy produces.
//!
//! The recording gives the sizes of the source's DATA frames (25, then 64512, 64512, 64512 and
//! 11264 bytes) but only the count of the destination's echo frames (one of 25 B, then five); the
//! sizes chosen here for those five add up to the same 204800 bytes, so the echo is byte-exact.

use bytes::{Bytes, BytesMut};

use crate::codec::encode;
use crate::handshake::Role;
use crate::message::Message;

/// The tunnel's services in the recording.
pub const SERVICES: [&str; 1] = ["SSH1"];

/// The first bytes the client wrote on connection 1 (25 B), echoed back by the destination.
pub const GREETING: &[u8; 25] = b"hello from burrow source\n";

/// Sizes of the source's DATA frames carrying the 200 KB transfer (as recorded).
pub const SOURCE_CHUNKS: [usize; 4] = [64_512, 64_512, 64_512, 11_264];

/// Sizes of the destination's five echo DATA frames (recorded count, chosen sizes).
pub const ECHO_CHUNKS: [usize; 5] = [64_512, 64_512, 32_768, 32_768, 10_240];

/// Who sent a message of the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The broker, to both peers (SERVICE_IDS).
    Broker,
    Source,
    Destination,
}

impl Origin {
    /// The client role that sent it; `None` for the broker.
    pub fn role(self) -> Option<Role> {
        match self {
            Origin::Broker => None,
            Origin::Source => Some(Role::Source),
            Origin::Destination => Some(Role::Destination),
        }
    }
}

/// One message of the recording and who sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub from: Origin,
    pub message: Message,
}

/// [`SERVICES`] as owned strings, as `PeerState::new` takes them.
pub fn services() -> Vec<String> {
    SERVICES.iter().map(|s| s.to_string()).collect()
}

/// The 204800 bytes sent on connection 1 after the greeting: a deterministic, non-repeating
/// pattern, so that a misplaced or duplicated chunk cannot compare equal.
pub fn transfer_bytes() -> Bytes {
    let total: usize = SOURCE_CHUNKS.iter().sum();
    (0..total)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn chunked(from: Origin, bytes: &Bytes, sizes: &[usize]) -> Vec<Step> {
    let mut offset = 0;
    sizes
        .iter()
        .map(|&len| {
            let payload = bytes.slice(offset..offset + len);
            offset += len;
            Step {
                from,
                message: Message::data(1, "SSH1", 1, payload),
            }
        })
        .collect()
}

/// The whole recorded session, in order.
pub fn recorded_session() -> Vec<Step> {
    use Origin::{Broker, Destination as Dst, Source as Src};
    let step = |from, message| Step { from, message };
    let greeting = Bytes::from_static(GREETING);
    let transfer = transfer_bytes();

    let mut steps = vec![
        step(Broker, Message::service_ids(SERVICES)),
        step(Src, Message::stream_start(1, "SSH1", 1)),
        step(Src, Message::data(1, "SSH1", 1, greeting.clone())),
        step(Dst, Message::data(1, "SSH1", 1, greeting)),
        step(Src, Message::connection_start(1, "SSH1", 2)),
    ];
    steps.extend(chunked(Src, &transfer, &SOURCE_CHUNKS));
    steps.extend(chunked(Dst, &transfer, &ECHO_CHUNKS));
    steps.extend([
        step(Src, Message::connection_reset(1, "SSH1", 2)),
        step(Dst, Message::connection_reset(1, "SSH1", 2)),
        step(Src, Message::connection_reset(1, "SSH1", 1)),
        step(Dst, Message::connection_reset(1, "SSH1", 1)),
    ]);
    steps
}

/// The messages one origin sent, in order.
pub fn sent_by(from: Origin) -> Vec<Message> {
    recorded_session()
        .into_iter()
        .filter(|s| s.from == from)
        .map(|s| s.message)
        .collect()
}

/// Encodes messages back to back into one tunnel byte stream.
pub fn encode_all<'a>(messages: impl IntoIterator<Item = &'a Message>) -> BytesMut {
    let mut buf = BytesMut::new();
    for msg in messages {
        encode(msg, &mut buf).expect("fixture messages are valid");
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::FrameDecoder;
    use crate::handshake::Subprotocol;
    use crate::message::MessageType;
    use crate::session::{PeerState, Verdict};
    use crate::{MAX_MESSAGE, MAX_WS_FRAME};

    /// xorshift64*: deterministic chunk sizes without a dependency.
    fn chunk_sizes(mut seed: u64) -> impl FnMut() -> usize {
        move || {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            let r = seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
            // Mostly small chunks, sometimes up to a maximal WebSocket frame.
            match r % 4 {
                0 => 1 + (r >> 8) as usize % 8,
                1 | 2 => 1 + (r >> 8) as usize % 4096,
                _ => 1 + (r >> 8) as usize % MAX_WS_FRAME,
            }
        }
    }

    fn decode_in_chunks(wire: &[u8], seed: u64) -> Vec<Message> {
        let mut next_size = chunk_sizes(seed);
        let mut dec = FrameDecoder::new();
        let mut out = Vec::new();
        let mut rest = wire;
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(next_size().min(rest.len()));
            rest = tail;
            dec.push(chunk).unwrap();
            assert!(dec.buffered() <= MAX_MESSAGE + 2 + chunk.len());
            while let Some(msg) = dec.next_message().unwrap() {
                out.push(msg);
            }
        }
        assert_eq!(dec.buffered(), 0, "no bytes left over");
        out
    }

    #[test]
    fn recording_has_the_documented_shape() {
        let steps = recorded_session();
        assert_eq!(steps.len(), 18);
        let data_sizes = |from| -> Vec<usize> {
            sent_by(from)
                .iter()
                .filter(|m| m.kind() == Ok(MessageType::Data))
                .map(|m| m.payload.len())
                .collect()
        };
        assert_eq!(
            data_sizes(Origin::Source),
            [25, 64_512, 64_512, 64_512, 11_264]
        );
        assert_eq!(data_sizes(Origin::Destination).len(), 6);
        // The echo returns exactly what was sent.
        let concat = |from| -> Vec<u8> {
            sent_by(from)
                .iter()
                .flat_map(|m| m.payload.to_vec())
                .collect()
        };
        assert_eq!(concat(Origin::Source), concat(Origin::Destination));
        assert_eq!(concat(Origin::Source).len(), 25 + 204_800);
    }

    #[test]
    fn recorded_session_round_trips_through_random_chunking() {
        let messages: Vec<Message> = recorded_session().into_iter().map(|s| s.message).collect();
        let wire = encode_all(&messages);
        for seed in 1..=16u64 {
            let decoded = decode_in_chunks(&wire, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            assert_eq!(decoded, messages, "seed {seed}");
        }
    }

    #[test]
    fn recorded_session_is_accepted_by_both_peer_states() {
        let mut src = PeerState::new(Role::Source, Subprotocol::V3, services());
        let mut dst = PeerState::new(Role::Destination, Subprotocol::V3, services());
        for (i, step) in recorded_session().iter().enumerate() {
            let msg = &step.message;
            match step.from {
                Origin::Broker => {
                    assert_eq!(src.on_outbound(msg), Verdict::Forward);
                    assert_eq!(dst.on_outbound(msg), Verdict::Forward);
                }
                Origin::Source => {
                    assert_eq!(src.on_message(msg), Ok(Verdict::Forward), "step {i}");
                    assert_eq!(dst.on_outbound(msg), Verdict::Forward, "step {i}");
                }
                Origin::Destination => {
                    assert_eq!(dst.on_message(msg), Ok(Verdict::Forward), "step {i}");
                    assert_eq!(src.on_outbound(msg), Verdict::Forward, "step {i}");
                }
            }
            if i == 4 {
                assert_eq!(src.connections("SSH1"), vec![1, 2]);
                assert_eq!(dst.connections("SSH1"), vec![1, 2]);
            }
        }
        // Every connection is closed, but the stream stays up until a STREAM_RESET.
        for peer in [&src, &dst] {
            assert!(peer.connections("SSH1").is_empty());
            assert_eq!(peer.active_streams(), vec![("SSH1".to_owned(), 1)]);
        }
    }
}
