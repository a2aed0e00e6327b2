//! Property tests of the codec: round trip, bounded buffering, split-point invariance.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use burrow_proto::{
    encode, FrameDecoder, FrameError, Message, PeerState, Role, Subprotocol, MAX_MESSAGE,
    MAX_PAYLOAD,
};

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..512),
        1 => proptest::collection::vec(any::<u8>(), MAX_PAYLOAD - 8..=MAX_PAYLOAD),
    ]
}

/// Any message `encode` accepts: every field arbitrary, the payload within its limit.
fn valid_message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![(0i32..=7), Just(100), any::<i32>()],
        any::<i32>(),
        any::<bool>(),
        payload(),
        "\\PC{0,40}",
        proptest::collection::vec("[A-Za-z0-9_-]{0,16}", 0..4),
        any::<u32>(),
    )
        .prop_map(
            |(r#type, stream_id, ignorable, payload, service_id, ids, conn)| Message {
                r#type,
                stream_id,
                ignorable,
                payload: Bytes::from(payload),
                service_id,
                available_service_ids: ids,
                connection_id: conn,
            },
        )
}

/// Splits `wire` at the given (unsorted, possibly repeated) cut points.
fn split_at_points(wire: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(0);
    cuts.push(wire.len());
    cuts.sort_unstable();
    cuts.windows(2).map(|w| wire[w[0]..w[1]].to_vec()).collect()
}

/// Pushes every chunk, draining after each; returns raw frames and per-frame decode results.
fn run_decoder(chunks: &[Vec<u8>]) -> (Vec<Bytes>, Vec<Result<Message, FrameError>>) {
    let mut dec = FrameDecoder::new();
    let (mut raws, mut results) = (Vec::new(), Vec::new());
    for chunk in chunks {
        dec.push(chunk).expect("drained before every push");
        assert!(dec.buffered() <= MAX_MESSAGE + 2 + chunk.len());
        while let Some(raw) = dec.next_raw() {
            results.push(burrow_proto::decode_message_bytes(raw.slice(2..)));
            raws.push(raw);
        }
    }
    (raws, results)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(msg in valid_message()) {
        let mut wire = BytesMut::new();
        encode(&msg, &mut wire).unwrap();
        let len = u16::from_be_bytes([wire[0], wire[1]]) as usize;
        prop_assert_eq!(len + 2, wire.len());
        let mut dec = FrameDecoder::new();
        dec.push(&wire).unwrap();
        prop_assert_eq!(dec.next_message(), Ok(Some(msg)));
        prop_assert_eq!(dec.next_message(), Ok(None));
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn arbitrary_chunks_never_panic_and_stay_bounded(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..40),
    ) {
        // run_decoder asserts the bound after every push.
        let (raws, results) = run_decoder(&chunks);
        prop_assert_eq!(raws.len(), results.len());
        let consumed: usize = raws.iter().map(Bytes::len).sum();
        let total: usize = chunks.iter().map(Vec::len).sum();
        prop_assert!(consumed <= total);
        // Whatever decoded must get through validation without panicking either.
        let mut peer = PeerState::new(Role::Source, Subprotocol::Burrow1, vec!["SSH1".into()]);
        for msg in results.into_iter().flatten() {
            let _ = peer.on_message(&msg);
        }
    }

    #[test]
    fn huge_length_prefixes_are_bounded(
        body in proptest::collection::vec(any::<u8>(), 0..70_000),
        chunk in 1usize..5000,
    ) {
        let mut wire = vec![0xFF, 0xFF];
        wire.extend_from_slice(&body);
        let chunks: Vec<Vec<u8>> = wire.chunks(chunk).map(<[u8]>::to_vec).collect();
        let (raws, _) = run_decoder(&chunks);
        if body.len() < MAX_MESSAGE {
            prop_assert!(raws.is_empty(), "an incomplete frame is never returned");
        } else {
            prop_assert_eq!(raws[0].len(), MAX_MESSAGE + 2);
        }
    }

    #[test]
    fn frames_do_not_depend_on_chunking(
        msgs in proptest::collection::vec(valid_message(), 1..8),
        cuts in proptest::collection::vec(any::<usize>(), 0..24),
        junk in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut wire = BytesMut::new();
        for msg in &msgs {
            encode(msg, &mut wire).unwrap();
        }
        // Trailing junk (a partial frame, or garbage frames) must split the same way too.
        wire.extend_from_slice(&junk);
        let (whole_raws, whole_results) = run_decoder(&[wire.to_vec()]);
        let (raws, results) = run_decoder(&split_at_points(&wire, &cuts));
        prop_assert_eq!(&raws, &whole_raws);
        prop_assert_eq!(&results, &whole_results);
        let decoded: Vec<Message> = results.iter().take(msgs.len()).cloned().map(Result::unwrap).collect();
        prop_assert_eq!(decoded, msgs);
    }
}
