//! Endpoints for load balancers and the monitoring stack: `GET /healthz` (the process
//! answers), `GET /readyz` (the database answers and the listeners serve), and `GET /metrics`
//! (Prometheus text format). `/metrics` is served on the main port only with a
//! `metrics_token` (bearer), and on `metrics_listen` when that is set (token required there
//! too when one is configured). See docs/operations.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use burrow_api::ApiError;
use burrow_broker::Broker;
use burrow_edge::Edge;
use burrow_store::Store;
use metrics::{Counter, Gauge};
use serde_json::json;

use crate::scheduler::Scheduler;
use crate::secret::Secret;

/// `/readyz` gives the database this long to answer.
const READY_DB_TIMEOUT: Duration = Duration::from_secs(2);

/// What the endpoints read; one per server.
pub struct Ops {
    pub store: Arc<dyn Store>,
    pub broker: Arc<Broker>,
    pub edge: Arc<Edge>,
    pub scheduler: Arc<Scheduler>,
    /// The listeners are bound and serving (false again while shutting down).
    pub serving: Arc<AtomicBool>,
    pub token: Option<Secret>,
    gauges: Gauges,
}

/// Process-wide values copied into the edge's recorder at each scrape.
struct Gauges {
    agents: Gauge,
    tunnels: Gauge,
    peers: Gauge,
    scheduler_runs: Counter,
    scheduler_failures: Counter,
    db_errors: Counter,
    refused: Counter,
    dropped_log: Counter,
}

impl Ops {
    pub fn new(
        store: Arc<dyn Store>,
        broker: Arc<Broker>,
        edge: Arc<Edge>,
        scheduler: Arc<Scheduler>,
        token: Option<Secret>,
    ) -> Arc<Self> {
        let m = edge.metrics();
        let gauges = Gauges {
            agents: m.gauge(
                "burrow_connected_agents",
                "Tunnels whose device side (agent) is connected to this node",
            ),
            tunnels: m.gauge(
                "burrow_open_tunnels",
                "Broker tunnels with at least one peer connected to this node",
            ),
            peers: m.gauge(
                "burrow_broker_peers",
                "Peers (sources and destinations) connected to this node's broker",
            ),
            scheduler_runs: m.counter("burrow_scheduler_runs_total", "Scheduler ticks"),
            scheduler_failures: m.counter(
                "burrow_scheduler_failures_total",
                "Scheduler ticks that failed",
            ),
            db_errors: m.counter(
                "burrow_database_errors_total",
                "Database errors (not conflicts or missing rows) since start",
            ),
            refused: m.counter(
                "burrow_edge_refused_total",
                "Requests to tunnel hosts the edge answered itself (auth, limits)",
            ),
            dropped_log: m.counter(
                "burrow_edge_access_log_dropped_total",
                "Access log entries dropped because the database fell behind",
            ),
        };
        Arc::new(Ops {
            store,
            broker,
            edge,
            scheduler,
            serving: Arc::new(AtomicBool::new(false)),
            token,
            gauges,
        })
    }

    fn render(&self) -> String {
        let g = &self.gauges;
        let (tunnels, peers) = self.broker.census();
        g.agents.set(self.broker.destinations_connected() as f64);
        g.tunnels.set(tunnels as f64);
        g.peers.set(peers as f64);
        let s = &self.scheduler.stats;
        g.scheduler_runs.absolute(s.runs.load(Ordering::Relaxed));
        g.scheduler_failures
            .absolute(s.failures.load(Ordering::Relaxed));
        g.db_errors.absolute(burrow_store::database_errors());
        g.refused.absolute(self.edge.refused_requests());
        g.dropped_log.absolute(self.edge.dropped_log_entries());
        self.edge.metrics().render()
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        constant_time_eq(given.as_bytes(), token.expose().as_bytes())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Length is not secret; the bytes are compared without an early exit.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/healthz` and `/readyz`, plus `/metrics` when `with_metrics`.
pub fn router(ops: Arc<Ops>, with_metrics: bool) -> Router {
    let r = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let r = if with_metrics {
        r.route("/metrics", get(metrics))
    } else {
        r
    };
    r.with_state(ops)
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", operation_id = "healthz", tag = "meta",
    responses((status = 200, description = "the process is up", body = Object,
        example = json!({"status": "ok"}))))]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers within 2 s and the listeners serve (503 while shutting
/// down), so a load balancer sends traffic elsewhere.
#[utoipa::path(get, path = "/readyz", operation_id = "readyz", tag = "meta",
    responses(
        (status = 200, description = "ready", body = Object,
            example = json!({"status": "ready", "database": "ok"})),
        (status = 503, description = "not ready: the database does not answer, or shutting down")))]
async fn readyz(State(ops): State<Arc<Ops>>) -> Result<Json<serde_json::Value>, ApiError> {
    if !ops.serving.load(Ordering::Relaxed) {
        return Err(ApiError::Unavailable("not serving".into()));
    }
    match tokio::time::timeout(READY_DB_TIMEOUT, ops.store.count_users()).await {
        Ok(Ok(_)) => Ok(Json(json!({"status": "ready", "database": "ok"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readyz: database check failed");
            Err(ApiError::Unavailable("database unreachable".into()))
        }
        Err(_) => Err(ApiError::Unavailable("database did not answer".into())),
    }
}

/// Prometheus metrics (text format 0.0.4). Labels and their bounds: docs/operations.md.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "meta",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "metrics in the Prometheus text format",
            content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "no or a wrong `metrics_token` bearer token"),
        (status = 404, description = "not served on this listener: no `metrics_token` is \
            configured (use `metrics_listen`, or set one)")))]
async fn metrics(State(ops): State<Arc<Ops>>, headers: HeaderMap) -> Response {
    if !ops.authorized(&headers) {
        let mut resp = ApiError::Unauthorized("metrics token required").into_response();
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"metrics\""),
        );
        return resp;
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.render(),
    )
        .into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(healthz, readyz, metrics),
    modifiers(&MetricsSecurity)
)]
pub struct OpsDoc;

struct MetricsSecurity;

impl utoipa::Modify for MetricsSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on the dedicated `metrics_listen` listener.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    ops: Arc<Ops>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = router(ops, true);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::warn!(error = %e, "metrics listener failed");
    }
}
