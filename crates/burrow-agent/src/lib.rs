//! `burrow agent`: the device side of burrow (what the seed's tunnel manager plus the AWS
//! `localproxy` do). [`run`] watches the device's tunnel config over mTLS (long-poll) and
//! keeps one destination connection per enabled tunnel, forwarding each connection to
//! `localhost:<local_port>` (IPv4, then IPv6) as a plain byte pipe; [`status`] prints what it is doing.
//!
//! - `config_watch`: the config endpoint client (mTLS, long-poll).
//! - `supervisor`: one task per tunnel, reconciled against each config, make-before-break.
//! - `backoff`: exponential backoff with full jitter.
//! - `status`: `DIR/status.json`, written atomically on every change.
//! - `doctor`: `doctor` checks an enrollment (also the report type of `burrow doctor`).
//! - `shutdown`: the drain on SIGTERM (its timeout, the signals).
//! - `cli`: the `enroll`/`run`/`status`/`doctor` commands (`burrow agent` and the `burrow-agent` binary).
//!
//! Access tokens are held as [`burrow_client::Secret`] (masked `Debug`) and never logged;
//! they come from the config endpoint, never from argv.

pub mod backoff;
pub mod cli;
pub mod config_watch;
pub mod doctor;
pub mod shutdown;
pub mod status;
pub mod supervisor;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{watch, Notify};

use crate::backoff::Backoff;
use crate::config_watch::{ConfigClient, FetchError, LONG_POLL_SECS};
use crate::status::StatusBoard;
use crate::supervisor::{Context, Supervisor};

/// `burrow agent run --dir DIR`: runs until `shutdown` completes. Only a broken `DIR`
/// (missing or unreadable enrollment files) is an error; the server being down, a refused
/// token or a revoked device are retried with backoff.
pub async fn run(dir: &Path, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_in_region(dir, None, shutdown).await
}

/// [`run`] for a device in `region` (else the `region` of `agent.toml`): the device URLs
/// labelled with it are tried first.
pub async fn run_in_region(
    dir: &Path,
    region: Option<String>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let options = RunOptions {
        region,
        drain_timeout: Some(Duration::ZERO),
    };
    run_with(dir, options, shutdown, std::future::pending()).await
}

/// What `burrow agent run` may be told besides its directory.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides `region` in agent.toml.
    pub region: Option<String>,
    /// How long open connections may finish after `shutdown`; `None`: `drain_timeout` in
    /// agent.toml, else [`shutdown::DEFAULT_DRAIN_TIMEOUT`].
    pub drain_timeout: Option<Duration>,
}

