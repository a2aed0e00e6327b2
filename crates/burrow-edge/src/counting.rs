//! Usage counters and the access log, kept in memory and written to the store in batches
//! (`add_usage`, `insert_access_log`): no database write per request. The log buffer is
//! bounded; when the store falls behind, the oldest entries are dropped and counted.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use burrow_store::{NewAccessLogEntry, Timestamp, UsageDelta};
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::backend::UsageSink;

const MAX_LOGGED_PATH: usize = 512;

pub struct Counters {
    usage: Mutex<HashMap<i64, (i64, Timestamp)>>,
    log: Mutex<VecDeque<NewAccessLogEntry>>,
    capacity: usize,
    dropped: AtomicU64,
    refused: AtomicU64,
    flushing: tokio::sync::Mutex<()>,
    /// Rollups, usage per principal and access log entries are kept (`analytics` config).
    analytics: bool,
    /// Prometheus counters and histograms, fed by every finished request.
    pub metrics: crate::traffic::EdgeMetrics,
    /// Minute and hour rollups, written with the log.
    pub rollups: crate::traffic::Rollups,
    /// Usage per principal and tunnel (per user × device), written with the log.
    pub principals: crate::traffic::PrincipalCounts,
}

impl Counters {
    pub fn new(capacity: usize, analytics: bool) -> Self {
        Counters {
            usage: Mutex::default(),
            log: Mutex::default(),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
            analytics,
            metrics: crate::traffic::EdgeMetrics::new(),
            rollups: crate::traffic::Rollups::default(),
            principals: crate::traffic::PrincipalCounts::default(),
        }
    }

    fn count(&self, tunnel_id: i64, at: Timestamp) {
        let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        let slot = usage.entry(tunnel_id).or_insert((0, at));
        slot.0 += 1;
        slot.1 = slot.1.max(at);
    }

