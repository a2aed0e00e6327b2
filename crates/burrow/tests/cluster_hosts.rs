//! A cluster as deployed: three `burrow server` processes on three test hosts sharing one
//! PostgreSQL, the agent on an outbound-only device host, clients on a client host (network
//! namespaces of the test kit's topology; every program a real process).
//!
//! One story, in order: the device enrolls through node 1 and its agent connects there; a
//! tunnel created through node 3 reaches it within 2 s; a download (sha256-exact), a WebSocket
//! and server-sent events cross each of the three nodes; node 1 is killed (`kill -9`) under
//! continuous requests through nodes 2 and 3, which fail for at most 10 s and then all succeed
//! (the agent moved to node 2); node 1 restarts and rejoins; node 2 gets SIGTERM under
//! requests through nodes 1 and 3: it drains (the agent moves back to node 1, make before
//! break) with not one failed request, and node 1 holds the tunnel again.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use burrow::testkit::processes::{client_for, eventually, free_port, relay, ServerProcess};
use burrow::testkit::topology::{HostRuntime, HostSpec, Topology};
use burrow::testkit::{device_service, Load};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite;

const DSN: &str = "CLUSTER-7";
const ADMIN: (&str, &str) = ("ops@burrow.test", "cluster-hosts-pw-1");
const NODES: [&str; 3] = ["node1.test", "node2.test", "node3.test"];
const BIG: usize = 16 * 1024 * 1024;

struct Ports {
    api: u16,
    device: u16,
    link: u16,
}

fn node_env(i: usize, p: &Ports, db: &str, key: &Path) -> Vec<(&'static str, String)> {
    let host = NODES[i];
    vec![
        ("BURROW_LISTEN", format!("0.0.0.0:{}", p.api)),
        ("BURROW_DEVICE_LISTEN", format!("0.0.0.0:{}", p.device)),
        // Devices know nodes 2 (region east) and 1 (region west), in that order; node 3 only
        // serves the public and the API. The agent is in region west: it dials node 1 first.
        (
            "BURROW_DEVICE_URL",
            format!(
                "east=https://{}:{d},west=https://{}:{d}",
                NODES[1],
                NODES[0],
                d = p.device
            ),
        ),
        (
            "BURROW_NODE_REGION",
            if i == 0 { "west" } else { "east" }.into(),
        ),
        ("BURROW_BASE_DOMAIN", "burrow.test".into()),
        ("BURROW_API_ORIGIN", format!("http://{host}:{}", p.api)),
        ("BURROW_DATABASE_URL", db.to_string()),
        ("BURROW_CLUSTER_KEY_FILE", key.display().to_string()),
        ("BURROW_NODE_NAME", format!("node-{}", i + 1)),
        ("BURROW_CLUSTER_LISTEN", format!("0.0.0.0:{}", p.link)),
        ("BURROW_CLUSTER_URL", format!("https://{host}:{}", p.link)),
        // Node 3 holds no device and runs no jobs: the API and the public edge only.
        (
            "BURROW_ROLES",
            if i == 2 {
                "api,edge"
            } else {
                "api,edge,broker,scheduler"
            }
            .into(),
        ),
    ]
}

/// `postgres://user:pw@HOST:PORT/db` → the address, and the URL with `host:port` instead.
fn rehost(url: &str, host: &str, port: u16) -> (SocketAddr, String) {
    let (head, rest) = url.split_once('@').expect("user@host in the URL");
    let (hostport, tail) = rest.split_once('/').expect("/db in the URL");
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&addr)
        .expect("resolve the database host")
        .next()
        .expect("an address");
    (addr, format!("{head}@{host}:{port}/{tail}"))
}

/// Runs `f` on the client host.
async fn on<T: Send + 'static>(
    rt: &HostRuntime,
    f: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.spawn(f).await.expect("join")
}

fn sha256_pattern(len: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..len).map(device_service::pattern).collect();
    Sha256::digest(&body).to_vec()
}

