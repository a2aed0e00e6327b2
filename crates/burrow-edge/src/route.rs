//! Host → reverse tunnel (+ its device), with a short cache so that a busy tunnel does not
//! cost two database reads per request, and unknown hosts are cached too (negative entries).

use std::sync::Arc;
use std::time::Duration;

use burrow_api::sharing::IpRules;
use burrow_store::{Device, ReverseTunnel, StoreError};

use crate::backend::TunnelLookup;
use crate::cache::TtlCache;

/// A tunnel host resolved to its tunnel and device.
#[derive(Debug, Clone)]
pub struct Route {
    pub tunnel: ReverseTunnel,
    pub device: Device,
    /// The tunnel's `ip_allow` / `ip_deny`, parsed once per lookup.
    pub rules: IpRules,
}

pub struct RouteTable {
    tunnels: Arc<dyn TunnelLookup>,
    cache: TtlCache<String, Option<Arc<Route>>>,
}

impl RouteTable {
    pub fn new(tunnels: Arc<dyn TunnelLookup>, ttl: Duration) -> Self {
        RouteTable {
            tunnels,
            cache: TtlCache::new(ttl, 50_000),
        }
    }

    pub fn clear(&self) {
        self.cache.clear();
    }

    /// The route of normalised host `name`, `None` when no tunnel has that `public_url`.
    pub async fn resolve(&self, name: &str) -> Result<Option<Arc<Route>>, StoreError> {
        if let Some(hit) = self.cache.get(&name.to_string()) {
            return Ok(hit);
        }
        let route = self
            .tunnels
            .tunnel_by_host(name)
            .await?
            .map(|(tunnel, device)| {
                let rules = IpRules::new(&tunnel.ip_allow, &tunnel.ip_deny);
                Arc::new(Route {
                    tunnel,
                    device,
                    rules,
                })
            });
        self.cache.insert(name.to_string(), route.clone());
        Ok(route)
    }
}
