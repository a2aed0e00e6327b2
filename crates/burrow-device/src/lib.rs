//! Device identity for burrow, the server's side: the device CA, enrollment, mTLS, and the
//! device config endpoint (`GET /api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config`).
//! The device's side (key, CSR, enrollment client, device URLs, the wire types) is
//! `burrow-identity`, which has no database so the agent links none; it is re-exported here
//! under its old paths. See `docs/devices.md`.
//!
//! Wiring (server): [`DeviceCa::load_or_create`] → [`DeviceState::new`] (with a
//! [`TunnelProvisioner`] over the broker) → [`enroll_router`] on the API port,
//! [`config_router`] on the TLS listener run by [`mtls::serve_device_listener`] with
//! [`mtls::server_config`]. Call [`ConfigNotifier::device_changed`] on every tunnel change.

mod auth;
pub mod ca;
pub mod config_endpoint;
pub mod enrollment;
pub mod error;
pub mod identity;
pub mod mtls;
pub mod notifier;
pub mod openapi;
pub mod presence;
pub mod provisioner;
mod state;

// The module and the function `agent_enroll` both come with this name.
pub use burrow_identity::{agent_enroll, device_url, fingerprint};

pub use agent_enroll::{agent_enroll_with_client, AgentFile, EnrollTrust};
pub use auth::DEVICE_CERT_HEADER;
pub use ca::DeviceCa;
pub use config_endpoint::{DeviceConfigResponse, TunnelConfig};
pub use device_url::{parse_region, DeviceUrl, DeviceUrlError, DeviceUrls};
pub use enrollment::{EnrollRequest, EnrollResponse, EnrollmentToken};
pub use error::{DeviceError, Result};
pub use fingerprint::{CaFingerprint, FingerprintError};
pub use identity::{DeviceIdentity, PeerCertificate};
pub use notifier::ConfigNotifier;
pub use presence::{default_online_window, is_online};
pub use provisioner::{
    service_name, ProvisionRequest, ProvisionedTunnel, Secret, TunnelProvisioner,
};
pub use state::{
    config_router, enroll_router, router, DeviceConfig, DeviceGuard, DeviceLocks, DeviceState,
    SharedLocks, CONFIG_PATH, ENROLL_PATH,
};
