//! Unit tests of [`PeerState`]: the stateful rules of spec section 6 and replacement (7.6).

use super::*;
use crate::MAX_PAYLOAD;

fn services() -> Vec<String> {
    vec!["SSH1".to_owned(), "RDP".to_owned()]
}

fn source() -> PeerState {
    PeerState::new(Role::Source, Subprotocol::V3, services())
}

fn destination(sub: Subprotocol) -> PeerState {
    PeerState::new(Role::Destination, sub, services())
}

fn data(stream: i32, svc: &str) -> Message {
    Message::data(stream, svc, 1, &b"x"[..])
}

#[test]
fn source_data_needs_a_stream_start_first() {
    let mut src = source();
    assert_eq!(
        src.on_message(&data(1, "SSH1")),
        Err(ProtocolError::DataBeforeStreamStart)
    );
    let mut src = source();
    assert_eq!(
        src.on_message(&Message::connection_start(1, "SSH1", 2)),
        Err(ProtocolError::DataBeforeStreamStart)
    );
    let mut src = source();
    let start = Message::stream_start(1, "SSH1", 1);
    assert_eq!(src.on_message(&start), Ok(Verdict::Forward));
    assert_eq!(src.on_message(&data(1, "SSH1")), Ok(Verdict::Forward));
    // Another service of the same tunnel has its own streams.
    assert_eq!(
        src.on_message(&data(1, "RDP")),
        Err(ProtocolError::DataBeforeStreamStart)
    );
}

#[test]
fn destination_learns_streams_from_what_is_relayed_to_it() {
    let mut dst = destination(Subprotocol::V3);
    assert_eq!(
        dst.on_message(&data(1, "SSH1")),
        Err(ProtocolError::DataBeforeStreamStart)
    );
    let mut dst = destination(Subprotocol::V3);
    let verdict = dst.on_outbound(&Message::stream_start(1, "SSH1", 1));
    assert_eq!(verdict, Verdict::Forward);
    assert_eq!(dst.active_stream("SSH1"), Some(1));
    assert_eq!(dst.on_message(&data(1, "SSH1")), Ok(Verdict::Forward));
}

#[test]
fn stale_stream_ids_are_dropped() {
    let mut src = source();
    let _ = src
        .on_message(&Message::stream_start(1, "SSH1", 1))
        .unwrap();
    let _ = src
        .on_message(&Message::stream_start(2, "SSH1", 1))
        .unwrap();
    assert_eq!(src.active_stream("SSH1"), Some(2), "a new stream replaces");
    assert_eq!(src.on_message(&data(1, "SSH1")), Ok(Verdict::Drop));
    let reset = Message::stream_reset(1, "SSH1", 0);
    assert_eq!(src.on_message(&reset), Ok(Verdict::Drop));
    assert_eq!(src.on_message(&data(2, "SSH1")), Ok(Verdict::Forward));
}

#[test]
fn stream_reset_ends_the_stream_and_later_data_is_stale() {
    let mut src = source();
    let _ = src
        .on_message(&Message::stream_start(1, "SSH1", 1))
        .unwrap();
    let reset = Message::stream_reset(1, "SSH1", 0);
    assert_eq!(src.on_message(&reset), Ok(Verdict::Forward));
    assert!(src.active_streams().is_empty());
    // Started once: late DATA is stale, not an error.
    assert_eq!(src.on_message(&data(1, "SSH1")), Ok(Verdict::Drop));
    // A reset with nothing active is ignored.
    assert_eq!(src.on_message(&reset), Ok(Verdict::Drop));
}

#[test]
fn reset_of_a_never_started_service_is_dropped() {
    let mut dst = destination(Subprotocol::V3);
    let reset = Message::stream_reset(4, "RDP", 0);
    assert_eq!(dst.on_message(&reset), Ok(Verdict::Drop));
    let reset = Message::connection_reset(4, "RDP", 1);
    assert_eq!(dst.on_message(&reset), Ok(Verdict::Drop));
}

#[test]
fn mixing_service_id_usage_disconnects() {
    let mut src = source();
    let _ = src
        .on_message(&Message::stream_start(1, "SSH1", 1))
        .unwrap();
    assert_eq!(src.uses_service_id(), Some(true));
    assert_eq!(
        src.on_message(&Message::stream_start(1, "", 1)),
        Err(ProtocolError::MixedServiceIdUsage)
    );

    let mut v1 = source();
    let _ = v1.on_message(&Message::stream_start(1, "", 0)).unwrap();
    assert_eq!(v1.on_message(&data(1, "")), Ok(Verdict::Forward));
    assert_eq!(
        v1.on_message(&data(1, "SSH1")),
        Err(ProtocolError::MixedServiceIdUsage)
    );
}

#[test]
fn stateless_rules_still_apply() {
    let mut dst = destination(Subprotocol::V3);
    assert_eq!(
        dst.on_message(&Message::stream_start(1, "SSH1", 1)),
        Err(ProtocolError::DestinationSentStreamStart)
    );
    let mut src = source();
    assert_eq!(
        src.on_message(&Message::stream_start(1, "VNC", 1)),
        Err(ProtocolError::UnknownService("VNC".into()))
    );
    let big = Message::data(1, "SSH1", 1, vec![0; MAX_PAYLOAD + 1]);
    assert_eq!(
        source().on_message(&big),
        Err(ProtocolError::PayloadTooLarge)
    );
}

