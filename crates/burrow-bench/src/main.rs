//! `burrow-bench`: burrow's public-URL path against direct access and rathole, on loopback.
//!
//! Starts nginx (a small page and a large file), `burrow server` with an enrolled
//! `burrow agent` and a reverse tunnel to nginx, and rathole to the same nginx; then measures
//! each path in turn (direct, burrow, rathole, direct, ...) for several rounds, and the memory
//! of burrow's server and agent idle, under load and with many idle tunnels. Prints a table
//! of medians with ratios to direct and writes JSON. `scripts/bench` installs the tools and
//! runs it.

mod cluster;
mod procs;
mod report;
mod scale;
mod scale_run;
mod stack;
mod tools;
mod traffic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use serde::Serialize;
use serde_json::json;

use procs::{children_of, cpu_of, rss_kib, switches_of, ticks_per_sec};
use report::{commit, machine};
use stack::{BIG, SMALL, UPLOAD};

#[derive(Parser)]
#[command(
    name = "burrow-bench",
    about = "burrow against direct access and rathole"
)]
struct Opts {
    /// Rounds of (direct, burrow, rathole); medians are taken over them.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per wrk run.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// Connections of the keep-alive and new-connection runs.
    #[arg(long, default_value_t = 50)]
    connections: u32,
    /// Size of the bulk file in MiB.
    #[arg(long, default_value_t = 1024)]
    big_mib: u64,
    /// Idle tunnel counts to measure (cumulative), comma-separated; empty skips the test.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    idle: Vec<usize>,
    /// Output directory (work files, logs, results.json).
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// The burrow binary (release build).
    #[arg(long, default_value = "target/release/burrow")]
    burrow: PathBuf,
    /// The rathole binary.
    #[arg(long, default_value = "target/bench-tools/bin/rathole")]
    rathole: PathBuf,
    /// Also record a CPU profile (perf) of burrow's server and agent: keep-alive requests
    /// and a bulk download.
    #[arg(long)]
    profile: bool,
    /// After starting everything, print the endpoints and wait this many seconds before
    /// measuring (for profiling by hand).
    #[arg(long, default_value_t = 0)]
    hold: u64,
    /// Instead: two nodes on one PostgreSQL (`BURROW_BENCH_POSTGRES_URL`, default
    /// postgres://postgres@127.0.0.1:5432), a request forwarded across nodes beside the same
    /// request on the node holding the device (writes cluster.json).
    #[arg(long)]
    cluster: bool,
    /// Instead: how far one server goes (see `scale_run.rs`): idle tunnels up to
    /// `--scale-tunnels` with the server's memory at `--scale-points`, and one agent carrying
    /// `--scale-agent-tunnels` tunnels (writes scale.json). Needs nginx, not wrk or rathole.
    #[arg(long)]
    scale: bool,
    /// `--scale`: idle tunnels (each with a connected destination peer) to open.
    #[arg(long, default_value_t = 100_000)]
    scale_tunnels: usize,
    /// `--scale`: tunnel counts at which the server's memory is read (besides the last).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    scale_points: Vec<usize>,
    /// `--scale`: reverse tunnels on the one enrolled agent (0 skips that part).
    #[arg(long, default_value_t = 100)]
    scale_agent_tunnels: usize,
    /// `--scale`: idle tunnels being opened at once.
    #[arg(long, default_value_t = 64)]
    scale_parallel: usize,
    /// Only the traffic scenario: keep-alive req/s through a tunnel with analytics and
    /// generous limits against a server with analytics off (see `traffic.rs`); needs nginx,
    /// wrk, no rathole.
    #[arg(long)]
    traffic: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum PathKind {
    Direct,
    Burrow,
    Rathole,
    /// `--cluster`: through the node the agent is connected to.
    Holding,
    /// `--cluster`: through another node, forwarded over the cluster link.
    Forwarded,
}

impl PathKind {
    fn name(self) -> &'static str {
        match self {
            PathKind::Direct => "direct",
            PathKind::Burrow => "burrow",
            PathKind::Rathole => "rathole",
            PathKind::Holding => "holding",
            PathKind::Forwarded => "forwarded",
        }
    }
}

