//! Traffic analytics rows: per-tunnel rollups (minute and hour buckets) with latency
//! histograms, the access log filter, and retention cutoffs.

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Upper bounds (milliseconds) of the latency histogram buckets; one more bucket holds
/// everything slower. Percentiles are answered as the upper bound of their bucket.
pub const LATENCY_BOUNDS_MS: [u64; 15] = [
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000,
];

/// Request counts per latency bucket ([`LATENCY_BOUNDS_MS`] plus one overflow bucket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyHistogram(pub Vec<u64>);

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram(vec![0; LATENCY_BOUNDS_MS.len() + 1])
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, ms: u64) {
        let i = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        if let Some(slot) = self.0.get_mut(i) {
            *slot += 1;
        }
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0-1) as the upper bound of its bucket, ms; `None` when empty. The
    /// overflow bucket answers twice the last bound.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the quantile, 1-based: the smallest bucket holding it.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, n) in self.0.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(
                    LATENCY_BOUNDS_MS
                        .get(i)
                        .copied()
                        .unwrap_or(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.len() - 1] * 2),
                );
            }
        }
        None
    }
}

/// Where each millisecond of the requests of a bucket went (see docs/operations.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySplit {
    /// In the edge before forwarding: routing, authentication, limits.
    pub edge: LatencyHistogram,
    /// Getting a connection through the tunnel to the device (pooled or new).
    pub tunnel: LatencyHistogram,
    /// From the request sent to the response head received (the device's service, plus one
    /// round trip through the tunnel).
    pub device: LatencyHistogram,
}

impl LatencySplit {
    pub fn merge(&mut self, o: &LatencySplit) {
        self.edge.merge(&o.edge);
        self.tunnel.merge(&o.tunnel);
        self.device.merge(&o.device);
    }
}

/// One bucket of one tunnel's traffic. A bucket may be written in several rows (several
/// nodes, a flush at shutdown): readers add them up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrafficRollup {
    pub reverse_tunnel_id: i64,
    /// 60 (minute) or 3600 (hour).
    pub resolution_secs: i64,
    pub bucket_start: Timestamp,
    pub requests: i64,
    /// Responses by status class: index 0 = 1xx ... 4 = 5xx.
    pub by_class: [i64; 5],
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// Distinct client addresses in the bucket (per row: exact on one node).
    pub distinct_clients: i64,
    pub latency: LatencySplit,
}

impl TrafficRollup {
    /// Adds another row of the same bucket (another node's, another flush's).
    pub fn merge(&mut self, o: &TrafficRollup) {
        self.requests += o.requests;
        for (a, n) in self.by_class.iter_mut().zip(o.by_class) {
            *a += n;
        }
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.distinct_clients += o.distinct_clients;
        self.latency.merge(&o.latency);
    }
}

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3600;

/// One tunnel's traffic over a range (minute rollups added up), for a project's overview.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TunnelUsage {
    pub reverse_tunnel_id: i64,
    pub tunnel_name: String,
    pub device_id: i64,
    pub dsn: String,
    pub requests: i64,
    /// 4xx and 5xx responses.
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// Who made a request, as the usage per user × device counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PrincipalKind {
    /// A signed-in user (edge login, bearer JWT).
    User,
    /// A tunnel API key.
    Key,
    /// A share link's visitor.
    Share,
    /// Nobody known: a public tunnel, or a request refused before it said who it was.
    #[default]
    Anonymous,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Key => "key",
            PrincipalKind::Share => "share",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

/// One principal's use of one tunnel in one hour, added to what is stored (several nodes and
/// flushes add to the same row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalUsage {
    pub reverse_tunnel_id: i64,
    /// The hour.
    pub bucket_start: Timestamp,
    pub kind: PrincipalKind,
    /// The user's, key's or link's id; 0 for [`PrincipalKind::Anonymous`].
    pub principal_id: i64,
    pub requests: i64,
    /// 4xx and 5xx responses.
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// One principal's use of one device over a range (its tunnels and hours added up).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DevicePrincipalUsage {
    pub device_id: i64,
    /// `user`, `key`, `share` or `anonymous`.
    pub principal_kind: String,
    pub principal_id: i64,
    /// The user's email, the key's name or the link's prefix (`None`: anonymous, or deleted).
    pub label: Option<String>,
    pub requests: i64,
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// Which access log entries to answer, newest first.
#[derive(Debug, Clone, Default)]
pub struct AccessLogFilter {
    pub reverse_tunnel_id: i64,
    pub limit: i64,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Inclusive range of statuses (e.g. 500-599 for the 5xx class).
    pub status_min: Option<i64>,
    pub status_max: Option<i64>,
    pub client_ip: Option<String>,
}

/// Rows older than these are pruned.
#[derive(Debug, Clone)]
pub struct TrafficCutoffs {
    pub access_log_before: Timestamp,
    pub minute_before: Timestamp,
    pub hour_before: Timestamp,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunedRows {
    pub access_log: u64,
    pub minute: u64,
    pub hour: u64,
    /// Hourly usage per principal (pruned with the hourly rollups).
    pub principal_usage: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds() {
        let mut h = LatencyHistogram::default();
        for ms in [1, 1, 3, 3, 3, 3, 3, 3, 40, 9000] {
            h.record(ms);
        }
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), Some(5));
        assert_eq!(h.quantile(0.9), Some(50));
        assert_eq!(h.quantile(0.99), Some(10_000));
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }
}
