//! The `burrow` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn burrow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_burrow"));
    // The test process may carry BURROW_* variables of its own; the child gets only ours.
    for (k, _) in std::env::vars() {
        if k.starts_with("BURROW_") {
            c.env_remove(k);
        }
    }
    c
}

/// The configuration `--check-config` printed, once it succeeded; each of `lines` is in it
/// and `secret` is not.
/// `burrow server --check-config ARGS` in `dir`, with nothing from the environment added.
fn check_config(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    burrow()
        .current_dir(dir)
        .args(["server", "--check-config"])
        .args(args)
        .output()
        .expect("run")
}

fn shown_config(out: &std::process::Output, lines: &[&str], secret: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in lines {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(!stdout.contains(secret), "{stdout}");
    stdout
}

#[test]
fn check_config_validates_and_masks_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = burrow()
        .current_dir(dir.path())
        .args(["server", "--check-config", "--listen", "127.0.0.1:9999"])
        .env(
            "BURROW_DATABASE_URL",
            "postgres://burrow:s3cret-pw@db.example:5432/burrow",
        )
        .env("BURROW_ADMIN_EMAIL", "ops@example.com")
        .env("BURROW_ADMIN_PASSWORD", "very-secret-admin-pw")
        .env("BURROW_BASE_DOMAIN", "fleet.example.com")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("listen = 127.0.0.1:9999"),
        "flag wins: {stdout}"
    );
    assert!(
        stdout.contains("base_domain = fleet.example.com"),
        "env applies: {stdout}"
    );
    assert!(
        stdout.contains("postgres://burrow:***@db.example:5432/burrow"),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cret-pw") && !stdout.contains("very-secret-admin-pw"));

    // ACME: checked at load; the TSIG key file's path is shown, never its secret.
    let out = burrow()
        .current_dir(dir.path())
        .args(["server", "--check-config"])
        .env("BURROW_ACME_CHALLENGE", "dns-99")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("acme_challenge must be http-01 or tls-alpn-01"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = dir.path().join("tsig.key");
    std::fs::write(
        &key,
        "key \"burrow\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXRzaWcta2V5LWJ5dGVzLTEyMzQ1Njc4OTA=\";\n};\n",
    )
    .expect("key file");
    let out = burrow()
        .current_dir(dir.path())
        .args(["server", "--check-config"])
        .env("BURROW_BASE_DOMAIN", "fleet.example.com")
        .env("BURROW_ACME_BASE_DOMAIN", "true")
        .env("BURROW_ACME_DNS_UPDATE", "192.0.2.53:53")
        .env("BURROW_ACME_DNS_UPDATE_KEY_FILE", &key)
        .env("BURROW_ACME_EMAIL", "ops@example.com")
        .output()
        .expect("run");
    shown_config(
        &out,
        &[
            "acme_base_domain = true",
            "acme_dns_update = 192.0.2.53:53",
            "acme_dns_update_zone = fleet.example.com",
            "acme_email = ops@example.com",
            "acme_challenge = tls-alpn-01",
        ],
        "c2VjcmV0",
    );

    // Single sign-on: env for the secret and the domains, flags for the rest.
    let out = burrow()
        .current_dir(dir.path())
        .args([
            "server",
            "--check-config",
            "--oidc-issuer",
            "https://id.example/realms/x",
        ])
        .args(["--oidc-client-id", "burrow", "--password-login", "false"])
        .env("BURROW_OIDC_CLIENT_SECRET", "oidc-client-s3cret")
        .env("BURROW_OIDC_ALLOWED_DOMAINS", "example.com,example.org")
        .output()
        .expect("run");
    shown_config(
        &out,
        &[
            "oidc_issuer = https://id.example/realms/x",
            "oidc_client_id = burrow",
            "oidc_client_secret = ***",
            "oidc_allowed_domains = [\"example.com\", \"example.org\"]",
            "password_login = false",
        ],
        "oidc-client-s3cret",
    );
    let out = burrow()
        .current_dir(dir.path())
        .args(["server", "--check-config", "--oidc-issuer", "id.example"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must be an http(s) URL"), "{stderr}");

    // A file layer under env: the file sets base_domain, env overrides it.
    std::fs::write(
        dir.path().join("burrow.toml"),
        "base_domain = \"from-file.example\"\njwt_ttl_minutes = 5\n",
    )
    .expect("write");
    let out = burrow()
        .current_dir(dir.path())
        .args(["server", "--check-config"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("base_domain = from-file.example")
            && stdout.contains("jwt_ttl_minutes = 5"),
        "{stdout}"
    );

    // Invalid values are refused with a clear message.
    for (k, v) in [
        ("BURROW_JWT_TTL_MINUTES", "0"),
        ("BURROW_DATABASE_URL", "mysql://x"),
        ("BURROW_LISTEN", "nope"),
    ] {
        let out = burrow()
            .current_dir(dir.path())
            .args(["server", "--check-config"])
            .env(k, v)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{k}={v} accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("configuration"),
            "{k}"
        );
    }
}

/// `burrow server` with no flags (the port is the only thing changed, through the environment,
/// because tests never use fixed ports): creates its data dir and database, prints the address,
/// the admin email and the path of the 0600 file holding the generated password (never the
/// password itself), and those credentials log in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_working_admin_credentials_once_password_in_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = || {
        burrow()
            .current_dir(dir.path())
            .arg("server")
            .env("BURROW_LISTEN", "127.0.0.1:0")
            .env("BURROW_DEVICE_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let (mut child, lines) = read_banner(start());
    let text = lines.join("\n");
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("burrow server listening on http://"))
        .expect("address line")
        .to_string();
    let file = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("password file: "))
        .expect("password file printed")
        .to_string();
    let file = dir.path().join(file);
    let password = std::fs::read_to_string(&file)
        .expect("password file")
        .trim()
        .to_string();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "owner only");
    assert!(
        !text.contains(&password),
        "the password itself is not printed"
    );
    assert!(text.contains("admin@burrow.local"), "{text}");
    assert!(dir.path().join("burrow-data/burrow.db").exists());

    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "admin@burrow.local", "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200);
    let _ = child.kill();
    let _ = child.wait();

    // Second start: same data, no new credentials printed.
    let (mut child, lines) = read_banner(start());
    assert!(!lines.iter().any(|l| l.contains("password")), "{lines:?}");
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads stdout lines until the banner's last line (`  data: ...`), 10 s at most per line.
fn read_banner(mut child: std::process::Child) -> (std::process::Child, Vec<String>) {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(10)) {
        let done = line.starts_with("  data:");
        lines.push(line);
        if done {
            break;
        }
    }
    (child, lines)
}

