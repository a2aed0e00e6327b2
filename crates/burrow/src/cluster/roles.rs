//! What a node does (`roles`, default all): `api` (REST API, web UI, AWS-compatible API,
//! enrollment), `edge` (tunnel hosts and the edge's login), `broker` (the device listener,
//! the broker's `/tunnel`, holding devices) and `scheduler` (the lifecycle jobs). A cluster
//! can run edge-only nodes in front, and keep devices on broker nodes.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Api,
    Edge,
    Broker,
    Scheduler,
}

pub const ALL: [Role; 4] = [Role::Api, Role::Edge, Role::Broker, Role::Scheduler];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Edge => "edge",
            Role::Broker => "broker",
            Role::Scheduler => "scheduler",
        }
    }
}

/// `roles` as a list, or as one comma-separated string (`BURROW_ROLES=edge,api`).
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Role>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        Many(Vec<Role>),
        One(String),
    }
    match Given::deserialize(d)? {
        Given::Many(v) => Ok(v),
        Given::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| {
                ALL.iter()
                    .copied()
                    .find(|k| k.as_str() == r)
                    .ok_or_else(|| {
                        serde::de::Error::custom(format!(
                            "unknown role {r:?} (api, edge, broker, scheduler)"
                        ))
                    })
            })
            .collect(),
    }
}

/// The roles of this node, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles(Vec<Role>);

impl Default for Roles {
    fn default() -> Self {
        Roles(ALL.to_vec())
    }
}

impl Roles {
    pub fn new(roles: &[Role]) -> Result<Roles, String> {
        if roles.is_empty() {
            return Err("roles: give at least one of api, edge, broker, scheduler".into());
        }
        let mut v: Vec<Role> = ALL.iter().copied().filter(|r| roles.contains(r)).collect();
        v.dedup();
        Ok(Roles(v))
    }

    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// `api,edge,...` as the `nodes` table keeps it.
    pub fn joined(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(Roles::default().joined(), "api,edge,broker,scheduler");
        let edge_only = Roles::new(&[Role::Edge, Role::Edge]).unwrap();
        assert_eq!(edge_only.joined(), "edge");
        assert!(edge_only.has(Role::Edge) && !edge_only.has(Role::Broker));
        assert!(Roles::new(&[]).is_err());
    }
}
