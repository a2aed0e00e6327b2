//! Tunnel framing (spec section 3): `u16 length, big-endian` followed by that many bytes of
//! protobuf `Message`, back to back in the binary WebSocket stream.
//!
//! Why a reassembler: WebSocket frames do not line up with tunnel frames (AWS re-chunks them), so
//! the receiver buffers bytes until a whole tunnel frame is there. Why it is bounded by
//! construction: the prefix is a u16, so a peer can never make us hold more than one partial frame
//! (< 65537 bytes) plus the chunk just pushed, and nothing is ever allocated from the peer's length.
//! Why frames are split off as `Bytes`: the broker relays the exact bytes it validated, without a
//! copy and without re-encoding (re-encoding could change bytes the other peer might depend on).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use prost::Message as _;

use crate::message::Message;
use crate::{MAX_MESSAGE, MAX_PAYLOAD};

/// Why a frame could not be encoded or decoded. Every variant disconnects the peer that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The encoded message does not fit the u16 length prefix.
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLarge,
    /// A payload over [`MAX_PAYLOAD`] bytes, which localproxy and AWS reject.
    #[error("payload longer than {MAX_PAYLOAD} bytes")]
    PayloadTooLarge,
    /// Not a valid protobuf `Message`.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A protobuf field number outside 1..=7; AWS closes the connection of a client that adds one.
    #[error("unknown protobuf field {0}")]
    UnknownField(u32),
    /// [`FrameDecoder::push`] was called while complete frames were still buffered.
    #[error("frame decoder pushed to before its complete frames were drained")]
    NotDrained,
}

/// Appends one tunnel frame (prefix + protobuf) for `msg` to `dst`.
pub fn encode(msg: &Message, dst: &mut BytesMut) -> Result<(), FrameError> {
    if msg.payload.len() > MAX_PAYLOAD {
        return Err(FrameError::PayloadTooLarge);
    }
    let len = msg.encoded_len();
    let prefix = u16::try_from(len).map_err(|_| FrameError::TooLarge)?;
    dst.reserve(2 + len);
    dst.put_u16(prefix);
    // BytesMut grows on demand, so prost's "buffer too small" error cannot happen here.
    msg.encode(dst).map_err(|_| FrameError::TooLarge)
}

/// Decodes one frame body (without its length prefix), copying the payload out of `body`.
pub fn decode_message(body: &[u8]) -> Result<Message, FrameError> {
    decode_message_bytes(Bytes::copy_from_slice(body))
}

/// Decodes one frame body (without its length prefix); the payload shares `body`'s memory.
///
/// Rejects field numbers other than 1..=7 (prost would skip them silently, AWS disconnects) and
/// payloads over [`MAX_PAYLOAD`].
pub fn decode_message_bytes(body: Bytes) -> Result<Message, FrameError> {
    check_fields(&body)?;
    let msg = Message::decode(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
    if msg.payload.len() > MAX_PAYLOAD {
        return Err(FrameError::PayloadTooLarge);
    }
    Ok(msg)
}

/// Walks the protobuf wire format and checks that only the seven known fields occur, each with
/// the wire type of its declaration (varint for 1, 2, 3, 7; length-delimited for 4, 5, 6).
fn check_fields(mut body: &[u8]) -> Result<(), FrameError> {
    while !body.is_empty() {
        let key = read_varint(&mut body)?;
        let key = u32::try_from(key).map_err(|_| malformed("field key exceeds 32 bits"))?;
        let (field, wire_type) = (key >> 3, key & 7);
        match (field, wire_type) {
            (0, _) => return Err(malformed("field number 0")),
            (1 | 2 | 3 | 7, 0) => {
                read_varint(&mut body)?;
            }
            (4..=6, 2) => {
                let len = read_varint(&mut body)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&len| len <= body.len())
                    .ok_or_else(|| malformed("length-delimited field runs past the frame"))?;
                body = &body[len..];
            }
            (1..=7, _) => return Err(malformed("field has the wrong wire type")),
            (unknown, _) => return Err(FrameError::UnknownField(unknown)),
        }
    }
    Ok(())
}