/// Download, WebSocket echo and SSE through one node, from the client host.
async fn exercise(http: reqwest::Client, public: String, ws_addr: SocketAddr, host: String) {
    let resp = http
        .get(format!("{public}/big?bytes={BIG}"))
        .send()
        .await
        .expect("download");
    assert_eq!(resp.status(), 200);
    let mut hash = Sha256::new();
    let mut body = resp.bytes_stream();
    let mut len = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        len += chunk.len();
        hash.update(&chunk);
    }
    assert_eq!(len, BIG);
    assert_eq!(hash.finalize().to_vec(), sha256_pattern(BIG));

    let tcp = tokio::net::TcpStream::connect(ws_addr)
        .await
        .expect("connect");
    let (mut ws, resp) = tokio_tungstenite::client_async(format!("ws://{host}/ws"), tcp)
        .await
        .expect("websocket");
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(tungstenite::Message::text(format!("m{i}")))
            .await
            .expect("send");
        let got = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("echo in time")
            .expect("open")
            .expect("message");
        assert_eq!(got.into_text().expect("text").as_str(), format!("m{i}"));
    }
    let _ = ws.close(None).await;

    let resp = http
        .get(format!("{public}/events?n=4"))
        .send()
        .await
        .expect("events");
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.expect("events body");
    let want: String = (0..4).map(|i| format!("data: event {i}\n\n")).collect();
    assert_eq!(text, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_three_hosts_survive_losing_the_one_holding_the_device() {
    if burrow_store::testing::skip_postgres() {
        return;
    }
    let mut specs = vec![HostSpec::new("db.test")];
    specs.extend(NODES.iter().map(|n| HostSpec::new(n)));
    specs.push(HostSpec::new("device.test").outbound_only());
    specs.push(HostSpec::new("client.test"));
    let topo = Topology::build(&specs).expect("test hosts (network namespaces)");
    let db_rt = topo.host("db.test").runtime().expect("db runtime");
    let device_rt = topo.host("device.test").runtime().expect("device runtime");
    let client_rt = topo.host("client.test").runtime().expect("client runtime");
    let crt = &client_rt;

    // The machine's PostgreSQL, reached by the nodes at db.test.
    let pg = burrow_store::testing::postgres_db().await;
    let (pg_addr, _) = rehost(pg.url(), "db.test", 0);
    let relay_port = relay(&db_rt, pg_addr).await;
    let (_, db_url) = rehost(pg.url(), "db.test", relay_port);

    let dir = tempfile::tempdir().expect("tempdir");
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("cluster key");
    let n1_rt = topo.host(NODES[0]).runtime().expect("node runtime");
    // Each host's namespace is its own: one free port number is free on all of them.
    let ports = Ports {
        api: free_port(&n1_rt).await,
        device: free_port(&n1_rt).await,
        link: free_port(&n1_rt).await,
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_burrow"));
    let start = |i: usize| {
        let (host, data) = (topo.host(NODES[i]).clone(), dir.path().join(NODES[i]));
        let env = node_env(i, &ports, &db_url, &key);
        async move { ServerProcess::start(exe, &host, &data, ADMIN, &env).await }
    };
    // Node 1 first (it makes the cluster's keys and the administrator), then the others.
    let mut n1 = Some(start(0).await);
    let (n2, n3) = tokio::join!(start(1), start(2));
    let (mut n2, _n3) = (Some(n2), n3);

    // The operator, on the client host, through node 1's API.
    let api_of = |i: usize| format!("http://{}:{}/api/v1", NODES[i], ports.api);
    let http = client_for(&topo, &NODES, NODES[0], ports.api);
    let token = {
        let (http, api) = (http.clone(), api_of(0));
        on(crt, async move {
            let login: Value = http
                .post(format!("{api}/auth/login"))
                .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
                .send()
                .await
                .expect("login")
                .json()
                .await
                .expect("login body");
            login["access_token"].as_str().expect("token").to_string()
        })
        .await
    };
    let call = |i: usize, method: reqwest::Method, path: String, body: Option<Value>| {
        let (http, api, token) = (http.clone(), api_of(i), token.clone());
        on(crt, async move {
            let mut req = http
                .request(method, format!("{api}{path}"))
                .bearer_auth(&token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("API call");
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    let (status, project) = call(
        0,
        reqwest::Method::POST,
        "/projects".into(),
        Some(json!({"name": "fleet"})),
    )
    .await;
    assert_eq!(status, 201, "{project}");
    let (status, device) = call(
        0,
        reqwest::Method::POST,
        format!("/projects/{}/devices", project["id"]),
        Some(json!({"dsn": DSN, "name": "robot"})),
    )
    .await;
    assert_eq!(status, 201, "{device}");

    // The device enrolls (CA pinned, as the API's command says) and runs its agent.
    let command = device["enrollment_command"]
        .as_str()
        .expect("command")
        .to_string();
    let arg = |flag: &str| {
        command
            .split_once(&format!("{flag} "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{flag} in {command}"))
            .to_string()
    };
    let home = tempfile::tempdir().expect("tempdir");
    let agent_dir = home.path().join("agent");
    let device_host = topo.host("device.test").clone();
    let out = device_host
        .command(exe)
        .args([
            "agent",
            "enroll",
            "--server",
            &arg("--server"),
            "--ca-sha256",
            &arg("--ca-sha256"),
            "--dir",
        ])
        .arg(&agent_dir)
        .env(
            "BURROW_ENROLLMENT_TOKEN",
            device["enrollment_token"].as_str().expect("token"),
        )
        .output()
        .await
        .expect("enroll");
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _agent = device_host
        .command(exe)
        .args(["agent", "run", "--dir"])
        .arg(&agent_dir)
        .env("BURROW_REGION", "west")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("agent");
    let status_of = |dir: std::path::PathBuf| async move { burrow_agent::status::read(&dir).ok() };
    let first = format!("https://{}:{}", NODES[0], ports.device);
    eventually("the agent uses node 1", Duration::from_secs(20), || {
        let read = status_of(agent_dir.clone());
        let first = first.clone();
        async move {
            read.await
                .filter(|s| s.config == "ok" && s.device_url == first)
        }
    })
    .await;

    // Node 3 says what it does, and opens no device listener.
    let (status, nodes) = call(2, reqwest::Method::GET, "/cluster/nodes".into(), None).await;
    assert_eq!(status, 200, "{nodes}");
    let roles_of = |name: &str| {
        nodes
            .as_array()
            .and_then(|a| a.iter().find(|n| n["name"] == name))
            .map(|n| n["roles"].clone())
    };
    assert_eq!(roles_of("node-3"), Some(json!(["api", "edge"])), "{nodes}");
    assert_eq!(
        roles_of("node-1"),
        Some(json!(["api", "edge", "broker", "scheduler"]))
    );
    let device_port_of_3 = topo.host(NODES[2]).addr(ports.device);
    let refused = on(crt, async move {
        tokio::net::TcpStream::connect(device_port_of_3)
            .await
            .is_err()
    })
    .await;
    assert!(refused, "an api,edge node has no device listener");

    // A tunnel created through node 3 reaches the agent (on node 1) within 2 s.
    let (svc, _hits) = on(&device_rt, device_service::start())
        .await
        .expect("service");
    let (status, tunnel) = call(
        2,
        reqwest::Method::POST,
        format!("/reverse-tunnels/devices/{DSN}/reverse-tunnels"),
        Some(json!({"name": "dash", "local_port": svc.port(), "protocol": "http", "require_auth": false})),
    )
    .await;
    let created = Instant::now();
    assert_eq!(status, 201, "{tunnel}");
    eventually(
        "the tunnel connected at the agent",
        Duration::from_secs(2),
        || {
            let read = status_of(agent_dir.clone());
            async move {
                read.await.filter(|s| {
                    s.tunnels.values().any(|t| {
                        t.name == "dash" && t.state == burrow_agent::status::TunnelState::Connected
                    })
                })
            }
        },
    )
    .await;
    let reached_in = created.elapsed();
    eprintln!("tunnel created on node 3 connected at the agent in {reached_in:?}");

    // Through each node: download, WebSocket, SSE.
    let host = tunnel["public_url"]
        .as_str()
        .expect("public_url")
        .to_string();
    let via = |i: usize| client_for(&topo, &[host.as_str()], NODES[i], ports.api);
    let public = format!("http://{host}:{}", ports.api);
    for i in [1, 2, 0] {
        let (http, public, host) = (via(i), public.clone(), host.clone());
        let ws_addr = topo.host(NODES[i]).addr(ports.api);
        eventually("the public URL answers", Duration::from_secs(10), || {
            let (http, public) = (http.clone(), public.clone());
            async move {
                let ok = on(crt, async move {
                    http.get(&public)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                })
                .await;
                ok.then_some(())
            }
        })
        .await;
        on(
            &client_rt,
            exercise(http, public, ws_addr, format!("{host}:{}", ports.api)),
        )
        .await;
    }

    // kill -9 of node 1, which holds the device, under requests through nodes 2 and 3.
    let loads: Vec<Load> = {
        let mut v = Vec::new();
        for i in [1, 2] {
            let (http, public, host) = (via(i), public.clone(), host.clone());
            v.push(
                on(
                    &client_rt,
                    async move { Load::start(&http, public, &host, 2) },
                )
                .await,
            );
        }
        v
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    for l in &loads {
        assert!(l.failure_window().is_none(), "no failure before the kill");
        assert!(l.succeeded() > 0, "requests flow before the kill");
    }
    let killed = Instant::now();
    n1.take().expect("node 1").kill().await;
    let second = format!("https://{}:{}", NODES[1], ports.device);
    eventually("the agent moves to node 2", Duration::from_secs(10), || {
        let read = status_of(agent_dir.clone());
        let second = second.clone();
        async move { read.await.filter(|s| s.device_url == second) }
    })
    .await;
    // Then every request succeeds for a while.
    let counts: Vec<usize> = loads.iter().map(Load::succeeded).collect();
    let settled = Instant::now();
    eventually("requests succeed again", Duration::from_secs(10), || {
        let windows: Vec<_> = loads.iter().map(Load::failure_window).collect();
        let quiet = windows
            .iter()
            .all(|w| w.is_none_or(|(_, last)| last.elapsed() > Duration::from_secs(2)));
        async move { quiet.then_some(()) }
    })
    .await;
    let _ = settled;
    let mut failed = 0;
    for (l, before) in loads.into_iter().zip(counts) {
        if let Some((first, last)) = l.failure_window() {
            assert!(first >= killed, "a request failed before the kill");
            assert!(
                last.duration_since(first) <= Duration::from_secs(10),
                "requests failed for {:?}",
                last.duration_since(first)
            );
        }
        let after = l.succeeded();
        assert!(after > before, "requests succeed after the move");
        let (_, failures) = l.stop().await;
        failed += failures.len();
    }
    eprintln!("failed requests around the kill: {failed}");

    // Node 1 restarts under its name and rejoins; then node 2 goes, and the agent comes back
    // to node 1, which holds the tunnel again.
    n1 = Some(start(0).await);
    let (status, nodes) = call(2, reqwest::Method::GET, "/cluster/nodes".into(), None).await;
    assert_eq!(status, 200);
    assert!(
        nodes
            .as_array()
            .expect("nodes")
            .iter()
            .any(|n| n["name"] == "node-1" && n["alive"] == true),
        "{nodes}"
    );
    // SIGTERM of node 2, which holds the device now, under requests through nodes 1 and 3:
    // the agent moves (make before break) and not one request fails.
    let loads: Vec<Load> = {
        let mut v = Vec::new();
        for i in [0, 2] {
            let (http, public, host) = (via(i), public.clone(), host.clone());
            v.push(on(crt, async move { Load::start(&http, public, &host, 2) }).await);
        }
        v
    };
    eventually(
        "requests flow through nodes 1 and 3",
        Duration::from_secs(10),
        || {
            let flowing = loads.iter().all(|l| l.succeeded() > 0);
            async move { flowing.then_some(()) }
        },
    )
    .await;
    let drained = Instant::now();
    let n2 = n2.take().expect("node 2");
    n2.signal_term();
    // Not ready from the start of the drain: load balancers stop sending new clients.
    let ready = client_for(&topo, &NODES, NODES[1], ports.api);
    let readyz = format!("http://{}:{}/readyz", NODES[1], ports.api);
    eventually(
        "node 2's /readyz answers 503 while it drains",
        Duration::from_secs(5),
        || {
            let (ready, readyz) = (ready.clone(), readyz.clone());
            async move {
                let status = on(crt, async move {
                    ready.get(&readyz).send().await.map(|r| r.status())
                })
                .await;
                (status.ok() == Some(reqwest::StatusCode::SERVICE_UNAVAILABLE)).then_some(())
            }
        },
    )
    .await;
    let exited = n2.exited(Duration::from_secs(90)).await;
    assert!(exited, "node 2 drains and exits 0 on SIGTERM");
    eprintln!("node 2 drained and exited in {:?}", drained.elapsed());
    eventually(
        "the agent is back on node 1",
        Duration::from_secs(15),
        || {
            let read = status_of(agent_dir.clone());
            let first = first.clone();
            async move { read.await.filter(|s| s.device_url == first) }
        },
    )
    .await;
    let counts: Vec<usize> = loads.iter().map(Load::succeeded).collect();
    eventually(
        "requests go on after node 2 is gone",
        Duration::from_secs(10),
        || {
            let more = loads
                .iter()
                .zip(&counts)
                .all(|(l, c)| l.succeeded() > *c + 10);
            async move { more.then_some(()) }
        },
    )
    .await;
    for l in loads {
        let (ok, failures) = l.stop().await;
        assert!(
            failures.is_empty(),
            "{} of {} requests failed during the drain: {:?}",
            failures.len(),
            ok + failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
    let http3 = via(2);
    let public3 = public.clone();
    eventually(
        "node 3 reaches the device through node 1",
        Duration::from_secs(10),
        || {
            let (http, public) = (http3.clone(), public3.clone());
            async move {
                on(crt, async move {
                    http.get(&public)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200)
                })
                .await
                .then_some(())
            }
        },
    )
    .await;
    eventually(
        "node 1 reports holding the tunnel",
        Duration::from_secs(5),
        || {
            let listed = call(2, reqwest::Method::GET, "/cluster/nodes".into(), None);
            async move {
                let (_, held) = listed.await;
                held.as_array()
                    .and_then(|a| a.iter().find(|n| n["name"] == "node-1"))
                    .filter(|n| n["tunnels_held"].as_i64() >= Some(1))
                    .map(|_| ())
            }
        },
    )
    .await;
    drop(n1);
}
