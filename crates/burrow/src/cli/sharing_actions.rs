//! `burrow tunnel keys|links ...` (and `burrow keys|links ...`): a tunnel's API keys and share links through the API (the
//! same calls as the web UI's Sharing panel). Answers are printed as JSON; a key or link URL
//! is printed once, at creation.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

#[derive(Subcommand)]
pub enum KeysAction {
    /// Create a key (printed once): `--name`, optional `--methods GET,HEAD`, `--expires-at`.
    Create {
        dsn: String,
        id: i64,
        #[arg(long)]
        name: String,
        /// Comma-separated HTTP methods the key may use (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        /// RFC 3339 expiry (default: none).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the tunnel's keys (never the keys themselves).
    List { dsn: String, id: i64 },
    /// Revoke a key at once.
    #[command(visible_alias = "delete")]
    Revoke { dsn: String, id: i64, key_id: i64 },
}

#[derive(Subcommand)]
pub enum LinksAction {
    /// Create a share link (its URL is printed once).
    Create {
        dsn: String,
        id: i64,
        /// Lifetime in minutes (at most the server's `share_link_max_minutes`).
        #[arg(long)]
        minutes: i64,
        /// Distinct visitors allowed (default: no limit).
        #[arg(long)]
        max_uses: Option<i64>,
        /// Comma-separated HTTP methods visitors may use (default: all).
        #[arg(long, value_delimiter = ',')]
        methods: Vec<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// List the tunnel's links.
    List { dsn: String, id: i64 },
    /// Revoke a link: its visitors' sessions end within seconds.
    #[command(visible_alias = "delete")]
    Revoke { dsn: String, id: i64, link_id: i64 },
}

fn tunnel_path(dsn: &str, id: i64) -> String {
    format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}")
}

fn methods(m: &[String]) -> Option<&[String]> {
    (!m.is_empty()).then_some(m)
}

/// The API call of a `keys` action: (method, path, body).
pub fn keys_request(action: &KeysAction) -> (Method, String, Option<Value>) {
    match action {
        KeysAction::Create {
            dsn,
            id,
            name,
            methods: m,
            expires_at,
        } => (
            Method::POST,
            format!("{}/api-keys", tunnel_path(dsn, *id)),
            Some(json!({"name": name, "methods": methods(m), "expires_at": expires_at})),
        ),
        KeysAction::List { dsn, id } => (
            Method::GET,
            format!("{}/api-keys", tunnel_path(dsn, *id)),
            None,
        ),
        KeysAction::Revoke { dsn, id, key_id } => (
            Method::DELETE,
            format!("{}/api-keys/{key_id}", tunnel_path(dsn, *id)),
            None,
        ),
    }
}

/// The API call of a `links` action: (method, path, body).
pub fn links_request(action: &LinksAction) -> (Method, String, Option<Value>) {
    match action {
        LinksAction::Create {
            dsn,
            id,
            minutes,
            max_uses,
            methods: m,
            note,
        } => (
            Method::POST,
            format!("{}/share-links", tunnel_path(dsn, *id)),
            Some(json!({"expires_in_minutes": minutes, "max_uses": max_uses,
                        "methods": methods(m), "note": note})),
        ),
        LinksAction::List { dsn, id } => (
            Method::GET,
            format!("{}/share-links", tunnel_path(dsn, *id)),
            None,
        ),
        LinksAction::Revoke { dsn, id, link_id } => (
            Method::DELETE,
            format!("{}/share-links/{link_id}", tunnel_path(dsn, *id)),
            None,
        ),
    }
}