fn read_varint(buf: &mut &[u8]) -> Result<u64, FrameError> {
    let mut value = 0u64;
    for i in 0..10 {
        let (&byte, rest) = buf
            .split_first()
            .ok_or_else(|| malformed("truncated varint"))?;
        *buf = rest;
        if i == 9 && byte > 1 {
            return Err(malformed("varint overflows 64 bits"));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

fn malformed(why: &str) -> FrameError {
    FrameError::Malformed(why.to_owned())
}

/// One decoded frame: the message and the exact bytes it came from (prefix included).
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame as received, length prefix included, for relaying unchanged.
    pub raw: Bytes,
    pub message: Message,
}

/// Reassembles tunnel frames from arbitrary chunks of the byte stream.
///
/// Use: `push` one received chunk, then drain with `next_raw` / `next_message` / `next_frame`
/// until they return `None`, then push the next chunk. Draining before pushing is what keeps the
/// buffer at most one partial frame plus one chunk; `push` refuses otherwise.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a received chunk. Fails with [`FrameError::NotDrained`] (and buffers nothing) if
    /// a complete frame is still waiting to be taken.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), FrameError> {
        if self.complete_frame_len().is_some() {
            return Err(FrameError::NotDrained);
        }
        self.buf.extend_from_slice(chunk);
        Ok(())
    }

    /// The next complete frame, length prefix included, split off the buffer without a copy.
    pub fn next_raw(&mut self) -> Option<Bytes> {
        let len = self.complete_frame_len()?;
        Some(self.buf.split_to(len).freeze())
    }

    /// The next complete frame, decoded. On `Err` the bad frame has been consumed, so the
    /// stream stays in sync (the caller normally disconnects the peer anyway).
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        Ok(self.next_frame()?.map(|frame| frame.message))
    }

    /// The next complete frame, decoded, together with its raw bytes (for validate-then-relay).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let Some(raw) = self.next_raw() else {
            return Ok(None);
        };
        let message = decode_message_bytes(raw.slice(2..))?;
        Ok(Some(Frame { raw, message }))
    }

    /// Bytes held: at most one partial frame plus the last chunk pushed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Length (prefix included) of the complete frame at the front of the buffer, if any.
    fn complete_frame_len(&self) -> Option<usize> {
        let prefix = self.buf.get(..2)?;
        let len = 2 + usize::from((&prefix[..]).get_u16());
        (self.buf.len() >= len).then_some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn encode_writes_a_big_endian_prefix() {
        let mut buf = BytesMut::new();
        encode(&Message::session_reset(), &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 2, 0x08, 4]);
    }

    #[test]
    fn max_prefix_with_garbage_is_malformed() {
        for garbage in [0xFFu8, 0x00] {
            let mut dec = FrameDecoder::new();
            let mut bytes = vec![0xFF, 0xFF];
            bytes.extend(std::iter::repeat_n(garbage, MAX_MESSAGE));
            dec.push(&bytes[..1000]).unwrap();
            assert!(
                matches!(dec.next_message(), Ok(None)),
                "frame is incomplete"
            );
            dec.push(&bytes[1000..]).unwrap();
            assert!(matches!(dec.next_message(), Err(FrameError::Malformed(_))));
            assert_eq!(dec.buffered(), 0, "the bad frame is consumed");
        }
    }

    #[test]
    fn oversize_payload_is_rejected_on_encode_and_decode() {
        let msg = Message::data(1, "SSH1", 1, vec![7u8; MAX_PAYLOAD + 1]);
        let mut buf = BytesMut::new();
        assert_eq!(encode(&msg, &mut buf), Err(FrameError::PayloadTooLarge));
        assert!(buf.is_empty(), "nothing is written on error");

        // A peer could still send it: build the frame with prost directly.
        let body = msg.encode_to_vec();
        assert!(body.len() <= MAX_MESSAGE);
        assert_eq!(decode_message(&body), Err(FrameError::PayloadTooLarge));
        let mut dec = FrameDecoder::new();
        dec.push(&frame_of(&body)).unwrap();
        assert_eq!(dec.next_message(), Err(FrameError::PayloadTooLarge));

        let ok = Message::data(1, "SSH1", 1, vec![7u8; MAX_PAYLOAD]);
        encode(&ok, &mut buf).unwrap();
        assert_eq!(decode_message(&buf[2..]), Ok(ok));
    }

    #[test]
    fn encode_rejects_messages_over_the_prefix_cap() {
        let msg = Message::service_ids(vec!["s".repeat(MAX_MESSAGE)]);
        assert_eq!(
            encode(&msg, &mut BytesMut::new()),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut body = Message::stream_start(1, "SSH1", 1).encode_to_vec();
        body.extend_from_slice(&[0x40, 0x01]); // field 8, varint 1
        assert_eq!(decode_message(&body), Err(FrameError::UnknownField(8)));
        // A large field number, length-delimited.
        let body = [0x08, 1, 0xCA, 0x3E, 0x01, 0x00]; // field 1001, wire type 2
        assert_eq!(decode_message(&body), Err(FrameError::UnknownField(1001)));
    }

    #[test]
    fn wrong_wire_types_and_truncation_are_malformed() {
        for body in [
            &[0x0A, 0x00][..],   // field 1 as length-delimited
            &[0x25, 0, 0, 0, 0], // field 4 as fixed32
            &[0x22, 0x05, 1, 2], // payload runs past the frame
            &[0x08],             // truncated varint
            &[
                0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F,
            ], // overflow
            &[0x2A, 0x02, 0xC3, 0x28], // service id is not UTF-8
        ] {
            assert!(
                matches!(decode_message(body), Err(FrameError::Malformed(_))),
                "{body:02x?}"
            );
        }
    }

    #[test]
    fn empty_body_decodes_to_the_default_message() {
        // Type 0 is a validation error, not a framing error.
        assert_eq!(decode_message(&[]), Ok(Message::default()));
    }

    #[test]
    fn frames_are_reassembled_and_relayed_verbatim() {
        let a = Message::data(1, "SSH1", 1, &b"hello"[..]);
        let b = Message::connection_reset(1, "SSH1", 1);
        let mut wire = BytesMut::new();
        encode(&a, &mut wire).unwrap();
        encode(&b, &mut wire).unwrap();
        let split = 3;
        let mut dec = FrameDecoder::new();
        dec.push(&wire[..split]).unwrap();
        assert_eq!(dec.next_raw(), None);
        dec.push(&wire[split..]).unwrap();
        let first = dec.next_frame().unwrap().unwrap();
        assert_eq!(first.message, a);
        assert_eq!(&first.raw[..], &wire[..first.raw.len()]);
        assert_eq!(dec.next_message(), Ok(Some(b)));
        assert_eq!(dec.next_message(), Ok(None));
        assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn push_refuses_to_grow_past_an_undrained_frame() {
        let mut wire = BytesMut::new();
        encode(&Message::session_reset(), &mut wire).unwrap();
        let mut dec = FrameDecoder::new();
        dec.push(&wire).unwrap();
        assert_eq!(dec.push(&wire), Err(FrameError::NotDrained));
        assert_eq!(dec.buffered(), wire.len());
        assert!(dec.next_raw().is_some());
        dec.push(&wire).unwrap();
    }
}
