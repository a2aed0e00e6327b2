//! Rows of burrow's tables, as the rest of burrow sees them.
//!
//! Secrets are never held here in plain text: passwords are argon2 hashes, access tokens are
//! SHA-256 hashes plus the per-token nonce from which the broker re-derives them with its key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    /// argon2 PHC string.
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: Timestamp,
    /// A disabled user cannot sign in; their sessions and tokens are refused.
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Project {
    pub id: i64,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProjectMember {
    pub project_id: i64,
    pub user_id: i64,
    /// "owner", "admin", "member" or "viewer" (docs/accounts.md).
    pub role: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Device {
    pub id: i64,
    pub project_id: i64,
    pub dsn: String,
    pub name: String,
    pub created_at: Timestamp,
    pub last_seen_at: Option<Timestamp>,
    /// Serial (hex) of the device certificate currently valid for this device.
    pub cert_serial: Option<String>,
    pub cert_not_after: Option<Timestamp>,
    /// Set when the device's certificate was revoked; a revoked device is refused at once.
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewDevice {
    pub project_id: i64,
    pub dsn: String,
    pub name: String,
}

/// A one-time enrollment token for a device (stored as a SHA-256 hash).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Enrollment {
    pub id: i64,
    pub device_id: i64,
    pub token_hash: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// A one-time edge login code, by hash: minted on the API host, redeemed once on `host`
/// (any node) together with the browser's login state.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginCode {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    pub user_id: i64,
    pub host: String,
    /// Hex SHA-256 of the login state it must be presented with.
    pub state_hash: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
}

/// The seed's `reverse_tunnels` row, every column kept.
///
/// `source_access_token` / `destination_access_token` exist for schema compatibility with the
/// seed; burrow never writes a token there (they stay NULL): the broker tunnel row holds only
/// token hashes, and tokens are re-derived with the server key when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReverseTunnel {
    pub id: i64,
    pub device_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub public_url: String,
    pub is_enabled: bool,
    pub tunnel_id: Option<String>,
    pub tunnel_arn: Option<String>,
    pub source_access_token: Option<String>,
    pub destination_access_token: Option<String>,
    pub local_port: i64,
    pub protocol: String,
    pub require_auth: bool,
    pub allowed_user_ids: Vec<i64>,
    /// CIDRs a client must be in (empty: any), as written (validated by the API).
    pub ip_allow: Vec<String>,
    /// CIDRs refused (wins over `ip_allow`).
    pub ip_deny: Vec<String>,
    pub total_requests: i64,
    pub last_accessed_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// Rate, bandwidth and per-client connection limits (all off by default).
    pub limits: TunnelLimits,
}

/// A tunnel's traffic limits, stored as one JSON column (`traffic_limits`). Validated by the
/// API before they get here; the edge enforces them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<BandwidthLimit>,
    /// Requests (and WebSockets) one client address may have open at once on the tunnel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_client: Option<u32>,
}

impl TunnelLimits {
    pub fn is_empty(&self) -> bool {
        *self == TunnelLimits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    pub requests_per_second: u32,
    pub burst: u32,
    pub per: RateLimitScope,
}

/// Whom one rate limit bucket counts: the whole tunnel, or each client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitScope {
    Tunnel,
    ClientIp,
}

/// Bytes per second, each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthLimit {
    pub bytes_per_second: u64,
}

#[derive(Debug, Clone)]
pub struct NewReverseTunnel {
    pub device_id: i64,
    pub name: String,
    pub description: Option<String>,
    pub public_url: String,
    pub is_enabled: bool,
    pub local_port: i64,
    pub protocol: String,
    pub require_auth: bool,
    pub allowed_user_ids: Vec<i64>,
    pub ip_allow: Vec<String>,
    pub ip_deny: Vec<String>,
}

/// A partial update: `None` leaves a field as it is. `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ReverseTunnelPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub is_enabled: Option<bool>,
    pub local_port: Option<i64>,
    pub protocol: Option<String>,
    pub require_auth: Option<bool>,
    pub allowed_user_ids: Option<Vec<i64>>,
    pub ip_allow: Option<Vec<String>>,
    pub ip_deny: Option<Vec<String>>,
    /// Replaces all limits at once.
    pub limits: Option<TunnelLimits>,
}

