//! Per-tunnel minute and hour rollups, aggregated in memory and written in batches: a bucket
//! is written once it has closed (one row per tunnel, bucket and node), or at once by
//! [`Rollups::take`] with `all` (shutdown, tests). Memory is bounded by the active tunnels
//! (two open buckets each per resolution) and, per bucket, [`MAX_TRACKED_CLIENTS`] addresses.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use burrow_store::{Timestamp, TrafficRollup, HOUR, MINUTE};
use chrono::{DurationRound, TimeDelta};

/// Distinct clients counted exactly per bucket up to this; above, the count stops growing.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Open buckets above this (a flood of new tunnels between flushes) are not created: the
/// request is still counted in the metrics and the log, only not in the rollups.
const MAX_OPEN_BUCKETS: usize = 100_000;

/// One finished request, as the rollups need it.
pub struct Sample {
    pub tunnel_id: i64,
    pub at: Timestamp,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub client: Option<IpAddr>,
    pub edge: Duration,
    pub tunnel: Duration,
    pub device: Duration,
}

#[derive(Default)]
struct Bucket {
    row: TrafficRollup,
    clients: HashSet<IpAddr>,
}

#[derive(Default)]
pub struct Rollups {
    open: Mutex<HashMap<(i64, i64, Timestamp), Bucket>>,
}

fn bucket_start(at: Timestamp, resolution: i64) -> Timestamp {
    at.duration_trunc(TimeDelta::seconds(resolution))
        .unwrap_or(at)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn add(v: &mut i64, n: u64) {
    *v = v.saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
}

impl Rollups {
    pub fn record(&self, s: &Sample) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for resolution in [MINUTE, HOUR] {
            let start = bucket_start(s.at, resolution);
            let key = (s.tunnel_id, resolution, start);
            if !open.contains_key(&key) && open.len() >= MAX_OPEN_BUCKETS {
                continue;
            }
            let b = open.entry(key).or_insert_with(|| Bucket {
                row: TrafficRollup {
                    reverse_tunnel_id: s.tunnel_id,
                    resolution_secs: resolution,
                    bucket_start: start,
                    ..TrafficRollup::default()
                },
                clients: HashSet::new(),
            });
            let r = &mut b.row;
            r.requests += 1;
            let class = usize::from((s.status / 100).clamp(1, 5) - 1);
            r.by_class[class] += 1;
            add(&mut r.bytes_in, s.bytes_in);
            add(&mut r.bytes_out, s.bytes_out);
            if let Some(ip) = s.client {
                if b.clients.len() < MAX_TRACKED_CLIENTS {
                    b.clients.insert(burrow_api::client_key(ip));
                }
            }
            r.latency.edge.record(ms(s.edge));
            r.latency.tunnel.record(ms(s.tunnel));
            r.latency.device.record(ms(s.device));
        }
    }

    /// Removes and answers the buckets that ended at or before `now` (all of them with
    /// `all`), ready to be written.
    pub fn take(&self, now: Timestamp, all: bool) -> Vec<TrafficRollup> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let closed: Vec<_> = open
            .keys()
            .filter(|(_, res, start)| all || *start + TimeDelta::seconds(*res) <= now)
            .copied()
            .collect();
        closed
            .into_iter()
            .filter_map(|k| open.remove(&k))
            .map(|b| {
                let mut row = b.row;
                // A restored row brings its own count; a fresh one starts at 0.
                row.distinct_clients += i64::try_from(b.clients.len()).unwrap_or(i64::MAX);
                row
            })
            .collect()
    }

    /// Puts rows back after a failed write (merged into any bucket opened meanwhile; their
    /// distinct clients are then added, an overcount only after a database outage).
    pub fn restore(&self, rows: Vec<TrafficRollup>) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows {
            let key = (row.reverse_tunnel_id, row.resolution_secs, row.bucket_start);
            if !open.contains_key(&key) && open.len() >= MAX_OPEN_BUCKETS {
                continue;
            }
            let b = open.entry(key).or_default();
            if b.row.requests == 0 {
                b.row = row;
            } else {
                b.row.merge(&row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Timestamp, status: u16, client: &str) -> Sample {
        Sample {
            tunnel_id: 1,
            at,
            status,
            bytes_in: 3,
            bytes_out: 10,
            client: client.parse().ok(),
            edge: Duration::from_millis(1),
            tunnel: Duration::from_millis(4),
            device: Duration::from_millis(30),
        }
    }

    #[test]
    fn minute_and_hour_buckets_close_and_count() {
        let r = Rollups::default();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:10Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        r.record(&sample(t0, 200, "10.0.0.1"));
        r.record(&sample(t0, 404, "10.0.0.1"));
        r.record(&sample(t0 + TimeDelta::seconds(60), 500, "10.0.0.2"));
        let closed = r.take(t0 + TimeDelta::seconds(45), false);
        assert!(closed.is_empty(), "nothing closed yet");
        let closed = r.take(t0 + TimeDelta::seconds(60), false);
        assert_eq!(closed.len(), 1);
        let m = &closed[0];
        assert_eq!((m.resolution_secs, m.requests), (MINUTE, 2));
        assert_eq!(m.by_class, [0, 1, 0, 1, 0]);
        assert_eq!((m.bytes_in, m.bytes_out, m.distinct_clients), (6, 20, 1));
        assert_eq!(m.latency.device.quantile(0.5), Some(50));
        let rest = r.take(t0, true);
        assert_eq!(rest.len(), 2, "the next minute and the hour");
        let h = rest
            .iter()
            .find(|r| r.resolution_secs == HOUR)
            .expect("hour");
        assert_eq!((h.requests, h.distinct_clients), (3, 2));
    }
}
