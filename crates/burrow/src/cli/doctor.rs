//! `burrow doctor`: checks a server's setup one thing at a time and says what is wrong and
//! how to fix it — the configuration (loaded as `burrow server` loads it), the data
//! directory, the TLS certificate (validity, names, key), the device CA, each device URL
//! (resolves, answers TLS with the device CA), and the database (reachable; on PostgreSQL,
//! the clock skew against it). Exit code 1 when a check fails; warnings pass.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use burrow_agent::doctor::probe;
use burrow_agent::doctor::Report;
use clap::Args;
use sqlx::ConnectOptions;

use super::config_args::ConfigArgs;
use super::{exit, Failure};
use crate::config::Config;
use crate::secret::mask_url;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The findings as JSON.
    #[arg(long)]
    json: bool,
}

/// Where the data directory keeps the device CA (SQLite, single node).
const CA_PEM: &str = "device-ca/ca.pem";

pub async fn doctor(args: DoctorArgs) -> anyhow::Result<()> {
    let report = report(&args.config).await;
    if report.print(args.json) != 0 {
        let failed = report
            .checks
            .iter()
            .filter(|c| c.status == burrow_agent::doctor::Level::Fail)
            .count();
        return Err(Failure::new(exit::ERROR, format!("{failed} check(s) failed")).into());
    }
    Ok(())
}

pub async fn report(args: &ConfigArgs) -> Report {
    let mut report = Report::new();
    let config = match args.load() {
        Ok(c) => {
            report.ok("configuration", "loads (file, environment, flags)");
            c
        }
        Err(e) => {
            report.fail(
                "configuration",
                e.to_string(),
                "correct the setting named above (`burrow server --check-config` shows what is \
                 in effect)",
            );
            return report;
        }
    };
    data_dir(&mut report, &config.data_dir);
    if let Some((cert, key)) = config.tls() {
        tls(&mut report, &config, cert, key);
    }
    let postgres = config.database_url().starts_with("postgres");
    let ca_path = config.data_dir.join(CA_PEM);
    let roots = if ca_path.exists() {
        probe::check_validity(
            &mut report,
            "device CA",
            &ca_path,
            "the device CA signs every device certificate: replacing it means enrolling every \
             device again",
        )
        .and_then(|_| std::fs::read(&ca_path).ok())
        .and_then(|pem| probe::roots_from_pem(&pem).ok())
    } else if postgres {
        report.ok(
            "device CA",
            "kept in the database (cluster mode); device URLs are checked without it",
        );
        None
    } else {
        report.warn(
            "device CA",
            format!("{} does not exist yet", ca_path.display()),
            "start the server once: it creates the device CA in the data directory",
        );
        None
    };
    for url in config.device_urls(config.device_listen).iter() {
        probe::check_device_url(&mut report, url, roots.clone()).await;
    }
    if postgres {
        cluster_key(&mut report, &config);
    }
    database(&mut report, &config).await;
    report
}

/// PostgreSQL is cluster mode: the shared keys in the database are sealed with this key.
fn cluster_key(report: &mut Report, config: &Config) {
    let fix = "make one (openssl rand -base64 32 > /etc/burrow/cluster.key; chmod 600), give \
               every node the same file and set cluster_key_file";
    match &config.cluster_key_file {
        None => report.fail(
            "cluster key",
            "cluster_key_file is not set (required with PostgreSQL)",
            fix,
        ),
        Some(path) => match crate::cluster::ClusterKey::read(path) {
            Ok(_) => report.ok("cluster key", format!("{} is a valid key", path.display())),
            Err(e) => report.fail("cluster key", format!("{e:#}"), fix),
        },
    }
}

fn data_dir(report: &mut Report, dir: &Path) {
    let name = format!("data directory ({})", dir.display());
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {
            let probe = dir.join(".doctor-write-test");
            match std::fs::write(&probe, b"") {
                Ok(()) => {
                    let _ = std::fs::remove_file(&probe);
                    report.ok(name, "exists and is writable");
                }
                Err(e) => report.fail(
                    name,
                    format!("not writable: {e}"),
                    "give the server's user write access (chown it to that user)",
                ),
            }
        }
        Ok(_) => report.fail(name, "is not a directory", "point data_dir at a directory"),
        Err(_) => report.warn(
            name,
            "does not exist yet",
            "the first start creates it (its parent must be writable by the server's user)",
        ),
    }
}

