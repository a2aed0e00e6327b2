//! The main port: one hyper server for the API, the broker's plain data plane and the tunnel
//! hosts. One parsed host per request decides: a tunnel host goes to the edge, anything else
//! to the API router. Connections per client are capped; shutdown drains in-flight requests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use burrow_device::mtls::SlotStream;
use burrow_edge::{server_builder, ConnLimiter, ConnPermit, Edge};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::certs::{wants_acme_tls, Challenges, HTTP01_PREFIX};

/// How long shutdown waits for in-flight requests before giving up on them.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// TLS handshakes that take longer than this are dropped (a slow-loris on the handshake).
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the main port until `stop`, then drains. With `tls`, every connection is TLS
/// (HTTP/2 or HTTP/1.1 by ALPN; TLS-ALPN-01 validations answered from `challenges`);
/// without, plain HTTP (development).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    challenges: Challenges,
    edge: Arc<Edge>,
    api: Router,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let limiter = Arc::new(ConnLimiter::new(edge.config().max_conns_per_client));
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    while let Some((mut stream, peer, permit)) = accept(&listener, &limiter, &mut stop).await {
        let edge = edge.clone();
        let api = api.clone();
        // Taken before the handshake, so a shutdown during it still ends the connection.
        let watcher = graceful.watcher();
        let tls = tls.clone();
        let challenges = challenges.clone();
        tokio::spawn(async move {
            let peer = match proxied_client(&mut stream, peer, &edge).await {
                Some(p) => p,
                None => return,
            };
            // The slot rides with the stream, into an upgraded WebSocket too.
            let stream = SlotStream::new(stream, Box::new(permit));
            match tls {
                None => serve_conn(stream, peer, edge, api, challenges, watcher).await,
                Some(config) => {
                    let handshake = tls_accept(stream, config, &challenges);
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Some(tls)) => {
                            serve_conn(tls, peer, edge, api, challenges, watcher).await
                        }
                        Ok(None) => tracing::debug!(%peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown: gave up waiting for in-flight requests");
    }
    Ok(())
}

/// The client of a connection: a trusted proxy's PROXY protocol header names it (when the
/// proxy sends one); otherwise it is the peer. `None`: a trusted proxy sent a broken header
/// (the connection is dropped).
async fn proxied_client(
    stream: &mut tokio::net::TcpStream,
    peer: SocketAddr,
    edge: &Edge,
) -> Option<SocketAddr> {
    let ip = peer.ip().to_canonical();
    let trusted = &edge.config().trusted_proxies;
    if !trusted.iter().any(|t| t.to_canonical() == ip) {
        return Some(peer);
    }
    match crate::proxy_protocol::read_client(stream, TLS_HANDSHAKE_TIMEOUT).await {
        Ok(client) => Some(client.unwrap_or(peer)),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "PROXY protocol header refused");
            None
        }
    }
}

/// The TLS handshake, after a look at the ClientHello: a CA's TLS-ALPN-01 validation gets the
/// challenge certificate of the name it asks for (and nothing else); everyone else the
/// listener's config. `None` when the handshake failed or was a validation.
async fn tls_accept<S>(
    stream: S,
    config: Arc<ServerConfig>,
    challenges: &Challenges,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = acceptor.await.ok()?;
    let hello = start.client_hello();
    if wants_acme_tls(&hello) {
        let name = hello.server_name()?.to_string();
        let cfg = challenges.tls_alpn01_config(&name).await?;
        // The validation ends with the handshake; the CA closes the connection.
        let _ = start.into_stream(cfg).await;
        return None;
    }
    start.into_stream(config).await.ok()
}

async fn serve_conn<S>(
    io: S,
    peer: SocketAddr,
    edge: Arc<Edge>,
    api: Router,
    challenges: Challenges,
    watcher: Watcher,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let builder = server_builder(edge.config());
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let edge = edge.clone();
        let api = api.clone();
        let challenges = challenges.clone();
        async move { Ok::<_, Infallible>(route(edge, api, &challenges, req, peer).await) }
    });
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), svc)
        .into_owned();
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The plain-HTTP listener of an HTTPS deployment: answers pending HTTP-01 validations and
/// redirects everything else to `https_port`.
pub async fn serve_redirect(
    listener: TcpListener,
    edge: Arc<Edge>,
    challenges: Challenges,
    https_port: u16,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let limiter = Arc::new(ConnLimiter::new(edge.config().max_conns_per_client));
    tokio::pin!(stop);
    while let Some((stream, _peer, permit)) = accept(&listener, &limiter, &mut stop).await {
        let edge = edge.clone();
        let builder = server_builder(edge.config());
        let challenges = challenges.clone();
        let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
            let edge = edge.clone();
            let challenges = challenges.clone();
            async move {
                if let Some(answer) = http01_answer(&challenges, &req).await {
                    return Ok::<_, Infallible>(answer);
                }
                Ok(edge.https_redirect(&req, https_port))
            }
        });
        tokio::spawn(async move {
            let _permit = permit;
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
    Ok(())
}

/// The next connection within the per-client cap (over-cap ones are dropped), or `None` once
/// `stop` fires.
async fn accept(
    listener: &TcpListener,
    limiter: &ConnLimiter,
    stop: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Option<(tokio::net::TcpStream, SocketAddr, ConnPermit)> {
    loop {
        let (stream, peer) = tokio::select! {
            () = stop.as_mut() => return None,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: keep serving the connections we have.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(permit) = limiter.try_acquire(peer.ip()) else {
            tracing::debug!(%peer, "connection refused: per-client cap");
            continue;
        };
        // Small responses and WebSocket frames go out at once.
        let _ = stream.set_nodelay(true);
        return Some((stream, peer, permit));
    }
}

/// The answer to an ACME HTTP-01 validation, when one is pending for the requested token
/// (otherwise the request goes on as any other, to the tunnel or the API).
async fn http01_answer<B>(
    challenges: &Challenges,
    req: &Request<B>,
) -> Option<hyper::Response<Body>> {
    let token = req.uri().path().strip_prefix(HTTP01_PREFIX)?;
    if req.method() != http::Method::GET {
        return None;
    }
    let answer = challenges.http01(token).await?;
    hyper::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Body::from(answer))
        .ok()
}

async fn route(
    edge: Arc<Edge>,
    api: Router,
    challenges: &Challenges,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> hyper::Response<Body> {
    if let Some(answer) = http01_answer(challenges, &req).await {
        return answer;
    }
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    // Behind a trusted proxy, the client is the one it forwards for.
    let forwarded =
        burrow_api::forwarded_client(req.headers(), peer.ip(), &edge.config().trusted_proxies);
    if edge.tunnel_host(&host).is_some() {
        let client = forwarded.map_or(peer, |ip| SocketAddr::new(ip, peer.port()));
        return edge.handle(req, client).await;
    }
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(ConnectInfo(peer));
    if let Some(ip) = forwarded {
        req.extensions_mut().insert(burrow_api::ForwardedClient(ip));
    }
    match api.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}
