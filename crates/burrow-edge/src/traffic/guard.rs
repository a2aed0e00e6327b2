//! A tunnel's limits as the edge enforces them: a rate limiter (governor; one bucket for the
//! tunnel or one per client address), a bandwidth shaper per direction, and a count of the
//! requests each client address has open. One [`Guard`] per limited tunnel, rebuilt when the
//! tunnel's limits change; tunnels without limits cost one map lookup.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use burrow_api::client_key;
use burrow_store::{RateLimitScope, ReverseTunnel, TunnelLimits};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderValue, Response, StatusCode};

use super::shaper::Shaper;
use crate::pages::error_page;

/// Guards unused this long are dropped at upkeep (and rebuilt, empty, on the next request).
const IDLE_GUARD: Duration = Duration::from_secs(600);

enum Rate {
    Tunnel(DefaultDirectRateLimiter),
    ClientIp(DefaultKeyedRateLimiter<IpAddr>),
}

pub struct Guard {
    limits: TunnelLimits,
    rate: Option<Rate>,
    /// Client → tunnel (request bodies) and tunnel → client (responses).
    pub upload: Option<Arc<Shaper>>,
    pub download: Option<Arc<Shaper>>,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
    last_used: Mutex<Instant>,
}

/// Why a request was not admitted.
#[derive(Debug)]
pub enum Refusal {
    /// Over the rate limit: retry after this long.
    Rate(Duration),
    /// The client already has `max_connections_per_client` requests open on the tunnel.
    Connections,
}

impl Refusal {
    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn response(&self, json: bool) -> Response<Body> {
        let (detail, wait) = match self {
            Refusal::Rate(wait) => ("rate limit exceeded", *wait),
            Refusal::Connections => ("too many open requests from this client", Duration::ZERO),
        };
        let mut resp = error_page(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail, json);
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        resp
    }
}

