//! The PROXY protocol (HAProxy's, v1 text and v2 binary) on connections from
//! `trusted_proxies`: a load balancer that speaks it tells the real client's address before
//! the first byte of HTTP or TLS. Detected, not required: a trusted proxy that does not send a
//! header is served as before. Connections from anyone else are never read for one, so the
//! address cannot be forged from outside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header (the spec's 107 bytes).
const V1_MAX: usize = 107;
/// v2 address blocks plus TLVs we accept (the spec allows up to 64 KiB; proxies send < 1 KiB).
const V2_MAX_BODY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("malformed PROXY protocol header")]
    Malformed,
    #[error("PROXY protocol header not received in time")]
    Timeout,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the start of a connection is, as far as its first bytes tell.
#[derive(Debug, PartialEq, Eq)]
enum Start {
    V1,
    V2,
    Other,
    /// Too few bytes yet to tell.
    Unsure,
}

fn classify(b: &[u8]) -> Start {
    let matches = |sig: &[u8]| {
        let n = b.len().min(sig.len());
        b[..n] == sig[..n]
    };
    if matches(V2_SIGNATURE) {
        if b.len() >= V2_SIGNATURE.len() {
            Start::V2
        } else {
            Start::Unsure
        }
    } else if matches(V1_PREFIX) {
        if b.len() >= V1_PREFIX.len() {
            Start::V1
        } else {
            Start::Unsure
        }
    } else {
        Start::Other
    }
}

/// Reads a PROXY header if the connection starts with one (consuming exactly the header):
/// the client it names, or `None` when there is no header or it names no address (`LOCAL`,
/// `UNKNOWN`, a non-IP family): then the peer is the client.
pub async fn read_client(
    stream: &mut TcpStream,
    wait: Duration,
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    tokio::time::timeout(wait, read_inner(stream))
        .await
        .map_err(|_| ProxyHeaderError::Timeout)?
}

async fn read_inner(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut buf = [0u8; V1_MAX];
    // Proxies send the header in one segment; a few more peeks cover one that was split.
    let kind = loop {
        let n = stream.peek(&mut buf[..16]).await?;
        if n == 0 {
            return Ok(None);
        }
        match classify(&buf[..n]) {
            Start::Unsure => tokio::time::sleep(Duration::from_millis(5)).await,
            other => break other,
        }
    };
    match kind {
        Start::V1 => read_v1(stream, &mut buf).await,
        Start::V2 => read_v2(stream).await,
        _ => Ok(None),
    }
}

async fn read_v1(
    stream: &mut TcpStream,
    buf: &mut [u8; V1_MAX],
) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let end = loop {
        let n = stream.peek(buf).await?;
        if let Some(i) = buf[..n].windows(2).position(|w| w == b"\r\n") {
            break i + 2;
        }
        if n >= V1_MAX {
            return Err(ProxyHeaderError::Malformed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut line = vec![0u8; end];
    stream.read_exact(&mut line).await?;
    parse_v1(&line)
}

fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let text = std::str::from_utf8(line).map_err(|_| ProxyHeaderError::Malformed)?;
    let text = text
        .strip_suffix("\r\n")
        .ok_or(ProxyHeaderError::Malformed)?;
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(None),
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, _dst, sport, _dport] => {
            let ip: IpAddr = src.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            if (*fam == "TCP4") != ip.is_ipv4() {
                return Err(ProxyHeaderError::Malformed);
            }
            let port: u16 = sport.parse().map_err(|_| ProxyHeaderError::Malformed)?;
            Ok(Some(SocketAddr::new(ip, port)))
        }
        _ => Err(ProxyHeaderError::Malformed),
    }
}

async fn read_v2(stream: &mut TcpStream) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).await?;
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if len > V2_MAX_BODY {
        return Err(ProxyHeaderError::Malformed);
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    parse_v2(&head, &body)
}

fn parse_v2(head: &[u8; 16], body: &[u8]) -> Result<Option<SocketAddr>, ProxyHeaderError> {
    let (version, command) = (head[12] >> 4, head[12] & 0x0f);
    if version != 2 || command > 1 {
        return Err(ProxyHeaderError::Malformed);
    }
    if command == 0 {
        // LOCAL: the proxy's own connection (a health check).
        return Ok(None);
    }
    let at = |i: usize| body.get(i).copied().ok_or(ProxyHeaderError::Malformed);
    let port = |i: usize| -> Result<u16, ProxyHeaderError> {
        Ok(u16::from_be_bytes([at(i)?, at(i + 1)?]))
    };
    match head[13] >> 4 {
        1 => {
            let ip = Ipv4Addr::new(at(0)?, at(1)?, at(2)?, at(3)?);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port(8)?)))
        }
        2 => {
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = at(i)?;
            }
            Ok(Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(octets)),
                port(32)?,
            )))
        }
        // AF_UNSPEC or AF_UNIX: no IP address to take.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_proxy_headers_from_http_and_tls() {
        assert_eq!(classify(b"PROXY TCP4"), Start::V1);
        assert_eq!(classify(b"PRO"), Start::Unsure);
        assert_eq!(classify(b"POST / HTTP/1.1"), Start::Other);
        assert_eq!(classify(b"PUT /"), Start::Other);
        assert_eq!(classify(b"\x16\x03\x01"), Start::Other);
        assert_eq!(classify(V2_SIGNATURE), Start::V2);
        assert_eq!(classify(b"\r\n\r\n"), Start::Unsure);
        assert_eq!(classify(b"GET /"), Start::Other);
    }

    #[test]
    fn parses_v1() {
        let got = parse_v1(b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 443\r\n").expect("ok");
        assert_eq!(got, Some("192.0.2.7:5555".parse().expect("addr")));
        let got = parse_v1(b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n").expect("ok");
        assert_eq!(got, Some("[2001:db8::7]:5555".parse().expect("addr")));
        assert_eq!(parse_v1(b"PROXY UNKNOWN\r\n").expect("ok"), None);
        for bad in [
            &b"PROXY TCP4 2001:db8::7 10.0.0.1 5555 443\r\n"[..],
            b"PROXY TCP4 nope 10.0.0.1 5555 443\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 99999 443\r\n",
            b"PROXY TCP4 192.0.2.7\r\n",
            b"PROXY TCP4 192.0.2.7 10.0.0.1 5555 443",
        ] {
            assert!(parse_v1(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn parses_v2() {
        let mut head = [0u8; 16];
        head[..12].copy_from_slice(V2_SIGNATURE);
        head[12] = 0x21;
        head[13] = 0x11;
        let body = [192, 0, 2, 9, 10, 0, 0, 1, 0x15, 0xb3, 1, 187];
        assert_eq!(
            parse_v2(&head, &body).expect("ok"),
            Some("192.0.2.9:5555".parse().expect("addr"))
        );
        assert!(parse_v2(&head, &body[..5]).is_err(), "short");
        head[12] = 0x20;
        assert_eq!(parse_v2(&head, &body).expect("local"), None);
        head[12] = 0x31;
        assert!(parse_v2(&head, &body).is_err(), "version 3");
        head[12] = 0x21;
        head[13] = 0x21;
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0u8; 11]);
        v6.push(7);
        v6.extend([0u8; 16]);
        v6.extend([0x15, 0xb3, 1, 187]);
        assert_eq!(
            parse_v2(&head, &v6).expect("v6"),
            Some("[2001:db8::7]:5555".parse().expect("addr"))
        );
    }
}
