//! Request limits: header size and count (431), URI length (414), the hyper server settings
//! that enforce them on the wire, and a per-client connection cap.

use std::collections::HashMap;
use std::net::IpAddr;

use burrow_api::client_key;
use std::sync::{Arc, Mutex};

use http::Request;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;

use crate::config::EdgeConfig;
use crate::pages::EdgeError;

/// Checks a parsed request against the configured limits (hyper's own parser limits are set
/// a little wider by [`server_builder`], so that the edge answers the precise status here).
pub fn check_request<B>(req: &Request<B>, cfg: &EdgeConfig) -> Result<(), EdgeError> {
    let uri_len = req
        .uri()
        .path_and_query()
        .map_or(req.uri().path().len(), |pq| pq.as_str().len());
    if uri_len > cfg.max_uri_len {
        return Err(EdgeError::UriTooLong);
    }
    let headers = req.headers();
    if headers.len() > cfg.max_headers {
        return Err(EdgeError::HeadersTooLarge);
    }
    // Same accounting as HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE: name + value + 32 per field.
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 32)
        .sum();
    if bytes > cfg.max_header_bytes {
        return Err(EdgeError::HeadersTooLarge);
    }
    Ok(())
}

/// The hyper server builder the binary serves the edge (and the API) with: HTTP/1.1 and
/// HTTP/2, head read timeout, parser buffer sized from the limits, header count limit, HTTP/2
/// header list size and stream limit.
pub fn server_builder(cfg: &EdgeConfig) -> Builder<TokioExecutor> {
    let mut b = Builder::new(TokioExecutor::new());
    let head = cfg.max_header_bytes + cfg.max_uri_len + 1024;
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .max_buf_size(head.max(8192))
        .max_headers(cfg.max_headers.max(1))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(cfg.max_h2_streams)
        .keep_alive_interval(Some(cfg.idle_timeout / 2))
        .keep_alive_timeout(cfg.header_read_timeout);
    b
}

/// Caps concurrent connections per client address (IPv6 clients by /64, since one host
/// usually owns a whole /64).
#[derive(Clone, Debug)]
pub struct ConnLimiter {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// Holds one connection slot of a client; the slot is released on drop.
#[derive(Debug)]
pub struct ConnPermit {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnLimiter {
    /// `max_per_client` 0 means no limit.
    pub fn new(max_per_client: usize) -> Self {
        ConnLimiter {
            max: max_per_client,
            open: Arc::default(),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when it already has the maximum.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<ConnPermit> {
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(ConnPermit {
            key,
            open: self.open.clone(),
        })
    }

    /// Connections currently open from `ip`'s client key.
    pub fn open_connections(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_connections_per_client() {
        let l = ConnLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let p1 = l.try_acquire(a).expect("1");
        let _p2 = l.try_acquire(a).expect("2");
        assert!(l.try_acquire(a).is_none());
        assert!(l.try_acquire("10.0.0.2".parse().expect("ip")).is_some());
        drop(p1);
        assert!(l.try_acquire(a).is_some());
        let v6a: IpAddr = "2001:db8::1".parse().expect("ip");
        let v6b: IpAddr = "2001:db8::2".parse().expect("ip");
        let _q1 = l.try_acquire(v6a).expect("1");
        let _q2 = l.try_acquire(v6b).expect("2");
        assert!(l.try_acquire(v6a).is_none(), "same /64");
    }

    #[test]
    fn request_limits() {
        let cfg = EdgeConfig::default();
        let long = format!("/{}", "a".repeat(cfg.max_uri_len));
        let req = Request::builder().uri(long).body(()).expect("req");
        assert_eq!(check_request(&req, &cfg), Err(EdgeError::UriTooLong));
        let mut b = Request::builder().uri("/");
        for i in 0..=cfg.max_headers {
            b = b.header(format!("x-h{i}"), "v");
        }
        let req = b.body(()).expect("req");
        assert_eq!(check_request(&req, &cfg), Err(EdgeError::HeadersTooLarge));
        let req = Request::builder()
            .uri("/")
            .header("x-big", "v".repeat(cfg.max_header_bytes))
            .body(())
            .expect("req");
        assert_eq!(check_request(&req, &cfg), Err(EdgeError::HeadersTooLarge));
    }
}
