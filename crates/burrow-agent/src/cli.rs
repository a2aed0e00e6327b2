//! The agent's command line, shared by `burrow agent ...` and the standalone `burrow-agent`
//! binary (the small one to install on devices: it links only the agent's code).

use std::path::{Path, PathBuf};

use anyhow::Context;
use burrow_identity::{CaFingerprint, EnrollTrust};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum AgentAction {
    /// Make the device's key pair here, get its certificate with a one-time token.
    Enroll {
        /// The server's API URL, e.g. http://SERVER:8700.
        #[arg(long)]
        server: String,
        /// File holding the enrollment token. Env: BURROW_ENROLLMENT_TOKEN.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Where the key, certificate and agent.toml are written.
        #[arg(long)]
        dir: PathBuf,
        /// SHA-256 fingerprint of the server's device CA (the enrollment command shows it):
        /// the answer must carry exactly that CA, so plain HTTP cannot be intercepted.
        #[arg(long, value_name = "HEX")]
        ca_sha256: Option<String>,
        /// Enroll over plain HTTP without --ca-sha256, trusting whatever CA the answer carries
        /// (only on a network you trust).
        #[arg(long, conflicts_with = "ca_sha256")]
        insecure_enroll: bool,
    },
    /// Fetch the config, carry every enabled tunnel, and follow changes until stopped.
    Run {
        #[arg(long)]
        dir: PathBuf,
        /// This device's region: device URLs labelled `REGION=https://...` with it are
        /// tried first (overrides `region` in agent.toml).
        #[arg(long, env = "BURROW_REGION", value_parser = parse_region)]
        region: Option<String>,
        /// On SIGTERM or Ctrl-C: how long open tunnel connections may take to finish (no new
        /// one is taken meanwhile) before the agent exits; a second signal exits at once.
        /// E.g. 30s, 2m, 0. Default: `drain_timeout` in agent.toml, else 30s.
        #[arg(long, env = "BURROW_AGENT_DRAIN_TIMEOUT", value_name = "DURATION",
              value_parser = crate::shutdown::parse_duration)]
        drain_timeout: Option<std::time::Duration>,
    },
    /// Each tunnel's state, as the running agent last wrote it.
    Status {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Check the enrollment in DIR: agent.toml, the device certificate and CA, each device
    /// URL, the config endpoint and the clock. One line per check; exit code 1 when one fails.
    Doctor {
        #[arg(long)]
        dir: PathBuf,
        /// The findings as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_region(s: &str) -> Result<String, String> {
    burrow_identity::parse_region(s)
        .ok_or_else(|| format!("{s:?} is not a region (letters, digits, - and _)"))
}

/// The runtime the agent's commands run on: one thread. A device's agent relays a few
/// connections, and on one thread a frame read from the tunnel and its write to the local
/// service never wake a second worker (a futex and a context switch each; measured in
/// `docs/benchmarks.md`, sixth pass: a fifth less agent CPU per request, a third fewer
/// context switches). Blocking work still goes to tokio's blocking pool.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `action`; `run` serves until SIGTERM or Ctrl-C, then drains (see `shutdown`).
pub async fn execute(action: AgentAction) -> anyhow::Result<()> {
    match action {
        AgentAction::Enroll {
            server,
            token_file,
            dir,
            ca_sha256,
            insecure_enroll,
        } => {
            init_tracing("warn");
            let trust = match (ca_sha256, insecure_enroll) {
                (Some(hex), _) => EnrollTrust::Pinned(CaFingerprint::parse(&hex)?),
                (None, true) => EnrollTrust::Insecure,
                (None, false) => EnrollTrust::Https,
            };
            let token = secret_from(token_file.as_deref(), "BURROW_ENROLLMENT_TOKEN")?;
            let dsn = burrow_identity::agent_enroll(&server, &token, &dir, trust).await?;
            println!("enrolled device {dsn}; credentials in {}", dir.display());
            Ok(())
        }
        AgentAction::Run {
            dir,
            region,
            drain_timeout,
        } => {
            init_tracing("info");
            let signals = crate::shutdown::Signals::install().context("listening for signals")?;
            let options = crate::RunOptions {
                region,
                drain_timeout,
            };
            crate::run_with(&dir, options, signals.clone().first(), signals.second()).await
        }
        AgentAction::Status { dir } => {
            print!("{}", crate::status(&dir)?);
            Ok(())
        }
        AgentAction::Doctor { dir, json } => {
            let report = crate::doctor::agent_report(&dir).await;
            if report.print(json) != 0 {
                // The findings are printed; the exit code tells scripts.
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// A secret from a file, or else from an environment variable (never from argv, where
/// every user of the machine could read it).
pub fn secret_from(file: Option<&Path>, env: &str) -> anyhow::Result<String> {
    match file {
        Some(f) => Ok(std::fs::read_to_string(f)
            .with_context(|| format!("reading {}", f.display()))?
            .trim()
            .to_string()),
        None => std::env::var(env).with_context(|| format!("give --token-file or set {env}")),
    }
}

/// Logs to stderr; `RUST_LOG` overrides `default`.
pub fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// SIGTERM (systemd's stop) or Ctrl-C.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
