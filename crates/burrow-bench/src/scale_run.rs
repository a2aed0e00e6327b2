//! `burrow-bench --scale`: how far one `burrow server` goes, without load.
//!
//! Starts a small nginx, one server, and an enrolled agent with its `web` tunnel (as the
//! default run does), then:
//! 1. one agent carrying many tunnels: `--scale-agent-tunnels` reverse tunnels on the bench
//!    device through the REST API, until the API reports the agent connected to every one
//!    (`agent_connected`); the agent's and the server's RSS then, against one tunnel;
//! 2. idle tunnels: `--scale-tunnels` tunnels opened with the AWS-compatible API, each with a
//!    destination peer that only answers pings (see `scale.rs`); the time to open them and the
//!    server's RSS at each of `--scale-points`, and that no peer was disconnected.
//!
//! Prints the tables and writes `scale.json`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::{json, Value};

use crate::procs::{self, rss_kib};
use crate::report;
use crate::scale::{self, IdlePoint};
use crate::stack::{self, Burrow, SMALL};
use crate::Opts;

/// Open files beyond one per tunnel: listeners, the database, API connections, logs.
const FD_MARGIN: u64 = 600;

/// How long the agent may take to connect every tunnel it was given.
const AGENT_DEADLINE: Duration = Duration::from_secs(120);

/// One agent carrying many tunnels.
#[derive(Serialize)]
struct AgentTunnels {
    tunnels: usize,
    agent_rss_one_kib: u64,
    server_rss_one_kib: u64,
    agent_rss_kib: u64,
    server_rss_kib: u64,
    /// From the first create request to the API reporting the agent connected to all.
    connect_secs: f64,
    /// Tunnels that answered a request through the edge afterwards.
    served: usize,
}

pub async fn run(opts: &Opts, burrow_bin: &Path, out: &Path) -> anyhow::Result<()> {
    let requested = opts.scale_tunnels;
    let agent_n = opts.scale_agent_tunnels;
    // The server holds a socket per tunnel (idle peer or agent session), the bench the other
    // end of each idle peer; the server inherits this process's limit.
    let needed = (requested + agent_n) as u64 + FD_MARGIN;
    let (n, fd_limit) = match procs::raise_nofile(needed) {
        Ok(limit) => (requested, limit),
        // Where the hard limit cannot be raised, measure as many as fit and say so.
        Err(e) => {
            let hard = procs::nofile_hard_limit().unwrap_or(0);
            let fit = hard.saturating_sub(FD_MARGIN + agent_n as u64) as usize;
            if fit < 1000 {
                return Err(e.context(format!("--scale-tunnels {requested}")));
            }
            eprintln!(
                "warning: {e:#}
scale: measuring {fit} idle tunnels, not {requested}"
            );
            (fit, procs::raise_nofile(hard)?)
        }
    };
    let mut points: Vec<usize> = opts
        .scale_points
        .iter()
        .copied()
        .filter(|p| *p > 0 && *p < n)
        .collect();
    points.push(n);
    points.sort_unstable();
    points.dedup();

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * opts.scale_parallel)
        .build()?;
    stack::make_www(out, 1 << 20)?;
    let (nginx, nginx_port) = stack::nginx_ready(out, &http).await?;
    eprintln!("scale: starting burrow server + agent (open files limit {fd_limit})");
    let mut burrow = stack::start_burrow(burrow_bin, out, nginx_port, &http).await?;
    let (server_pid, agent_pid) = (burrow.server.pid(), burrow.agent.pid());

    let agent = if agent_n > 1 {
        Some(agent_tunnels(&http, &mut burrow, nginx_port, agent_n).await?)
    } else {
        None
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_before = rss_kib(server_pid).context("the server is gone")?;
    let target = scale::PeerTarget {
        api_port: burrow.port,
        device_port: burrow.device_port,
        tls: scale::device_tls(&burrow.agent_dir.join("ca.pem"))?,
        key: scale::aws_key(&http, &burrow.api, &burrow.token, burrow.project_id).await?,
    };
    let mut peers = scale::IdlePeers::new(target);
    let started = Instant::now();
    let idle =
        scale::open_to_counts(&mut peers, &http, &points, server_pid, opts.scale_parallel).await?;
    let open_secs: f64 = idle.iter().map(|p| p.open_secs).sum();
    eprintln!(
        "scale: {n} idle tunnels in {open_secs:.1} s ({:.0} s with the pauses to read memory)",
        started.elapsed().as_secs_f64()
    );
    burrow.server.check_alive()?;
    burrow.agent.check_alive()?;
    let agent_after = rss_kib(agent_pid).unwrap_or(0);

    let table = render(server_before, &idle, agent.as_ref(), agent_after);
    let (machine, commit) = (report::machine(), report::commit());
    println!("\n{}\n\n{table}", report::header(&machine, &commit));
    if n < requested {
        println!(
            "\n{n} of the {requested} idle tunnels asked for: the open files limit is {fd_limit}."
        );
    }
    let results = json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "machine": machine,
        "commit": commit,
        "settings": {"tunnels": n, "requested_tunnels": requested, "points": points, "agent_tunnels": agent_n,
                     "parallel": opts.scale_parallel, "open_files_limit": fd_limit},
        "idle": {
            "server_rss_before_kib": server_before,
            "points": idle,
            "open_secs": open_secs,
            "tunnels_per_sec": n as f64 / open_secs,
            "kib_per_tunnel": idle.last().map(|p| per_tunnel(server_before, 0, p)),
            "peers_closed": peers.closed.load(std::sync::atomic::Ordering::Relaxed),
        },
        "agent": agent,
        "agent_rss_after_idle_kib": agent_after,
        "table_markdown": table,
    });
    report::write_json(&out.join("scale.json"), &results)?;
    drop(peers);
    drop(burrow);
    drop(nginx);
    Ok(())
}