/// `burrow agent enroll` reads its token from a file (never argv), refuses an unpinned
/// enrollment over plain HTTP and a wrong `--ca-sha256` before spending the token, and leaves
/// the device's credentials in the directory, the private key readable by its owner only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_enroll_from_a_token_file() {
    use std::os::unix::fs::PermissionsExt;
    let s = burrow::testkit::TestStack::start(burrow::testkit::Backend::Sqlite)
        .await
        .expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (_, device) = s.project_with_device(&admin, "CLI1").await.expect("device");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        device["enrollment_token"].as_str().expect("token"),
    )
    .expect("write");
    let command = device["enrollment_command"].as_str().expect("command");
    let pin = command
        .split_once("--ca-sha256 ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .expect("the command pins the CA")
        .to_string();
    assert_eq!(pin, s.running.device_ca_sha256.to_string());
    assert!(
        command.contains(&format!("--server {}", s.url("")))
            || command.contains(&format!("--server http://localhost:{}", s.addr.port())),
        "{command}"
    );
    let agent_dir = dir.path().join("agent");
    let server = format!("http://{}", s.addr);
    let enroll = move |extra: Vec<String>| {
        let (server, token_file, agent_dir) =
            (server.clone(), token_file.clone(), agent_dir.clone());
        tokio::task::spawn_blocking(move || {
            burrow()
                .args(["agent", "enroll", "--server", &server, "--token-file"])
                .arg(&token_file)
                .arg("--dir")
                .arg(&agent_dir)
                .args(extra)
                .output()
                .expect("run")
        })
    };

    let out = enroll(vec![]).await.expect("join");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--ca-sha256"),
        "{err}"
    );
    let wrong = "ab".repeat(32);
    let out = enroll(vec!["--ca-sha256".into(), wrong.clone()])
        .await
        .expect("join");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains(&wrong) && err.contains(&pin),
        "a wrong pin is refused, naming both fingerprints: {err}"
    );
    let out = enroll(vec!["--ca-sha256".into(), "xyz".into()])
        .await
        .expect("join");
    assert!(!out.status.success());
    assert!(!dir.path().join("agent/device.key").exists());

    // The token was not spent by the refusals above.
    let out = enroll(vec!["--ca-sha256".into(), pin]).await.expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("enrolled device CLI1"));
    let key = dir.path().join("agent/device.key");
    assert_eq!(
        std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    for f in ["device.pem", "ca.pem", "agent.toml"] {
        assert!(dir.path().join("agent").join(f).exists(), "{f}");
    }
}

/// `device_url` is checked at start: what the server cannot serve is refused, naming the key;
/// a valid list is printed as what devices will dial.
#[test]
fn device_url_is_validated_and_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in [
        "ftp://x",
        "https://",
        "https://bad_name.test:8701",
        "https://x.test/path",
    ] {
        let out = burrow()
            .current_dir(dir.path())
            .args(["server", "--check-config"])
            .env("BURROW_DEVICE_URL", bad)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(err.contains("device_url"), "{bad}: {err}");
    }
    let out = check_config(
        dir.path(),
        &[
            "--device-url",
            "https://Devices.Fleet.example.com:8701, https://10.0.0.7:8701",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "device_url = https://devices.fleet.example.com:8701,https://10.0.0.7:8701 (what devices dial)"
        ),
        "{stdout}"
    );
    // Unset with a device listener open to other hosts: refused, since devices there cannot
    // dial the listener's own address.
    let out = check_config(dir.path(), &["--device-listen", "0.0.0.0:8801"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "0.0.0.0 without device_url accepted");
    assert!(
        err.contains("device_url") && err.contains("https://0.0.0.0:8801"),
        "{err}"
    );
    // Unset: loopback, as before.
    let out = check_config(dir.path(), &["--device-listen", "127.0.0.1:8801"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("device_url = https://127.0.0.1:8801 (what devices dial)"),
        "{stdout}"
    );
}
