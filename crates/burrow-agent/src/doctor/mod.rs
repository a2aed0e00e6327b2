//! `burrow-agent doctor --dir DIR` (also `burrow agent doctor`): what a device needs to carry
//! its tunnels, checked one thing at a time — `agent.toml`, the device certificate (validity,
//! matches its key), `ca.pem`, each device URL (resolves, answers TLS with the CA), the config
//! endpoint (accepts the device certificate) and the clock (the answer's `Date` header).

pub mod probe;
pub mod report;

use std::path::Path;

use burrow_identity::agent_enroll::{
    AGENT_CONFIG_FILE, CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE,
};
use burrow_identity::AgentFile;

pub use report::{Check, Level, Report};

const REENROLL: &str = "enroll the device again (the server's device page has the command): \
                        burrow-agent enroll --server URL --ca-sha256 HEX --dir DIR";

/// Runs every check of the agent in `dir`.
pub async fn agent_report(dir: &Path) -> Report {
    let mut report = Report::new();
    let agent = match AgentFile::load(dir) {
        Ok(a) => {
            report.ok(
                AGENT_CONFIG_FILE,
                format!("device {} of server {}", a.dsn, a.server),
            );
            Some(a)
        }
        Err(e) => {
            report.fail(AGENT_CONFIG_FILE, format!("{e:#}"), REENROLL);
            None
        }
    };
    let cert_path = dir.join(DEVICE_CERT_FILE);
    if let Some(cert) =
        probe::check_validity(&mut report, "device certificate", &cert_path, REENROLL)
    {
        let key_path = dir.join(DEVICE_KEY_FILE);
        let name = format!("device key ({})", key_path.display());
        match std::fs::read_to_string(&key_path)
            .map_err(|e| e.to_string())
            .and_then(|k| probe::key_matches(&cert, &k))
        {
            Ok(true) => report.ok(name, "belongs to the device certificate"),
            Ok(false) => report.fail(name, "does not belong to the device certificate", REENROLL),
            Err(e) => report.fail(name, e, REENROLL),
        }
    }
    let ca_path = dir.join(CA_FILE);
    let roots = probe::check_validity(&mut report, "device CA", &ca_path, REENROLL)
        .and_then(|_| std::fs::read(&ca_path).ok())
        .and_then(|pem| probe::roots_from_pem(&pem).ok());
    let Some(agent) = agent else {
        return report;
    };
    for url in agent.urls().iter() {
        probe::check_device_url(&mut report, url, roots.clone()).await;
    }
    config_endpoint(&mut report, dir, &agent).await;
    report
}

/// One config request with the device certificate: the endpoint answers 200, and its `Date`
/// header gives the clock skew.
async fn config_endpoint(report: &mut Report, dir: &Path, agent: &AgentFile) {
    let name = "config endpoint";
    let client = match client(dir) {
        Ok(c) => c,
        Err(e) => {
            report.fail(name, format!("{e:#}"), REENROLL);
            return;
        }
    };
    let mut last = String::from("no device URL");
    for url in agent.urls().iter() {
        let sent = chrono::Utc::now();
        let resp = match client.get(agent.config_url(url)).send().await {
            Ok(r) => r,
            Err(e) => {
                last = format!("{url}: {:#}", anyhow::Error::new(e));
                continue;
            }
        };
        let local = sent + (chrono::Utc::now() - sent) / 2;
        let date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok());
        let status = resp.status();
        match status.as_u16() {
            200 => report.ok(name, format!("{url} accepts the device certificate")),
            401 | 403 => {
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let detail = body["detail"].as_str().unwrap_or("refused").to_string();
                report.fail(
                    name,
                    format!("{url} refuses the device ({status}): {detail}"),
                    "the device was revoked, deleted or re-enrolled elsewhere: enroll it again \
                     (burrow-agent enroll ...) after checking the device page",
                );
            }
            _ => report.fail(
                name,
                format!("{url} answers {status}"),
                "check the server's log; the device listener should answer the config endpoint",
            ),
        }
        match date {
            Some(d) => probe::check_skew(report, &format!("{url}"), d.to_utc(), local),
            None => report.warn(
                "clock skew",
                "the answer carries no Date header",
                "compare this machine's clock with the server's by hand (date -u)",
            ),
        }
        return;
    }
    report.fail(
        name,
        last,
        "see the device URL checks above: the server must be reachable on one of them",
    );
}

/// A client presenting the device certificate and trusting only the device CA (as the agent).
fn client(dir: &Path) -> anyhow::Result<reqwest::Client> {
    use anyhow::Context;
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
    };
    let mut identity = read(DEVICE_CERT_FILE)?;
    identity.push(b'\n');
    identity.extend_from_slice(&read(DEVICE_KEY_FILE)?);
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&read(CA_FILE)?).context("ca.pem")?)
        .identity(reqwest::Identity::from_pem(&identity).context("device certificate")?)
        .connect_timeout(probe::PROBE_TIMEOUT)
        .timeout(probe::PROBE_TIMEOUT * 2)
        .build()
        .context("building the client")
}
