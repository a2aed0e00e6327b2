//! The stateless rules of spec section 6: what a client may send, judged from the sender's role,
//! its subprotocol, the tunnel's services and the message alone.
//!
//! The stateful rules (DATA before STREAM_START, switching between using and omitting serviceId,
//! stale stream ids) live in [`crate::session`], on top of [`check`]. Why split them: this part is
//! a pure function, so every rule is one row of a table test, and clients can use it to check
//! their own messages before sending them.

use crate::codec::FrameError;
use crate::handshake::{Role, Subprotocol};
use crate::message::{Message, MessageType};
use crate::MAX_PAYLOAD;

/// Every reason the broker disconnects a peer (or a client gives up on its broker).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A type this peer's subprotocol does not know, without `ignorable`.
    #[error("unknown message type {0}")]
    UnknownType(i32),
    #[error("message type 0 (UNKNOWN)")]
    ZeroType,
    #[error("the destination sent STREAM_START")]
    DestinationSentStreamStart,
    #[error("the destination sent CONNECTION_START")]
    DestinationSentConnectionStart,
    #[error("a client sent SESSION_RESET")]
    ClientSentSessionReset,
    #[error("a client sent SERVICE_IDS")]
    ClientSentServiceIds,
    #[error("stream message with streamId 0")]
    ZeroStreamId,
    #[error("unknown serviceId {0:?}")]
    UnknownService(String),
    /// DATA (or CONNECTION_START) for a serviceId that never had a STREAM_START on this peer.
    #[error("stream message for a serviceId that never had a STREAM_START")]
    DataBeforeStreamStart,
    #[error("the peer switched between using and omitting serviceId")]
    MixedServiceIdUsage,
    #[error("payload longer than {MAX_PAYLOAD} bytes")]
    PayloadTooLarge,
    #[error("unknown protobuf field {0}")]
    UnknownField(u32),
    #[error("malformed message: {0}")]
    Malformed(String),
    /// Other framing failures (see [`FrameError`]); `From<FrameError>` maps the others above.
    #[error(transparent)]
    Frame(FrameError),
    /// A WINDOW_UPDATE that is not ignorable or whose payload is not a 4-byte credit.
    #[error("invalid WINDOW_UPDATE: {0}")]
    InvalidWindowUpdate(&'static str),
    /// The peer sent more DATA than the credit it was given.
    #[error("flow-control window exceeded")]
    WindowExceeded,
    /// The peer granted credit beyond what a u32 window can hold.
    #[error("flow-control window overflow")]
    WindowOverflow,
    #[error(
        "more than {} open connections on one stream",
        crate::MAX_CONNECTIONS_PER_STREAM
    )]
    TooManyConnections,
}

impl From<FrameError> for ProtocolError {
    fn from(err: FrameError) -> Self {
        match err {
            FrameError::PayloadTooLarge => ProtocolError::PayloadTooLarge,
            FrameError::UnknownField(field) => ProtocolError::UnknownField(field),
            FrameError::Malformed(why) => ProtocolError::Malformed(why),
            other => ProtocolError::Frame(other),
        }
    }
}

/// What [`check`] found a valid message to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// A type the sender's subprotocol knows; its stateless rules hold.
    Known(MessageType),
    /// An unknown type marked `ignorable`: skip it without looking at its fields.
    Ignore,
}