/// Where a path is reached, and which processes carry it.
struct Target {
    kind: PathKind,
    base: String,
    host: Option<String>,
    /// Processes whose CPU is this path's cost (nginx workers for direct).
    pids: Vec<u32>,
}

impl Target {
    fn headers(&self, extra: &[&str]) -> Vec<String> {
        let mut h: Vec<String> = self.host.iter().map(|h| format!("Host: {h}")).collect();
        h.extend(extra.iter().map(|s| s.to_string()));
        h
    }
}

/// One round's numbers for one path.
#[derive(Debug, Default, Clone, Serialize)]
struct Sample {
    keepalive_rps: f64,
    p50_us: f64,
    p99_us: f64,
    newconn_rps: f64,
    download_mbs: f64,
    upload_mbs: f64,
    /// CPU time of the path's processes per keep-alive request.
    cpu_us_per_request: f64,
    /// Of which the path's first process (the tunnel's server: burrow server, rathole server;
    /// NaN for direct).
    cpu_server_us_per_request: f64,
    /// Context switches of the path's processes per keep-alive request.
    switches_per_request: f64,
    /// CPU time of the path's processes per MB downloaded.
    cpu_ms_per_mb_download: f64,
    errors: u64,
}

const METRICS: [(&str, &str); 10] = [
    ("keepalive_rps", "keep-alive req/s, 50 conns"),
    ("p50_us", "p50 at 1 conn (µs)"),
    ("p99_us", "p99 at 1 conn (µs)"),
    ("newconn_rps", "new conn per request, req/s"),
    ("download_mbs", "bulk download MB/s"),
    ("upload_mbs", "bulk upload MB/s"),
    (
        "cpu_us_per_request",
        "CPU µs per request (path's processes)",
    ),
    (
        "cpu_server_us_per_request",
        "of which the tunnel's server, µs",
    ),
    (
        "switches_per_request",
        "context switches per request (path's processes)",
    ),
    ("cpu_ms_per_mb_download", "CPU ms per MB downloaded"),
];

fn metric(s: &Sample, name: &str) -> f64 {
    match name {
        "keepalive_rps" => s.keepalive_rps,
        "p50_us" => s.p50_us,
        "p99_us" => s.p99_us,
        "newconn_rps" => s.newconn_rps,
        "download_mbs" => s.download_mbs,
        "upload_mbs" => s.upload_mbs,
        "cpu_us_per_request" => s.cpu_us_per_request,
        "cpu_server_us_per_request" => s.cpu_server_us_per_request,
        "switches_per_request" => s.switches_per_request,
        "cpu_ms_per_mb_download" => s.cpu_ms_per_mb_download,
        _ => f64::NAN,
    }
}

