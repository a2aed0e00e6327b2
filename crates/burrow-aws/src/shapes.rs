//! Request and response shapes of the IoTSecuredTunneling operations (camelCase JSON).

use burrow_broker::{ConnectionState, TunnelInfo};
use burrow_store::{Tag, Timestamp};
use serde::{Deserialize, Serialize};

/// Epoch seconds, fractional, as AWS JSON timestamps are.
pub fn epoch(t: Timestamp) -> f64 {
    t.timestamp_micros() as f64 / 1_000_000.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TagShape {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl From<&Tag> for TagShape {
    fn from(t: &Tag) -> Self {
        TagShape {
            key: t.key.clone(),
            value: t.value.clone(),
        }
    }
}

impl From<TagShape> for Tag {
    fn from(t: TagShape) -> Self {
        Tag {
            key: t.key,
            value: t.value,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DestinationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thing_name: Option<String>,
    pub services: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutConfig {
    pub max_lifetime_timeout_minutes: Option<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OpenTunnelRequest {
    pub description: Option<String>,
    pub tags: Option<Vec<TagShape>>,
    pub destination_config: Option<DestinationConfig>,
    pub timeout_config: Option<TimeoutConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenTunnelResponse {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    pub source_access_token: String,
    pub destination_access_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloseTunnelRequest {
    pub tunnel_id: String,
    #[serde(default)]
    pub delete: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTunnelRequest {
    pub tunnel_id: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ListTunnelsRequest {
    pub thing_name: Option<String>,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateRequest {
    pub tunnel_id: String,
    pub client_mode: String,
    pub destination_config: Option<DestinationConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotateResponse {
    pub tunnel_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_access_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequest {
    pub resource_arn: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceRequest {
    pub resource_arn: String,
    pub tags: Vec<TagShape>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceRequest {
    pub resource_arn: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionStateShape {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<f64>,
}

impl From<&ConnectionState> for ConnectionStateShape {
    fn from(s: &ConnectionState) -> Self {
        ConnectionStateShape {
            status: if s.connected {
                "CONNECTED"
            } else {
                "DISCONNECTED"
            },
            last_updated_at: s.last_updated_at.map(epoch),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelShape {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    pub status: &'static str,
    pub source_connection_state: ConnectionStateShape,
    pub destination_connection_state: ConnectionStateShape,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
    pub timeout_config: TimeoutConfig,
    pub tags: Vec<TagShape>,
    pub created_at: f64,
    pub last_updated_at: f64,
}

impl From<&TunnelInfo> for TunnelShape {
    fn from(t: &TunnelInfo) -> Self {
        let has_dest = t.thing_name.is_some() || !t.services.is_empty();
        TunnelShape {
            tunnel_id: t.tunnel_id.clone(),
            tunnel_arn: t.tunnel_arn.clone(),
            status: t.status.as_str(),
            source_connection_state: (&t.source).into(),
            destination_connection_state: (&t.destination).into(),
            description: t.description.clone(),
            destination_config: has_dest.then(|| DestinationConfig {
                thing_name: t.thing_name.clone(),
                services: t.services.clone(),
            }),
            timeout_config: TimeoutConfig {
                max_lifetime_timeout_minutes: Some(t.max_lifetime_minutes),
            },
            tags: t.tags.iter().map(TagShape::from).collect(),
            created_at: epoch(t.created_at),
            last_updated_at: epoch(t.last_updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TunnelSummary {
    pub tunnel_id: String,
    pub tunnel_arn: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: f64,
    pub last_updated_at: f64,
}

impl From<&TunnelInfo> for TunnelSummary {
    fn from(t: &TunnelInfo) -> Self {
        TunnelSummary {
            tunnel_id: t.tunnel_id.clone(),
            tunnel_arn: t.tunnel_arn.clone(),
            status: t.status.as_str(),
            description: t.description.clone(),
            created_at: epoch(t.created_at),
            last_updated_at: epoch(t.last_updated_at),
        }
    }
}