/// Applies the stateless rules to one message that a client in `sender` role, speaking
/// `subprotocol`, sent on a tunnel whose services are `services`.
///
/// The subprotocol only decides whether WINDOW_UPDATE is a known type. Otherwise peers are judged
/// at the message level whatever they negotiated, as AWS does (spec section 9: a V2 peer and a
/// V3 peer may share a tunnel).
pub fn check(
    sender: Role,
    subprotocol: Subprotocol,
    services: &[String],
    msg: &Message,
) -> Result<Checked, ProtocolError> {
    let kind = match msg.kind() {
        Err(ProtocolError::UnknownType(_)) if msg.ignorable => return Ok(Checked::Ignore),
        Err(err) => return Err(err),
        Ok(MessageType::WindowUpdate) if !subprotocol.has_flow_control() => {
            return match msg.ignorable {
                true => Ok(Checked::Ignore),
                false => Err(ProtocolError::UnknownType(msg.r#type)),
            };
        }
        Ok(kind) => kind,
    };
    match (sender, kind) {
        (Role::Destination, MessageType::StreamStart) => {
            return Err(ProtocolError::DestinationSentStreamStart)
        }
        (Role::Destination, MessageType::ConnectionStart) => {
            return Err(ProtocolError::DestinationSentConnectionStart)
        }
        (_, MessageType::SessionReset) => return Err(ProtocolError::ClientSentSessionReset),
        (_, MessageType::ServiceIds) => return Err(ProtocolError::ClientSentServiceIds),
        _ => {}
    }
    if msg.payload.len() > MAX_PAYLOAD {
        return Err(ProtocolError::PayloadTooLarge);
    }
    if kind.is_stream_message() {
        if msg.stream_id == 0 {
            return Err(ProtocolError::ZeroStreamId);
        }
        // An empty serviceId is V1 style and always allowed; a named one must exist.
        if !msg.service_id.is_empty() && !services.contains(&msg.service_id) {
            return Err(ProtocolError::UnknownService(msg.service_id.clone()));
        }
    }
    if kind == MessageType::WindowUpdate {
        if !msg.ignorable {
            return Err(ProtocolError::InvalidWindowUpdate("not marked ignorable"));
        }
        if msg.window_credit().is_none() {
            return Err(ProtocolError::InvalidWindowUpdate(
                "payload is not a 4-byte credit",
            ));
        }
    }
    Ok(Checked::Known(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Role::{Destination as Dst, Source as Src};
    use crate::handshake::Subprotocol::{Burrow1, V3};
    use ProtocolError as E;

    fn typed(r#type: i32, ignorable: bool) -> Message {
        Message {
            r#type,
            ignorable,
            stream_id: 1,
            ..Default::default()
        }
    }

    /// (rule, sender, subprotocol, message, expected outcome)
    type Rule = (&'static str, Role, Subprotocol, Message, Result<Checked, E>);

    /// One row per rule of spec section 6 (and burrow's WINDOW_UPDATE rules).
    #[rustfmt::skip]
    fn rules() -> Vec<Rule> {
        use MessageType::*;
        let ok = |k| Ok(Checked::Known(k));
        let mut bad_credit = Message::window_update(1, "SSH1", 1, 5);
        bad_credit.payload = vec![0; 3].into();
        let mut strict_update = Message::window_update(1, "SSH1", 1, 5);
        strict_update.ignorable = false;
        vec![
            ("type 0", Src, V3, typed(0, false), Err(E::ZeroType)),
            ("type 0 even if ignorable", Dst, V3, typed(0, true), Err(E::ZeroType)),
            ("unknown type", Src, V3, typed(9, false), Err(E::UnknownType(9))),
            ("ignorable unknown type", Dst, V3, typed(9, true), Ok(Checked::Ignore)),
            ("destination STREAM_START", Dst, V3, Message::stream_start(1, "SSH1", 1), Err(E::DestinationSentStreamStart)),
            ("destination CONNECTION_START", Dst, V3, Message::connection_start(1, "SSH1", 2), Err(E::DestinationSentConnectionStart)),
            ("source STREAM_START", Src, V3, Message::stream_start(1, "SSH1", 1), ok(StreamStart)),
            ("source CONNECTION_START", Src, V3, Message::connection_start(1, "SSH1", 2), ok(ConnectionStart)),
            ("source SESSION_RESET", Src, V3, Message::session_reset(), Err(E::ClientSentSessionReset)),
            ("destination SESSION_RESET", Dst, V3, Message::session_reset(), Err(E::ClientSentSessionReset)),
            ("source SERVICE_IDS", Src, V3, Message::service_ids(["SSH1"]), Err(E::ClientSentServiceIds)),
            ("destination SERVICE_IDS", Dst, V3, Message::service_ids(["SSH1"]), Err(E::ClientSentServiceIds)),
            ("DATA streamId 0", Src, V3, Message::data(0, "SSH1", 1, &b"x"[..]), Err(E::ZeroStreamId)),
            ("STREAM_START streamId 0", Src, V3, Message::stream_start(0, "SSH1", 1), Err(E::ZeroStreamId)),
            ("STREAM_RESET streamId 0", Dst, V3, Message::stream_reset(0, "SSH1", 0), Err(E::ZeroStreamId)),
            ("CONNECTION_RESET streamId 0", Dst, V3, Message::connection_reset(0, "SSH1", 1), Err(E::ZeroStreamId)),
            ("unknown serviceId", Src, V3, Message::stream_start(1, "RDP", 1), Err(E::UnknownService("RDP".into()))),
            ("unknown serviceId on DATA", Dst, V3, Message::data(1, "RDP", 1, &b"x"[..]), Err(E::UnknownService("RDP".into()))),
            ("no serviceId (V1)", Src, V3, Message::stream_start(1, "", 0), ok(StreamStart)),
            ("DATA of 63 KiB", Dst, V3, Message::data(1, "SSH1", 1, vec![0; MAX_PAYLOAD]), ok(Data)),
            ("DATA over 63 KiB", Dst, V3, Message::data(1, "SSH1", 1, vec![0; MAX_PAYLOAD + 1]), Err(E::PayloadTooLarge)),
            ("WINDOW_UPDATE to a V3 broker", Src, V3, Message::window_update(1, "SSH1", 1, 5), Ok(Checked::Ignore)),
            ("WINDOW_UPDATE on Burrow1", Dst, Burrow1, Message::window_update(1, "SSH1", 1, 5), ok(WindowUpdate)),
            ("non-ignorable WINDOW_UPDATE on V3", Src, V3, strict_update.clone(), Err(E::UnknownType(100))),
            ("non-ignorable WINDOW_UPDATE on Burrow1", Src, Burrow1, strict_update, Err(E::InvalidWindowUpdate("not marked ignorable"))),
            ("3-byte credit", Src, Burrow1, bad_credit, Err(E::InvalidWindowUpdate("payload is not a 4-byte credit"))),
            ("WINDOW_UPDATE streamId 0", Src, Burrow1, Message::window_update(0, "SSH1", 1, 5), Err(E::ZeroStreamId)),
        ]
    }

    #[test]
    fn every_rule_of_section_6() {
        let services = vec!["SSH1".to_owned()];
        let table = rules();
        assert!(table.len() >= 20, "the rule table must not be empty");
        for (name, role, sub, msg, want) in table {
            assert_eq!(check(role, sub, &services, &msg), want, "rule: {name}");
        }
    }

    #[test]
    fn frame_errors_map_to_disconnect_reasons() {
        assert_eq!(E::from(FrameError::UnknownField(8)), E::UnknownField(8));
        assert_eq!(E::from(FrameError::PayloadTooLarge), E::PayloadTooLarge);
        assert_eq!(
            E::from(FrameError::TooLarge),
            E::Frame(FrameError::TooLarge)
        );
    }
}
