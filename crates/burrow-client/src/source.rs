//! The source peer: opens connections to the tunnel's services, for local TCP clients
//! (`listen`, what `localproxy -s` does) or in memory (`open_stream`).

use std::sync::Arc;

use burrow_proto::{Message, Role, Subprotocol};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::ClientConfig;
use crate::conn::{new_conn, spawn_pipe, Wire};
use crate::destination::Targets;
use crate::error::{ClientError, CloseReason};
use crate::session::{lock, start, Shared};

const DUPLEX_BUFFER: usize = 64 * 1024;

/// A connected source peer.
pub struct SourceClient {
    shared: Arc<Shared>,
    /// Serialises opening, so start messages leave in the order their ids were allocated.
    open_lock: tokio::sync::Mutex<()>,
}

impl SourceClient {
    /// Connects as the source and returns once the broker sent SERVICE_IDS.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let shared = start(config, Role::Source, Targets::new()).await?;
        Ok(SourceClient {
            shared,
            open_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn subprotocol(&self) -> Subprotocol {
        self.shared.subprotocol
    }

    pub fn services(&self) -> Vec<String> {
        self.shared.services()
    }

    pub async fn wait(&self) -> Result<CloseReason, ClientError> {
        self.shared.wait().await
    }

    pub fn close(&self) {
        self.shared.close();
    }

    /// Opens one connection to `service` and answers it as an in-memory byte stream.
    pub async fn open_stream(&self, service: &str) -> Result<DuplexStream, ClientError> {
        let (user, ours) = tokio::io::duplex(DUPLEX_BUFFER);
        self.open_with(service, ours).await?;
        Ok(user)
    }

    /// Accepts local TCP connections and carries each over its own tunnel connection, until
    /// the session ends. `service` may be omitted when the tunnel has at most one service.
    /// With V1/V2 (one connection per service at a time) the next client is accepted once
    /// the previous one is done.
    pub async fn listen(
        &self,
        service: Option<&str>,
        listener: TcpListener,
    ) -> Result<CloseReason, ClientError> {
        let service = match service {
            Some(s) => s.to_owned(),
            None => match self.services().as_slice() {
                [] => String::new(),
                [only] => only.clone(),
                _ => {
                    return Err(ClientError::Open(
                        "the tunnel has several services; name one".into(),
                    ))
                }
            },
        };
        let one_at_a_time = !self.subprotocol().has_connection_ids();
        loop {
            let accepted = tokio::select! {
                _ = self.shared.ended.cancelled() => return self.wait().await,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = accepted?;
            let _ = tcp.set_nodelay(true);
            tracing::debug!(%peer, service = %service, "local client accepted");
            let done = self.open_with(&service, tcp).await?;
            if one_at_a_time {
                tokio::select! {
                    _ = self.shared.ended.cancelled() => return self.wait().await,
                    _ = done => {}
                }
            }
        }
    }

    async fn open_with<S>(&self, service: &str, io: S) -> Result<JoinHandle<()>, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let shared = &self.shared;
        let subprotocol = shared.subprotocol;
        let services = shared.services();
        let service_id = if subprotocol == Subprotocol::V1 || services.is_empty() {
            String::new()
        } else if services.iter().any(|s| s == service) {
            service.to_owned()
        } else {
            return Err(ClientError::Open(format!(
                "{service:?} is not a service of the tunnel"
            )));
        };
        let wire = if subprotocol.has_connection_ids() {
            Wire::V3
        } else {
            Wire::Stream
        };
        let _open = self.open_lock.lock().await;
        let (start, key, pending) = {
            let mut state = lock(&shared.state);
            let current = state.active.get(&service_id).copied();
            let (start, key) = match (wire, current) {
                (Wire::V3, Some(sid)) => {
                    let cid = state.ids.next_connection(&service_id);
                    (
                        Message::connection_start(sid, service_id.clone(), cid),
                        (service_id.clone(), sid, cid),
                    )
                }
                (Wire::V3, None) => {
                    let sid = state.ids.next_stream(&service_id);
                    let cid = state.ids.next_connection(&service_id);
                    state.active.insert(service_id.clone(), sid);
                    (
                        Message::stream_start(sid, service_id.clone(), cid),
                        (service_id.clone(), sid, cid),
                    )
                }
                (Wire::Stream, _) => {
                    // A new stream replaces the previous one of the service (and ends it).
                    let sid = state.ids.next_stream(&service_id);
                    state.close_where(|k| k.0 == service_id);
                    state.active.insert(service_id.clone(), sid);
                    (
                        Message::stream_start(sid, service_id.clone(), 0),
                        (service_id.clone(), sid, 1),
                    )
                }
            };
            let (conn, pending) = new_conn(subprotocol.has_flow_control());
            state.conns.insert(key.clone(), conn);
            (start, key, pending)
        };
        if !shared.send(&start).await {
            lock(&shared.state).conns.remove(&key);
            return Err(self
                .wait()
                .await
                .err()
                .unwrap_or(ClientError::Open("session ended".into())));
        }
        Ok(spawn_pipe(shared.clone(), key, wire, io, pending))
    }
}

impl Drop for SourceClient {
    fn drop(&mut self) {
        self.shared.close();
    }
}
