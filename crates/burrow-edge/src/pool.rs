//! Keep-alive connections over the tunnel, reused per tunnel: a small bounded set of idle
//! HTTP/1.1 senders per broker tunnel id, never shared across tunnels. A sender goes back to
//! the pool only once its connection is idle again (the response body was read to the end);
//! a connection that closed or failed is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use hyper::client::conn::http1::SendRequest;

pub type Sender = SendRequest<Body>;

pub struct Pool {
    max_idle: usize,
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

impl Pool {
    pub fn new(max_idle_per_tunnel: usize) -> Self {
        Pool {
            max_idle: max_idle_per_tunnel,
            idle: Mutex::default(),
        }
    }

    /// An idle, open connection of `tunnel_id`, if one is parked.
    pub fn take(&self, tunnel_id: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(tunnel_id)?;
        let mut found = None;
        while let Some(s) = list.pop() {
            if !s.is_closed() && s.is_ready() {
                found = Some(s);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(tunnel_id);
        }
        found
    }

    fn put(&self, tunnel_id: &str, sender: Sender) {
        if sender.is_closed() || self.max_idle == 0 {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.entry(tunnel_id.to_string()).or_default();
        list.retain(|s| !s.is_closed());
        if list.len() < self.max_idle {
            list.push(sender);
        }
    }

    /// Parks `sender` once its current response has been read to the end.
    pub fn park_when_ready(self: &Arc<Self>, tunnel_id: String, mut sender: Sender) {
        if self.max_idle == 0 {
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            if sender.ready().await.is_ok() {
                pool.put(&tunnel_id, sender);
            }
        });
    }

    /// Closes the idle connections parked for `tunnel_id` (a rotated-out tunnel: they would
    /// keep it open, and no new request is routed to it).
    /// Also the routes through other nodes of a cluster (`<tunnel_id>@<node>`).
    pub fn evict(&self, tunnel_id: &str) -> usize {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let mut n = idle.remove(tunnel_id).map_or(0, |l| l.len());
        let remote = format!("{tunnel_id}@");
        idle.retain(|route, l| {
            let keep = !route.starts_with(&remote);
            if !keep {
                n += l.len();
            }
            keep
        });
        n
    }

    /// Idle connections parked for `tunnel_id` (tests, metrics).
    pub fn idle_count(&self, tunnel_id: &str) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.get(tunnel_id)
            .map_or(0, |l| l.iter().filter(|s| !s.is_closed()).count())
    }
}
