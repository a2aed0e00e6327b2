//! The plain data types of the control operations.

use burrow_store::{BrokerTunnel, Tag, Timestamp, TokenSlot, TunnelStatus};
use serde::Serialize;

use crate::token::AccessToken;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenRequest {
    pub project_id: Option<i64>,
    pub description: Option<String>,
    pub thing_name: Option<String>,
    pub services: Vec<String>,
    /// 1..=720; `None` takes `BrokerConfig::default_lifetime_minutes`.
    pub lifetime_minutes: Option<i64>,
    pub tags: Vec<Tag>,
}

/// CONNECTED / DISCONNECTED of one role, as DescribeTunnel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionState {
    pub connected: bool,
    pub last_updated_at: Option<Timestamp>,
}

impl From<&TokenSlot> for ConnectionState {
    fn from(slot: &TokenSlot) -> Self {
        ConnectionState {
            connected: slot.connected,
            last_updated_at: slot.state_updated_at,
        }
    }
}

/// A tunnel as the operations report it. Carries no token and no token hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TunnelInfo {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    pub project_id: Option<i64>,
    pub status: TunnelStatus,
    pub description: Option<String>,
    pub thing_name: Option<String>,
    pub services: Vec<String>,
    pub tags: Vec<Tag>,
    pub max_lifetime_minutes: i64,
    pub source: ConnectionState,
    pub destination: ConnectionState,
    pub created_at: Timestamp,
    pub last_updated_at: Timestamp,
    pub expires_at: Timestamp,
}

impl From<&BrokerTunnel> for TunnelInfo {
    fn from(t: &BrokerTunnel) -> Self {
        TunnelInfo {
            tunnel_id: t.tunnel_id.clone(),
            tunnel_arn: t.tunnel_arn.clone(),
            project_id: t.project_id,
            status: t.status,
            description: t.description.clone(),
            thing_name: t.thing_name.clone(),
            services: t.services.clone(),
            tags: t.tags.clone(),
            max_lifetime_minutes: t.max_lifetime_minutes,
            source: (&t.source).into(),
            destination: (&t.destination).into(),
            created_at: t.created_at,
            last_updated_at: t.last_updated_at,
            expires_at: t.expires_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    pub tunnel: TunnelInfo,
    pub source_token: AccessToken,
    pub destination_token: AccessToken,
}

/// RotateTunnelAccessToken's `clientMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotateMode {
    Source,
    Destination,
    All,
}

impl RotateMode {
    /// Parses AWS's `SOURCE` / `DESTINATION` / `ALL` (exact, as the enum is case-sensitive).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "SOURCE" => Some(RotateMode::Source),
            "DESTINATION" => Some(RotateMode::Destination),
            "ALL" => Some(RotateMode::All),
            _ => None,
        }
    }

    pub(crate) fn source(self) -> bool {
        matches!(self, RotateMode::Source | RotateMode::All)
    }

    pub(crate) fn destination(self) -> bool {
        matches!(self, RotateMode::Destination | RotateMode::All)
    }
}

/// Only the rotated modes carry a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub tunnel: TunnelInfo,
    pub source_token: Option<AccessToken>,
    pub destination_token: Option<AccessToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    pub tunnel: TunnelInfo,
    /// True when a new tunnel was opened (the caller then closes the old one, if any, once it
    /// has switched over: make-before-break).
    pub replaced: bool,
}
