//! Property tests of the broker-side state machine: two `PeerState`s driven the way the broker
//! drives them (validate on the sender, record on the receiver) must always agree on which
//! streams and connections are open, whatever the peers send.

use proptest::prelude::*;

use burrow_proto::{Message, PeerState, Role, Subprotocol, Verdict, MAX_CONNECTIONS_PER_STREAM};

const SERVICES: [&str; 2] = ["SSH1", "RDP"];

/// Mostly valid traffic from a small alphabet, so that ids collide often and sessions last;
/// every kind of invalid message still shows up now and then and ends the session.
fn message(from_source: bool) -> impl Strategy<Value = Message> {
    let kind = if from_source {
        prop_oneof![4 => Just(1), 2 => Just(2), 1 => Just(3), 2 => Just(6), 2 => Just(7),
                    1 => Just(100), 1 => prop_oneof![Just(0), Just(4), Just(5), Just(42)]]
        .boxed()
    } else {
        prop_oneof![4 => Just(1), 1 => Just(3), 2 => Just(7), 1 => Just(100),
                    1 => prop_oneof![Just(0), Just(2), Just(6), Just(42)]]
        .boxed()
    };
    (
        kind,
        prop_oneof![12 => 1i32..4, 1 => Just(0)],
        prop_oneof![4 => Just(false), 1 => Just(true)],
        prop_oneof![6 => Just("SSH1"), 6 => Just("RDP"), 1 => Just(""), 1 => Just("VNC")],
        0u32..5,
    )
        .prop_map(|(r#type, stream_id, ignorable, svc, conn)| {
            if r#type == 100 {
                return Message::window_update(stream_id, svc, conn, 10);
            }
            Message {
                r#type,
                stream_id,
                ignorable,
                service_id: svc.to_owned(),
                connection_id: conn,
                payload: if r#type == 1 {
                    vec![0u8; 3].into()
                } else {
                    Default::default()
                },
                ..Default::default()
            }
        })
}

fn step() -> impl Strategy<Value = (bool, Message)> {
    any::<bool>().prop_flat_map(|from_source| (Just(from_source), message(from_source)))
}

fn sub() -> impl Strategy<Value = Subprotocol> {
    prop_oneof![
        Just(Subprotocol::V2),
        Just(Subprotocol::V3),
        Just(Subprotocol::Burrow1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn both_sides_agree_on_open_streams_and_connections(
        steps in proptest::collection::vec(step(), 1..80),
        src_sub in sub(),
        dst_sub in sub(),
    ) {
        let services: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
        let mut src = PeerState::new(Role::Source, src_sub, services.clone());
        let mut dst = PeerState::new(Role::Destination, dst_sub, services);
        let mut forwarded = 0;
        for (from_source, msg) in steps {
            let (sender, receiver) = if from_source {
                (&mut src, &mut dst)
            } else {
                (&mut dst, &mut src)
            };
            let before = sender.clone();
            match sender.on_message(&msg) {
                // A broker disconnects the sender here. The state must be untouched, so the
                // session can go on as if the broker had skipped the message.
                Err(_) => prop_assert_eq!(&*sender, &before),
                Ok(Verdict::Drop) => {}
                Ok(Verdict::Forward) => {
                    forwarded += 1;
                    let _ = receiver.on_outbound(&msg);
                }
            }
            prop_assert_eq!(src.active_streams(), dst.active_streams());
            for svc in ["", "SSH1", "RDP"] {
                prop_assert_eq!(src.connections(svc), dst.connections(svc));
                prop_assert!(src.connections(svc).len() <= MAX_CONNECTIONS_PER_STREAM);
            }
            for (svc, stream) in src.active_streams() {
                prop_assert!(svc.is_empty() || SERVICES.contains(&svc.as_str()));
                prop_assert_ne!(stream, 0);
            }
        }
        // Only a source can open streams, so nothing is open unless something got through.
        if forwarded == 0 {
            prop_assert!(src.active_streams().is_empty());
        }
    }
}
