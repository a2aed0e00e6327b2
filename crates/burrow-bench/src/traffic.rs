//! `burrow-bench --traffic`: what analytics and per-tunnel limits cost on the keep-alive
//! path. Two burrow servers, each with its own enrolled agent, in front of the same nginx
//! page: one with `analytics = false` (the baseline: only the seed's counters and the
//! Prometheus metrics), one with analytics on, where two tunnels serve the page: `web`
//! without limits and `web-limited` with generous ones (rate 100,000 r/s, the API's largest,
//! with a burst of 1,000,000; bandwidth 10 GB/s each way, 10,000 open requests per client).
//! Each round runs `wrk -t2 -c50` on all three (rotating which goes first); the medians,
//! min–max and the ratios to the baseline are printed and written to `traffic.json`. The
//! optional perf profile of the limited runs says what share of the server's CPU the
//! accounting takes.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use crate::report::{self, Spread};
use crate::stack::{self, SMALL};
use crate::tools;

pub struct TrafficOpts {
    pub rounds: usize,
    pub duration: u64,
    pub connections: u32,
    pub profile: bool,
}

/// The limits of `web-limited`: every limit, none of which a benchmark reaches (100,000 r/s
/// is the largest rate the API accepts; the burst is 1,000,000).
fn generous_limits() -> serde_json::Value {
    json!({
        "rate_limit": {"requests_per_second": 100_000, "burst": 1_000_000, "per": "tunnel"},
        "bandwidth_limit": {"bytes_per_second": 10_000_000_000u64},
        "max_connections_per_client": 10_000,
    })
}

/// Share (percent) of the profile's samples in the edge's traffic accounting: limits,
/// rollups, usage per principal, access log counting and Prometheus metrics.
fn accounting_share(report: &str) -> f64 {
    const OURS: [&str; 4] = [
        "burrow_edge::traffic::",
        "burrow_edge::counting::",
        "metrics::",
        "governor::",
    ];
    report
        .lines()
        .filter(|l| OURS.iter().any(|p| l.contains(p)))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|p| p.trim_end_matches('%').parse::<f64>().ok())
        .sum::<f64>()
        .max(0.0)
}

/// One measured setup: its label, the URL wrk asks and the Host it sends.
struct Setup {
    label: &'static str,
    host: String,
    base: String,
    /// The server and agent serving it, whose CPU time is counted per request.
    pids: [u32; 2],
}

