//! Real `burrow` processes on the topology's test hosts, and what tests need around them: a
//! free port on a host, waiting (bounded) for a condition, and a way for hosts to reach the
//! machine's PostgreSQL.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;
use tokio::time::Instant;

use super::topology::{Host, HostRuntime, Topology};

/// A free port on `host` (its namespace is private to this test: nobody else binds there).
pub async fn free_port(rt: &HostRuntime) -> u16 {
    rt.spawn(async {
        let l = tokio::net::TcpListener::bind("0.0.0.0:0")
            .await
            .expect("bind");
        l.local_addr().expect("addr").port()
    })
    .await
    .expect("join")
}

/// Polls `check` every 50 ms until it answers `Some`, or panics after `limit` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `burrow server` process.
pub struct ServerProcess {
    pub child: Child,
    /// What it printed up to its `data:` line (printed once it listens).
    pub banner: Vec<String>,
}

impl ServerProcess {
    /// `burrow server` (the binary at `exe`) on `host` with `env`, once its banner is out.
    pub async fn start(
        exe: &Path,
        host: &Host,
        data: &Path,
        admin: (&str, &str),
        env: &[(&str, String)],
    ) -> ServerProcess {
        let mut cmd = host.command(exe);
        cmd.arg("server")
            .env("BURROW_DATA_DIR", data)
            .env("BURROW_ADMIN_EMAIL", admin.0)
            .env("BURROW_ADMIN_PASSWORD", admin.1)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn burrow server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut banner = Vec::new();
        let read = async {
            while let Some(line) = lines.next_line().await.expect("read banner") {
                let last = line.starts_with("  data:");
                banner.push(line);
                if last {
                    return;
                }
            }
            panic!("server exited before its banner: {banner:?}");
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("banner within 30 s");
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess { child, banner }
    }

    /// `kill -9`.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    /// SIGTERM, then waits (bounded) for the process to exit; answers whether it exited 0.
    pub async fn terminate(self, limit: Duration) -> bool {
        self.signal_term();
        self.exited(limit).await
    }

    /// Sends SIGTERM (the process starts draining).
    pub fn signal_term(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: signalling our own child by pid.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
    }

    /// Waits (bounded) for the process to exit; answers whether it exited 0.
    pub async fn exited(mut self, limit: Duration) -> bool {
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => {
                let _ = self.child.start_kill();
                false
            }
        }
    }
}

/// An HTTP client that resolves each of `names` to its host's address in `topo` (or, for a
/// tunnel host name, to `fallback`'s), at `port`.
pub fn client_for(topo: &Topology, names: &[&str], fallback: &str, port: u16) -> reqwest::Client {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(120));
    for n in names {
        let ip = topo.resolve(n).unwrap_or_else(|| topo.host(fallback).ip);
        b = b.resolve(n, SocketAddr::from((ip, port)));
    }
    b.build().expect("client")
}

/// Makes `to` (an address of this machine, e.g. its PostgreSQL on 127.0.0.1) reachable from
/// the test hosts at `host:<answered port>`: a TCP relay listening in `host`'s namespace,
/// connecting out from the test process's own. Runs until the runtimes end.
pub async fn relay(rt: &HostRuntime, to: SocketAddr) -> u16 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::net::TcpStream>(64);
    let port = rt
        .spawn(async move {
            let l = tokio::net::TcpListener::bind("0.0.0.0:0")
                .await
                .expect("bind relay");
            let port = l.local_addr().expect("addr").port();
            tokio::spawn(async move {
                while let Ok((tcp, _)) = l.accept().await {
                    // Handed over as a std socket: the other side registers it with its own
                    // runtime (the socket stays in this host's namespace).
                    let Ok(std) = tcp.into_std() else { continue };
                    if tx.send(std).await.is_err() {
                        return;
                    }
                }
            });
            port
        })
        .await
        .expect("join");
    tokio::spawn(async move {
        while let Some(std) = rx.recv().await {
            tokio::spawn(async move {
                let Ok(mut inbound) = tokio::net::TcpStream::from_std(std) else {
                    return;
                };
                let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    port
}