/// KiB of server RSS per tunnel between (`tunnels0`, `rss0`) and `p`.
fn per_tunnel(rss0: u64, tunnels0: usize, p: &IdlePoint) -> f64 {
    (p.server_rss_kib as f64 - rss0 as f64) / (p.tunnels - tunnels0) as f64
}

/// Gives the bench device `total` tunnels (its `web` and `total - 1` more to the same nginx)
/// and waits until the agent has a session on each; reads both RSS before and after.
async fn agent_tunnels(
    http: &reqwest::Client,
    burrow: &mut Burrow,
    nginx_port: u16,
    total: usize,
) -> anyhow::Result<AgentTunnels> {
    // One tunnel, settled: the comparison point.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let agent_rss_one_kib = rss_kib(burrow.agent.pid()).context("the agent is gone")?;
    let server_rss_one_kib = rss_kib(burrow.server.pid()).context("the server is gone")?;
    eprintln!("scale: creating {} more tunnels on the agent", total - 1);
    let list_url = format!(
        "{}/reverse-tunnels/devices/{}/reverse-tunnels",
        burrow.api,
        stack::DSN
    );
    let started = Instant::now();
    for i in 2..=total {
        let resp = http
            .post(&list_url)
            .bearer_auth(&burrow.token)
            .json(
                &json!({"name": format!("web-{i}"), "local_port": nginx_port,
                          "protocol": "http", "require_auth": false}),
            )
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            bail!(
                "create tunnel web-{i}: {status} {}",
                resp.text().await.unwrap_or_default()
            );
        }
    }
    // Ready: the API says the agent is connected to every tunnel (the broker's view).
    let hosts = loop {
        burrow.server.check_alive()?;
        burrow.agent.check_alive()?;
        let list: Value = http
            .get(&list_url)
            .bearer_auth(&burrow.token)
            .send()
            .await?
            .json()
            .await?;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        let connected = items
            .iter()
            .filter(|t| t["agent_connected"] == true)
            .count();
        if items.len() == total && connected == total {
            break items;
        }
        if started.elapsed() > AGENT_DEADLINE {
            bail!(
                "the agent connected {connected} of {} tunnels within {AGENT_DEADLINE:?}",
                items.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!("scale: the agent is connected to all {total} tunnels after {connect_secs:.1} s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let agent_rss_kib = rss_kib(burrow.agent.pid()).context("the agent is gone")?;
    let server_rss_kib = rss_kib(burrow.server.pid()).context("the server is gone")?;

    // Each tunnel carries a request (after the memory reading: requests grow buffers).
    let mut served = 0;
    for t in &hosts {
        let host = format!("{}:{}", t["public_url"].as_str().unwrap_or(""), burrow.port);
        let resp = http
            .get(format!("http://127.0.0.1:{}{SMALL}", burrow.port))
            .header("host", &host)
            .send()
            .await;
        match resp {
            Ok(r) if r.status() == 200 => served += 1,
            Ok(r) => eprintln!("  {host}: status {}", r.status()),
            Err(e) => eprintln!("  {host}: {e}"),
        }
    }
    if served < total {
        bail!("{served} of {total} tunnels served a request");
    }
    Ok(AgentTunnels {
        tunnels: total,
        agent_rss_one_kib,
        server_rss_one_kib,
        agent_rss_kib,
        server_rss_kib,
        connect_secs,
        served,
    })
}

fn render(
    server_before: u64,
    idle: &[IdlePoint],
    agent: Option<&AgentTunnels>,
    agent_after: u64,
) -> String {
    let mib = |k: u64| format!("{:.1} MiB", k as f64 / 1024.0);
    let mut t = String::from(
        "| idle tunnels (connected destination peers) | time to open (s) | tunnels/s | server CPU ms per tunnel | server RSS | KiB per tunnel (since 0) | KiB per tunnel (marginal) | bench RSS |\n\
         | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    t.push_str(&format!("| 0 | | | | {} | | | |\n", mib(server_before)));
    let (mut prev_n, mut prev_rss) = (0, server_before);
    for p in idle {
        t.push_str(&format!(
            "| {} | {:.1} | {:.0} | {:.2} | {} | {:.1} | {:.1} | {} |\n",
            p.tunnels,
            p.open_secs,
            (p.tunnels - prev_n) as f64 / p.open_secs,
            p.server_cpu_ms_per_tunnel,
            mib(p.server_rss_kib),
            per_tunnel(server_before, 0, p),
            per_tunnel(prev_rss, prev_n, p),
            mib(p.bench_rss_kib),
        ));
        (prev_n, prev_rss) = (p.tunnels, p.server_rss_kib);
    }
    if let Some(a) = agent {
        let per = |after: u64, before: u64| (after as f64 - before as f64) / (a.tunnels - 1) as f64;
        t.push_str(&format!(
            "\n| one agent | agent RSS | server RSS |\n| --- | ---: | ---: |\n\
             | 1 tunnel | {} | {} |\n\
             | {} tunnels (all connected after {:.1} s; {} served a request) | {} | {} |\n\
             | per added tunnel | {:.1} KiB | {:.1} KiB |\n\
             | {} tunnels, after the idle tunnels | {} | |\n",
            mib(a.agent_rss_one_kib),
            mib(a.server_rss_one_kib),
            a.tunnels,
            a.connect_secs,
            a.served,
            mib(a.agent_rss_kib),
            mib(a.server_rss_kib),
            per(a.agent_rss_kib, a.agent_rss_one_kib),
            per(a.server_rss_kib, a.server_rss_one_kib),
            a.tunnels,
            mib(agent_after),
        ));
    }
    t
}
