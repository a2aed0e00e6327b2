//! The cluster's nodes as the `nodes` table has them (administrators only).

use axum::extract::State;
use axum::Json;
use burrow_store::Node;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AdminUser;
use crate::error::ApiResult;
use crate::AppState;

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"name": "node-1", "region": "eu-west",
    "roles": ["api", "edge", "broker", "scheduler"], "cluster_url": null,
    "started_at": "2026-12-01T15:00:00Z", "last_heartbeat": "2026-12-01T15:20:00Z",
    "alive": true, "tunnels_held": 3}))]
pub struct NodeResponse {
    /// `node_name` (default: the host name).
    pub name: String,
    /// `node_region`.
    pub region: String,
    pub roles: Vec<String>,
    /// Where other nodes reach it, when configured.
    pub cluster_url: Option<String>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub started_at: chrono::DateTime<chrono::Utc>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub last_heartbeat: chrono::DateTime<chrono::Utc>,
    /// Heartbeat within the last 5 s and not stopped.
    pub alive: bool,
    /// Tunnels whose device is connected to this node (at its last heartbeat).
    pub tunnels_held: i64,
}

impl NodeResponse {
    fn of(n: Node, now: chrono::DateTime<chrono::Utc>) -> Self {
        NodeResponse {
            alive: n.is_alive(now),
            roles: n.roles.split(',').map(str::to_string).collect(),
            name: n.name,
            region: n.region,
            cluster_url: n.cluster_url,
            started_at: n.started_at,
            last_heartbeat: n.heartbeat_at,
            tunnels_held: n.tunnels_held,
        }
    }
}

/// List the server nodes sharing this database, alive or not (administrators only).
#[utoipa::path(get, path = "/api/v1/cluster/nodes", operation_id = "list_cluster_nodes",
    tag = "cluster",
    responses((status = 200, description = "every node, by name", body = [NodeResponse]),
        (status = 403, description = "the caller is no administrator")),
    security(("bearer" = [])))]
pub async fn nodes(
    State(state): State<AppState>,
    AdminUser(_admin): AdminUser,
) -> ApiResult<Json<Vec<NodeResponse>>> {
    let now = chrono::Utc::now();
    let nodes = state.store.list_nodes().await?;
    Ok(Json(
        nodes
            .into_iter()
            .map(|n| NodeResponse::of(n, now))
            .collect(),
    ))
}
