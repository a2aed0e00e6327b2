//! The device's side of burrow's device identity, for `burrow-agent`: a key made on the
//! device, a CSR, the enrollment client ([`agent_enroll`]), the files it keeps
//! ([`AgentFile`], the certificate and key), the device URLs it dials, and the JSON bodies it
//! exchanges with the server ([`wire`]). No server and no database: the server's side (device
//! CA, enrollment and config endpoints) is `burrow-device`, which builds on this crate and
//! re-exports it. See `docs/architecture.md` and `docs/devices.md`.

pub mod agent_enroll;
pub mod device_url;
pub mod fingerprint;
pub mod fsutil;
pub mod identity;
pub mod mtls;
pub mod wire;

pub use agent_enroll::{agent_enroll, agent_enroll_with_client, AgentFile, EnrollTrust};
pub use device_url::{parse_region, DeviceUrl, DeviceUrlError, DeviceUrls};
pub use fingerprint::{CaFingerprint, FingerprintError};
pub use identity::{identity_from_der, DeviceIdentity, InvalidCert};
pub use wire::{
    DeviceCaResponse, DeviceConfigResponse, EnrollRequest, EnrollResponse, TunnelConfig,
};
