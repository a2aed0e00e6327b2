//! The agent's graceful stop: a real server (test kit), a local HTTP service with responses
//! the test holds open, and the agent as a process (`burrow agent run`). On SIGTERM the agent
//! takes no new tunnel connection, lets the open ones finish, and exits 0 — at once when
//! they have ended, at its drain timeout when one never does, and at a second signal.
//! Readiness comes from the agent's own log line, never from sleeping.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

const HALF: usize = 256 * 1024;

fn body() -> Vec<u8> {
    (0..2 * HALF).map(|i| (i * 131 % 241) as u8).collect()
}

/// The device's service: counts requests; `/slow` sends half its body, waits for `release`,
/// sends the rest and closes; `/forever` sends half and never finishes; anything else is
/// answered at once.
struct Service {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

async fn service() -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let release = Arc::new(Notify::new());
    let (counter, gate) = (hits.clone(), release.clone());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let (counter, gate) = (counter.clone(), gate.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body();
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(header.as_bytes()).await;
                if head.starts_with(b"GET /slow ") || head.starts_with(b"GET /forever ") {
                    let _ = tcp.write_all(&body[..HALF]).await;
                    if head.starts_with(b"GET /forever ") {
                        std::future::pending::<()>().await;
                    }
                    gate.notified().await;
                    let _ = tcp.write_all(&body[HALF..]).await;
                } else {
                    let _ = tcp.write_all(&body).await;
                }
                let _ = tcp.shutdown().await;
            });
        }
    });
    Service {
        addr,
        hits,
        release,
    }
}

/// A server, the service, an enrolled device with one tunnel to it, and its agent process
/// (connected).
struct Setup {
    stack: TestStack,
    svc: Service,
    tunnel_id: String,
    service_name: String,
    agent: Child,
    /// The agent's log lines.
    log: mpsc::UnboundedReceiver<String>,
    _dir: tempfile::TempDir,
}

async fn setup(dsn: &str, agent_args: &[&str], agent_toml_extra: &str) -> Setup {
    let stack = TestStack::start(Backend::Sqlite).await.expect("stack");
    let svc = service().await;
    let token = stack.admin_token().await.unwrap();
    let (_pid, device) = stack.project_with_device(&token, dsn).await.unwrap();
    let enrollment = device["enrollment_token"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agent");
    stack
        .enroll_agent(&enrollment, &agent_dir)
        .await
        .expect("enrolls");
    if !agent_toml_extra.is_empty() {
        let path = agent_dir.join("agent.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(agent_toml_extra);
        std::fs::write(&path, text).unwrap();
    }
    let path = format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels");
    let body = serde_json::json!({"name": "svc", "local_port": svc.addr.port(),
                                  "require_auth": false, "protocol": "http"});
    let (status, t) = stack
        .call(reqwest::Method::POST, &path, &token, Some(&body))
        .await
        .unwrap();
    assert_eq!(status, 201, "create tunnel: {t}");
    let id = t["id"].as_i64().unwrap();

    let (agent, log) = spawn_agent(&agent_dir, agent_args);
    let t = stack
        .wait_agent_connected(&token, dsn, id, Duration::from_secs(30))
        .await
        .expect("agent connects");
    Setup {
        tunnel_id: t["tunnel_id"].as_str().unwrap().to_string(),
        service_name: burrow_edge::service_name("http", i64::from(svc.addr.port())),
        stack,
        svc,
        agent,
        log,
        _dir: dir,
    }
}

fn spawn_agent(dir: &Path, args: &[&str]) -> (Child, mpsc::UnboundedReceiver<String>) {
    let mut agent = Command::new(env!("CARGO_BIN_EXE_burrow"))
        .args(["agent", "run", "--dir"])
        .arg(PathBuf::from(dir))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("BURROW_AGENT_DRAIN_TIMEOUT")
        // The agent logs to stdout.
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn burrow agent run");
    let mut lines = BufReader::new(agent.stdout.take().unwrap()).lines();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("agent: {line}");
            let _ = tx.send(line);
        }
    });
    (agent, rx)
}

impl Setup {
    fn signal_term(&self) {
        let pid = self.agent.id().expect("agent running");
        // SAFETY: signalling our own child by pid.
        let rc = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill -TERM {pid}");
    }

