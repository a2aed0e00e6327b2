//! `burrow-bench --cluster`: a public request forwarded across nodes beside the same request
//! on the node that holds the device, and direct access, in one run.
//!
//! Two `burrow server` nodes on one PostgreSQL database (made fresh for the run), the agent
//! connected to node 1. A request sent to node 1 goes edge → broker → agent; a request sent
//! to node 2 goes edge → cluster link (mutual TLS) → node 1's broker → agent. Each round
//! measures direct, node 1, node 2 in turn; the table shows medians with min–max over rounds.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use base64::Engine;
use serde_json::json;

use crate::procs::{children_of, free_port, rss_kib, ticks_per_sec};
use crate::report::{self, fmt_num, Spread, Spreads};
use crate::stack::{self, SMALL};
use crate::{measure, Opts, PathKind, Sample, Target, METRICS};

const DATABASE: &str = "burrow_bench_cluster";

/// A fresh database on the PostgreSQL at `server` (`postgres://user@host:port`).
fn fresh_database(server: &str) -> anyhow::Result<String> {
    let admin = format!("{server}/postgres");
    for sql in [
        format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"),
        format!("CREATE DATABASE {DATABASE}"),
    ] {
        let out = Command::new("psql")
            .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
            .output()
            .context("running psql (apt-get install -y postgresql-client)")?;
        if !out.status.success() {
            bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(format!("{server}/{DATABASE}"))
}

/// The cluster key: 32 random bytes in base64, as `openssl rand -base64 32` writes them.
fn cluster_key(dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)?;
    let path = dir.join("cluster.key");
    std::fs::write(
        &path,
        base64::engine::general_purpose::STANDARD.encode(bytes) + "\n",
    )?;
    Ok(path)
}

fn node_env(db: &str, key: &Path, name: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("BURROW_DATABASE_URL", db.to_string()),
        ("BURROW_CLUSTER_KEY_FILE", key.display().to_string()),
        ("BURROW_NODE_NAME", name.to_string()),
        (
            "BURROW_CLUSTER_LISTEN",
            format!("127.0.0.1:{}", free_port()?),
        ),
    ])
}

pub async fn run(opts: &Opts, burrow_bin: &Path, out: &Path) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let tick = ticks_per_sec();
    let pg = std::env::var("BURROW_BENCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let db = fresh_database(pg.trim_end_matches('/'))?;
    let key = cluster_key(out)?;

    let big_len = opts.big_mib << 20;
    let big = stack::make_www(out, big_len)?;
    let (nginx, nginx_port) = stack::nginx_ready(out, &http).await?;
    let direct_base = format!("http://127.0.0.1:{nginx_port}");

    eprintln!("starting node 1 (holds the device) and its agent");
    let n1 = stack::start_burrow_node(
        burrow_bin,
        out,
        nginx_port,
        &http,
        "-1",
        &node_env(&db, &key, "bench-1")?,
    )
    .await?;
    eprintln!("starting node 2 (forwards to node 1)");
    let (mut n2, n2_port, _) = stack::start_server(
        burrow_bin,
        out,
        &http,
        "-2",
        &node_env(&db, &key, "bench-2")?,
    )
    .await?;
    let public = n1
        .host
        .rsplit_once(':')
        .map_or(n1.host.as_str(), |(h, _)| h)
        .to_string();
    let n2_host = format!("{public}:{n2_port}");
    stack::wait_http_ok(
        &http,
        &format!("http://127.0.0.1:{n2_port}{SMALL}"),
        Some(&n2_host),
        Duration::from_secs(30),
        &mut [&mut n2],
    )
    .await
    .context("node 2 did not reach the device")?;

    let (p1, p2, agent) = (n1.server.pid(), n2.pid(), n1.agent.pid());
    let targets = [
        Target {
            kind: PathKind::Direct,
            base: direct_base,
            host: None,
            pids: children_of(nginx.pid()),
        },
        Target {
            kind: PathKind::Holding,
            base: format!("http://127.0.0.1:{}", n1.port),
            host: Some(n1.host.clone()),
            pids: vec![p1, agent],
        },
        Target {
            kind: PathKind::Forwarded,
            base: format!("http://127.0.0.1:{n2_port}"),
            host: Some(n2_host),
            pids: vec![p2, p1, agent],
        },
    ];
    for t in &targets {
        crate::tools::wrk(
            &format!("{}{SMALL}", t.base),
            &t.headers(&[]),
            2,
            opts.connections,
            1,
        )?;
    }
    let mut samples: BTreeMap<PathKind, Vec<Sample>> = BTreeMap::new();
    for round in 1..=opts.rounds {
        for t in &targets {
            eprintln!("round {round}/{}: {}", opts.rounds, t.kind.name());
            let s = tokio::task::block_in_place(|| measure(t, opts, &big, big_len, tick))
                .with_context(|| format!("measuring {}", t.kind.name()))?;
            if s.errors > 0 {
                eprintln!("  warning: {} errors on {}", s.errors, t.kind.name());
            }
            eprintln!("  {s:?}");
            samples.entry(t.kind).or_default().push(s);
        }
    }
    let rss =
        json!({"node1_kib": rss_kib(p1), "node2_kib": rss_kib(p2), "agent_kib": rss_kib(agent)});

    let spreads = report::spreads(&samples);
    let table = render(&spreads, opts.rounds);
    let (machine, commit) = (report::machine(), report::commit());
    println!("\n{}\n\n{table}", report::header(&machine, &commit));
    let results = json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "machine": machine,
        "commit": commit,
        "settings": {"rounds": opts.rounds, "duration_s": opts.duration,
            "connections": opts.connections, "big_bytes": big_len},
        "medians": report::pick(&spreads, |s| s.median),
        "min": report::pick(&spreads, |s| s.min),
        "max": report::pick(&spreads, |s| s.max),
        "samples": samples.iter().map(|(k, v)| (k.name(), v)).collect::<BTreeMap<_, _>>(),
        "rss_after": rss,
        "table_markdown": table,
    });
    report::write_json(&out.join("cluster.json"), &results)?;
    drop(n2);
    drop(n1);
    drop(nginx);
    Ok(())
}

/// Medians with min–max, and node 2's ratio to node 1 (the cost of the extra hop).
fn render(s: &Spreads, rounds: usize) -> String {
    let none = Spread::of(&[]);
    let get = |path: PathKind, m: &str| {
        s.get(path.name())
            .and_then(|x| x.get(m))
            .copied()
            .unwrap_or(none)
    };
    let cell = |sp: Spread| format!("{} {}", fmt_num(sp.median), sp.range());
    let mut t = format!(
        "| metric (median of {rounds} rounds, [min–max]) | direct | holding node | forwarded via another node | forwarded ÷ holding |\n| --- | ---: | ---: | ---: | ---: |\n"
    );
    for (m, label) in METRICS {
        let d = get(PathKind::Direct, m);
        let h = get(PathKind::Holding, m);
        let f = get(PathKind::Forwarded, m);
        let ratio = match m {
            "p50_us" | "p99_us" => format!("{:+.0} µs", f.median - h.median),
            _ => format!("{:.2}", f.median / h.median),
        };
        t.push_str(&format!(
            "| {label} | {} | {} | {} | {ratio} |\n",
            cell(d),
            cell(h),
            cell(f)
        ));
    }
    t
}
