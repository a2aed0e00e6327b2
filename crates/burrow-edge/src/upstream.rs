//! Opening one HTTP/1.1 connection to a device's service: dial the tunnel (in-process source),
//! idle timeout on the stream, TLS for `https`/`wss`, hyper client handshake.

use std::io;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;

use crate::dialer::{DialError, TunnelDialer, TunnelIo};
use crate::idle::IdleIo;
use crate::pages::EdgeError;
use crate::pool::Sender;
use crate::tls;

pub struct Target<'a> {
    pub tunnel_id: &'a str,
    pub service: &'a str,
    pub tls: bool,
    pub last_seen: Option<burrow_store::Timestamp>,
}

pub struct Connector {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub tls: Option<TlsConnector>,
}

fn reset_like(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

impl Connector {
    pub async fn open(
        &self,
        dialer: &dyn TunnelDialer,
        t: &Target<'_>,
    ) -> Result<Sender, EdgeError> {
        let dialed =
            tokio::time::timeout(self.connect_timeout, dialer.dial(t.tunnel_id, t.service));
        let io: Box<dyn TunnelIo> = match dialed.await {
            Err(_) => return Err(EdgeError::Timeout),
            Ok(Err(DialError::DeviceOffline)) => {
                return Err(EdgeError::Offline {
                    last_seen: t.last_seen,
                })
            }
            Ok(Err(DialError::Refused)) => return Err(EdgeError::Refused),
            Ok(Err(DialError::Other(e))) => {
                tracing::debug!(tunnel = t.tunnel_id, error = %e, "edge: dial failed");
                return Err(EdgeError::BadGateway(
                    "could not open a connection through the tunnel",
                ));
            }
            Ok(Ok(io)) => io,
        };
        let io = IdleIo::new(io, self.idle_timeout);
        let io: Box<dyn TunnelIo> = if t.tls {
            let Some(connector) = &self.tls else {
                return Err(EdgeError::BadGateway(
                    "TLS to the device's service is not configured",
                ));
            };
            let hs = tokio::time::timeout(
                self.connect_timeout,
                connector.connect(tls::server_name(), io),
            );
            match hs.await {
                Err(_) => return Err(EdgeError::Timeout),
                Ok(Err(e)) if reset_like(&e) => return Err(EdgeError::Refused),
                Ok(Err(e)) => {
                    tracing::debug!(tunnel = t.tunnel_id, error = %e, "edge: upstream TLS failed");
                    return Err(EdgeError::BadGateway(
                        "TLS handshake with the device's local service failed",
                    ));
                }
                Ok(Ok(s)) => Box::new(s),
            }
        } else {
            Box::new(io)
        };
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(io))
            .await
            .map_err(|_| {
                EdgeError::BadGateway("HTTP handshake with the device's service failed")
            })?;
        let tunnel = t.tunnel_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(tunnel, error = %e, "edge: tunnel connection ended");
            }
        });
        Ok(sender)
    }
}

/// What a failed exchange with the device's service means for the client.
pub fn classify(e: &hyper::Error) -> EdgeError {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::TimedOut {
                return EdgeError::Timeout;
            }
        }
        src = s.source();
    }
    if e.is_timeout() {
        EdgeError::Timeout
    } else if e.is_parse() || e.is_parse_status() {
        EdgeError::BadGateway("the device's local service sent an invalid HTTP response")
    } else {
        EdgeError::Refused
    }
}