    /// Waits (bounded) for a log line containing `what`.
    async fn logged(&mut self, what: &str) {
        let wait = async {
            while let Some(line) = self.log.recv().await {
                if line.contains(what) {
                    return;
                }
            }
            panic!("the agent's log ended before {what:?}");
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .unwrap_or_else(|_| panic!("no {what:?} in the agent's log within 20 s"));
    }

    /// A connection through the tunnel with `GET path` written on it.
    async fn request(&self, path: &str) -> burrow_broker::TunnelStream {
        let mut s = self
            .stack
            .running
            .broker
            .connect_source(&self.tunnel_id, &self.service_name)
            .await
            .expect("source connects");
        let req = format!("GET {path} HTTP/1.1\r\nHost: device\r\nConnection: close\r\n\r\n");
        // A refused connection may already be gone: the read below tells.
        let _ = s.write_all(req.as_bytes()).await;
        s
    }

    /// The agent's exit status, within `limit`.
    async fn exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        tokio::time::timeout(limit, self.agent.wait())
            .await
            .unwrap_or_else(|_| panic!("the agent did not exit within {limit:?}"))
            .expect("wait for the agent")
    }
}

/// Reads `s` until `n` bytes arrived (or it ends); answers what came.
async fn read_at_least(s: &mut burrow_broker::TunnelStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < n {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
    got
}

/// Everything `s` carries until it ends.
async fn read_to_end(s: &mut burrow_broker::TunnelStream) -> Vec<u8> {
    read_at_least(s, usize::MAX).await
}

fn head_len(got: &[u8]) -> usize {
    got.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head")
        + 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_response_in_flight_finish_and_refuses_new_connections() {
    let mut s = setup("DRAIN-1", &["--drain-timeout", "60s"], "").await;

    // A response in flight: its first half has arrived.
    let mut slow = s.request("/slow").await;
    let mut got = tokio::time::timeout(Duration::from_secs(20), read_at_least(&mut slow, 1))
        .await
        .expect("first bytes within 20 s");
    while got.len() < head_len(&got) + HALF {
        let more = read_at_least(&mut slow, 1).await;
        assert!(!more.is_empty(), "the response ended early");
        got.extend_from_slice(&more);
    }
    assert_eq!(s.svc.hits.load(Ordering::SeqCst), 1);

    let stopped = Instant::now();
    s.signal_term();
    s.logged("refusing new connections").await;

    // A new connection is refused: nothing reaches the service, nothing comes back.
    let mut late = s.request("/").await;
    let answer = tokio::time::timeout(Duration::from_secs(20), read_to_end(&mut late))
        .await
        .expect("the refused connection ends within 20 s");
    assert!(answer.is_empty(), "a connection after SIGTERM was answered");
    assert_eq!(
        s.svc.hits.load(Ordering::SeqCst),
        1,
        "it reached the service"
    );
    assert!(
        s.agent.try_wait().unwrap().is_none(),
        "the agent exited with a connection open"
    );

    // The response in flight finishes, byte-exact; then the agent exits 0, long before its
    // 60 s drain timeout.
    s.svc.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(20), read_to_end(&mut slow))
        .await
        .expect("the rest within 20 s");
    got.extend_from_slice(&rest);
    let body_start = head_len(&got);
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(got.len() - body_start, 2 * HALF, "body length");
    assert_eq!(
        Sha256::digest(&got[body_start..]),
        Sha256::digest(body()),
        "byte-exact"
    );
    let status = s.exit(Duration::from_secs(20)).await;
    assert!(status.success(), "agent exit: {status}");
    assert!(
        stopped.elapsed() < Duration::from_secs(30),
        "{:?}",
        stopped.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_ends_is_cut_at_the_drain_timeout() {
    // The timeout from agent.toml (no flag, no environment).
    let mut s = setup("DRAIN-2", &[], "drain_timeout = \"2s\"\n").await;
    let mut endless = s.request("/forever").await;
    let first = tokio::time::timeout(Duration::from_secs(20), read_at_least(&mut endless, 1))
        .await
        .expect("first bytes within 20 s");
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));

    let stopped = Instant::now();
    s.signal_term();
    s.logged("refusing new connections").await;
    let status = s.exit(Duration::from_secs(15)).await;
    let took = stopped.elapsed();
    assert!(status.success(), "agent exit: {status}");
    assert!(
        took >= Duration::from_secs(2),
        "exited before its drain timeout: {took:?}"
    );
    // The connection ends with the agent.
    tokio::time::timeout(Duration::from_secs(20), read_to_end(&mut endless))
        .await
        .expect("the cut connection ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once() {
    let mut s = setup("DRAIN-3", &["--drain-timeout", "10m"], "").await;
    let mut endless = s.request("/forever").await;
    let first = tokio::time::timeout(Duration::from_secs(20), read_at_least(&mut endless, 1))
        .await
        .expect("first bytes within 20 s");
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));

    s.signal_term();
    s.logged("a second signal stops at once").await;
    assert!(
        s.agent.try_wait().unwrap().is_none(),
        "exited at the first signal"
    );
    s.signal_term();
    let status = s.exit(Duration::from_secs(15)).await;
    assert!(status.success(), "agent exit: {status}");
}
