//! `burrow tunnel ...`: one tunnel — describe or rotate it, its API keys and share links,
//! its traffic limits (these print the API's JSON, as they always did), its access log
//! (`logs`, `--follow` polls), its custom domains (`domains`, tables or `--json`) and `open`
//! (prints the public URL and opens a browser when there is a display).

use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;

use super::api::{failure, Api};
use super::domains::DomainsAction;
use super::sharing_actions::{keys_request, links_request, KeysAction, LinksAction};
use super::ApiArgs;

#[derive(Args)]
pub struct TunnelArgs {
    #[command(subcommand)]
    action: TunnelAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand)]
enum TunnelAction {
    /// Status, connection states, expiry and the agent's last contact.
    Describe { dsn: String, id: i64 },
    /// Rotate now: a new broker tunnel and tokens; prints the new tunnel_id and expires_at.
    Rotate { dsn: String, id: i64 },
    /// The tunnel's API keys (machines send one as `Authorization: Bearer` or
    /// `X-Burrow-Key`).
    #[command(subcommand)]
    Keys(KeysAction),
    /// The tunnel's share links (a browser session for this tunnel only, until expiry).
    #[command(subcommand)]
    Links(LinksAction),
    /// The tunnel's custom domains: add (prints the DNS records to publish), list, show,
    /// check, remove.
    #[command(subcommand)]
    Domains(DomainsAction),
    /// Set or remove the tunnel's traffic limits (only the options given change).
    Limits(LimitsArgs),
    /// The tunnel's access log, oldest of the newest `--limit` first.
    Logs(LogsArgs),
    /// Print the tunnel's public URL and open it in a browser when there is a display.
    Open {
        dsn: String,
        id: i64,
        /// Only print the URL.
        #[arg(long)]
        no_browser: bool,
    },
}

#[derive(Args)]
struct LimitsArgs {
    dsn: String,
    id: i64,
    /// Requests per second admitted (over it: 429). 0 removes the rate limit.
    #[arg(long)]
    rate: Option<i64>,
    /// Requests allowed at once above the rate (default: the rate).
    #[arg(long, requires = "rate")]
    burst: Option<i64>,
    /// What one rate bucket counts: tunnel or client_ip.
    #[arg(long, requires = "rate")]
    per: Option<String>,
    /// Bytes per second each direction. 0 removes the bandwidth limit.
    #[arg(long)]
    bandwidth: Option<i64>,
    /// Requests one client address may have open at once. 0 removes the limit.
    #[arg(long)]
    max_connections: Option<i64>,
}

impl LimitsArgs {
    /// The update body: given options only; 0 is `null` (remove). The server validates.
    fn body(&self) -> Value {
        let mut body = serde_json::Map::new();
        if let Some(rate) = self.rate {
            let v = if rate == 0 {
                Value::Null
            } else {
                let mut r = serde_json::json!({"requests_per_second": rate});
                if let Some(b) = self.burst {
                    r["burst"] = b.into();
                }
                if let Some(p) = &self.per {
                    r["per"] = p.clone().into();
                }
                r
            };
            body.insert("rate_limit".into(), v);
        }
        if let Some(bw) = self.bandwidth {
            let v = if bw == 0 {
                Value::Null
            } else {
                serde_json::json!({"bytes_per_second": bw})
            };
            body.insert("bandwidth_limit".into(), v);
        }
        if let Some(n) = self.max_connections {
            let v = if n == 0 { Value::Null } else { n.into() };
            body.insert("max_connections_per_client".into(), v);
        }
        Value::Object(body)
    }
}

#[derive(Args)]
struct LogsArgs {
    dsn: String,
    id: i64,
    /// How many of the newest entries (1-1000).
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Only this status (404) or class (5xx).
    #[arg(long)]
    status: Option<String>,
    /// Keep printing new entries as they come (polls the API).
    #[arg(long, short)]
    follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
}

pub(super) fn tunnel_path(dsn: &str, id: i64) -> String {
    format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}")
}

pub async fn tunnel(args: TunnelArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let (method, path, body) = match args.action {
        TunnelAction::Describe { dsn, id } => (
            Method::GET,
            format!("{}/describe", tunnel_path(&dsn, id)),
            None,
        ),
        TunnelAction::Rotate { dsn, id } => (
            Method::POST,
            format!("{}/rotate", tunnel_path(&dsn, id)),
            None,
        ),
        TunnelAction::Keys(action) => keys_request(&action),
        TunnelAction::Links(action) => links_request(&action),
        TunnelAction::Limits(l) => (Method::PUT, tunnel_path(&l.dsn, l.id), Some(l.body())),
        TunnelAction::Logs(l) => return logs(&api, l, args.api.json).await,
        TunnelAction::Domains(action) => {
            return super::domains::run(&api, action, args.api.json).await
        }
        TunnelAction::Open {
            dsn,
            id,
            no_browser,
        } => return open(&api, &tunnel_path(&dsn, id), no_browser, args.api.json).await,
    };
    // These print the answer (error bodies too) as JSON, as they always did.
    let (status, value) = api.send(method, &path, body.as_ref()).await?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    if !status.is_success() {
        return Err(failure(status, &value).into());
    }
    Ok(())
}