pub async fn run(
    opts: &TrafficOpts,
    out: &Path,
    burrow_bin: &Path,
    http: &reqwest::Client,
) -> anyhow::Result<()> {
    eprintln!("traffic: preparing files in {}", out.display());
    stack::make_www(out, 1 << 20)?;
    let (nginx, nginx_port) = stack::nginx_ready(out, http).await?;
    eprintln!("traffic: starting a burrow server + agent with analytics off");
    let baseline = stack::start_burrow_node(
        burrow_bin,
        out,
        nginx_port,
        http,
        "-off",
        &[("BURROW_ANALYTICS", "false".to_string())],
    )
    .await?;
    eprintln!("traffic: starting a burrow server + agent with analytics on");
    let mut burrow = stack::start_burrow(burrow_bin, out, nginx_port, http).await?;
    let mut body = json!({"name": "web-limited", "local_port": nginx_port, "protocol": "http",
                          "require_auth": false});
    if let (Some(b), Some(l)) = (body.as_object_mut(), generous_limits().as_object()) {
        b.extend(l.clone());
    }
    let resp = http
        .post(format!(
            "{}/reverse-tunnels/devices/BENCH1/reverse-tunnels",
            burrow.api
        ))
        .bearer_auth(&burrow.token)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let limited: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() || limited["rate_limit"].is_null() {
        bail!("create the limited tunnel: {status} {limited}");
    }
    let limited_host = format!(
        "{}:{}",
        limited["public_url"].as_str().context("public_url")?,
        burrow.port
    );
    let base = format!("http://127.0.0.1:{}{SMALL}", burrow.port);
    stack::wait_http_ok(
        http,
        &base,
        Some(&limited_host),
        Duration::from_secs(30),
        &mut [&mut burrow.server, &mut burrow.agent],
    )
    .await
    .context("the limited tunnel did not start serving")?;

    let setups = [
        Setup {
            label: "analytics off, no limits (baseline)",
            host: baseline.host.clone(),
            base: format!("http://127.0.0.1:{}{SMALL}", baseline.port),
            pids: [baseline.server.pid(), baseline.agent.pid()],
        },
        Setup {
            label: "analytics on, no limits",
            host: burrow.host.clone(),
            base: base.clone(),
            pids: [burrow.server.pid(), burrow.agent.pid()],
        },
        Setup {
            label: "analytics on, generous limits",
            host: limited_host,
            base,
            pids: [burrow.server.pid(), burrow.agent.pid()],
        },
    ];
    let wrk = |s: &Setup, secs: u64| {
        tools::wrk(
            &s.base,
            &[format!("Host: {}", s.host)],
            2,
            opts.connections,
            secs,
        )
    };
    for s in &setups {
        tokio::task::block_in_place(|| wrk(s, 2))?;
    }
    let tick = crate::procs::ticks_per_sec();
    let mut rps: [Vec<f64>; 3] = Default::default();
    // Server + agent CPU µs per request: steadier than req/s on a shared machine.
    let mut cpu: [Vec<f64>; 3] = Default::default();
    // Per round: analytics on / baseline, and analytics + limits / baseline.
    let mut ratios: [Vec<f64>; 2] = Default::default();
    let mut errors = 0;
    for round in 0..opts.rounds {
        // Rotate which goes first, so that drift of the machine hits all alike.
        let mut this = [0.0; 3];
        for k in 0..3 {
            let i = (round + k) % 3;
            let cpu0 = crate::procs::cpu_of(&setups[i].pids);
            let r = tokio::task::block_in_place(|| wrk(&setups[i], opts.duration))?;
            let used = crate::procs::cpu_of(&setups[i].pids).saturating_sub(cpu0);
            cpu[i].push(used as f64 / tick * 1e6 / r.requests.max(1) as f64);
            eprintln!(
                "traffic: round {}/{} {}: {:.0} req/s, {} errors",
                round + 1,
                opts.rounds,
                setups[i].label,
                r.rps,
                r.errors
            );
            errors += r.errors;
            this[i] = r.rps;
            rps[i].push(r.rps);
        }
        ratios[0].push(this[1] / this[0]);
        ratios[1].push(this[2] / this[0]);
    }

    let mut share = None;
    if opts.profile {
        let pid = burrow.server.pid();
        tokio::task::block_in_place(|| {
            crate::profile(out, "traffic-limited", &[pid], opts.duration, || {
                let _ = wrk(&setups[2], opts.duration);
            });
        });
        share = std::fs::read_to_string(out.join("perf-traffic-limited-symbols.txt"))
            .ok()
            .map(|r| accounting_share(&r));
    }

    // Analytics were on for the limited tunnel (its access log has the benchmark's
    // requests) and off for the baseline (its log is empty).
    let logged = |api: &str, token: &str, id: &serde_json::Value| {
        let url =
            format!("{api}/reverse-tunnels/devices/BENCH1/reverse-tunnels/{id}/access-log?limit=1");
        let req = http.get(url).bearer_auth(token);
        async move {
            let log: serde_json::Value = req.send().await?.json().await?;
            anyhow::Ok(log["items"].as_array().is_some_and(|a| !a.is_empty()))
        }
    };
    let limited_logged = logged(&burrow.api, &burrow.token, &limited["id"]).await?;
    let baseline_logged =
        logged(&baseline.api, &baseline.token, &json!(baseline.tunnel_id)).await?;

    let spreads: Vec<Spread> = rps.iter().map(|v| Spread::of(v)).collect();
    let ratio_spreads: Vec<Spread> = ratios.iter().map(|v| Spread::of(v)).collect();
    let mut table = format!(
        "| keep-alive req/s, {} conns, {} rounds of {} s | median | min | max |\n| --- | ---: | ---: | ---: |\n",
        opts.connections, opts.rounds, opts.duration
    );
    for (s, sp) in setups.iter().zip(&spreads) {
        table.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} |\n",
            s.label, sp.median, sp.min, sp.max
        ));
    }
    let cpu_spreads: Vec<Spread> = cpu.iter().map(|v| Spread::of(v)).collect();
    for (s, sp) in setups.iter().zip(&cpu_spreads) {
        table.push_str(&format!(
            "| CPU µs per request (server + agent), {} | {:.1} | {:.1} | {:.1} |\n",
            s.label, sp.median, sp.min, sp.max
        ));
    }
    for (label, r) in [
        "ratio analytics on / baseline, per round",
        "ratio analytics + limits / baseline, per round",
    ]
    .iter()
    .zip(&ratio_spreads)
    {
        table.push_str(&format!(
            "| {label} | {:.3} | {:.3} | {:.3} |\n",
            r.median, r.min, r.max
        ));
    }
    let (machine, commit) = (report::machine(), report::commit());
    println!("\n{}\n\n{table}", report::header(&machine, &commit));
    let of_medians = spreads[2].median / spreads[0].median;
    println!(
        "ratio of the medians (analytics + limits / baseline): {of_medians:.3}; wrk errors \
         (non-2xx, socket): {errors}; access log written: limited tunnel {limited_logged}, \
         baseline {baseline_logged}"
    );
    if let Some(s) = share {
        println!(
            "perf: {s:.1} % of the server's samples in traffic accounting (limits, rollups, \
             usage, metrics; the report lists symbols of 0.4 % and more)"
        );
    }
    let results = json!({
        "when": chrono::Utc::now().to_rfc3339(),
        "commit": commit,
        "machine": machine,
        "settings": {"rounds": opts.rounds, "duration_s": opts.duration,
                     "connections": opts.connections, "limits": generous_limits()},
        "baseline_rps": rps[0],
        "analytics_rps": rps[1],
        "limited_rps": rps[2],
        "cpu_us_per_request": {"baseline": cpu[0], "analytics": cpu[1], "limited": cpu[2]},
        "ratios_analytics_per_round": ratios[0],
        "ratios_limited_per_round": ratios[1],
        "ratio_of_medians": of_medians,
        "spreads": {"labels": setups.iter().map(|s| s.label).collect::<Vec<_>>(),
                    "keepalive_rps": spreads, "cpu_us_per_request": cpu_spreads,
                    "ratios_analytics_limited": ratio_spreads},
        "errors": errors,
        "access_log_written": {"limited": limited_logged, "baseline": baseline_logged},
        "accounting_share_percent": share,
        "table_markdown": table,
    });
    report::write_json(&out.join("traffic.json"), &results)?;
    drop(burrow);
    drop(baseline);
    drop(nginx);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_share_adds_our_symbols() {
        let report =
            "    12.50%  burrow  burrow  [.] burrow_edge::traffic::rollup::Rollups::record\n\
                      \x20    3.25%  burrow  burrow  [.] burrow_edge::counting::Pending::finish\n\
                      \x20   40.00%  burrow  [kernel]  [k] tcp_sendmsg\n";
        assert!((accounting_share(report) - 15.75).abs() < 1e-9);
    }
}
