//! What is fixed at WebSocket upgrade time: the peer's [`Role`] (`local-proxy-mode`) and the
//! [`Subprotocol`] (`Sec-WebSocket-Protocol`).

use std::fmt;

/// Which end of the tunnel a peer is. The source opens streams; the destination accepts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Source,
    Destination,
}

impl Role {
    /// Parses the `local-proxy-mode` query value. Exact match: localproxy and aws-c-iot only
    /// ever send these lowercase spellings, and AWS rejects anything else.
    pub fn from_mode(mode: &str) -> Option<Self> {
        match mode {
            "source" => Some(Role::Source),
            "destination" => Some(Role::Destination),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Source => "source",
            Role::Destination => "destination",
        }
    }

    /// The other end of the tunnel.
    pub fn peer(self) -> Self {
        match self {
            Role::Source => Role::Destination,
            Role::Destination => Role::Source,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A WebSocket subprotocol the broker speaks, ordered from worst to best.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subprotocol {
    /// `aws.iot.securetunneling-1.0`: one stream, no serviceId.
    V1,
    /// `aws.iot.securetunneling-2.0`: streams multiplexed by serviceId.
    V2,
    /// `aws.iot.securetunneling-3.0`: V2 plus several connections per stream (connectionId).
    V3,
    /// `burrow.tunnel-1.0`: V3 plus WINDOW_UPDATE flow control (see `docs/protocol.md`).
    Burrow1,
}

impl Subprotocol {
    /// Every subprotocol, worst first.
    pub const ALL: [Subprotocol; 4] = [
        Subprotocol::V1,
        Subprotocol::V2,
        Subprotocol::V3,
        Subprotocol::Burrow1,
    ];

    /// Parses one token of `Sec-WebSocket-Protocol` (exact match, as the header is case-sensitive).
    pub fn parse(token: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == token)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Subprotocol::V1 => "aws.iot.securetunneling-1.0",
            Subprotocol::V2 => "aws.iot.securetunneling-2.0",
            Subprotocol::V3 => "aws.iot.securetunneling-3.0",
            Subprotocol::Burrow1 => "burrow.tunnel-1.0",
        }
    }

    /// Picks the best subprotocol among those a client offered (Burrow1 > V3 > V2 > V1).
    ///
    /// Each item may be a whole `Sec-WebSocket-Protocol` header value: comma-separated lists are
    /// split and trimmed, since clients may send one header with several values or several
    /// headers. Unknown tokens are ignored; `None` means the upgrade must be refused.
    pub fn negotiate<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        offered
            .into_iter()
            .flat_map(|value| value.split(','))
            .filter_map(|token| Self::parse(token.trim()))
            .max()
    }

    /// Whether WINDOW_UPDATE is part of this subprotocol.
    pub fn has_flow_control(self) -> bool {
        self == Subprotocol::Burrow1
    }

    /// Whether connectionId and the CONNECTION_* messages are part of this subprotocol.
    pub fn has_connection_ids(self) -> bool {
        self >= Subprotocol::V3
    }
}

impl fmt::Display for Subprotocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_their_mode() {
        for role in [Role::Source, Role::Destination] {
            assert_eq!(Role::from_mode(role.as_str()), Some(role));
            assert_ne!(role.peer(), role);
        }
        assert_eq!(Role::from_mode("Source"), None);
        assert_eq!(Role::from_mode(""), None);
    }

    #[test]
    fn subprotocols_round_trip_their_token() {
        for p in Subprotocol::ALL {
            assert_eq!(Subprotocol::parse(p.as_str()), Some(p));
        }
        assert_eq!(Subprotocol::parse("aws.iot.securetunneling-4.0"), None);
    }

    #[test]
    fn negotiate_picks_the_best_offer() {
        use Subprotocol::*;
        assert_eq!(
            Subprotocol::negotiate(["aws.iot.securetunneling-3.0"]),
            Some(V3)
        );
        let offered = ["aws.iot.securetunneling-2.0", "burrow.tunnel-1.0"];
        assert_eq!(Subprotocol::negotiate(offered), Some(Burrow1));
        let header = "aws.iot.securetunneling-1.0 , aws.iot.securetunneling-2.0,x";
        assert_eq!(Subprotocol::negotiate([header]), Some(V2));
        assert_eq!(Subprotocol::negotiate(["chat", "superchat"]), None);
        assert_eq!(Subprotocol::negotiate(std::iter::empty()), None);
    }

    #[test]
    fn only_burrow1_has_flow_control() {
        let with: Vec<_> = Subprotocol::ALL
            .into_iter()
            .filter(|p| p.has_flow_control())
            .collect();
        assert_eq!(with, vec![Subprotocol::Burrow1]);
        assert!(!Subprotocol::V2.has_connection_ids());
        assert!(Subprotocol::Burrow1.has_connection_ids());
    }
}