    /// Counts a request the edge refused (unauthenticated, forbidden, cross-origin) without a
    /// log entry of its own: whoever can reach a tunnel host must not be able to grow the
    /// database one row per request.
    pub fn record_refused(&self, tunnel_id: i64, at: Timestamp) {
        self.count(tunnel_id, at);
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests refused before reaching a device, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Counts one request of a tunnel and buffers its log entry.
    pub fn record(&self, entry: NewAccessLogEntry) {
        self.count(entry.reverse_tunnel_id, entry.at);
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.len() >= self.capacity {
            log.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        log.push_back(entry);
    }

    /// Access log entries dropped because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes what has accumulated. On a store error the data is put back (counters merged,
    /// log entries in front, still bounded) for the next flush.
    pub async fn flush(&self, store: &dyn UsageSink) {
        self.flush_upto(store, false).await;
    }

    /// [`Counters::flush`], with the rollup buckets still open written too (`all`).
    pub async fn flush_upto(&self, store: &dyn UsageSink, all: bool) {
        let _one_at_a_time = self.flushing.lock().await;
        let now = chrono::Utc::now();
        let rows = self.rollups.take(now, all);
        if !rows.is_empty() {
            if let Err(e) = store.insert_traffic_rollups(&rows).await {
                tracing::warn!(error = %e, "edge: rollup flush failed; will retry");
                self.rollups.restore(rows);
            }
        }
        let used = self.principals.take(now, all);
        if !used.is_empty() {
            if let Err(e) = store.add_principal_usage(&used).await {
                tracing::warn!(error = %e, "edge: usage per principal flush failed; will retry");
                self.principals.restore(used);
            }
        }
        let usage: Vec<UsageDelta> = {
            let mut usage = self.usage.lock().unwrap_or_else(|e| e.into_inner());
            usage
                .drain()
                .map(|(id, (n, at))| UsageDelta {
                    reverse_tunnel_id: id,
                    requests: n,
                    last_accessed_at: at,
                })
                .collect()
        };
        if !usage.is_empty() {
            if let Err(e) = store.add_usage(&usage).await {
                tracing::warn!(error = %e, "edge: usage flush failed; will retry");
                let mut cur = self.usage.lock().unwrap_or_else(|e| e.into_inner());
                for d in usage {
                    let slot = cur
                        .entry(d.reverse_tunnel_id)
                        .or_insert((0, d.last_accessed_at));
                    slot.0 += d.requests;
                    slot.1 = slot.1.max(d.last_accessed_at);
                }
            }
        }
        let entries: Vec<NewAccessLogEntry> = {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            log.drain(..).collect()
        };
        if entries.is_empty() {
            return;
        }
        if let Err(e) = store.insert_access_log(&entries).await {
            tracing::warn!(error = %e, n = entries.len(), "edge: access log flush failed; will retry");
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            for entry in entries.into_iter().rev() {
                if log.len() >= self.capacity {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                log.push_front(entry);
            }
        }
    }
}

/// A request being served for a tunnel: what its log entry will say.
pub struct Pending {
    pub tunnel_id: i64,
    pub at: Timestamp,
    pub started: Instant,
    pub user_id: Option<i64>,
    /// Who made the request (user, key, share link), for the usage per principal.
    pub who: crate::traffic::Who,
    /// Refused by the edge itself: counted, not logged (see [`Counters::record_refused`]).
    pub refused: bool,
    pub method: String,
    pub path: String,
    pub bytes_in: Arc<AtomicU64>,
    /// The client's address and user agent, for the log and the rollups.
    pub client: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    /// When the request was dispatched, connected and answered (edge/tunnel/device time).
    pub phases: Arc<crate::traffic::Phases>,
    /// The client's slot under the tunnel's `max_connections_per_client`, freed with this
    /// (and, for a WebSocket, with its pipe, which holds it too).
    pub slot: Option<Arc<crate::traffic::ConnSlot>>,
    /// The tunnel's download shaper, when it has a bandwidth limit (taken by `Edge::handle`).
    pub download: Option<Arc<crate::traffic::Shaper>>,
}

impl Pending {
    pub fn new(tunnel_id: i64, method: &str, path: &str) -> Self {
        let path = match path.char_indices().nth(MAX_LOGGED_PATH) {
            Some((i, _)) => &path[..i],
            None => path,
        };
        let started = Instant::now();
        Pending {
            tunnel_id,
            at: chrono::Utc::now(),
            started,
            client: None,
            user_agent: None,
            phases: Arc::new(crate::traffic::Phases::new(started)),
            user_id: None,
            who: crate::traffic::Who::ANONYMOUS,
            refused: false,
            method: method.to_string(),
            path: path.to_string(),
            bytes_in: Arc::default(),
            slot: None,
            download: None,
        }
    }

    pub fn finish(self, counters: &Counters, status: u16, bytes_out: u64) {
        let took = self.started.elapsed();
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        counters
            .metrics
            .request(self.tunnel_id, status, bytes_in, bytes_out, took);
        if !counters.analytics {
            // The seed's counters (`total_requests`, `last_accessed_at`) are kept regardless.
            match self.refused {
                true => counters.record_refused(self.tunnel_id, self.at),
                false => counters.count(self.tunnel_id, self.at),
            }
            return;
        }
        let (edge, tunnel, device) = self.phases.split(took);
        counters.rollups.record(&crate::traffic::Sample {
            tunnel_id: self.tunnel_id,
            at: self.at,
            status,
            bytes_in,
            bytes_out,
            client: self.client,
            edge,
            tunnel,
            device,
        });
        counters.principals.record(
            self.tunnel_id,
            self.who,
            self.at,
            status,
            bytes_in,
            bytes_out,
        );
        if self.refused {
            counters.record_refused(self.tunnel_id, self.at);
            return;
        }
        counters.record(NewAccessLogEntry {
            reverse_tunnel_id: self.tunnel_id,
            at: self.at,
            user_id: self.user_id,
            method: self.method,
            path: self.path,
            status: i64::from(status),
            bytes_in: i64::try_from(bytes_in).unwrap_or(i64::MAX),
            bytes_out: i64::try_from(bytes_out).unwrap_or(i64::MAX),
            duration_ms: i64::try_from(took.as_millis()).unwrap_or(i64::MAX),
            client_ip: self.client.map(|ip| ip.to_string()),
            user_agent: self.user_agent,
        });
    }
}

/// Counts the data bytes of a body into a shared counter (request bodies).
pub struct CountIn<B> {
    inner: B,
    counter: Arc<AtomicU64>,
}

impl<B> CountIn<B> {
    pub fn new(inner: B, counter: Arc<AtomicU64>) -> Self {
        CountIn { inner, counter }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for CountIn<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(d) = frame.data_ref() {
                self.counter.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that records the request's log entry when it ends, or when it is dropped
/// unfinished (client went away, device died): whichever comes first, once.
pub struct CountOut<B> {
    inner: B,
    bytes: u64,
    status: u16,
    done: Option<(Arc<Counters>, Pending)>,
}

impl<B: Body<Data = Bytes> + Unpin> CountOut<B> {
    pub fn new(inner: B, status: u16, counters: Arc<Counters>, pending: Pending) -> Self {
        CountOut {
            inner,
            bytes: 0,
            status,
            done: Some((counters, pending)),
        }
    }

    fn finish(&mut self) {
        if let Some((counters, pending)) = self.done.take() {
            pending.finish(&counters, self.status, self.bytes);
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for CountOut<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    self.bytes += d.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish();
                }
            }
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => {
                self.status = 502;
                self.finish();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for CountOut<B> {
    fn drop(&mut self) {
        if let Some((counters, pending)) = self.done.take() {
            pending.finish(&counters, self.status, self.bytes);
        }
    }
}
