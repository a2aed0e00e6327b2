//! Keep-alive connections over the tunnel, reused per route: a small bounded set of idle
//! HTTP/1.1 connections per broker tunnel id, never shared across routes. A connection comes
//! back only once its response has been read to the end (see [`crate::exchange`]); one that
//! closed, failed or sat idle longer than the idle timeout is dropped, which ends it on the
//! device too.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::time::Instant;

use crate::exchange::TunnelConn;

struct Parked {
    up: TunnelConn,
    since: Instant,
}

pub struct Pool {
    max_idle: usize,
    /// How long a connection may wait here (the edge's idle timeout: nothing polls a parked
    /// connection, so its own timer would not fire).
    max_age: Duration,
    idle: Mutex<HashMap<String, Vec<Parked>>>,
}

impl Pool {
    /// A pool, and (within a runtime) the task that closes connections idle for `max_age`.
    pub fn new(max_idle_per_tunnel: usize, max_age: Duration) -> Arc<Self> {
        let pool = Arc::new(Pool {
            max_idle: max_idle_per_tunnel,
            max_age,
            idle: Mutex::default(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep_until_dropped(Arc::downgrade(&pool)));
        }
        pool
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Vec<Parked>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle, open connection of `route`, if one is parked.
    pub fn take(&self, route: &str) -> Option<TunnelConn> {
        let mut idle = self.lock();
        let list = idle.get_mut(route)?;
        let mut found = None;
        while let Some(mut p) = list.pop() {
            if p.since.elapsed() < self.max_age && p.up.is_idle() {
                found = Some(p.up);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(route);
        }
        found
    }

    fn put(&self, route: String, up: TunnelConn) {
        let mut idle = self.lock();
        let list = idle.entry(route).or_default();
        // A flag check, not a poll of each parked connection (the sweep does that).
        list.retain(|p| !p.up.is_closed());
        if list.len() < self.max_idle {
            list.push(Parked {
                up,
                since: Instant::now(),
            });
        }
    }

    /// Parks `up` for the next request of `route` once it can take one; its response has
    /// been read to the end. Usually that is at once; otherwise (the request body is still
    /// being written, say) a task drives it there.
    pub fn park(self: &Arc<Self>, route: String, mut up: TunnelConn) {
        if self.max_idle == 0 {
            return;
        }
        if up.is_idle() {
            self.put(route, up);
            return;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            if poll_fn(|cx| up.poll_idle(cx)).await {
                pool.put(route, up);
            }
        });
    }

    /// Drops the connections that ended or sat idle too long.
    fn sweep(&self) {
        let mut idle = self.lock();
        idle.retain(|_, list| {
            list.retain_mut(|p| p.since.elapsed() < self.max_age && p.up.is_idle());
            !list.is_empty()
        });
    }

    /// Closes the idle connections parked for `tunnel_id` (a rotated-out tunnel: they would
    /// keep it open, and no new request is routed to it).
    /// Also the routes through other nodes of a cluster (`<tunnel_id>@<node>`).
    pub fn evict(&self, tunnel_id: &str) -> usize {
        let mut idle = self.lock();
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
        let mut idle = self.lock();
        idle.get_mut(tunnel_id).map_or(0, |l| {
            l.retain_mut(|p| p.up.is_idle());
            l.len()
        })
    }
}

async fn sweep_until_dropped(pool: Weak<Pool>) {
    let every = match pool.upgrade() {
        Some(p) => (p.max_age / 4).clamp(Duration::from_millis(50), Duration::from_secs(15)),
        None => return,
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match pool.upgrade() {
            Some(p) => p.sweep(),
            None => return,
        }
    }
}