/// [`run`], stopping gracefully: once `shutdown` completes the agent takes no new tunnel
/// connection and lets the open ones finish, for up to the drain timeout or until `force`
/// completes, then returns.
pub async fn run_with(
    dir: &Path,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
    force: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut client =
        ConfigClient::load(dir, options.region).context("loading the agent's enrollment")?;
    let drain_timeout = match (options.drain_timeout, &client.agent.drain_timeout) {
        (Some(t), _) => t,
        (None, Some(s)) => shutdown::parse_duration(s)
            .map_err(|e| anyhow::anyhow!("drain_timeout in agent.toml: {e}"))?,
        (None, None) => shutdown::DEFAULT_DRAIN_TIMEOUT,
    };
    let status = StatusBoard::new(dir, &client.agent.dsn, client.active().as_str());
    let refresh = Arc::new(Notify::new());
    let (draining, draining_rx) = watch::channel(false);
    let mut supervisor = Supervisor::new(Context {
        ca_pem: client.ca_pem.clone(),
        status: status.clone(),
        refresh: refresh.clone(),
        draining: draining_rx,
    });
    tracing::info!(dsn = %client.agent.dsn, url = %client.active(), "agent starting");

    tokio::pin!(shutdown);
    let mut version: Option<String> = None;
    let mut unavailable = Backoff::from_pair(backoff::CONNECT);
    let mut refused = Backoff::from_pair(backoff::REFUSED);
    // First request: at once. Later: long-poll, unless a task asked for a fresh config.
    let mut wait = 0;
    loop {
        status.update(|s| s.config_requests += 1);
        let fetch = client.fetch(version.as_deref(), wait);
        let result = tokio::select! {
            () = &mut shutdown => break,
            () = refresh.notified(), if wait > 0 => {
                wait = 0;
                continue;
            }
            r = fetch => r,
        };
        let delay = match result {
            Ok(config) => {
                unavailable.reset();
                refused.reset();
                if let Some(urls) = &config.device_urls {
                    match client.adopt(urls) {
                        Ok(true) => {
                            tracing::info!(urls = %urls, "device URLs changed; agent.toml rewritten")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "could not rewrite agent.toml")
                        }
                    }
                }
                // The broker is on the device listener this agent reaches (an older server
                // without `device_urls` may name another one).
                let broker_url = match (&config.device_urls, &config.broker_url) {
                    (None, Some(b)) => b.clone(),
                    _ => client.active().broker_url(),
                };
                supervisor.reconcile(&config.tunnels, &broker_url);
                if version.as_deref() != Some(config.version.as_str()) {
                    tracing::info!(tunnels = supervisor.len(), "config applied");
                }
                let url = client.active().to_string();
                status.update(|s| {
                    s.config = "ok".into();
                    s.config_error = None;
                    s.config_version = Some(config.version.clone());
                    s.use_device_url(&url);
                });
                version = Some(config.version);
                wait = LONG_POLL_SECS;
                continue;
            }
            Err(e @ FetchError::Refused(..)) => {
                // Revoked, deleted or re-enrolled elsewhere: nothing here may run, but keep
                // asking slowly (an operator can fix it without restarting the agent).
                if refused.attempts() == 0 {
                    tracing::warn!(error = %e, "config refused; stopping all tunnels");
                } else {
                    tracing::debug!(error = %e, "config still refused");
                }
                supervisor.stop_all();
                version = None;
                status.update(|s| {
                    s.config = "refused".into();
                    s.config_error = Some(e.to_string());
                });
                refused.next_delay()
            }
            Err(e @ FetchError::Unavailable(_)) => {
                // Try the next device URL at once; back off only when every one has failed.
                let wrapped = client.next_url();
                tracing::info!(error = %e, next = %client.active(), "config unavailable; retrying");
                let tried = client.agent.urls().len();
                status.update(|s| {
                    s.config = "unreachable".into();
                    s.config_error = Some(if tried > 1 {
                        format!("{e} (trying {tried} device URLs in turn)")
                    } else {
                        e.to_string()
                    });
                });
                if wrapped {
                    unavailable.next_delay()
                } else {
                    std::time::Duration::ZERO
                }
            }
        };
        wait = 0;
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    drain(&mut supervisor, &draining, drain_timeout, force).await;
    supervisor.stop_all();
    tracing::info!("agent stopped");
    Ok(())
}

/// Stops every task gracefully: no new connection anywhere, then waits (at most `timeout`,
/// or until `force`) for the open ones to end.
async fn drain(
    supervisor: &mut Supervisor,
    draining: &watch::Sender<bool>,
    timeout: Duration,
    force: impl Future<Output = ()>,
) {
    let _ = draining.send(true);
    if timeout.is_zero() {
        return;
    }
    tracing::info!(
        ?timeout,
        "stopping: open connections may finish (a second signal stops at once)"
    );
    tokio::select! {
        () = supervisor.finished() => tracing::info!("every connection has ended"),
        () = tokio::time::sleep(timeout) => {
            tracing::warn!(?timeout, "drain timeout reached; closing the open connections");
        }
        () = force => tracing::warn!("second signal; closing the open connections"),
    }
}

/// `burrow agent status --dir DIR`: a human table of `DIR/status.json`.
pub fn status(dir: &Path) -> anyhow::Result<String> {
    Ok(status::render(&status::read(dir)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_without_enrollment_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let err = run(dir.path(), std::future::pending()).await.unwrap_err();
        assert!(format!("{err:#}").contains("agent.toml"), "{err:#}");
    }

    #[test]
    fn status_without_a_running_agent_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = status(dir.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("is the agent running"),
            "{err:#}"
        );
    }
}
