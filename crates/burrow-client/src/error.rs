//! Errors and end states of a tunnel session.

/// Why a session could not start or ended abnormally. `Clone` so that every waiter of a
/// session gets the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The broker refused the upgrade with a 4xx: do not retry with the same token.
    #[error("handshake rejected with {status}: {body}")]
    HandshakeRejected { status: u16, body: String },
    /// The broker answered 5xx, or the TCP/TLS/WebSocket handshake failed: worth retrying.
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The broker sent something this client cannot accept (e.g. an unsupported subprotocol,
    /// a text frame, a malformed frame).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The WebSocket dropped without a close frame (a network fault): worth reconnecting.
    #[error("connection lost: {0}")]
    ConnectionLost(String),
    /// The tunnel has no such service, or the session cannot open a connection now.
    #[error("cannot open a connection: {0}")]
    Open(String),
    #[error("local I/O error: {0}")]
    Io(String),
}

impl From<std::io::Error> for ClientError {
    fn from(err: std::io::Error) -> Self {
        ClientError::Io(err.to_string())
    }
}

/// The close frame that ended a session (the broker closes with 1000 when the tunnel is
/// closed or expires, or when this peer was replaced).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: String,
}
