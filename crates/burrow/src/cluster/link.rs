//! The node-to-node link: how a node reaches a device whose agent is connected to another
//! node. Mutual TLS with certificates of the cluster's link CA (sealed in the database under
//! the cluster key, so only a node holding the key file gets one; a device certificate is
//! from another CA and opens nothing here). One TLS connection per forwarded stream:
//!
//! ```text
//! client: BURROW-LINK/1 DIAL <tunnel_id> <service>\n
//! server: OK\n | OFFLINE\n | ERROR <reason>\n
//! then, after OK: the raw bytes of the stream, both ways, until either side closes.
//!
//! client: BURROW-LINK/1 STATS <tunnel_id>\n      (a rotation's drain, run on another node)
//! server: OPEN <connections open through the tunnel here>\n
//!
//! client: BURROW-LINK/1 HTTP\n                    (a source peer another node received)
//! server: OK\n, then HTTP/1.1 on the stream: the broker's link routes (`/link/source`)
//! ```
//!
//! The server only dials destinations connected to itself (never forwards again), so a
//! stale presence record costs one OFFLINE, never a loop. Backpressure is TCP's: the bytes
//! are copied with bounded buffers, nothing is held whole.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use burrow_broker::{Broker, BrokerError};
use burrow_device::DeviceCa;
use burrow_edge::{DialError, TunnelIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::link_streams::LinkStreams;

const MAGIC: &str = "BURROW-LINK/1";
/// A request or answer line is short; anything longer is not a node of this cluster.
const MAX_LINE: usize = 512;
/// Handshake (TLS and the request line) of one link connection.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// Forwarded streams one node serves at once.
const MAX_STREAMS: usize = 16_384;
const ALPN: &[u8] = b"burrow-link/1";

/// This node's TLS identity on the link, both directions.
pub struct LinkTls {
    pub acceptor: TlsAcceptor,
    pub connector: TlsConnector,
}

impl LinkTls {
    /// A fresh certificate for `hosts` (what other nodes dial) from the link CA.
    pub fn new(link_ca: &DeviceCa, hosts: &[String]) -> anyhow::Result<LinkTls> {
        let provider = burrow_device::mtls::crypto_provider();
        let roots = Arc::new(link_ca.root_store());
        let (chain, key) = link_ca.issue_node_cert(hosts)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())?;
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(LinkTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// Tunnel ids and service names travel as single tokens of this line protocol.
fn is_token(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// What a link connection asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    Dial { tunnel: String, service: String },
    Stats { tunnel: String },
    Http,
}

impl Request {
    fn parse(line: &str) -> Option<Request> {
        let words: Vec<&str> = line.split(' ').collect();
        match words.as_slice() {
            [MAGIC, "DIAL", tunnel, service] if is_token(tunnel) && is_token(service) => {
                Some(Request::Dial {
                    tunnel: tunnel.to_string(),
                    service: service.to_string(),
                })
            }
            [MAGIC, "STATS", tunnel] if is_token(tunnel) => Some(Request::Stats {
                tunnel: tunnel.to_string(),
            }),
            [MAGIC, "HTTP"] => Some(Request::Http),
            _ => None,
        }
    }
}

/// Reads one `\n`-terminated line of at most [`MAX_LINE`] bytes.
async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<String> {
    let mut line = Vec::with_capacity(64);
    let mut limited = (&mut *r).take(MAX_LINE as u64);
    limited.read_until(b'\n', &mut line).await?;
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "link: line missing or too long",
        ));
    }
    line.pop();
    String::from_utf8(line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "link: not UTF-8"))
}

/// Serves the link until `stop`: each connection asks for one stream to a device connected
/// to this node's broker.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    broker: Arc<Broker>,
    streams: Arc<LinkStreams>,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(MAX_STREAMS));
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "cluster link: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "cluster link: too many streams; refusing one");
            continue;
        };
        let acceptor = acceptor.clone();
        let broker = broker.clone();
        let streams = streams.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_one(tcp, acceptor, broker, streams).await {
                tracing::debug!(%peer, error = %e, "cluster link: connection ended");
            }
            drop(permit);
        });
    }
}

async fn serve_one(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    broker: Arc<Broker>,
    streams: Arc<LinkStreams>,
) -> anyhow::Result<()> {
    let _ = tcp.set_nodelay(true);
    let (mut conn, request) = tokio::time::timeout(HANDSHAKE, async {
        let tls = acceptor.accept(tcp).await.context("TLS")?;
        let mut conn = BufReader::new(tls);
        let line = read_line(&mut conn).await?;
        let request = Request::parse(&line).context("not a link request")?;
        Ok::<_, anyhow::Error>((conn, request))
    })
    .await
    .context("handshake timed out")??;
    let (tunnel_id, service) = match request {
        Request::Dial { tunnel, service } => (tunnel, service),
        Request::Stats { tunnel } => {
            let open = broker
                .tunnel_stats(&tunnel)
                .filter(|s| s.destination_connected)
                .map_or(0, |s| s.open_connections);
            conn.write_all(format!("OPEN {open}\n").as_bytes()).await?;
            conn.shutdown().await?;
            return Ok(());
        }
        Request::Http => {
            conn.write_all(b"OK\n").await?;
            conn.flush().await?;
            let router = broker.link_router();
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    tower::ServiceExt::oneshot(router.clone(), req.map(axum::body::Body::new))
                });
            hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                .with_upgrades()
                .await?;
            return Ok(());
        }
    };
    let mut stream = match broker.connect_source(&tunnel_id, &service).await {
        Ok(s) => s,
        Err(e) => {
            let answer = match e {
                BrokerError::NotConnected => "OFFLINE\n".to_string(),
                other => format!("ERROR {}\n", one_line(&other.to_string())),
            };
            conn.write_all(answer.as_bytes()).await?;
            conn.shutdown().await?;
            return Ok(());
        }
    };
    conn.write_all(b"OK\n").await?;
    conn.flush().await?;
    let reg = streams.register();
    let mut conn = streams.track(conn, &reg);
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut conn, &mut stream) => { copied?; }
        // A draining node closes streams that sit idle (parked keep-alive connections).
        () = reg.close.notified() => { let _ = conn.shutdown().await; }
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// `https://host:port` of a node, parsed into what the link dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddr {
    pub host: String,
    pub port: u16,
}

