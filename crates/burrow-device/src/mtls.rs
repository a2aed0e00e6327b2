//! The device listener: TLS that requires a client certificate chained to the device CA, and
//! an accept loop that hands each request the verified peer certificate.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use burrow_identity::mtls::crypto_provider;

use crate::ca::DeviceCa;
use crate::error::{DeviceError, Result};
use crate::identity::PeerCertificate;

/// A slow or silent client must not hold a task forever before it has even said hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request heads must arrive promptly; long-polls wait *after* the head, so this is safe.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// On shutdown, in-flight requests (long-polls up to 60 s) get this long to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A verifier that requires a client certificate chaining to `ca` and valid now (rustls
/// checks the validity period, so an expired device certificate fails the handshake).
pub fn client_verifier(ca: &DeviceCa) -> Result<Arc<dyn ClientCertVerifier>> {
    WebPkiClientVerifier::builder_with_provider(Arc::new(ca.root_store()), crypto_provider())
        .build()
        .map_err(|e| DeviceError::InvalidCa(e.to_string()))
}

/// The device listener's TLS config: server leaf for `hostnames` signed by `ca`, client
/// certificates required and verified against `ca`, ALPN http/1.1.
pub fn server_config(ca: &DeviceCa, hostnames: &[String]) -> Result<Arc<ServerConfig>> {
    ca.server_config(hostnames, client_verifier(ca)?)
}

/// Accepts TLS connections on `listener` and serves `router` on each (HTTP/1.1), with the
/// verified client certificate as a [`PeerCertificate`] extension and the TCP peer as
/// `ConnectInfo<SocketAddr>` on every request. Returns once `shutdown` resolves and open
/// connections have drained (at most a few seconds).
pub async fn serve_device_listener<F>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_device_listener_admitting(listener, tls, router, shutdown, |_| Some(Box::new(()))).await
}

/// A connection slot held for as long as the connection is open (dropped when it ends).
pub type ConnSlot = Box<dyn Send>;

/// A stream that carries its connection slot. The slot goes wherever the stream goes: after
/// a WebSocket upgrade (the broker's `/tunnel`, a client's WebSocket through the edge), hyper
/// hands the stream to the WebSocket's task and the connection task ends, so a slot held by
/// that task would free the address's place while the WebSocket stays open.
pub struct SlotStream<S> {
    io: S,
    _slot: ConnSlot,
}

impl<S> SlotStream<S> {
    pub fn new(stream: S, slot: ConnSlot) -> Self {
        SlotStream {
            io: stream,
            _slot: slot,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for SlotStream<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for SlotStream<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// [`serve_device_listener`] where `admit(peer ip)` decides, before the TLS handshake, whether
/// a connection is served: `None` closes it at once (a per-address connection cap), `Some`
/// holds a slot until the connection ends, a tunnel WebSocket upgraded from it included.
pub async fn serve_device_listener_admitting<F, A>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    router: Router,
    shutdown: F,
    admit: A,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
    A: Fn(std::net::IpAddr) -> Option<ConnSlot>,
{
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the listener is fine.
                    tracing::warn!(error = %e, "device listener accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = admit(peer.ip()) else {
            tracing::debug!(%peer, "device connection refused: per-address cap");
            continue;
        };
        // The tunnel WebSocket carries small request/response frames: without this, Nagle
        // holds a frame back until the previous one is acknowledged (delayed ACK: up to 40 ms).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        let tcp = SlotStream::new(tcp, slot);
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "device TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "device TLS handshake timed out");
                    return;
                }
            };
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| PeerCertificate(c.to_vec()));
            let svc = router.map_request(move |mut req: http::Request<Incoming>| {
                if let Some(cert) = &cert {
                    req.extensions_mut().insert(cert.clone());
                }
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
            // With upgrades: the broker's `/tunnel` WebSocket is served on this port too.
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            let builder = builder.http1_only();
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), TowerToHyperService::new(svc));
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "device connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("device listener: connections still open after drain timeout");
    }
    Ok(())
}