#[test]
fn ignorable_unknown_types_are_dropped() {
    let msg = Message {
        r#type: 55,
        ignorable: true,
        ..Default::default()
    };
    assert_eq!(source().on_message(&msg), Ok(Verdict::Drop));
    let msg = Message {
        ignorable: false,
        ..msg
    };
    assert_eq!(
        source().on_message(&msg),
        Err(ProtocolError::UnknownType(55))
    );
}

#[test]
fn window_updates_only_reach_burrow_peers() {
    let update = Message::window_update(1, "SSH1", 1, 4096);
    // From a burrow destination, for the active stream: relayed.
    let mut dst = destination(Subprotocol::Burrow1);
    let _ = dst.on_outbound(&Message::stream_start(1, "SSH1", 1));
    assert_eq!(dst.on_message(&update), Ok(Verdict::Forward));
    assert_eq!(
        dst.on_message(&Message::window_update(9, "SSH1", 1, 1)),
        Ok(Verdict::Drop),
        "stale stream"
    );
    // ... but not to a V3 source, which does not know the type.
    let mut v3_src = source();
    assert_eq!(v3_src.on_outbound(&update), Verdict::Drop);
    let mut burrow_src = PeerState::new(Role::Source, Subprotocol::Burrow1, services());
    assert_eq!(burrow_src.on_outbound(&update), Verdict::Forward);
    // A V3 peer that sends one anyway is skipped, since it is ignorable.
    assert_eq!(v3_src.on_message(&update), Ok(Verdict::Drop));
}

#[test]
fn connections_are_tracked_per_stream() {
    let mut src = source();
    let mut dst = destination(Subprotocol::V3);
    for msg in [
        Message::stream_start(1, "SSH1", 1),
        Message::connection_start(1, "SSH1", 2),
        Message::connection_start(1, "SSH1", 3),
        Message::connection_reset(1, "SSH1", 2),
    ] {
        assert_eq!(src.on_message(&msg), Ok(Verdict::Forward), "{msg:?}");
        assert_eq!(dst.on_outbound(&msg), Verdict::Forward);
    }
    assert_eq!(src.connections("SSH1"), vec![1, 3]);
    assert_eq!(dst.connections("SSH1"), vec![1, 3]);
    // A reset for a connection the broker does not know is still relayed (each side closes
    // its own end), and a CONNECTION_START for a stale stream is dropped.
    let reset = Message::connection_reset(1, "SSH1", 2);
    assert_eq!(dst.on_message(&reset), Ok(Verdict::Forward));
    let stale = Message::connection_start(7, "SSH1", 4);
    assert_eq!(src.on_message(&stale), Ok(Verdict::Drop));
    // An absent connection id (V2) counts as connection 1.
    let mut v2 = source();
    let _ = v2.on_message(&Message::stream_start(1, "SSH1", 0)).unwrap();
    assert_eq!(v2.connections("SSH1"), vec![1]);
}

#[test]
fn connection_count_is_capped() {
    let mut src = source();
    let _ = src
        .on_message(&Message::stream_start(1, "SSH1", 1))
        .unwrap();
    for conn in 2..=MAX_CONNECTIONS_PER_STREAM as u32 {
        let msg = Message::connection_start(1, "SSH1", conn);
        assert_eq!(src.on_message(&msg), Ok(Verdict::Forward));
    }
    let over = Message::connection_start(1, "SSH1", u32::MAX);
    assert_eq!(
        src.on_message(&over),
        Err(ProtocolError::TooManyConnections)
    );
}

#[test]
fn replacement_resets_the_other_peers_active_streams() {
    // The destination is replaced: the broker resets the streams the source still has.
    let mut src = source();
    let _ = src
        .on_message(&Message::stream_start(1, "SSH1", 1))
        .unwrap();
    let _ = src.on_message(&Message::stream_start(5, "RDP", 1)).unwrap();
    assert_eq!(
        src.active_streams(),
        vec![("RDP".to_owned(), 5), ("SSH1".to_owned(), 1)]
    );
    let resets = src.stream_resets();
    assert_eq!(
        resets,
        vec![
            Message::stream_reset(5, "RDP", 0),
            Message::stream_reset(1, "SSH1", 0)
        ]
    );
    for reset in &resets {
        assert_eq!(src.on_outbound(reset), Verdict::Forward);
    }
    assert!(src.active_streams().is_empty());
    assert_eq!(src.on_message(&data(1, "SSH1")), Ok(Verdict::Drop));
}

#[test]
fn session_reset_clears_every_stream() {
    let mut dst = destination(Subprotocol::V2);
    let _ = dst.on_outbound(&Message::stream_start(1, "SSH1", 0));
    let _ = dst.on_outbound(&Message::stream_start(1, "RDP", 0));
    assert_eq!(dst.active_streams().len(), 2);
    assert_eq!(dst.on_outbound(&Message::session_reset()), Verdict::Forward);
    assert!(dst.active_streams().is_empty());
}
