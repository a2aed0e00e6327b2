//! The edge's traits over plain maps, for tests that exercise the edge without a database.
//! Semantics follow the SQL store where the edge depends on them (login codes are single
//! use and capped per user; a share link counts each visitor once, up to `max_uses`).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use burrow_store::{
    Device, LoginCode, NewAccessLogEntry, PrincipalUsage, ReverseTunnel, ShareLink, StoreError,
    TrafficRollup, TunnelKey, UsageDelta, User, VisitorAdmission,
};
use chrono::{DateTime, Utc};

use super::{Credentials, LoginCodes, TunnelLookup, UsageSink, UserDirectory};

type Result<T> = std::result::Result<T, StoreError>;

#[derive(Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

/// What the backend holds; tests fill it with [`MemoryBackend::with`] and read it back.
#[derive(Default)]
pub struct State {
    /// By `public_url`.
    pub tunnels: HashMap<String, ReverseTunnel>,
    /// By id.
    pub devices: HashMap<i64, Device>,
    pub users: Vec<User>,
    pub revoked_before: HashMap<i64, i64>,
    /// (project, user)
    pub members: HashSet<(i64, i64)>,
    pub login_codes: Vec<LoginCode>,
    pub keys: Vec<TunnelKey>,
    pub links: Vec<ShareLink>,
    /// (link, visitor)
    pub visitors: HashSet<(i64, String)>,
    pub usage: Vec<UsageDelta>,
    pub access_log: Vec<NewAccessLogEntry>,
    pub rollups: Vec<TrafficRollup>,
    pub principal_usage: Vec<PrincipalUsage>,
}

impl MemoryBackend {
    /// Reads or changes the backend's contents.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl TunnelLookup for MemoryBackend {
    async fn tunnel_by_host(&self, host: &str) -> Result<Option<(ReverseTunnel, Device)>> {
        Ok(self.with(|s| {
            let tunnel = s.tunnels.get(host)?;
            let device = s.devices.get(&tunnel.device_id)?;
            Some((tunnel.clone(), device.clone()))
        }))
    }
}

#[async_trait]
impl UserDirectory for MemoryBackend {
    async fn user_by_id(&self, id: i64) -> Result<Option<User>> {
        Ok(self.with(|s| s.users.iter().find(|u| u.id == id).cloned()))
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let email = email.to_lowercase();
        Ok(self.with(|s| s.users.iter().find(|u| u.email == email).cloned()))
    }
    async fn sessions_valid_after(&self, user_id: i64) -> Result<Option<i64>> {
        Ok(self.with(|s| s.revoked_before.get(&user_id).copied()))
    }
    async fn is_member(&self, project_id: i64, user_id: i64) -> Result<bool> {
        Ok(self.with(|s| s.members.contains(&(project_id, user_id))))
    }
}

#[async_trait]
impl LoginCodes for MemoryBackend {
    async fn insert_login_code(&self, code: &LoginCode, keep_per_user: i64) -> Result<()> {
        self.with(|s| {
            s.login_codes.push(code.clone());
            s.login_codes.retain(|c| c.expires_at > code.created_at);
            // Newest first, as the SQL store orders them; keep the first `keep_per_user`.
            let mut mine: Vec<(DateTime<Utc>, String)> = s
                .login_codes
                .iter()
                .filter(|c| c.user_id == code.user_id)
                .map(|c| (c.created_at, c.code_hash.clone()))
                .collect();
            mine.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            let keep = usize::try_from(keep_per_user).unwrap_or(0);
            let drop: HashSet<String> = mine.into_iter().skip(keep).map(|(_, h)| h).collect();
            s.login_codes.retain(|c| !drop.contains(&c.code_hash));
        });
        Ok(())
    }
    async fn take_login_code(&self, code_hash: &str) -> Result<Option<LoginCode>> {
        Ok(self.with(|s| {
            let i = s
                .login_codes
                .iter()
                .position(|c| c.code_hash == code_hash)?;
            Some(s.login_codes.remove(i))
        }))
    }
}

#[async_trait]
impl Credentials for MemoryBackend {
    async fn tunnel_key_by_hash(&self, key_hash: &str) -> Result<Option<TunnelKey>> {
        Ok(self.with(|s| s.keys.iter().find(|k| k.key_hash == key_hash).cloned()))
    }
    async fn touch_tunnel_key(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        self.with(|s| {
            for k in s.keys.iter_mut().filter(|k| k.id == id) {
                k.last_used_at = Some(at);
            }
        });
        Ok(())
    }
    async fn share_link_by_hash(&self, secret_hash: &str) -> Result<Option<ShareLink>> {
        Ok(self.with(|s| {
            s.links
                .iter()
                .find(|l| l.secret_hash == secret_hash)
                .cloned()
        }))
    }
    async fn share_link_by_id(&self, id: i64) -> Result<Option<ShareLink>> {
        Ok(self.with(|s| s.links.iter().find(|l| l.id == id).cloned()))
    }
    async fn admit_share_link_visitor(
        &self,
        link_id: i64,
        visitor: &str,
        _at: DateTime<Utc>,
    ) -> Result<VisitorAdmission> {
        Ok(self.with(|s| {
            if s.visitors.contains(&(link_id, visitor.to_string())) {
                return VisitorAdmission::Known;
            }
            let Some(link) = s.links.iter_mut().find(|l| l.id == link_id) else {
                return VisitorAdmission::Full;
            };
            if link.max_uses.is_some_and(|max| link.uses >= max) {
                return VisitorAdmission::Full;
            }
            link.uses += 1;
            s.visitors.insert((link_id, visitor.to_string()));
            VisitorAdmission::New
        }))
    }
}

#[async_trait]
impl UsageSink for MemoryBackend {
    async fn add_usage(&self, deltas: &[UsageDelta]) -> Result<()> {
        self.with(|s| {
            // As the SQL store: the tunnel row carries the running totals.
            for d in deltas {
                for t in s
                    .tunnels
                    .values_mut()
                    .filter(|t| t.id == d.reverse_tunnel_id)
                {
                    t.total_requests += d.requests;
                    t.last_accessed_at = t.last_accessed_at.max(Some(d.last_accessed_at));
                }
            }
            s.usage.extend_from_slice(deltas);
        });
        Ok(())
    }
    async fn insert_access_log(&self, entries: &[NewAccessLogEntry]) -> Result<()> {
        self.with(|s| s.access_log.extend_from_slice(entries));
        Ok(())
    }
    async fn insert_traffic_rollups(&self, rows: &[TrafficRollup]) -> Result<()> {
        self.with(|s| s.rollups.extend_from_slice(rows));
        Ok(())
    }
    async fn add_principal_usage(&self, rows: &[PrincipalUsage]) -> Result<()> {
        self.with(|s| s.principal_usage.extend_from_slice(rows));
        Ok(())
    }
}
