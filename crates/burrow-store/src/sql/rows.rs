//! Row shapes for the models that do not map column-for-field (JSON columns, token slots).

use sqlx::types::Json;

use crate::error::StoreError;
use crate::model::*;
use crate::traffic::*;

/// A `reverse_tunnels` row as stored (`allowed_user_ids` is a nullable JSON array).
#[derive(sqlx::FromRow)]
pub(crate) struct ReverseTunnelRow {
    id: i64,
    device_id: i64,
    name: String,
    description: Option<String>,
    public_url: String,
    is_enabled: bool,
    tunnel_id: Option<String>,
    tunnel_arn: Option<String>,
    source_access_token: Option<String>,
    destination_access_token: Option<String>,
    local_port: i64,
    protocol: String,
    require_auth: bool,
    allowed_user_ids: Option<Json<Vec<i64>>>,
    ip_allow: Option<Json<Vec<String>>>,
    ip_deny: Option<Json<Vec<String>>>,
    total_requests: i64,
    last_accessed_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    traffic_limits: Option<Json<TunnelLimits>>,
}

impl From<ReverseTunnelRow> for ReverseTunnel {
    fn from(r: ReverseTunnelRow) -> Self {
        ReverseTunnel {
            id: r.id,
            device_id: r.device_id,
            name: r.name,
            description: r.description,
            public_url: r.public_url,
            is_enabled: r.is_enabled,
            tunnel_id: r.tunnel_id,
            tunnel_arn: r.tunnel_arn,
            source_access_token: r.source_access_token,
            destination_access_token: r.destination_access_token,
            local_port: r.local_port,
            protocol: r.protocol,
            require_auth: r.require_auth,
            allowed_user_ids: r.allowed_user_ids.map(|j| j.0).unwrap_or_default(),
            ip_allow: r.ip_allow.map(|j| j.0).unwrap_or_default(),
            ip_deny: r.ip_deny.map(|j| j.0).unwrap_or_default(),
            total_requests: r.total_requests,
            last_accessed_at: r.last_accessed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            expires_at: r.expires_at,
            limits: r.traffic_limits.map(|j| j.0).unwrap_or_default(),
        }
    }
}

/// A `broker_tunnels` row as stored: the two token slots flattened into `source_*` and
/// `destination_*` columns, services and tags as JSON.
#[derive(sqlx::FromRow)]
pub(crate) struct BrokerTunnelRow {
    tunnel_id: String,
    tunnel_arn: String,
    project_id: Option<i64>,
    status: String,
    description: Option<String>,
    thing_name: Option<String>,
    services: Json<Vec<String>>,
    tags: Json<Vec<Tag>>,
    max_lifetime_minutes: i64,
    source_token_hash: Option<String>,
    source_token_nonce: Option<String>,
    source_token_used_at: Option<Timestamp>,
    source_client_token_hash: Option<String>,
    source_connected: bool,
    source_state_updated_at: Option<Timestamp>,
    destination_token_hash: Option<String>,
    destination_token_nonce: Option<String>,
    destination_token_used_at: Option<Timestamp>,
    destination_client_token_hash: Option<String>,
    destination_connected: bool,
    destination_state_updated_at: Option<Timestamp>,
    created_at: Timestamp,
    last_updated_at: Timestamp,
    expires_at: Timestamp,
}

impl TryFrom<BrokerTunnelRow> for BrokerTunnel {
    type Error = StoreError;

    fn try_from(r: BrokerTunnelRow) -> Result<Self, StoreError> {
        let status = TunnelStatus::parse(&r.status).ok_or_else(|| {
            StoreError::Database(sqlx::Error::Decode(
                format!("unknown broker tunnel status {:?}", r.status).into(),
            ))
        })?;
        Ok(BrokerTunnel {
            tunnel_id: r.tunnel_id,
            tunnel_arn: r.tunnel_arn,
            project_id: r.project_id,
            status,
            description: r.description,
            thing_name: r.thing_name,
            services: r.services.0,
            tags: r.tags.0,
            max_lifetime_minutes: r.max_lifetime_minutes,
            source: TokenSlot {
                hash: r.source_token_hash,
                nonce: r.source_token_nonce,
                used_at: r.source_token_used_at,
                client_token_hash: r.source_client_token_hash,
                connected: r.source_connected,
                state_updated_at: r.source_state_updated_at,
            },
            destination: TokenSlot {
                hash: r.destination_token_hash,
                nonce: r.destination_token_nonce,
                used_at: r.destination_token_used_at,
                client_token_hash: r.destination_client_token_hash,
                connected: r.destination_connected,
                state_updated_at: r.destination_state_updated_at,
            },
            created_at: r.created_at,
            last_updated_at: r.last_updated_at,
            expires_at: r.expires_at,
        })
    }
}