async fn open(api: &Api, path: &str, no_browser: bool, json: bool) -> anyhow::Result<()> {
    let tunnel = api.get(path).await?;
    let url = browser_url(&api.base, tunnel["public_url"].as_str().unwrap_or_default());
    if json {
        super::output::json(&tunnel);
    } else {
        println!("{url}");
    }
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if no_browser || !display || url.is_empty() {
        return Ok(());
    }
    // Best effort: a missing xdg-open or browser is no error of this command.
    let spawned = std::process::Command::new("xdg-open")
        .arg(&url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("(could not start xdg-open: {e}; open the URL yourself)");
    }
    Ok(())
}

/// The tunnel's host (`public_url`) as a URL, with the scheme and port of the server (as the
/// web UI builds it: tunnel hosts are served where the API is).
fn browser_url(server: &str, host: &str) -> String {
    if host.is_empty() || host.contains("://") {
        return host.to_string();
    }
    let (scheme, authority) = server.split_once("://").unwrap_or(("http", server));
    let authority = authority.split('/').next().unwrap_or_default();
    let port = authority
        .rsplit_once(':')
        .filter(|(_, p)| !p.contains(']'))
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    format!("{scheme}://{host}{port}/")
}

async fn logs(api: &Api, args: LogsArgs, json: bool) -> anyhow::Result<()> {
    let base = format!("{}/access-log", tunnel_path(&args.dsn, args.id));
    let status = args
        .status
        .as_deref()
        .map(|s| format!("&status={}", enc(s)))
        .unwrap_or_default();
    let first = api
        .get(&format!("{base}?limit={}{status}", args.limit))
        .await?;
    if json && !args.follow {
        super::output::json(&first);
        return Ok(());
    }
    let mut entries: Vec<Value> = super::output::items(&first).to_vec();
    entries.reverse();
    if !json {
        println!(
            "{:<24}  {:<15}  {:<7} {:>6}  {:>9}  {:>7}  PATH",
            "TIME", "CLIENT", "METHOD", "STATUS", "BYTES OUT", "MS"
        );
    }
    let mut newest: Option<String> = None;
    let mut seen: Vec<String> = Vec::new();
    loop {
        for e in &entries {
            let at = e["at"].as_str().unwrap_or_default().to_string();
            let key = e.to_string();
            // Entries at the newest instant come again in the next poll (`from` is
            // inclusive); those printed already are skipped.
            if newest.as_deref() == Some(at.as_str()) && seen.contains(&key) {
                continue;
            }
            if newest.as_deref() != Some(at.as_str()) {
                newest = Some(at.clone());
                seen.clear();
            }
            seen.push(key);
            print_entry(e, json);
        }
        if !args.follow {
            return Ok(());
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
        tokio::time::sleep(Duration::from_secs(args.interval)).await;
        let from = newest
            .as_deref()
            .map(|n| format!("&from={}", enc(n)))
            .unwrap_or_default();
        let page = api.get(&format!("{base}?limit=1000{status}{from}")).await?;
        entries = super::output::items(&page).to_vec();
        entries.reverse();
    }
}

fn print_entry(e: &Value, json: bool) {
    if json {
        println!("{e}");
        return;
    }
    let c = |k: &str| super::output::cell(&e[k]);
    let line = format!(
        "{:<24}  {:<15}  {:<7} {:>6}  {:>9}  {:>7}  {}",
        c("at"),
        c("client_ip"),
        c("method"),
        c("status"),
        c("bytes_out"),
        c("duration_ms"),
        c("path")
    );
    // Paths and agents come from visitors: no terminal control characters.
    let line: String = line
        .chars()
        .flat_map(|ch| {
            if ch.is_control() {
                ch.escape_default().collect::<Vec<_>>()
            } else {
                vec![ch]
            }
        })
        .collect();
    println!("{line}");
}

/// Query-string escaping for the few values sent (timestamps, status filters).
fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests {
    use super::browser_url;

    #[test]
    fn browser_urls_take_the_servers_scheme_and_port() {
        let h = "device-a.fleet.test";
        assert_eq!(
            browser_url("https://fleet.test", h),
            "https://device-a.fleet.test/"
        );
        assert_eq!(
            browser_url("http://127.0.0.1:8700/", h),
            "http://device-a.fleet.test:8700/"
        );
        assert_eq!(
            browser_url("http://[::1]", h),
            "http://device-a.fleet.test/"
        );
        assert_eq!(browser_url("http://x", "https://y/"), "https://y/");
    }
}
