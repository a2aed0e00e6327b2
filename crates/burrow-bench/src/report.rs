//! What every report shares: medians with their spread over rounds, number formatting, and
//! the machine and commit a run measured (in the JSON and at the top of the printed tables).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use crate::{metric, PathKind, Sample, METRICS};

pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of a metric over rounds, and its range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(v: &[f64]) -> Spread {
        if v.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        Spread {
            median: median(v.to_vec()),
            min: v.iter().copied().fold(f64::INFINITY, f64::min),
            max: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// The range over rounds, as printed after a median: `[18012–21544]`.
    pub fn range(&self) -> String {
        if self.min.is_infinite() || self.min.is_nan() {
            return String::new(); // no sample (a metric that has no meaning for the path)
        }
        format!("[{}–{}]", fmt_num(self.min), fmt_num(self.max))
    }
}

pub fn fmt_num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    let kernel = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let version = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_default()
    };
    json!({
        "cpu": cpu,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "memory_gib": (mem_kib as f64 / 1048576.0 * 10.0).round() / 10.0,
        "kernel": kernel,
        "nginx": version("nginx", "-v"),
        "wrk": version("wrk", "-v"),
        "curl": version("curl", "--version"),
    })
}

/// The commit measured (`git rev-parse HEAD`, with `-dirty` for local changes).
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(s) if !s.is_empty() => format!("{head}-dirty"),
        _ => head,
    }
}

/// One line naming what was measured where, printed above a run's tables:
/// `Commit abc1234 · 2 cores (AMD EPYC …), 23.5 GiB, Linux 6.18 · nginx/1.22.1 · wrk 4.1.0`.
pub fn header(machine: &serde_json::Value, commit: &str) -> String {
    let short = match commit.split_once('-') {
        Some((hash, rest)) => format!("{}-{rest}", &hash[..hash.len().min(7)]),
        None => commit[..commit.len().min(7)].to_string(),
    };
    let s = |k: &str| machine[k].as_str().unwrap_or("").to_string();
    let mut parts = vec![
        format!("Commit `{short}`"),
        format!(
            "{} cores ({}), {} GiB, Linux {}",
            machine["cores"],
            s("cpu"),
            machine["memory_gib"],
            s("kernel")
        ),
    ];
    for tool in ["nginx", "wrk", "curl"] {
        let v = s(tool);
        if !v.is_empty() && !v.contains("not found") {
            // `nginx version: nginx/1.22.1` → `nginx/1.22.1`; curl's line is long.
            let v = v.rsplit(": ").next().unwrap_or(&v);
            parts.push(v.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
        }
    }
    parts.join(" · ")
}

/// Per path (its name) and metric: the spread over rounds.
pub type Spreads = BTreeMap<&'static str, BTreeMap<&'static str, Spread>>;

pub fn spreads(samples: &BTreeMap<PathKind, Vec<Sample>>) -> Spreads {
    let mut out = Spreads::new();
    for (kind, list) in samples {
        for (m, _) in METRICS {
            let v: Vec<f64> = list.iter().map(|s| metric(s, m)).collect();
            out.entry(kind.name())
                .or_default()
                .insert(m, Spread::of(&v));
        }
    }
    out
}

/// One statistic of every spread (for the JSON: medians, min, max side by side).
pub fn pick(
    s: &Spreads,
    f: impl Fn(&Spread) -> f64,
) -> BTreeMap<&'static str, BTreeMap<&'static str, f64>> {
    s.iter()
        .map(|(path, ms)| (*path, ms.iter().map(|(m, sp)| (*m, f(sp))).collect()))
        .collect()
}

/// The main table: direct, burrow and rathole, each median with its comparison to direct
/// (ratio, added µs or CPU factor) and its min–max over rounds; and the ratios of medians.
pub fn paths_table(
    s: &Spreads,
    rounds: usize,
) -> (String, BTreeMap<&'static str, BTreeMap<&'static str, f64>>) {
    let none = Spread::of(&[]);
    let get = |path: &str, m: &str| s.get(path).and_then(|x| x.get(m)).copied().unwrap_or(none);
    let mut table = format!(
        "| metric (median of {rounds} rounds, [min–max]) | direct | burrow | rathole |\n| --- | ---: | ---: | ---: |\n"
    );
    let mut ratios: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    for (m, label) in METRICS {
        let d = get("direct", m);
        let mut row = format!("| {label} | {} {} |", fmt_num(d.median), d.range());
        for kind in ["burrow", "rathole"] {
            let sp = get(kind, m);
            let (v, dm) = (sp.median, d.median);
            let vs_direct = match m {
                "p50_us" | "p99_us" => format!("{:+.0} µs", v - dm),
                "cpu_us_per_request" | "cpu_ms_per_mb_download" | "switches_per_request" => {
                    format!("{:.1}×", v / dm)
                }
                // No server on the direct path: the figure compares with the other tunnel.
                "cpu_server_us_per_request" => {
                    let r = get("rathole", m).median;
                    format!("{:.1}× rathole's", v / r)
                }
                _ => {
                    ratios.entry(kind).or_default().insert(m, v / dm);
                    format!("{:.2}", v / dm)
                }
            };
            row.push_str(&format!(" {} ({vs_direct}) {} |", fmt_num(v), sp.range()));
        }
        table.push_str(&row);
        table.push('\n');
    }
    (table, ratios)
}

/// Writes a run's results (pretty JSON) and says where.
pub fn write_json(path: &std::path::Path, results: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(results)?)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_rounds() {
        let s = Spread::of(&[3.0, 1.0, 2.0, 10.0]);
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
        assert_eq!(s.range(), "[1.00–10.0]");
        assert!(Spread::of(&[]).median.is_nan());
    }

    #[test]
    fn header_names_commit_and_machine() {
        let m = json!({"cpu": "AMD EPYC", "cores": 2, "memory_gib": 23.5, "kernel": "6.18",
                       "nginx": "nginx version: nginx/1.22.1", "wrk": "wrk 4.1.0 [epoll] Copyright",
                       "curl": ""});
        let h = header(&m, "0123456789abcdef-dirty");
        assert_eq!(
            h,
            "Commit `0123456-dirty` · 2 cores (AMD EPYC), 23.5 GiB, Linux 6.18 · nginx/1.22.1 · wrk 4.1.0"
        );
    }
}
