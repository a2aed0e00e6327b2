//! Load generators: wrk for requests, curl for bulk transfers; their output parsed.

use std::process::Command;

use anyhow::{bail, Context};
use serde::Serialize;

/// What one wrk run reported.
#[derive(Debug, Clone, Serialize)]
pub struct WrkResult {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    /// Non-2xx/3xx responses plus socket errors (connect, read, write, timeout).
    pub errors: u64,
}

/// `wrk -t threads -c conns -d secs --latency url` with the given extra headers.
pub fn wrk(
    url: &str,
    headers: &[String],
    threads: u32,
    conns: u32,
    secs: u64,
) -> anyhow::Result<WrkResult> {
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{conns}"))
        .arg(format!("-d{secs}s"))
        .arg("--latency");
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    cmd.arg(url);
    let out = cmd
        .output()
        .context("running wrk (apt-get install -y wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("parsing wrk output:\n{text}"))
}

fn parse_wrk(text: &str) -> anyhow::Result<WrkResult> {
    let mut res = WrkResult {
        requests: 0,
        rps: 0.0,
        p50_us: None,
        p99_us: None,
        errors: 0,
    };
    let mut in_dist = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Latency Distribution") {
            in_dist = true;
            continue;
        }
        if in_dist {
            let mut parts = t.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some("50%"), Some(v)) => res.p50_us = parse_duration_us(v),
                (Some("99%"), Some(v)) => res.p99_us = parse_duration_us(v),
                (Some(p), Some(_)) if p.ends_with('%') => {}
                _ => in_dist = false,
            }
        }
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            res.rps = v.trim().parse()?;
        } else if t.contains(" requests in ") {
            res.requests = t.split_whitespace().next().unwrap_or("0").parse()?;
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            res.errors += v.trim().parse::<u64>()?;
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            for part in v.split(',') {
                if let Some(n) = part.split_whitespace().nth(1) {
                    res.errors += n.parse::<u64>()?;
                }
            }
        }
    }
    if res.rps == 0.0 {
        bail!("no Requests/sec line");
    }
    Ok(res)
}

/// wrk's durations: `75.00us`, `1.20ms`, `1.00s`, `2.00m`.
fn parse_duration_us(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        "m" => n * 60e6,
        _ => return None,
    })
}

/// One curl transfer: MB/s (10^6 bytes per second) over the whole transfer.
pub fn curl_transfer(
    url: &str,
    host: Option<&str>,
    upload: Option<&std::path::Path>,
    expect_bytes: u64,
) -> anyhow::Result<f64> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-H", "Expect:"]);
    if let Some(h) = host {
        cmd.arg("-H").arg(format!("Host: {h}"));
    }
    if let Some(file) = upload {
        cmd.arg("-T").arg(file);
    }
    cmd.args([
        "-w",
        "%{http_code} %{size_download} %{size_upload} %{time_total}",
    ]);
    cmd.arg(url);
    let out = cmd.output().context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let f: Vec<&str> = text.split_whitespace().collect();
    let [code, down, up, total] = f.as_slice() else {
        bail!(
            "curl said {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let bytes: u64 = if upload.is_some() {
        up.parse()?
    } else {
        down.parse()?
    };
    let secs: f64 = total.parse()?;
    if !code.starts_with('2') || bytes != expect_bytes {
        bail!("curl {url}: status {code}, {bytes} of {expect_bytes} bytes");
    }
    Ok(bytes as f64 / secs / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk() {
        let out = "Running 5s test @ http://127.0.0.1:1/\n  2 threads and 50 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   800.00us  200.00us   5.00ms   90.00%\n  Latency Distribution\n     50%   75.00us\n     75%  100.00us\n     90%  200.00us\n     99%    1.20ms\n  312345 requests in 5.00s, 250.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 5\nRequests/sec:  62469.00\nTransfer/sec:     49.00MB\n";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.requests, 312345);
        assert_eq!(r.rps, 62469.0);
        assert_eq!(r.p50_us, Some(75.0));
        assert_eq!(r.p99_us, Some(1200.0));
        assert_eq!(r.errors, 8);
    }
}
