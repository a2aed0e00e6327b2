//! `burrow projects|devices|tunnels|keys|links|members ...`, `burrow tunnel ...` (its
//! `domains` too), `burrow login`, `burrow doctor`: the operator's command line over the API
//! (the same calls as the web UI). Every API command takes `--server` (env `BURROW_SERVER`), `--token-file` (env
//! `BURROW_TOKEN`, else the token `burrow login` stored) and `--json`; see docs/cli.md.
//!
//! Exit codes ([`exit`]) tell scripts what went wrong without parsing messages.

pub mod api;
pub mod config_args;
pub mod devices;
pub mod doctor;
pub mod domains;
pub mod login;
pub mod output;
pub mod projects;
pub mod sharing;
pub mod sharing_actions;
pub mod tunnel;
pub mod tunnels;

use std::path::PathBuf;

use clap::Args;

/// The process exit codes of the CLI (documented in docs/cli.md).
pub mod exit {
    pub const OK: u8 = 0;
    /// Anything else: a refused request (validation, conflict), a server error, a failed
    /// doctor check.
    pub const ERROR: u8 = 1;
    /// Bad usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// The project, device, tunnel, key or link does not exist (or is not visible to you).
    pub const NOT_FOUND: u8 = 3;
    /// No token, an expired or revoked one, or not allowed (401/403).
    pub const AUTH: u8 = 4;
    /// The server could not be reached (connection refused, DNS, timeout).
    pub const UNREACHABLE: u8 = 5;
}

/// An error that carries its exit code; every other error exits with [`exit::ERROR`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

/// The exit code for an error returned by a command.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Failure>().map_or(exit::ERROR, |f| f.code)
}

/// Where and as whom the API is called, and how answers are printed.
#[derive(Args, Clone, Debug)]
pub struct ApiArgs {
    /// The server's base URL [default: the one `burrow login` stored, else
    /// http://localhost:8700].
    #[arg(long, global = true, env = "BURROW_SERVER")]
    pub server: Option<String>,
    /// File holding a user JWT. Default: env BURROW_TOKEN, else the token `burrow login`
    /// stored (~/.config/burrow/token).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Print the API's JSON answer (for scripts) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

pub const DEFAULT_SERVER: &str = "http://localhost:8700";

impl ApiArgs {
    /// The server: flag or env, else the one `burrow login` stored, else the default.
    pub fn server(&self) -> String {
        let s = self
            .server
            .clone()
            .or_else(|| login::stored("server"))
            .unwrap_or_else(|| DEFAULT_SERVER.to_string());
        s.trim_end_matches('/').to_string()
    }

    /// The token: `--token-file`, else `BURROW_TOKEN`, else the stored one.
    pub fn token(&self) -> anyhow::Result<String> {
        if let Some(f) = &self.token_file {
            let t = std::fs::read_to_string(f)
                .map_err(|e| Failure::new(exit::AUTH, format!("reading {}: {e}", f.display())))?;
            return Ok(t.trim().to_string());
        }
        if let Ok(t) = std::env::var("BURROW_TOKEN") {
            return Ok(t.trim().to_string());
        }
        login::stored("token").ok_or_else(|| {
            Failure::new(
                exit::AUTH,
                "not logged in: run `burrow login`, set BURROW_TOKEN or pass --token-file",
            )
            .into()
        })
    }
}
