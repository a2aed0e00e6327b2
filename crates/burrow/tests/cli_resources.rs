//! The operator's CLI against a real server: the built `burrow` binary drives projects,
//! members, devices, tunnels, keys, links, the access log (`--follow` too) and `open`, in
//! text and `--json`, with `burrow login`'s stored token; errors carry the API's message and
//! the documented exit codes (docs/cli.md).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use burrow::testkit::{Backend, TestStack, ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::Value;

/// The binary with only the environment given: a private config home (for `login`'s token),
/// no display (so `tunnel open` never starts a browser), no BURROW_* of the test process.
fn burrow(home: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_burrow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BURROW_") || k == "DISPLAY" || k == "WAYLAND_DISPLAY" {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"));
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Runs `burrow ARGS` (off the runtime: the server runs on it) and collects the outcome.
/// The command is built at once, so the future borrows nothing.
fn run(
    home: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> impl std::future::Future<Output = Out> + 'static {
    let mut cmd = burrow(home, env);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = stdin.map(str::to_string);
    async move {
        tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn().expect("spawn burrow");
            if let Some(text) = input {
                let mut s = child.stdin.take().expect("stdin");
                s.write_all(text.as_bytes()).expect("write stdin");
            }
            let out = child.wait_with_output().expect("wait");
            Out {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("join")
    }
}

/// A port where nothing listens (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

async fn web_service() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async { "hello" });
    burrow::testkit::serve_local(app).await.expect("service")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_resource_command_in_text_and_json() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let server = s.url("");
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let none: &[(&str, &str)] = &[];

    // Independent of any login: usage errors, completions, no token, an unreachable server.
    let unreachable = format!("http://127.0.0.1:{}", closed_port());
    let (usage, bash, zsh, fish, no_token, down) = tokio::join!(
        run(home, none, &["devices", "frobnicate"], None),
        run(home, none, &["completions", "bash"], None),
        run(home, none, &["completions", "zsh"], None),
        run(home, none, &["completions", "fish"], None),
        run(
            home,
            &[("BURROW_SERVER", server.as_str())],
            &["projects", "list"],
            None
        ),
        run(
            home,
            &[("BURROW_TOKEN", "x")],
            &["projects", "list", "--server", unreachable.as_str()],
            None
        ),
    );
    assert_eq!(usage.code, 2, "{}", usage.stderr);
    for (shell, out) in [("bash", bash), ("zsh", zsh), ("fish", fish)] {
        let out = out.ok();
        assert!(
            out.stdout.contains("tunnels") && out.stdout.contains("doctor"),
            "{shell}"
        );
    }
    assert_eq!(no_token.code, 4, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("burrow login"),
        "{}",
        no_token.stderr
    );
    assert_eq!(down.code, 5, "{}", down.stderr);
    assert!(
        down.stderr.contains("cannot reach the server"),
        "{}",
        down.stderr
    );

    // login: a wrong password is an auth failure; the right one stores token and server.
    let login = [
        "login",
        "--server",
        server.as_str(),
        "--email",
        ADMIN_EMAIL,
        "--password-stdin",
    ];
    let bad = run(home, none, &login, Some("wrong-password\n")).await;
    assert_eq!(bad.code, 4, "{}", bad.stderr);
    run(home, none, &login, Some(&format!("{ADMIN_PASSWORD}\n")))
        .await
        .ok();
    let token_file = home.join("config/burrow/token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // From here on: no --server, no BURROW_TOKEN — what `login` stored.
    let cli = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(home, &[], &args, None).await
    };
    macro_rules! burrow {
        ($($a:expr),* $(,)?) => { cli(vec![$($a.to_string()),*]).await };
    }
    let bad_token = run(
        home,
        &[("BURROW_TOKEN", "not-a-jwt")],
        &["projects", "list"],
        None,
    )
    .await;
    assert_eq!(bad_token.code, 4, "{}", bad_token.stderr);

    // Projects.
    let p = burrow!("projects", "create", "--name", "fleet", "--json")
        .ok()
        .json();
    let pid = p["id"].as_i64().expect("project id");
    let list = burrow!("projects", "list").ok().stdout;
    let head = list.lines().next().unwrap_or_default();
    assert!(
        head.starts_with("ID") && head.contains("NAME") && head.contains("CREATED"),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with(&pid.to_string()) && l.contains("fleet")),
        "{list}"
    );
    let show = burrow!("projects", "show", pid).ok().stdout;
    assert!(show.contains("NAME:") && show.contains("fleet"), "{show}");
    let missing = burrow!("projects", "show", 99999);
    assert_eq!(missing.code, 3, "{}", missing.stderr);

    // Members: the creator owns the project; another user joins as member, once.
    let (uid, _) = s.user("ops@test.local").await.expect("user");
    let m = burrow!("members", "list", "--project", pid).ok().stdout;
    assert!(
        m.lines()
            .any(|l| l.contains(ADMIN_EMAIL) && l.contains("owner")),
        "{m}"
    );
    let added = burrow!(
        "members",
        "create",
        "--project",
        pid,
        "--user-id",
        uid,
        "--json"
    )
    .ok();
    assert_eq!(added.json()["role"], "member");
    let again = burrow!("members", "create", "--project", pid, "--user-id", uid);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.contains("already a member"),
        "{}",
        again.stderr
    );
    let m = burrow!("members", "list", "--project", pid, "--json")
        .ok()
        .json();
    assert_eq!(m.as_array().map(Vec::len), Some(2), "{m}");
    let me = m
        .as_array()
        .and_then(|a| a.iter().find(|x| x["email"] == ADMIN_EMAIL))
        .and_then(|x| x["user_id"].as_i64())
        .expect("own membership");
    // Roles change, never leaving the project without an owner; members can be removed.
    let promoted = burrow!(
        "members",
        "update",
        "--project",
        pid,
        "--user-id",
        uid,
        "--role",
        "owner",
        "--json"
    )
    .ok()
    .json();
    assert_eq!(promoted["role"], "owner", "{promoted}");
    let last = burrow!(
        "members",
        "update",
        "--project",
        pid,
        "--user-id",
        uid,
        "--role",
        "member"
    )
    .ok();
    assert!(last.stdout.contains("member"), "{}", last.stdout);
    let alone = burrow!("members", "delete", "--project", pid, "--user-id", me);
    assert_eq!(alone.code, 1, "{}", alone.stderr);
    assert!(alone.stderr.contains("last owner"), "{}", alone.stderr);
    let removed = burrow!("members", "delete", "--project", pid, "--user-id", uid).ok();
    assert!(
        removed.stdout.contains("removed user"),
        "{}",
        removed.stdout
    );
    let m = burrow!("members", "list", "--project", pid, "--json")
        .ok()
        .json();
    assert_eq!(m.as_array().map(Vec::len), Some(1), "{m}");
    let renamed = burrow!("projects", "update", pid, "--name", "fleet-2").ok();
    assert!(renamed.stdout.contains("fleet-2"), "{}", renamed.stdout);

    // Devices.
    let created = burrow!(
        "devices",
        "create",
        "--project",
        pid,
        "--dsn",
        "CLI9",
        "--name",
        "robot"
    )
    .ok();
    assert!(
        created.stdout.contains("burrow-agent enroll"),
        "{}",
        created.stdout
    );
    assert!(created.stdout.contains("DSN:") && created.stdout.contains("CLI9"));
    let renamed = burrow!("devices", "update", "CLI9", "--name", "robot-7").ok();
    assert!(renamed.stdout.contains("robot-7"), "{}", renamed.stdout);
    let invalid = burrow!(
        "devices",
        "create",
        "--project",
        pid,
        "--dsn",
        "bad dsn!",
        "--name",
        "x"
    );
    assert_eq!(invalid.code, 1);
    assert!(
        invalid.stderr.contains("dsn"),
        "the API's message: {}",
        invalid.stderr
    );
    let devs = burrow!("devices", "list").ok().stdout;
    assert!(devs
        .lines()
        .next()
        .is_some_and(|h| h.starts_with("DSN") && h.contains("ONLINE")));
    assert!(
        devs.lines()
            .any(|l| l.starts_with("CLI9") && l.contains("robot")),
        "{devs}"
    );
    let devs = burrow!("devices", "list", "--project", pid, "--json")
        .ok()
        .json();
    assert_eq!(devs[0]["dsn"], "CLI9");
    assert_eq!(devs[0]["enrolled"], false);
    let nope = burrow!("devices", "show", "NOPE");
    assert_eq!(nope.code, 3);
    assert!(nope.stderr.contains("not found"), "{}", nope.stderr);

    // Tunnels.
    let t = burrow!(
        "tunnels",
        "create",
        "CLI9",
        "--name",
        "dash",
        "--local-port",
        8080,
        "--json"
    )
    .ok()
    .json();
    let tid = t["id"].as_i64().expect("tunnel id");
    assert_eq!(t["require_auth"], true);
    let bad_port = burrow!(
        "tunnels",
        "create",
        "CLI9",
        "--name",
        "x",
        "--local-port",
        0
    );
    assert_eq!(bad_port.code, 1);
    assert!(
        bad_port.stderr.contains("local_port"),
        "{}",
        bad_port.stderr
    );
    let list = burrow!("tunnels", "list", "CLI9").ok().stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&tid.to_string()) && l.contains("dash") && l.contains("8080")),
        "{list}"
    );
    let updated = burrow!(
        "tunnels",
        "update",
        "CLI9",
        tid,
        "--local-port",
        9090,
        "--public"
    )
    .ok();
    assert!(updated.stdout.contains("9090"), "{}", updated.stdout);
    let shown = burrow!("tunnels", "show", "CLI9", tid, "--json")
        .ok()
        .json();
    assert_eq!(
        (shown["local_port"].as_i64(), &shown["require_auth"]),
        (Some(9090), &Value::Bool(false))
    );
    let host = shown["public_url"].as_str().expect("public_url");
    let url = format!("http://{host}:{}/", s.addr.port());
    let conflicting = burrow!("tunnels", "update", "CLI9", tid, "--public", "--private");
    assert_eq!(conflicting.code, 2);

    // The existing JSON commands keep working with the stored login.
    let described = burrow!("tunnel", "describe", "CLI9", tid).ok().json();
    assert_eq!(described["id"].as_i64(), Some(tid));

    // `tunnel open` prints the URL; it never fails for want of a browser.
    let open = burrow!("tunnel", "open", "CLI9", tid).ok();
    assert_eq!(open.stdout.trim(), url);
    let no_browser = run(
        home,
        &[("DISPLAY", ":99"), ("PATH", "/nonexistent")],
        &["tunnel", "open", "CLI9", tid.to_string().as_str()],
        None,
    )
    .await
    .ok();
    assert_eq!(no_browser.stdout.trim(), url);

    // Keys and links: shown once at creation; listed; deleted (revoked).
    let key = burrow!(
        "keys",
        "create",
        "CLI9",
        tid,
        "--name",
        "ci",
        "--methods",
        "GET"
    )
    .ok();
    assert!(
        key.stdout.contains("key:") && key.stdout.contains("shown only now"),
        "{}",
        key.stdout
    );
    let keys = burrow!("keys", "list", "CLI9", tid, "--json").ok().json();
    let kid = keys["items"][0]["id"].as_i64().expect("key id");
    let keys = burrow!("keys", "list", "CLI9", tid).ok().stdout;
    assert!(
        keys.lines().any(|l| l.contains("ci") && l.contains("GET")),
        "{keys}"
    );
    let revoked = burrow!("keys", "delete", "CLI9", tid, kid).ok();
    assert!(revoked.stdout.contains(&format!("revoked key {kid}")));
    let keys = burrow!("keys", "list", "CLI9", tid, "--json").ok().json();
    assert!(keys["items"][0]["revoked_at"].is_string(), "{keys}");
    let link = burrow!(
        "links",
        "create",
        "CLI9",
        tid,
        "--minutes",
        30,
        "--note",
        "demo"
    )
    .ok();
    assert!(
        link.stdout.contains("url:") && link.stdout.contains("http"),
        "{}",
        link.stdout
    );
    let links = burrow!("links", "list", "CLI9", tid, "--json").ok().json();
    let lid = links["items"][0]["id"].as_i64().expect("link id");
    assert!(burrow!("links", "list", "CLI9", tid)
        .ok()
        .stdout
        .contains("demo"));
    burrow!("links", "delete", "CLI9", tid, lid).ok();
    let gone = burrow!("links", "delete", "CLI9", tid, 424242);
    assert_eq!(gone.code, 3, "{}", gone.stderr);

    // Deleting: the tunnel, then the device; both are gone afterwards.
    let deleted = burrow!("tunnels", "delete", "CLI9", tid).ok();
    assert!(
        deleted.stdout.contains("deleted tunnel"),
        "{}",
        deleted.stdout
    );
    assert_eq!(burrow!("tunnels", "show", "CLI9", tid).code, 3);
    burrow!("devices", "delete", "CLI9").ok();
    assert_eq!(burrow!("devices", "show", "CLI9").code, 3);

    // Deleting a project takes its devices with it.
    let scratch = burrow!("projects", "create", "--name", "scratch", "--json")
        .ok()
        .json();
    let sid = scratch["id"].as_i64().expect("project id");
    burrow!(
        "devices",
        "create",
        "--project",
        sid,
        "--dsn",
        "CLI8",
        "--name",
        "spare"
    )
    .ok();
    let dropped = burrow!("projects", "delete", sid).ok();
    assert!(
        dropped.stdout.contains("deleted project"),
        "{}",
        dropped.stdout
    );
    assert_eq!(burrow!("projects", "show", sid).code, 3);
    assert_eq!(burrow!("devices", "show", "CLI8").code, 3);

    access_log(&s, home).await;
}