/// One slot of a client's open requests on a tunnel; released on drop.
#[derive(Debug)]
pub struct ConnSlot {
    key: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for ConnSlot {
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

impl Guard {
    fn new(limits: &TunnelLimits) -> Self {
        let rate = limits.rate_limit.map(|r| {
            let rps = NonZeroU32::new(r.requests_per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(r.burst).unwrap_or(rps);
            let quota = Quota::per_second(rps).allow_burst(burst);
            match r.per {
                RateLimitScope::Tunnel => Rate::Tunnel(RateLimiter::direct(quota)),
                RateLimitScope::ClientIp => Rate::ClientIp(RateLimiter::keyed(quota)),
            }
        });
        let shaper = || {
            limits
                .bandwidth_limit
                .map(|b| Arc::new(Shaper::new(b.bytes_per_second)))
        };
        Guard {
            limits: limits.clone(),
            rate,
            upload: shaper(),
            download: shaper(),
            open: Arc::default(),
            last_used: Mutex::new(Instant::now()),
        }
    }

    /// Admits a request from `ip` or says why not. The slot, when given, must be held until
    /// the response ends.
    pub fn admit(&self, ip: IpAddr) -> Result<Option<ConnSlot>, Refusal> {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let key = client_key(ip);
        // The connection cap first, so that a request refused by it spends no rate budget.
        let mut open = self
            .limits
            .max_connections_per_client
            .map(|_| self.open.lock().unwrap_or_else(|e| e.into_inner()));
        if let (Some(open), Some(max)) = (&open, self.limits.max_connections_per_client) {
            if open.get(&key).copied().unwrap_or(0) >= max {
                return Err(Refusal::Connections);
            }
        }
        let checked = match &self.rate {
            None => Ok(()),
            Some(Rate::Tunnel(l)) => l.check(),
            Some(Rate::ClientIp(l)) => l.check_key(&key),
        };
        if let Err(not_until) = checked {
            return Err(Refusal::Rate(
                not_until.wait_time_from(DefaultClock::default().now()),
            ));
        }
        let Some(open) = open.as_mut() else {
            return Ok(None);
        };
        *open.entry(key).or_insert(0) += 1;
        Ok(Some(ConnSlot {
            key,
            open: self.open.clone(),
        }))
    }

    /// Forgets per-client state that no longer limits anyone (bounded memory).
    fn upkeep(&self) {
        if let Some(Rate::ClientIp(l)) = &self.rate {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// The guards of the tunnels that have limits.
#[derive(Default)]
pub struct Guards {
    map: Mutex<HashMap<i64, Arc<Guard>>>,
}

impl Guards {
    /// The guard of `tunnel`, `None` when it has no limits. Rebuilt when its limits changed.
    pub fn of(&self, tunnel: &ReverseTunnel) -> Option<Arc<Guard>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if tunnel.limits.is_empty() {
            map.remove(&tunnel.id);
            return None;
        }
        if let Some(g) = map.get(&tunnel.id) {
            if g.limits == tunnel.limits {
                return Some(g.clone());
            }
        }
        let g = Arc::new(Guard::new(&tunnel.limits));
        map.insert(tunnel.id, g.clone());
        Some(g)
    }

    /// Drops idle guards and trims the per-client state of the others.
    pub fn upkeep(&self) {
        let guards: Vec<Arc<Guard>> = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.retain(|_, g| {
                let idle = g.last_used.lock().map(|t| t.elapsed()).unwrap_or_default();
                Arc::strong_count(g) > 1 || idle < IDLE_GUARD
            });
            map.values().cloned().collect()
        };
        for g in guards {
            g.upkeep();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_store::RateLimit;

    fn tunnel(limits: TunnelLimits) -> ReverseTunnel {
        ReverseTunnel {
            id: 1,
            device_id: 1,
            name: "t".into(),
            description: None,
            public_url: "t.localhost".into(),
            is_enabled: true,
            tunnel_id: None,
            tunnel_arn: None,
            source_access_token: None,
            destination_access_token: None,
            local_port: 80,
            protocol: "http".into(),
            require_auth: false,
            allowed_user_ids: vec![],
            ip_allow: vec![],
            ip_deny: vec![],
            total_requests: 0,
            last_accessed_at: None,
            created_at: chrono::Utc::now(),
            updated_at: None,
            expires_at: None,
            limits,
        }
    }

    #[test]
    fn client_ip_buckets_are_separate_and_connections_capped() {
        let guards = Guards::default();
        let t = tunnel(TunnelLimits {
            rate_limit: Some(RateLimit {
                requests_per_second: 1,
                burst: 2,
                per: RateLimitScope::ClientIp,
            }),
            bandwidth_limit: None,
            max_connections_per_client: Some(1),
        });
        let g = guards.of(&t).expect("guard");
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let slot = g.admit(a).expect("first").expect("slot");
        assert!(matches!(g.admit(a), Err(Refusal::Connections)));
        drop(slot);
        drop(g.admit(a).expect("second"));
        match g.admit(a) {
            Err(Refusal::Rate(wait)) => assert!(wait <= Duration::from_secs(1)),
            _ => panic!("third within a second must be refused"),
        }
        assert!(g.admit(b).is_ok(), "another client has its own bucket");
        assert!(Arc::ptr_eq(&g, &guards.of(&t).expect("same")));
        assert!(guards.of(&tunnel(TunnelLimits::default())).is_none());
    }

    #[test]
    fn hammering_keeps_one_bucket_and_no_slots() {
        let guards = Guards::default();
        let t = tunnel(TunnelLimits {
            rate_limit: Some(RateLimit {
                requests_per_second: 1,
                burst: 1,
                per: RateLimitScope::ClientIp,
            }),
            bandwidth_limit: None,
            max_connections_per_client: Some(10),
        });
        let g = guards.of(&t).expect("guard");
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let refused = (0..100_000)
            .filter(|_| matches!(g.admit(ip), Err(Refusal::Rate(_))))
            .count();
        assert!(refused >= 99_990, "{refused}");
        match &g.rate {
            Some(Rate::ClientIp(l)) => assert_eq!(l.len(), 1, "one bucket per client"),
            _ => panic!("keyed limiter"),
        }
        assert!(
            g.open.lock().expect("open").is_empty(),
            "slots all given back"
        );
    }
}