impl NodeAddr {
    /// `https://host:port` (an IPv6 host in brackets); anything else is `None`.
    pub fn parse(url: &str) -> Option<NodeAddr> {
        let uri: http::Uri = url.parse().ok()?;
        if uri.scheme_str() != Some("https") || uri.path().len() > 1 {
            return None;
        }
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
        Some(NodeAddr {
            host: host.to_string(),
            port: uri.port_u16().unwrap_or(443),
        })
    }

    fn server_name(&self) -> anyhow::Result<ServerName<'static>> {
        ServerName::try_from(self.host.clone()).context("cluster_url host")
    }
}

/// Opens one stream to `service` of `tunnel_id` through the node at `node`, whose broker
/// holds the tunnel's destination.
pub async fn dial(
    connector: &TlsConnector,
    node: &NodeAddr,
    tunnel_id: &str,
    service: &str,
) -> Result<Box<dyn TunnelIo>, DialError> {
    if !is_token(tunnel_id) || !is_token(service) {
        return Err(DialError::Other("bad tunnel or service name".into()));
    }
    let other = |e: &dyn std::fmt::Display| DialError::Other(format!("cluster link: {e}"));
    let (conn, answer) = ask(connector, node, &format!("DIAL {tunnel_id} {service}"))
        .await
        .map_err(|e| other(&format!("{e:#}")))?;
    match answer.as_str() {
        // Bytes the device sent right after OK stay in the reader's buffer: it is the stream.
        "OK" => Ok(Box::new(conn)),
        "OFFLINE" => Err(DialError::DeviceOffline),
        e => Err(other(&e)),
    }
}

/// Connections open through `tunnel_id` on the node at `node` (which holds its device).
pub async fn open_connections(
    connector: &TlsConnector,
    node: &NodeAddr,
    tunnel_id: &str,
) -> anyhow::Result<usize> {
    anyhow::ensure!(is_token(tunnel_id), "bad tunnel id");
    let (_, answer) = ask(connector, node, &format!("STATS {tunnel_id}")).await?;
    answer
        .strip_prefix("OPEN ")
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected answer {answer:?}"))
}

/// A link connection to `node` speaking HTTP/1.1 to its link routes (after `HTTP`/`OK`).
pub async fn http(
    connector: &TlsConnector,
    node: &NodeAddr,
) -> anyhow::Result<BufReader<tokio_rustls::client::TlsStream<TcpStream>>> {
    let (conn, answer) = ask(connector, node, "HTTP").await?;
    anyhow::ensure!(answer == "OK", "unexpected answer {answer:?}");
    Ok(conn)
}

/// Opens a link connection to `node`, sends `request`, and reads the answer line.
async fn ask(
    connector: &TlsConnector,
    node: &NodeAddr,
    request: &str,
) -> anyhow::Result<(
    BufReader<tokio_rustls::client::TlsStream<TcpStream>>,
    String,
)> {
    let name = node.server_name()?;
    tokio::time::timeout(HANDSHAKE, async {
        let tcp = TcpStream::connect((node.host.as_str(), node.port)).await?;
        let _ = tcp.set_nodelay(true);
        let mut tls = connector.connect(name, tcp).await?;
        tls.write_all(format!("{MAGIC} {request}\n").as_bytes())
            .await?;
        tls.flush().await?;
        let mut conn = BufReader::new(tls);
        let answer = read_line(&mut conn).await?;
        Ok::<_, std::io::Error>((conn, answer))
    })
    .await
    .context("timed out")?
    .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses() {
        assert_eq!(
            NodeAddr::parse("https://10.0.0.2:8702"),
            Some(NodeAddr {
                host: "10.0.0.2".into(),
                port: 8702
            })
        );
        assert_eq!(
            NodeAddr::parse("https://[::1]:9/"),
            Some(NodeAddr {
                host: "::1".into(),
                port: 9
            })
        );
        assert_eq!(
            NodeAddr::parse("https://node-2.internal").map(|a| a.port),
            Some(443)
        );
        assert_eq!(NodeAddr::parse("http://node-2:1"), None);
        assert_eq!(NodeAddr::parse("https://node-2:1/x"), None);
    }

    #[test]
    fn requests() {
        assert_eq!(
            Request::parse("BURROW-LINK/1 DIAL t-1 HTTP-80"),
            Some(Request::Dial {
                tunnel: "t-1".into(),
                service: "HTTP-80".into()
            })
        );
        assert_eq!(
            Request::parse("BURROW-LINK/1 STATS t-1"),
            Some(Request::Stats {
                tunnel: "t-1".into()
            })
        );
        assert_eq!(Request::parse("BURROW-LINK/1 DIAL t-1"), None);
        assert_eq!(Request::parse("BURROW-LINK/2 STATS t-1"), None);
        assert_eq!(Request::parse("BURROW-LINK/1 STATS  t-1"), None);
        assert_eq!(Request::parse("GET / HTTP/1.1"), None);
    }

    #[test]
    fn tokens() {
        assert!(is_token("7f0c-aa"));
        assert!(is_token("HTTP-8080"));
        assert!(!is_token(""));
        assert!(!is_token("a b"));
        assert!(!is_token(&"x".repeat(129)));
    }
}
