//! Arbitrary bytes as a peer's WebSocket stream: the decoder must never panic, never buffer more
//! than one partial frame plus the chunk, and whatever decodes must survive validation and
//! re-encode to the same message.
#![no_main]

use burrow_proto::{
    decode_message, encode, FrameDecoder, PeerState, Role, Subprotocol, Verdict, MAX_MESSAGE,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the roles, the subprotocol and the chunking; the rest is the stream.
    let Some((&knobs, stream)) = data.split_first() else {
        return;
    };
    let role = if knobs & 1 == 0 {
        Role::Source
    } else {
        Role::Destination
    };
    let sub = Subprotocol::ALL[usize::from(knobs >> 1) & 3];
    let services = vec!["SSH1".to_owned(), "RDP".to_owned()];
    let mut sender = PeerState::new(role, sub, services.clone());
    let mut receiver = PeerState::new(role.peer(), Subprotocol::V3, services);
    let base_chunk = 1 + usize::from(knobs >> 3) * 97;

    let mut decoder = FrameDecoder::new();
    for (i, chunk) in stream.chunks(base_chunk).enumerate() {
        // Vary the chunk boundaries further: sometimes split a chunk in two pushes.
        let (a, b) = chunk.split_at(if i % 3 == 0 {
            chunk.len() / 2
        } else {
            chunk.len()
        });
        for part in [a, b] {
            decoder
                .push(part)
                .expect("the decoder is drained before every push");
            assert!(decoder.buffered() <= MAX_MESSAGE + 2 + part.len());
            loop {
                match decoder.next_frame() {
                    Ok(None) => break,
                    Err(_) => continue, // the bad frame is consumed; a broker would disconnect
                    Ok(Some(frame)) => {
                        let msg = frame.message;
                        // Re-encoding may differ in bytes (canonical varints) but not in meaning.
                        let mut again = bytes::BytesMut::new();
                        if encode(&msg, &mut again).is_ok() {
                            assert_eq!(decode_message(&again[2..]).as_ref(), Ok(&msg));
                        }
                        if let Ok(Verdict::Forward) = sender.on_message(&msg) {
                            let _ = receiver.on_outbound(&msg);
                        }
                    }
                }
            }
        }
    }
});