fn tls(report: &mut Report, config: &Config, cert: &Path, key: &Path) {
    let renew = "renew the certificate (e.g. certbot renew, or your ACME client) and put it at \
                 tls_cert; the server re-reads it when it changes";
    let Some(info) = probe::check_validity(report, "TLS certificate", cert, renew) else {
        return;
    };
    let domain = config.base_domain.trim_end_matches('.');
    let mut wanted = vec![domain.to_string(), format!("doctor-probe.{domain}")];
    if let Some(host) = config
        .api_origin
        .as_deref()
        .and_then(|o| o.split_once("://"))
        .map(|(_, a)| a.rsplit_once(':').map_or(a, |(h, _)| h))
    {
        wanted.push(host.to_string());
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|h| !info.names.iter().any(|n| probe::name_covers(n, h)))
        .map(|h| h.replace(&format!("doctor-probe.{domain}"), &format!("*.{domain}")))
        .collect();
    let names = "TLS certificate names";
    if missing.is_empty() {
        report.ok(names, format!("cover {}", info.names.join(", ")));
    } else {
        report.fail(
            names,
            format!(
                "do not cover {} (the certificate names {})",
                missing.join(", "),
                if info.names.is_empty() {
                    "nothing".into()
                } else {
                    info.names.join(", ")
                }
            ),
            "get a certificate for the base domain and its wildcard (*.BASE_DOMAIN: a DNS-01 \
             challenge) and the API host",
        );
    }
    let name = format!("TLS key ({})", key.display());
    match std::fs::read_to_string(key)
        .map_err(|e| e.to_string())
        .and_then(|k| probe::key_matches(&info, &k))
    {
        Ok(true) => report.ok(name, "belongs to the certificate"),
        Ok(false) => report.fail(
            name,
            "does not belong to the certificate",
            "install the key that was issued with this certificate",
        ),
        Err(e) => report.warn(name, e, "check that tls_key is the certificate's PEM key"),
    }
}

async fn database(report: &mut Report, config: &Config) {
    let url = config.database_url();
    let shown = mask_url(&url);
    let name = format!("database ({shown})");
    const TIMEOUT: Duration = Duration::from_secs(5);
    if url.starts_with("postgres") {
        let fix = "check that PostgreSQL runs and accepts connections from here (host, port, \
                   pg_hba.conf, firewall) and that database_url's user and password are right";
        let opts = match sqlx::postgres::PgConnectOptions::from_str(&url) {
            Ok(o) => o,
            Err(e) => return report.fail(name, format!("bad URL: {e}"), fix),
        };
        let mut conn = match tokio::time::timeout(TIMEOUT, opts.connect()).await {
            Err(_) => return report.fail(name, "connecting timed out", fix),
            Ok(Err(e)) => return report.fail(name, format!("cannot connect: {e}"), fix),
            Ok(Ok(c)) => c,
        };
        let sent = chrono::Utc::now();
        let now: Result<chrono::DateTime<chrono::Utc>, _> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&mut conn)
            .await;
        let local = sent + (chrono::Utc::now() - sent) / 2;
        match now {
            Ok(remote) => {
                report.ok(name, "reachable");
                probe::check_skew(report, "the database server", remote, local);
            }
            Err(e) => report.fail(name, format!("SELECT now() failed: {e}"), fix),
        }
        return;
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(&url);
    let path = path.split('?').next().unwrap_or(path);
    if !Path::new(path).exists() {
        report.warn(
            name,
            "does not exist yet",
            "the first start creates it in the data directory",
        );
        return;
    }
    let fix = "check the file's owner and permissions, and that the disk is not full";
    let opts = match sqlx::sqlite::SqliteConnectOptions::from_str(&url) {
        Ok(o) => o.read_only(true),
        Err(e) => return report.fail(name, format!("bad URL: {e}"), fix),
    };
    let opened = tokio::time::timeout(TIMEOUT, async {
        let mut conn = opts.connect().await?;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut conn)
            .await
    })
    .await;
    match opened {
        Ok(Ok(_)) => report.ok(name, "opens and answers"),
        Ok(Err(e)) => report.fail(name, format!("cannot open: {e}"), fix),
        Err(_) => report.fail(name, "opening timed out (locked?)", fix),
    }
}
