//! The shared state of the device endpoints and the routers the lead mounts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use burrow_store::Store;
use rustls::server::danger::ClientCertVerifier;

use crate::ca::DeviceCa;
use crate::device_url::{DeviceUrl, DeviceUrls};
use crate::error::Result;
use crate::notifier::ConfigNotifier;
use crate::provisioner::TunnelProvisioner;

pub const ENROLL_PATH: &str = "/api/v1/devices/enroll";
/// The device CA certificate (PEM, public): lets an agent check its `--ca-sha256` pin before
/// it spends its one-time token.
pub const CA_PATH: &str = "/api/v1/devices/ca";
pub const CONFIG_PATH: &str = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config";

/// Settings of the device endpoints (from the server's config).
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// What devices dial for the mTLS device listener (config endpoint and broker), in
    /// order of preference; returned by enrollment and in every config answer, so enrolled
    /// agents follow a change.
    pub device_urls: DeviceUrls,
    /// TCP peers whose `X-Device-Certificate` header is believed (TLS-terminating proxies).
    pub trusted_proxies: Vec<IpAddr>,
    /// Validity of device certificates issued at enrollment.
    pub cert_lifetime: chrono::Duration,
    /// A broker tunnel expiring within this is replaced when the device fetches its config
    /// (the seed rotates tunnels expiring within 1 h).
    pub rotate_threshold: chrono::Duration,
    /// Cap of `?wait=` on the config long-poll.
    pub max_wait: Duration,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            device_urls: DeviceUrls::one(DeviceUrl::of_listener(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                8443,
            )))),
            trusted_proxies: Vec::new(),
            cert_lifetime: chrono::Duration::days(365),
            rotate_threshold: chrono::Duration::hours(1),
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Cheap to clone; one per server.
#[derive(Clone)]
pub struct DeviceState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub ca: Arc<DeviceCa>,
    pub provisioner: Arc<dyn TunnelProvisioner>,
    pub notifier: ConfigNotifier,
    pub config: DeviceConfig,
    /// Verifies `X-Device-Certificate` chains exactly as the TLS listener does.
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// One lock per device around "ensure tunnels": two concurrent polls of one device must
    /// not both replace the same expiring tunnel. Shared with the server's tunnel lifecycle
    /// ([`DeviceLocks`]), so a poll and an API create or enable do not both open a tunnel.
    pub ensure_locks: DeviceLocks,
}

/// Per-device async locks around opening, replacing and recording a device's broker tunnels:
/// one per process, and in a cluster also one across nodes ([`SharedLocks`]).
#[derive(Clone, Default)]
pub struct DeviceLocks {
    local: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
    shared: Arc<std::sync::OnceLock<Arc<dyn SharedLocks>>>,
}

/// A lock that serializes one device's changes across every node (PostgreSQL advisory
/// locks in a cluster). The answer is held as long as the lock.
#[async_trait::async_trait]
pub trait SharedLocks: Send + Sync + 'static {
    async fn lock(&self, device_id: i64) -> Box<dyn Send>;
}

/// Held: the device's changes are this holder's alone (in this process and, in a cluster,
/// on every node).
pub struct DeviceGuard {
    _shared: Option<Box<dyn Send>>,
    _local: tokio::sync::OwnedMutexGuard<()>,
}

impl DeviceLocks {
    /// Also serialize across nodes through `shared` (set once).
    pub fn share(&self, shared: Arc<dyn SharedLocks>) {
        let _ = self.shared.set(shared);
    }

    /// Locks `device_id` (held across the store and broker calls that change its tunnels):
    /// this process's lock first, so that one node's callers queue here, not in the database.
    pub async fn lock(&self, device_id: i64) -> DeviceGuard {
        let local = {
            let mut map = self.local.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(device_id).or_default().clone()
        };
        let local = local.lock_owned().await;
        let shared = match self.shared.get() {
            Some(s) => Some(s.lock(device_id).await),
            None => None,
        };
        DeviceGuard {
            _shared: shared,
            _local: local,
        }
    }
}

impl DeviceState {
    pub fn new(
        store: Arc<dyn Store>,
        ca: Arc<DeviceCa>,
        provisioner: Arc<dyn TunnelProvisioner>,
        notifier: ConfigNotifier,
        config: DeviceConfig,
    ) -> Result<Self> {
        let verifier = crate::mtls::client_verifier(&ca)?;
        Ok(DeviceState {
            inner: Arc::new(Inner {
                store,
                ca,
                provisioner,
                notifier,
                config,
                verifier,
                ensure_locks: DeviceLocks::default(),
            }),
        })
    }

    pub fn notifier(&self) -> &ConfigNotifier {
        &self.inner.notifier
    }

    pub fn ca(&self) -> &Arc<DeviceCa> {
        &self.inner.ca
    }

    pub(crate) async fn ensure_lock(&self, device_id: i64) -> DeviceGuard {
        self.inner.ensure_locks.lock(device_id).await
    }

    /// The per-device locks, to share with whatever else opens a device's tunnels.
    pub fn locks(&self) -> DeviceLocks {
        self.inner.ensure_locks.clone()
    }
}

/// `POST /api/v1/devices/enroll` (plain HTTP or HTTPS on the API port: the device has no
/// certificate yet).
pub fn enroll_router(state: DeviceState) -> Router {
    Router::new()
        .route(ENROLL_PATH, post(crate::enrollment::enroll))
        .route(CA_PATH, get(crate::enrollment::ca_certificate))
        .with_state(state)
}

/// `GET .../reverse-tunnels-config`. On the mTLS listener the identity is the client
/// certificate; mounted on the API port it answers only requests that carry
/// `X-Device-Certificate` from a trusted proxy (serve with `ConnectInfo<SocketAddr>`).
pub fn config_router(state: DeviceState) -> Router {
    Router::new()
        .route(CONFIG_PATH, get(crate::config_endpoint::get_config))
        .with_state(state)
}

/// Both routes.
pub fn router(state: DeviceState) -> Router {
    enroll_router(state.clone()).merge(config_router(state))
}

/// A refusal (status + detail), kept small so `Result`s carrying it stay cheap.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Refusal(pub StatusCode, pub &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

/// The API's error body, `{"detail": "...", "code": "..."}` (FastAPI's shape, as in the seed,
/// with the API's codes).
pub(crate) fn error(status: StatusCode, detail: &str) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    };
    (
        status,
        Json(serde_json::json!({ "detail": detail, "code": code })),
    )
        .into_response()
}
