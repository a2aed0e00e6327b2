//! `DIR/status.json`: what the agent is doing, rewritten (atomically) on every change, and
//! the table `burrow agent status` prints from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const STATUS_FILE: &str = "status.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelState {
    Connecting,
    Connected,
    Backoff,
}

impl TunnelState {
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelState::Connecting => "connecting",
            TunnelState::Connected => "connected",
            TunnelState::Backoff => "backoff",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub id: i64,
    pub name: String,
    pub tunnel_id: String,
    pub public_url: String,
    /// `localhost:<local_port>`
    pub target: String,
    pub state: TunnelState,
    pub last_error: Option<String>,
    pub since: DateTime<Utc>,
}

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentStatus {
    pub dsn: String,
    /// The device URL the agent uses (of those it knows), and since when.
    pub device_url: String,
    #[serde(default)]
    pub device_url_since: Option<DateTime<Utc>>,
    /// `ok`, `unreachable` or `refused`.
    pub config: String,
    pub config_error: Option<String>,
    pub config_version: Option<String>,
    /// Config requests sent since the agent started (a spinning agent shows here).
    #[serde(default)]
    pub config_requests: u64,
    pub updated_at: Option<DateTime<Utc>>,
    /// Keyed by `<id>/<tunnel_id>` (two entries for one tunnel during a rotation).
    pub tunnels: BTreeMap<String, TunnelStatus>,
}

impl AgentStatus {
    /// Records the device URL that answered; `device_url_since` moves only when it changes.
    pub fn use_device_url(&mut self, url: &str) {
        if self.device_url != url || self.device_url_since.is_none() {
            self.device_url = url.to_string();
            self.device_url_since = Some(Utc::now());
        }
    }
}

/// The live status, shared by the main loop and the tunnel tasks.
#[derive(Clone)]
pub struct StatusBoard {
    inner: Arc<Mutex<AgentStatus>>,
    path: PathBuf,
}

impl StatusBoard {
    pub fn new(dir: &Path, dsn: &str, device_url: &str) -> Self {
        let board = StatusBoard {
            inner: Arc::new(Mutex::new(AgentStatus {
                dsn: dsn.to_string(),
                device_url: device_url.to_string(),
                config: "starting".into(),
                ..AgentStatus::default()
            })),
            path: dir.join(STATUS_FILE),
        };
        board.update(|_| {});
        board
    }

    /// Applies `change` and rewrites the file (under the lock, so writes are ordered).
    pub fn update(&self, change: impl FnOnce(&mut AgentStatus)) {
        let mut status = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut status);
        status.updated_at = Some(Utc::now());
        if let Err(e) = write_atomic(&self.path, &status) {
            tracing::warn!(error = %format!("{e:#}"), "writing status.json");
        }
    }

    pub fn set_tunnel(&self, key: &str, status: TunnelStatus) {
        self.update(|s| {
            s.tunnels.insert(key.to_string(), status);
        });
    }

    /// Changes a tunnel's state; `since` moves only when the state does.
    pub fn set_state(&self, key: &str, state: TunnelState, error: Option<String>) {
        self.update(|s| {
            if let Some(t) = s.tunnels.get_mut(key) {
                if t.state != state {
                    t.since = Utc::now();
                }
                t.state = state;
                if error.is_some() {
                    t.last_error = error;
                }
            }
        });
    }

    pub fn remove_tunnel(&self, key: &str) {
        self.update(|s| {
            s.tunnels.remove(key);
        });
    }

    pub fn snapshot(&self) -> AgentStatus {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

fn write_atomic(path: &Path, status: &AgentStatus) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
    let body = serde_json::to_vec_pretty(status)?;
    std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

/// Reads `DIR/status.json`.
pub fn read(dir: &Path) -> anyhow::Result<AgentStatus> {
    let path = dir.join(STATUS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (is the agent running?)", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A human table of the status.
pub fn render(status: &AgentStatus) -> String {
    let mut out = String::new();
    let at = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(out, "device:  {}", status.dsn);
    match status.device_url_since {
        Some(since) => {
            let _ = writeln!(
                out,
                "server:  {} (since {})",
                status.device_url,
                at(Some(since))
            );
        }
        None => {
            let _ = writeln!(out, "server:  {} (not reached yet)", status.device_url);
        }
    }
    let _ = write!(out, "config:  {}", status.config);
    if let Some(e) = &status.config_error {
        let _ = write!(out, " ({e})");
    }
    let _ = writeln!(out, "\nupdated: {}\n", at(status.updated_at));
    if status.tunnels.is_empty() {
        out.push_str("no tunnels\n");
        return out;
    }
    let header = [
        "NAME",
        "STATE",
        "TARGET",
        "PUBLIC URL",
        "SINCE",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 6]> = status
        .tunnels
        .values()
        .map(|t| {
            [
                t.name.clone(),
                t.state.as_str().to_string(),
                t.target.clone(),
                t.public_url.clone(),
                at(Some(t.since)),
                t.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header);
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_renders_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let board = StatusBoard::new(dir.path(), "ABC123", "https://localhost:8443");
        board.set_tunnel(
            "1/tid",
            TunnelStatus {
                id: 1,
                name: "Web Dashboard".into(),
                tunnel_id: "tid".into(),
                public_url: "device-abc123.localhost".into(),
                target: "127.0.0.1:8080".into(),
                state: TunnelState::Connecting,
                last_error: None,
                since: Utc::now(),
            },
        );
        board.set_state("1/tid", TunnelState::Connected, None);
        let status = read(dir.path()).unwrap();
        assert_eq!(status.tunnels["1/tid"].state, TunnelState::Connected);
        let table = render(&status);
        assert!(table.contains("Web Dashboard"), "{table}");
        assert!(table.contains("connected"), "{table}");
        assert!(table.contains("127.0.0.1:8080"), "{table}");
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(STATUS_FILE)]);
        board.remove_tunnel("1/tid");
        assert!(render(&read(dir.path()).unwrap()).contains("no tunnels"));
    }
}
