//! Relaying one validated frame from a peer to the other side of its tunnel.
//!
//! Shared by WebSocket peers and the in-process source, so that both get the same checks,
//! the same answers when the other side is absent, and the same flow-control handling.

use burrow_proto::{Frame, Message, MessageType, ProtocolError, Role, Verdict};

use crate::hub::{lock, Hub, Peer};

/// Validates `frame` against the sender's state and relays its raw bytes, unchanged, to the
/// other peer. `Err` means the sender broke the protocol and must be disconnected; `Drop`
/// means the message was valid but stale (not relayed).
///
/// When the other side is absent, DATA is dropped and a STREAM_START / CONNECTION_START is
/// answered with STREAM_RESET / CONNECTION_RESET so that the source closes its TCP
/// connection at once (spec section 7.5, burrow's choice).
///
/// Flow control: a Burrow1 sender spends credit on every DATA payload. When the other side
/// does not hand credit back (an AWS peer, or nobody), the broker does: it grants the payload
/// size back as soon as the frame is queued for the other side (or dropped), so the sender
/// is paced by the broker's bounded queue instead of stalling forever.
pub(crate) async fn relay(hub: &Hub, from: &Peer, frame: Frame) -> Result<Verdict, ProtocolError> {
    let msg = &frame.message;
    if lock(&from.state).on_message(msg)? == Verdict::Drop {
        return Ok(Verdict::Drop);
    }
    let kind = msg.kind()?;
    let to = hub.peer(from.role.peer());
    let delivered = match &to {
        Some(to) => to.deliver(frame.raw.clone(), msg).await,
        None => false,
    };
    if !delivered && from.role == Role::Source {
        let answer = match kind {
            MessageType::StreamStart => Some(Message::stream_reset(
                msg.stream_id,
                msg.service_id.clone(),
                msg.connection_id,
            )),
            MessageType::ConnectionStart => Some(Message::connection_reset(
                msg.stream_id,
                msg.service_id.clone(),
                msg.connection_id,
            )),
            _ => None,
        };
        if let Some(answer) = answer {
            from.send(&answer).await;
        }
    }
    let peer_grants_credit = delivered && to.as_ref().is_some_and(|t| t.flow_control());
    if kind == MessageType::Data && from.flow_control() && !peer_grants_credit {
        let credit = u32::try_from(msg.payload.len()).unwrap_or(u32::MAX);
        if credit > 0 {
            let update = Message::window_update(
                msg.stream_id,
                msg.service_id.clone(),
                msg.connection_id,
                credit,
            );
            from.send(&update).await;
        }
    }
    Ok(Verdict::Forward)
}