/// Where a reverse tunnel's broker tunnel stands (set on open/rotate, cleared on close).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerLink {
    pub tunnel_id: Option<String>,
    pub tunnel_arn: Option<String>,
    pub expires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TunnelStatus {
    Open,
    Closed,
}

impl TunnelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelStatus::Open => "OPEN",
            TunnelStatus::Closed => "CLOSED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OPEN" => Some(TunnelStatus::Open),
            "CLOSED" => Some(TunnelStatus::Closed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One access token slot (source or destination) of a broker tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenSlot {
    /// Hex SHA-256 of the current token (lookup key; unique).
    pub hash: Option<String>,
    /// Random nonce the broker derives the current token from with its server key (hex).
    pub nonce: Option<String>,
    /// When a handshake spent the token (single use), if it did.
    pub used_at: Option<Timestamp>,
    /// Hex SHA-256 of the client token bound on first use (the protocol's reconnect exception).
    pub client_token_hash: Option<String>,
    /// CONNECTED / DISCONNECTED as last recorded, and when it changed.
    pub connected: bool,
    pub state_updated_at: Option<Timestamp>,
}

/// A tunnel of the broker (the AWS IoT Secure Tunnel equivalent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTunnel {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    /// Project that owns it (reverse tunnels: the device's project; AWS API: the key's project).
    pub project_id: Option<i64>,
    pub status: TunnelStatus,
    pub description: Option<String>,
    pub thing_name: Option<String>,
    pub services: Vec<String>,
    pub tags: Vec<Tag>,
    pub max_lifetime_minutes: i64,
    pub source: TokenSlot,
    pub destination: TokenSlot,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenMode {
    Source,
    Destination,
}

impl TokenMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenMode::Source => "source",
            TokenMode::Destination => "destination",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct BrokerTunnelFilter {
    pub project_id: Option<i64>,
    pub thing_name: Option<String>,
    /// Return tunnels strictly older (by created_at, tunnel_id) than this cursor: newest first.
    pub before: Option<(Timestamp, String)>,
    /// At most this many rows; 0 or less means no limit.
    pub limit: i64,
}

/// One request seen by the edge.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccessLogEntry {
    pub id: i64,
    pub reverse_tunnel_id: i64,
    pub at: Timestamp,
    pub user_id: Option<i64>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub duration_ms: i64,
    /// The client's address (as the edge saw it, or forwarded by a trusted proxy).
    pub client_ip: Option<String>,
    /// The `User-Agent` header, at most 256 characters.
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAccessLogEntry {
    pub reverse_tunnel_id: i64,
    pub at: Timestamp,
    pub user_id: Option<i64>,
    pub method: String,
    pub path: String,
    pub status: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    pub duration_ms: i64,
    /// The client's address (as the edge saw it, or forwarded by a trusted proxy).
    pub client_ip: Option<String>,
    /// The `User-Agent` header, at most 256 characters.
    pub user_agent: Option<String>,
}

/// Batched usage counters flushed by the edge.
#[derive(Debug, Clone)]
pub struct UsageDelta {
    pub reverse_tunnel_id: i64,
    pub requests: i64,
    pub last_accessed_at: Timestamp,
}

/// An AWS-style access key (SigV4). The secret is not stored: it is derived from `nonce` with
/// the server key.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKey {
    pub access_key_id: String,
    pub user_id: i64,
    pub project_id: i64,
    pub nonce: String,
    pub description: Option<String>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// How long a node's last heartbeat keeps it alive in the others' eyes. Nodes renew about
/// every second, so a live node is never near the limit; a node silent for longer is dead.
pub const NODE_LEASE_SECS: i64 = 5;

/// A `burrow server` process registered in the `nodes` table (its lease).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Node {
    pub name: String,
    /// Random per process start: tells a restarted node from a second process of one name.
    pub instance_id: String,
    pub region: String,
    /// Comma-separated: `api,edge,broker,scheduler`.
    pub roles: String,
    pub cluster_url: Option<String>,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// Set when the node stopped gracefully (its lease is free at once).
    pub left_at: Option<Timestamp>,
    /// Destination peers (tunnels) connected to this node at its last heartbeat.
    pub tunnels_held: i64,
}