impl BrokerTunnelRow {
    /// Which slot of this row holds `token_hash`, if any.
    pub(crate) fn mode_of(&self, token_hash: &str) -> Option<TokenMode> {
        if self.source_token_hash.as_deref() == Some(token_hash) {
            Some(TokenMode::Source)
        } else if self.destination_token_hash.as_deref() == Some(token_hash) {
            Some(TokenMode::Destination)
        } else {
            None
        }
    }
}

/// Converts fetched broker rows.
pub(crate) fn broker_tunnels(rows: Vec<BrokerTunnelRow>) -> Result<Vec<BrokerTunnel>, StoreError> {
    rows.into_iter().map(BrokerTunnel::try_from).collect()
}

/// Converts fetched reverse tunnel rows.
pub(crate) fn reverse_tunnels(rows: Vec<ReverseTunnelRow>) -> Vec<ReverseTunnel> {
    rows.into_iter().map(ReverseTunnel::from).collect()
}

/// A `tunnel_keys` row (`methods` is JSON).
#[derive(sqlx::FromRow)]
pub(crate) struct TunnelKeyRow {
    id: i64,
    reverse_tunnel_id: i64,
    name: String,
    prefix: String,
    key_hash: String,
    methods: Json<Vec<String>>,
    expires_at: Option<Timestamp>,
    created_by: Option<i64>,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<TunnelKeyRow> for TunnelKey {
    fn from(r: TunnelKeyRow) -> Self {
        TunnelKey {
            id: r.id,
            reverse_tunnel_id: r.reverse_tunnel_id,
            name: r.name,
            prefix: r.prefix,
            key_hash: r.key_hash,
            methods: r.methods.0,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A `share_links` row (`methods` is JSON).
#[derive(sqlx::FromRow)]
pub(crate) struct ShareLinkRow {
    id: i64,
    reverse_tunnel_id: i64,
    prefix: String,
    secret_hash: String,
    note: Option<String>,
    methods: Json<Vec<String>>,
    max_uses: Option<i64>,
    uses: i64,
    expires_at: Timestamp,
    created_by: Option<i64>,
    created_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl From<ShareLinkRow> for ShareLink {
    fn from(r: ShareLinkRow) -> Self {
        ShareLink {
            id: r.id,
            reverse_tunnel_id: r.reverse_tunnel_id,
            prefix: r.prefix,
            secret_hash: r.secret_hash,
            note: r.note,
            methods: r.methods.0,
            max_uses: r.max_uses,
            uses: r.uses,
            expires_at: r.expires_at,
            created_by: r.created_by,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A `traffic_rollups` row as stored (status classes in columns, latency as JSON).
#[derive(sqlx::FromRow)]
pub(crate) struct TrafficRollupRow {
    reverse_tunnel_id: i64,
    resolution_secs: i64,
    bucket_start: Timestamp,
    requests: i64,
    status_1xx: i64,
    status_2xx: i64,
    status_3xx: i64,
    status_4xx: i64,
    status_5xx: i64,
    bytes_in: i64,
    bytes_out: i64,
    distinct_clients: i64,
    latency: Json<LatencySplit>,
}

impl From<TrafficRollupRow> for TrafficRollup {
    fn from(r: TrafficRollupRow) -> Self {
        TrafficRollup {
            reverse_tunnel_id: r.reverse_tunnel_id,
            resolution_secs: r.resolution_secs,
            bucket_start: r.bucket_start,
            requests: r.requests,
            by_class: [
                r.status_1xx,
                r.status_2xx,
                r.status_3xx,
                r.status_4xx,
                r.status_5xx,
            ],
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            distinct_clients: r.distinct_clients,
            latency: r.latency.0,
        }
    }
}