/// Peak RSS of a set of pids while sampling runs.
struct RssPeak {
    stop: Arc<AtomicBool>,
    peaks: Vec<Arc<AtomicU64>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssPeak {
    fn start(pids: Vec<u32>) -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peaks: Vec<Arc<AtomicU64>> = pids.iter().map(|_| Arc::default()).collect();
        let (s, p) = (stop.clone(), peaks.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (pid, peak) in pids.iter().zip(&p) {
                    if let Some(kib) = rss_kib(*pid) {
                        peak.fetch_max(kib, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RssPeak {
            stop,
            peaks,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peaks
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect()
    }
}

fn measure(t: &Target, opts: &Opts, big: &Path, big_len: u64, tick: f64) -> anyhow::Result<Sample> {
    let url = |p: &str| format!("{}{p}", t.base);
    let d = opts.duration;
    let mut s = Sample::default();

    let server = &t.pids[..t.pids.len().min(1)];
    let (cpu0, server0, switches0) = (cpu_of(&t.pids), cpu_of(server), switches_of(&t.pids));
    let ka = tools::wrk(&url(SMALL), &t.headers(&[]), 2, opts.connections, d)?;
    let (cpu1, server1, switches1) = (cpu_of(&t.pids), cpu_of(server), switches_of(&t.pids));
    s.keepalive_rps = ka.rps;
    let requests = ka.requests.max(1) as f64;
    s.cpu_us_per_request = (cpu1 - cpu0) as f64 / tick * 1e6 / requests;
    s.cpu_server_us_per_request = match t.kind {
        PathKind::Direct => f64::NAN,
        _ => (server1 - server0) as f64 / tick * 1e6 / requests,
    };
    s.switches_per_request = switches1.saturating_sub(switches0) as f64 / requests;
    s.errors += ka.errors;

    let lat = tools::wrk(&url(SMALL), &t.headers(&[]), 1, 1, d)?;
    s.p50_us = lat.p50_us.unwrap_or(f64::NAN);
    s.p99_us = lat.p99_us.unwrap_or(f64::NAN);
    s.errors += lat.errors;

    let nc = tools::wrk(
        &url(SMALL),
        &t.headers(&["Connection: close"]),
        2,
        opts.connections,
        d,
    )?;
    s.newconn_rps = nc.rps;
    s.errors += nc.errors;

    let cpu0 = cpu_of(&t.pids);
    s.download_mbs = tools::curl_transfer(&url(BIG), t.host.as_deref(), None, big_len)?;
    let cpu1 = cpu_of(&t.pids);
    s.cpu_ms_per_mb_download = (cpu1 - cpu0) as f64 / tick * 1e3 / (big_len as f64 / 1e6);
    s.upload_mbs = tools::curl_transfer(&url(UPLOAD), t.host.as_deref(), Some(big), big_len)?;
    Ok(s)
}

#[derive(Serialize)]
struct Memory {
    server_idle_kib: u64,
    agent_idle_kib: u64,
    server_peak_load_kib: u64,
    agent_peak_load_kib: u64,
    server_after_load_kib: u64,
    agent_after_load_kib: u64,
    /// (idle tunnels, server RSS KiB); the first entry is the baseline with 0 extra tunnels.
    idle_tunnels: Vec<(usize, u64)>,
    /// (RSS at the largest count − baseline) / count, in KiB.
    server_kib_per_idle_tunnel: Option<f64>,
    /// Between the two largest counts: the marginal cost, in KiB.
    server_kib_per_idle_tunnel_marginal: Option<f64>,
}

/// `perf record` of `pids` for `secs` while `load` runs; a flat report is written next to it.
fn profile(out: &Path, name: &str, pids: &[u32], secs: u64, load: impl FnOnce()) {
    let data = out.join(format!("perf-{name}.data"));
    let pid_list = pids
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let rec = std::process::Command::new("perf")
        .args([
            "record",
            "-e",
            "cpu-clock",
            "-F",
            "1999",
            "-p",
            &pid_list,
            "-o",
        ])
        .arg(&data)
        .args(["--", "sleep", &secs.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    std::thread::sleep(Duration::from_millis(300));
    load();
    let Ok(mut rec) = rec else {
        eprintln!("perf not available; no profile");
        return;
    };
    let _ = rec.wait();
    for (suffix, sort) in [("symbols", "comm,dso,symbol"), ("dso", "comm,dso")] {
        let report = std::process::Command::new("perf")
            .args([
                "report",
                "--no-children",
                "--stdio",
                "--percent-limit",
                "0.4",
            ])
            .args(["--sort", sort, "-i"])
            .arg(&data)
            .output();
        if let Ok(r) = report {
            let path = out.join(format!("perf-{name}-{suffix}.txt"));
            let _ = std::fs::write(&path, &r.stdout);
            eprintln!("profile: {}", path.display());
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let out = opts.out.clone();
    std::fs::create_dir_all(&out)?;
    let out = out.canonicalize()?;
    let burrow_bin = opts.burrow.canonicalize().with_context(|| {
        format!(
            "{} (cargo build --release -p burrow)",
            opts.burrow.display()
        )
    })?;
    if opts.cluster {
        return cluster::run(&opts, &burrow_bin, &out).await;
    }
    if opts.scale {
        return scale_run::run(&opts, &burrow_bin, &out).await;
    }
    if opts.traffic {
        let t = traffic::TrafficOpts {
            rounds: opts.rounds,
            duration: opts.duration,
            connections: opts.connections,
            profile: opts.profile,
        };
        let http = reqwest::Client::builder().build()?;
        return traffic::run(&t, &out, &burrow_bin, &http).await;
    }
    let rathole_bin = opts.rathole.canonicalize().with_context(|| {
        format!(
            "{} (cargo install rathole --root target/bench-tools)",
            opts.rathole.display()
        )
    })?;
    let max_idle = opts.idle.iter().copied().max().unwrap_or(0);
    // Each idle tunnel is a socket here and one in the server (which inherits the limit).
    procs::raise_nofile(max_idle as u64 + 1000)
        .with_context(|| format!("{max_idle} idle tunnels (--idle)"))?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let tick = ticks_per_sec();

    eprintln!("preparing files in {}", out.display());
    let big_len = opts.big_mib << 20;
    let big = stack::make_www(&out, big_len)?;
    let (nginx, nginx_port) = stack::nginx_ready(&out, &http).await?;
    let direct_base = format!("http://127.0.0.1:{nginx_port}");
    let nginx_workers = children_of(nginx.pid());

    eprintln!("starting burrow server + agent");
    let burrow = stack::start_burrow(&burrow_bin, &out, nginx_port, &http).await?;
    eprintln!("starting rathole");
    let rathole = stack::start_rathole(&rathole_bin, &out, nginx_port, &http).await?;
    let (server_pid, agent_pid) = (burrow.server.pid(), burrow.agent.pid());

    let targets = [
        Target {
            kind: PathKind::Direct,
            base: direct_base.clone(),
            host: None,
            pids: nginx_workers.clone(),
        },
        Target {
            kind: PathKind::Burrow,
            base: format!("http://127.0.0.1:{}", burrow.port),
            host: Some(burrow.host.clone()),
            pids: vec![server_pid, agent_pid],
        },
        Target {
            kind: PathKind::Rathole,
            base: format!("http://127.0.0.1:{}", rathole.port),
            host: None,
            pids: vec![rathole.server.pid(), rathole.client.pid()],
        },
    ];

    // Idle memory: the tunnel has carried a few requests (setup), nothing since.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_idle = rss_kib(server_pid).unwrap_or(0);
    let agent_idle = rss_kib(agent_pid).unwrap_or(0);
    eprintln!("idle RSS: server {server_idle} KiB, agent {agent_idle} KiB");

    if opts.hold > 0 {
        for t in &targets {
            println!(
                "{}: {}{SMALL} host={:?} pids={:?}",
                t.kind.name(),
                t.base,
                t.host,
                t.pids
            );
        }
        tokio::time::sleep(Duration::from_secs(opts.hold)).await;
    }

    // Warm-up: one short run per path.
    for t in &targets {
        tools::wrk(
            &format!("{}{SMALL}", t.base),
            &t.headers(&[]),
            2,
            opts.connections,
            1,
        )?;
    }

    let peak = RssPeak::start(vec![server_pid, agent_pid]);
    let mut samples: BTreeMap<PathKind, Vec<Sample>> = BTreeMap::new();
    for round in 1..=opts.rounds {
        for t in &targets {
            eprintln!("round {round}/{}: {}", opts.rounds, t.kind.name());
            let s = tokio::task::block_in_place(|| measure(t, &opts, &big, big_len, tick))
                .with_context(|| format!("measuring {}", t.kind.name()))?;
            if s.errors > 0 {
                eprintln!("  warning: {} errors on {}", s.errors, t.kind.name());
            }
            eprintln!("  {s:?}");
            samples.entry(t.kind).or_default().push(s);
        }
    }
    let peaks = peak.finish();

    if opts.profile {
        let pids = [server_pid, agent_pid];
        let t = &targets[1];
        tokio::task::block_in_place(|| {
            profile(&out, "keepalive", &pids, opts.duration, || {
                let _ = tools::wrk(
                    &format!("{}{SMALL}", t.base),
                    &t.headers(&[]),
                    2,
                    opts.connections,
                    opts.duration,
                );
            });
            profile(&out, "newconn", &pids, opts.duration, || {
                let _ = tools::wrk(
                    &format!("{}{SMALL}", t.base),
                    &t.headers(&["Connection: close"]),
                    2,
                    opts.connections,
                    opts.duration,
                );
            });
            profile(&out, "download", &pids, opts.duration, || {
                let _ = tools::curl_transfer(
                    &format!("{}{BIG}", t.base),
                    t.host.as_deref(),
                    None,
                    big_len,
                );
            });
        });
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_after = rss_kib(server_pid).unwrap_or(0);
    let agent_after = rss_kib(agent_pid).unwrap_or(0);

    // Idle tunnels at scale.
    let mut idle_points = vec![(0usize, server_after)];
    let mut peers = None;
    if max_idle > 0 {
        let target = scale::PeerTarget {
            api_port: burrow.port,
            device_port: burrow.device_port,
            tls: scale::device_tls(&burrow.agent_dir.join("ca.pem"))?,
            key: scale::aws_key(&http, &burrow.api, &burrow.token, burrow.project_id).await?,
        };
        let peers = peers.insert(scale::IdlePeers::new(target));
        let mut counts = opts.idle.clone();
        counts.sort_unstable();
        let points = scale::open_to_counts(peers, &http, &counts, server_pid, 32).await?;
        idle_points.extend(points.iter().map(|p| (p.tunnels, p.server_rss_kib)));
    }
    let per_tunnel = idle_points
        .last()
        .filter(|(n, _)| *n > 0)
        .map(|(n, rss)| (*rss as f64 - server_after as f64) / *n as f64);
    let marginal = (idle_points.len() >= 3).then(|| {
        let (n1, r1) = idle_points[idle_points.len() - 2];
        let (n2, r2) = idle_points[idle_points.len() - 1];
        (r2 as f64 - r1 as f64) / (n2 - n1) as f64
    });
    drop(peers);

    let memory = Memory {
        server_idle_kib: server_idle,
        agent_idle_kib: agent_idle,
        server_peak_load_kib: peaks.first().copied().unwrap_or(0),
        agent_peak_load_kib: peaks.get(1).copied().unwrap_or(0),
        server_after_load_kib: server_after,
        agent_after_load_kib: agent_after,
        idle_tunnels: idle_points,
        server_kib_per_idle_tunnel: per_tunnel,
        server_kib_per_idle_tunnel_marginal: marginal,
    };

    let spreads = report::spreads(&samples);
    let (table, ratios) = report::paths_table(&spreads, opts.rounds);
    let mib = |k: u64| k as f64 / 1024.0;
    let mut mem_table =
        String::from("| burrow memory (RSS) | server | agent |\n| --- | ---: | ---: |\n");
    mem_table.push_str(&format!(
        "| idle, one tunnel | {:.1} MiB | {:.1} MiB |\n| peak under load | {:.1} MiB | {:.1} MiB |\n| idle after load | {:.1} MiB | {:.1} MiB |\n",
        mib(memory.server_idle_kib),
        mib(memory.agent_idle_kib),
        mib(memory.server_peak_load_kib),
        mib(memory.agent_peak_load_kib),
        mib(memory.server_after_load_kib),
        mib(memory.agent_after_load_kib),
    ));
    for (n, rss) in memory.idle_tunnels.iter().skip(1) {
        mem_table.push_str(&format!(
            "| {n} idle tunnels (connected destination peers) | {:.1} MiB | |\n",
            mib(*rss)
        ));
    }
    if let Some(p) = memory.server_kib_per_idle_tunnel {
        mem_table.push_str(&format!(
            "| per idle tunnel (vs. idle after load) | {p:.1} KiB | |\n"
        ));
    }
    if let Some(p) = memory.server_kib_per_idle_tunnel_marginal {
        mem_table.push_str(&format!(
            "| per idle tunnel (marginal, between the two largest counts) | {p:.1} KiB | |\n"
        ));
    }

    let (machine, commit) = (machine(), commit());
    println!(
        "\n{}\n\n{table}\n{mem_table}",
        report::header(&machine, &commit)
    );
    let results = json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "machine": machine,
        "commit": commit,
        "settings": {
            "rounds": opts.rounds, "duration_s": opts.duration, "connections": opts.connections,
            "big_bytes": big_len, "idle": opts.idle,
        },
        "medians": report::pick(&spreads, |s| s.median),
        "min": report::pick(&spreads, |s| s.min),
        "max": report::pick(&spreads, |s| s.max),
        "ratios_to_direct": ratios,
        "samples": samples.iter().map(|(k, v)| (k.name(), v)).collect::<BTreeMap<_, _>>(),
        "memory": memory,
        "table_markdown": format!("{table}\n{mem_table}"),
    });
    report::write_json(&out.join("results.json"), &results)?;
    drop(rathole);
    drop(burrow);
    drop(nginx);
    Ok(())
}