impl Node {
    /// Whether the node's lease is live at `now`.
    pub fn is_alive(&self, now: Timestamp) -> bool {
        self.left_at.is_none()
            && self.heartbeat_at > now - chrono::Duration::seconds(NODE_LEASE_SECS)
    }
}

/// What a starting node claims.
#[derive(Debug, Clone)]
pub struct NodeClaim {
    pub name: String,
    pub instance_id: String,
    pub region: String,
    pub roles: String,
    pub cluster_url: Option<String>,
    /// Refuse while any *other* node is alive (SQLite: one node per database).
    pub exclusive: bool,
}

/// A per-tunnel API key (`bk_...`): only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelKey {
    pub id: i64,
    pub reverse_tunnel_id: i64,
    pub name: String,
    /// The key's first characters (not secret), to tell keys apart in lists.
    pub prefix: String,
    pub key_hash: String,
    /// HTTP methods the key may use (upper case); empty: every method.
    pub methods: Vec<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: Option<i64>,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewTunnelKey {
    pub reverse_tunnel_id: i64,
    pub name: String,
    pub prefix: String,
    pub key_hash: String,
    pub methods: Vec<String>,
    pub expires_at: Option<Timestamp>,
    pub created_by: Option<i64>,
}

/// A time-limited share link of one tunnel: only its secret's SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareLink {
    pub id: i64,
    pub reverse_tunnel_id: i64,
    pub prefix: String,
    pub secret_hash: String,
    pub note: Option<String>,
    pub methods: Vec<String>,
    /// Distinct visitors allowed (`None`: no limit).
    pub max_uses: Option<i64>,
    /// Distinct visitors so far.
    pub uses: i64,
    pub expires_at: Timestamp,
    pub created_by: Option<i64>,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewShareLink {
    pub reverse_tunnel_id: i64,
    pub prefix: String,
    pub secret_hash: String,
    pub note: Option<String>,
    pub methods: Vec<String>,
    pub max_uses: Option<i64>,
    pub expires_at: Timestamp,
    pub created_by: Option<i64>,
}

/// Whether a share link let a visitor in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorAdmission {
    /// A new visitor, counted.
    New,
    /// A visitor the link already counted.
    Known,
    /// A new visitor over `max_uses` (or the link is gone).
    Full,
}

/// One create or revoke of a key or link (who, what, when).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SharingAuditEntry {
    pub id: i64,
    pub project_id: i64,
    pub reverse_tunnel_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub actor_email: Option<String>,
    /// `api_key.create`, `api_key.revoke`, `share_link.create`, `share_link.revoke`,
    /// `ip_rules.update`.
    pub action: String,
    pub object_id: Option<i64>,
    pub detail: Option<String>,
    pub at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewSharingAuditEntry {
    pub project_id: i64,
    pub reverse_tunnel_id: Option<i64>,
    pub actor_user_id: Option<i64>,
    pub actor_email: Option<String>,
    pub action: String,
    pub object_id: Option<i64>,
    pub detail: Option<String>,
    pub at: Timestamp,
}

/// An invitation to join a project with a role, by email; the token is kept as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invitation {
    pub id: i64,
    pub project_id: i64,
    /// Lower case.
    pub email: String,
    pub role: String,
    pub token_hash: String,
    pub invited_by: Option<i64>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub accepted_by: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub project_id: i64,
    pub email: String,
    pub role: String,
    pub token_hash: String,
    pub invited_by: i64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A personal access token (CLI, automation), kept as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonalToken {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    /// "read" or "full".
    pub scope: String,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct NewPersonalToken {
    pub user_id: i64,
    pub name: String,
    pub scope: String,
    pub token_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}
