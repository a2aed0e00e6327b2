//! `burrow doctor` and `burrow agent doctor` against a real server, one fault at a time: each
//! broken setup is named in a FAIL line with its fix and a nonzero exit; healthy ones pass.

use std::path::Path;
use std::process::Command;

use burrow::testkit::{Backend, TestStack};
use rcgen::{CertificateParams, KeyPair};
use serde_json::Value;

struct Out {
    code: i32,
    stdout: String,
}

/// `burrow ARGS` with no BURROW_* variables of the test process, off the runtime.
async fn burrow(args: Vec<String>) -> Out {
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_burrow"));
        for (k, _) in std::env::vars() {
            if k.starts_with("BURROW_") {
                c.env_remove(k);
            }
        }
        let out = c.args(&args).output().expect("run burrow");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        }
    })
    .await
    .expect("join")
}

/// The line of check `name` (`ok`, `warn` or `FAIL` first).
fn line<'a>(out: &'a Out, status: &str, name: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l.starts_with(status) && l.contains(name))
        .unwrap_or_else(|| panic!("no {status} line for {name:?} in:\n{}", out.stdout))
}

/// A self-signed certificate for `localhost` and `*.localhost`, valid until `until_year`.
fn write_cert(dir: &Path, name: &str, from_year: i32, until_year: i32) -> (String, String) {
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "*.localhost".to_string()])
            .expect("params");
    params.not_before = rcgen::date_time_ymd(from_year, 1, 1);
    params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).expect("write");
    std::fs::write(&k, key.serialize_pem()).expect("write");
    (c.display().to_string(), k.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_doctor_names_each_fault() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let dir = tempfile::tempdir().expect("tempdir");
    let (good_cert, good_key) = write_cert(dir.path(), "good", 2020, 2090);
    let (old_cert, old_key) = write_cert(dir.path(), "old", 2020, 2021);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let base = format!(
        "listen = \"{}\"\ndata_dir = \"{}\"\ndevice_listen = \"{}\"\nbase_domain = \"localhost\"\n",
        s.addr,
        s.data_dir.display(),
        s.running.device_addr
    );
    let write = |name: &str, extra: String| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, format!("{base}{extra}")).expect("write config");
        path.display().to_string()
    };
    let tls = |c: &str, k: &str| format!("tls_cert = \"{c}\"\ntls_key = \"{k}\"\n");
    let healthy = write("healthy", tls(&good_cert, &good_key));
    let expired = write("expired", tls(&old_cert, &old_key));
    let unresolvable = write(
        "unresolvable",
        "device_url = \"https://devices.doctor.invalid:8701\"\n".into(),
    );
    let no_db = write(
        "no_db",
        format!("database_url = \"postgres://burrow:s3cret-pw@127.0.0.1:{closed}/burrow\"\n"),
    );
    // A reachable PostgreSQL (the test server's): the clock is compared with it.
    let pg_url = burrow_store::testing::postgres_admin_url();
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("cluster key");
    let postgres = write(
        "postgres",
        format!(
            "database_url = \"{pg_url}\"\ncluster_key_file = \"{}\"\n",
            key.display()
        ),
    );
    let doctor = |config: &str, json: bool| {
        let mut args = vec!["doctor".to_string(), "--config".into(), config.into()];
        if json {
            args.push("--json".into());
        }
        burrow(args)
    };
    let (pg, healthy_text, healthy_json, expired, unresolvable, no_db, missing) = tokio::join!(
        doctor(&postgres, false),
        doctor(&healthy, false),
        doctor(&healthy, true),
        doctor(&expired, false),
        doctor(&unresolvable, false),
        doctor(&no_db, false),
        doctor("/nonexistent/burrow.toml", false),
    );

    let out = &healthy_text;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("FAIL"), "{}", out.stdout);
    let device_url = format!("device URL https://{}", s.running.device_addr);
    assert!(line(out, "ok", &format!("{device_url} answers")).contains("TLS handshake OK"));
    line(out, "ok", &format!("{device_url} resolves"));
    line(out, "ok", "TLS certificate names");
    line(out, "ok", "TLS key");
    line(out, "ok", "device CA");
    line(out, "ok", "database (sqlite://");
    let report: Value = serde_json::from_str(
        healthy_json
            .stdout
            .split("error:")
            .next()
            .unwrap_or_default(),
    )
    .expect("JSON report");
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().expect("checks");
    assert!(
        checks.len() >= 8 && checks.iter().all(|c| c["status"] != "fail"),
        "{report}"
    );

    if !burrow_store::testing::skip_postgres() {
        assert_eq!(pg.code, 0, "{}", pg.stdout);
        line(&pg, "ok", "database (postgres://");
        line(&pg, "ok", "cluster key");
        assert!(line(&pg, "ok", "clock skew").contains("against the database server"));
    }

    assert_eq!(expired.code, 1);
    assert!(line(&expired, "FAIL", "TLS certificate (").contains("expired on 2021-01-01"));
    assert!(
        expired.stdout.contains("fix: renew the certificate"),
        "{}",
        expired.stdout
    );

    assert_eq!(unresolvable.code, 1);
    line(
        &unresolvable,
        "FAIL",
        "device URL https://devices.doctor.invalid:8701 resolves",
    );
    assert!(unresolvable.stdout.contains("fix: add a DNS record"));

    assert_eq!(no_db.code, 1);
    let db = line(
        &no_db,
        "FAIL",
        &format!("database (postgres://burrow:***@127.0.0.1:{closed}/burrow)"),
    );
    assert!(db.contains("cannot connect"), "{db}");
    assert!(
        !no_db.stdout.contains("s3cret-pw"),
        "the password is never shown"
    );

    assert_eq!(missing.code, 1);
    assert!(line(&missing, "FAIL", "configuration").contains("does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_doctor_checks_an_enrollment() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let (_, device) = s.project_with_device(&admin, "DOC1").await.expect("device");
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = dir.path().join("agent");
    let token = device["enrollment_token"].as_str().expect("token");
    s.enroll_agent(token, &agent).await.expect("enroll");

    // Broken copies: a key of another device, a device URL that does not resolve.
    let copy = |name: &str| {
        let to = dir.path().join(name);
        std::fs::create_dir(&to).expect("mkdir");
        for f in ["agent.toml", "device.pem", "device.key", "ca.pem"] {
            std::fs::copy(agent.join(f), to.join(f)).expect("copy");
        }
        to
    };
    let wrong_key = copy("wrong-key");
    let other = KeyPair::generate().expect("key").serialize_pem();
    std::fs::write(wrong_key.join("device.key"), other).expect("write");
    let unresolvable = copy("unresolvable");
    let toml = std::fs::read_to_string(agent.join("agent.toml")).expect("agent.toml");
    std::fs::write(
        unresolvable.join("agent.toml"),
        toml.replace("https://127.0.0.1:", "https://devices.doctor.invalid:"),
    )
    .expect("write");

    let doctor = |d: &Path, json: bool| {
        let mut args = vec!["agent".to_string(), "doctor".into(), "--dir".into()];
        args.push(d.display().to_string());
        if json {
            args.push("--json".into());
        }
        burrow(args)
    };
    let (healthy, healthy_json, wrong_key, unresolvable) = tokio::join!(
        doctor(&agent, false),
        doctor(&agent, true),
        doctor(&wrong_key, false),
        doctor(&unresolvable, false),
    );
    assert_eq!(healthy.code, 0, "{}", healthy.stdout);
    assert!(line(&healthy, "ok", "agent.toml").contains("device DOC1"));
    for name in [
        "device certificate",
        "device key",
        "device CA",
        "resolves",
        "answers",
    ] {
        line(&healthy, "ok", name);
    }
    assert!(line(&healthy, "ok", "config endpoint").contains("accepts the device certificate"));
    line(&healthy, "ok", "clock skew");
    let report: Value = serde_json::from_str(&healthy_json.stdout).expect("JSON report");
    assert_eq!(report["ok"], true, "{report}");

    assert_eq!(wrong_key.code, 1);
    assert!(line(&wrong_key, "FAIL", "device key").contains("does not belong"));
    assert_eq!(unresolvable.code, 1);
    line(&unresolvable, "FAIL", "devices.doctor.invalid");

    // Revoked on the server: the config endpoint refuses the certificate.
    let (status, _) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/devices/DOC1/revoke",
            &admin,
            None,
        )
        .await
        .expect("revoke");
    assert!(status.is_success(), "{status}");
    let revoked = doctor(&agent, false).await;
    assert_eq!(revoked.code, 1, "{}", revoked.stdout);
    assert!(line(&revoked, "FAIL", "config endpoint").contains("refuses the device"));
}