/// `tunnel logs` lists real traffic (text and JSON) and `--follow` prints what comes later.
async fn access_log(s: &TestStack, home: &Path) {
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = s
        .public_tunnel(&admin, "LOG1", web_service().await)
        .await
        .expect("tunnel");
    let host = t["public_url"].as_str().expect("host").to_string();
    let tid = t["id"].to_string();
    let get = |path: &'static str| {
        let req = s.http.get(s.url(path)).header("host", &host);
        async move {
            let r = req.send().await.expect("through the edge");
            assert_eq!(r.status(), 200);
            s.running.ops.edge.flush_all().await;
        }
    };
    get("/first").await;
    let text = run(home, &[], &["tunnel", "logs", "LOG1", tid.as_str()], None)
        .await
        .ok()
        .stdout;
    assert!(text
        .lines()
        .next()
        .is_some_and(|h| h.starts_with("TIME") && h.ends_with("PATH")));
    assert!(
        text.lines()
            .any(|l| l.contains("GET") && l.contains("200") && l.ends_with("/first")),
        "{text}"
    );
    let json = run(
        home,
        &[],
        &["tunnel", "logs", "LOG1", tid.as_str(), "--json"],
        None,
    )
    .await
    .ok()
    .json();
    assert_eq!(json["items"][0]["path"], "/first");

    let mut child = burrow(home, &[])
        .args([
            "tunnel",
            "logs",
            "LOG1",
            tid.as_str(),
            "--follow",
            "--interval",
            "1",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let lines = lines_of(child.stdout.take().expect("stdout"));
    let (lines, first) = tokio::task::spawn_blocking(move || {
        let first = lines.recv_timeout(Duration::from_secs(20));
        (lines, first)
    })
    .await
    .expect("join");
    let first = first.expect("the entry already there");
    assert!(first.contains("/first"), "{first}");
    get("/second").await;
    let next = tokio::task::spawn_blocking(move || lines.recv_timeout(Duration::from_secs(20)))
        .await
        .expect("join");
    let _ = child.kill();
    let _ = child.wait();
    let next = next.expect("--follow prints the new entry");
    let entry: Value = serde_json::from_str(&next).expect("one JSON object per line");
    assert_eq!(entry["path"], "/second", "and not /first again");
}

fn lines_of(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
