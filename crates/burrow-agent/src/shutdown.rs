//! How the agent stops: the first SIGTERM (systemd's stop) or Ctrl-C starts a drain — no new
//! tunnel connection, the open ones may finish for up to the drain timeout — and a second
//! signal ends it at once.

use std::time::Duration;

use tokio::sync::watch;

/// How long open connections may take to finish once the agent is asked to stop, unless
/// `--drain-timeout`, `BURROW_AGENT_DRAIN_TIMEOUT` or `drain_timeout` in agent.toml say
/// otherwise. The packaged unit's `TimeoutStopSec` (45 s) sits above it.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// `30s`, `2m`, `1500ms`, or plain seconds (`30`); `0` stops at once.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let bad = || format!("{s:?} is not a duration (e.g. 30s, 2m, 1500ms, 0)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "" | "s" => n.checked_mul(1000),
        "ms" => Some(n),
        "m" => n.checked_mul(60_000),
        _ => None,
    };
    millis.map(Duration::from_millis).ok_or_else(bad)
}

/// SIGTERM and SIGINT, counted: [`Signals::first`] starts the drain, [`Signals::second`] cuts
/// it short.
#[derive(Clone)]
pub struct Signals(watch::Receiver<u32>);

impl Signals {
    /// Starts listening (from now on the signals no longer kill the process by default).
    pub fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let (tx, rx) = watch::channel(0u32);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = term.recv() => {}
                    Some(()) = int.recv() => {}
                    else => return,
                }
                tx.send_modify(|n| *n += 1);
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(Signals(rx))
    }

    /// Resolves at the first signal.
    pub async fn first(mut self) {
        let _ = self.0.wait_for(|n| *n >= 1).await;
    }

    /// Resolves at the second signal.
    pub async fn second(mut self) {
        let _ = self.0.wait_for(|n| *n >= 2).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "-1s",
            "1h",
            "1.5s",
            "30 seconds",
            "99999999999999999999m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
