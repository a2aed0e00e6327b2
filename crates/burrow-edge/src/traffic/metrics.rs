//! Prometheus metrics of the edge, on a recorder of its own (not the process-global one:
//! several servers in one test process each report their own traffic).
//!
//! Label cardinality is bounded: the only per-tunnel label is `tunnel` (the reverse tunnel's
//! numeric id), given to the first [`MAX_TUNNEL_LABELS`] tunnels seen since start; traffic of
//! any further tunnel is reported under `tunnel="other"`. `class` is one of `1xx`..`5xx`.
//! Handles are created once per tunnel, so recording a request allocates nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Distinct `tunnel` label values before the rest share `tunnel="other"`.
pub const MAX_TUNNEL_LABELS: usize = 500;

/// Latency histogram buckets, seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

pub const REQUESTS: &str = "burrow_edge_requests_total";
pub const BYTES_IN: &str = "burrow_edge_request_bytes_total";
pub const BYTES_OUT: &str = "burrow_edge_response_bytes_total";
pub const LATENCY: &str = "burrow_edge_request_duration_seconds";
pub const RATE_LIMITED: &str = "burrow_edge_rate_limited_total";

const META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// The handles of one `tunnel` label value.
struct TunnelHandles {
    /// Requests by status class, index 0 = `1xx` ... 4 = `5xx`.
    by_class: [Counter; 5],
    bytes_in: Counter,
    bytes_out: Counter,
    latency: Histogram,
    rate_limited: Counter,
}

pub struct EdgeMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    tunnels: Mutex<HashMap<i64, Arc<TunnelHandles>>>,
    other: Arc<TunnelHandles>,
}

impl Default for EdgeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EdgeMetrics {
    pub fn new() -> Self {
        // Fixed, valid buckets: this cannot fail; fall back to summaries if it ever did.
        let builder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        recorder.describe_counter(
            REQUESTS.into(),
            None,
            "Requests to tunnel hosts, by tunnel and status class".into(),
        );
        recorder.describe_counter(
            BYTES_IN.into(),
            Some(Unit::Bytes),
            "Request body bytes received from clients".into(),
        );
        recorder.describe_counter(
            BYTES_OUT.into(),
            Some(Unit::Bytes),
            "Response body bytes sent to clients".into(),
        );
        recorder.describe_histogram(
            LATENCY.into(),
            Some(Unit::Seconds),
            "Time from request to the end of the response body".into(),
        );
        recorder.describe_counter(
            RATE_LIMITED.into(),
            None,
            "Requests answered 429 by a tunnel's rate limit".into(),
        );
        let other = Arc::new(Self::handles(&recorder, "other".to_string()));
        EdgeMetrics {
            recorder,
            handle,
            tunnels: Mutex::default(),
            other,
        }
    }

    fn handles(recorder: &PrometheusRecorder, tunnel: String) -> TunnelHandles {
        let key = |name: &'static str, extra: Option<(&'static str, &'static str)>| {
            let mut labels = vec![Label::new("tunnel", tunnel.clone())];
            if let Some((k, v)) = extra {
                labels.push(Label::new(k, v));
            }
            Key::from_parts(name, labels)
        };
        let class =
            |c: &'static str| recorder.register_counter(&key(REQUESTS, Some(("class", c))), &META);
        TunnelHandles {
            by_class: [
                class("1xx"),
                class("2xx"),
                class("3xx"),
                class("4xx"),
                class("5xx"),
            ],
            bytes_in: recorder.register_counter(&key(BYTES_IN, None), &META),
            bytes_out: recorder.register_counter(&key(BYTES_OUT, None), &META),
            latency: recorder.register_histogram(&key(LATENCY, None), &META),
            rate_limited: recorder.register_counter(&key(RATE_LIMITED, None), &META),
        }
    }

    fn tunnel(&self, tunnel_id: i64) -> Arc<TunnelHandles> {
        let mut tunnels = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = tunnels.get(&tunnel_id) {
            return h.clone();
        }
        if tunnels.len() >= MAX_TUNNEL_LABELS {
            return self.other.clone();
        }
        let h = Arc::new(Self::handles(&self.recorder, tunnel_id.to_string()));
        tunnels.insert(tunnel_id, h.clone());
        h
    }

    /// Records one finished request of a tunnel.
    pub fn request(
        &self,
        tunnel_id: i64,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        took: Duration,
    ) {
        let h = self.tunnel(tunnel_id);
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        h.by_class[class].increment(1);
        h.bytes_in.increment(bytes_in);
        h.bytes_out.increment(bytes_out);
        h.latency.record(took.as_secs_f64());
    }

    /// Records one request refused by the tunnel's rate limit.
    pub fn rate_limited(&self, tunnel_id: i64) {
        self.tunnel(tunnel_id).rate_limited.increment(1);
    }

    /// A gauge (no labels) of this recorder, for process-wide values set before rendering.
    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.recorder.describe_gauge(name.into(), None, help.into());
        self.recorder.register_gauge(&Key::from_name(name), &META)
    }

    /// A counter (no labels) of this recorder.
    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.recorder
            .describe_counter(name.into(), None, help.into());
        self.recorder.register_counter(&Key::from_name(name), &META)
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds histogram samples into their buckets (bounded memory); call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_tunnel_and_class_and_caps_labels() {
        let m = EdgeMetrics::new();
        m.request(7, 200, 10, 100, Duration::from_millis(3));
        m.request(7, 204, 0, 0, Duration::from_millis(3));
        m.request(7, 503, 0, 5, Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(r#"burrow_edge_requests_total{tunnel="7",class="2xx"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"burrow_edge_requests_total{tunnel="7",class="5xx"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"burrow_edge_response_bytes_total{tunnel="7"} 105"#),
            "{text}"
        );
        assert!(
            text.contains(r#"burrow_edge_request_duration_seconds_count{tunnel="7"} 3"#),
            "{text}"
        );
        for id in 0..(MAX_TUNNEL_LABELS as i64 + 10) {
            m.request(1000 + id, 200, 0, 0, Duration::ZERO);
        }
        let text = m.render();
        assert!(
            text.contains(r#"burrow_edge_requests_total{tunnel="other",class="2xx"} 11"#),
            "{text}"
        );
    }
}
