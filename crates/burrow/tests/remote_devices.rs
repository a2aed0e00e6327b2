//! A device on another host, behind an outbound-only firewall, as deployed: `burrow server`
//! on `burrow.test`, the agent on `device.test` (new incoming connections dropped), a client on
//! `client.test`, and later an nginx `stream` load balancer on `lb.test` — each a network
//! namespace of the test kit's topology, each program a real process started there.
//!
//! One story, in order: the device enrolls with the command the API gave (CA pinned), a tunnel
//! created through the API reaches it within 2 s, a 100 MB download and a WebSocket cross from
//! the client host to a service bound only to the device's `::1`, the seed's Python client
//! fetches the config from the device host, and `device_url` changes (a second name behind the
//! load balancer, then only that one) move the enrolled agent without re-enrollment.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use burrow::testkit::processes::{client_for, eventually, free_port, ServerProcess};
use burrow::testkit::topology::{Host, HostRuntime, HostSpec, Topology};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

const DSN: &str = "FIELD-7";
const ADMIN: (&str, &str) = ("ops@burrow.test", "remote-devices-pw-1");
/// 100 blocks of 1 MiB.
const BLOCK: usize = 1 << 20;
const BLOCKS: usize = 100;

fn block() -> Vec<u8> {
    (0..BLOCK).map(|i| (i * 7 % 253) as u8).collect()
}

fn expected_sha() -> Vec<u8> {
    let b = block();
    let mut h = Sha256::new();
    for _ in 0..BLOCKS {
        h.update(&b);
    }
    h.finalize().to_vec()
}

async fn start_server(host: &Host, data: &Path, env: &[(&str, String)]) -> ServerProcess {
    let exe = Path::new(env!("CARGO_BIN_EXE_burrow"));
    ServerProcess::start(exe, host, data, ADMIN, env).await
}

fn client_http(topo: &Topology, names: &[&str], port: u16) -> reqwest::Client {
    client_for(topo, names, "burrow.test", port)
}

/// The device's own service, bound only to `[::1]`: a 100 MB download and a WebSocket echo.
async fn device_service(rt: &HostRuntime) -> u16 {
    use axum::body::Body;
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/big",
            get(|| async {
                let b = axum::body::Bytes::from(block());
                let chunks = futures_util::stream::iter(
                    (0..BLOCKS).map(move |_| Ok::<_, std::io::Error>(b.clone())),
                );
                Body::from_stream(chunks)
            }),
        )
        .route("/", get(|| async { "device service" }))
        .route(
            "/ws",
            get(|ws: WebSocketUpgrade| async {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if let Message::Text(t) = msg {
                            let echo = format!("echo: {}", t.as_str());
                            if socket.send(Message::Text(echo.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                })
            }),
        );
    rt.spawn(async move {
        let l = tokio::net::TcpListener::bind("[::1]:0")
            .await
            .expect("bind ::1");
        let port = l.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        port
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_behind_an_outbound_only_firewall_on_another_host() {
    let topo = Topology::build(&[
        HostSpec::new("burrow.test").alias("device-field-7.burrow.test"),
        HostSpec::new("lb.test"),
        HostSpec::new("device.test").outbound_only(),
        HostSpec::new("client.test"),
    ])
    .expect("test hosts (network namespaces)");
    let (server_host, lb_host, device_host, client_host) = (
        topo.host("burrow.test").clone(),
        topo.host("lb.test").clone(),
        topo.host("device.test").clone(),
        topo.host("client.test").clone(),
    );
    let server_rt = server_host.runtime().expect("server runtime");
    let device_rt = device_host.runtime().expect("device runtime");
    let client_rt = client_host.runtime().expect("client runtime");
    let lb_rt = lb_host.runtime().expect("lb runtime");

    // The device host is outbound-only: a listener there is reachable from the device
    // itself, never from the server or the client host.
    let probe = device_rt
        .spawn(async {
            let l = tokio::net::TcpListener::bind("0.0.0.0:0")
                .await
                .expect("bind");
            let port = l.local_addr().expect("addr").port();
            tokio::spawn(async move { while l.accept().await.is_ok() {} });
            port
        })
        .await
        .expect("join");
    let probe_addr = device_host.addr(probe);
    let from_device = device_rt
        .spawn(async move { tokio::net::TcpStream::connect(probe_addr).await.is_ok() })
        .await
        .expect("join");
    assert!(
        from_device,
        "the probe listener answers on the device itself"
    );
    for rt in [&server_rt, &client_rt] {
        let reached = rt
            .spawn(async move {
                tokio::time::timeout(
                    Duration::from_secs(1),
                    tokio::net::TcpStream::connect(probe_addr),
                )
                .await
                .is_ok_and(|r| r.is_ok())
            })
            .await
            .expect("join");
        assert!(!reached, "no host may open a connection to the device");
    }

    // The server, on its own host, told what devices dial.
    let api_port = free_port(&server_rt).await;
    let dev_port = free_port(&server_rt).await;
    let data = tempfile::tempdir().expect("tempdir");
    let server_env = |device_url: String| {
        vec![
            ("BURROW_LISTEN", format!("0.0.0.0:{api_port}")),
            ("BURROW_DEVICE_LISTEN", format!("0.0.0.0:{dev_port}")),
            ("BURROW_DEVICE_URL", device_url),
            ("BURROW_BASE_DOMAIN", "burrow.test".to_string()),
            (
                "BURROW_API_ORIGIN",
                format!("http://burrow.test:{api_port}"),
            ),
        ]
    };
    let direct = format!("https://burrow.test:{dev_port}");
    let server = start_server(
        &server_host,
        &data.path().join("server"),
        &server_env(direct.clone()),
    )
    .await;
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.contains(&format!("devices: {direct} "))),
        "the banner says what devices dial: {:?}",
        server.banner
    );

    // The operator, on the client host: a device, and its enrollment command.
    let tunnel_host = "device-field-7.burrow.test";
    let http = client_http(&topo, &["burrow.test", tunnel_host], api_port);
    let api = format!("http://burrow.test:{api_port}/api/v1");
    let (device, token) = {
        let (http, api) = (http.clone(), api.clone());
        client_rt
            .spawn(async move {
                let login: Value = http
                    .post(format!("{api}/auth/login"))
                    .json(&json!({"email": ADMIN.0, "password": ADMIN.1}))
                    .send()
                    .await?
                    .json()
                    .await?;
                let token = login["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let p: Value = http
                    .post(format!("{api}/projects"))
                    .bearer_auth(&token)
                    .json(&json!({"name": "field"}))
                    .send()
                    .await?
                    .json()
                    .await?;
                let d: Value = http
                    .post(format!("{api}/projects/{}/devices", p["id"]))
                    .bearer_auth(&token)
                    .json(&json!({"dsn": DSN, "name": "field robot"}))
                    .send()
                    .await?
                    .json()
                    .await?;
                Ok::<_, reqwest::Error>((d, token))
            })
            .await
            .expect("join")
            .expect("API from the client host")
    };
    let command = device["enrollment_command"]
        .as_str()
        .expect("enrollment_command");
    let arg = |flag: &str| {
        command
            .split_once(&format!("{flag} "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("{flag} in {command}"))
            .to_string()
    };
    let (server_url, pin) = (arg("--server"), arg("--ca-sha256"));
    assert_eq!(server_url, format!("http://burrow.test:{api_port}"));
    let enrollment = device["enrollment_token"]
        .as_str()
        .expect("token")
        .to_string();

    // On the device: enroll with the command's server URL and pin, then run the agent.
    let home = tempfile::tempdir().expect("tempdir");
    let agent_dir = home.path().join("agent");
    let out = device_host
        .command(env!("CARGO_BIN_EXE_burrow"))
        .args([
            "agent",
            "enroll",
            "--server",
            &server_url,
            "--ca-sha256",
            &pin,
            "--dir",
        ])
        .arg(&agent_dir)
        .env("BURROW_ENROLLMENT_TOKEN", &enrollment)
        .output()
        .await
        .expect("enroll");
    assert!(
        out.status.success(),
        "enroll: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent_toml = || std::fs::read_to_string(agent_dir.join("agent.toml")).unwrap_or_default();
    assert!(agent_toml().contains(&direct), "{}", agent_toml());
    let _agent = device_host
        .command(env!("CARGO_BIN_EXE_burrow"))
        .args(["agent", "run", "--dir"])
        .arg(&agent_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("agent");
    let status = |dir: PathBuf| {
        move || {
            let dir = dir.clone();
            async move { burrow_agent::status::read(&dir).ok() }
        }
    };
    eventually(
        "the agent reaches the server",
        Duration::from_secs(20),
        || {
            let read = status(agent_dir.clone());
            async move { read().await.filter(|s| s.config == "ok") }
        },
    )
    .await;

    // A tunnel created through the API reaches the agent within 2 s.
    let service_port = device_service(&device_rt).await;
    let created = {
        let (http, api, token) = (http.clone(), api.clone(), token.clone());
        client_rt
            .spawn(async move {
                let resp = http
                    .post(format!(
                        "{api}/reverse-tunnels/devices/{DSN}/reverse-tunnels"
                    ))
                    .bearer_auth(&token)
                    .json(&json!({"name": "dash", "local_port": service_port,
                                  "protocol": "http", "require_auth": false}))
                    .send()
                    .await?;
                Ok::<_, reqwest::Error>((resp.status().as_u16(), resp.json::<Value>().await?))
            })
            .await
            .expect("join")
            .expect("create tunnel")
    };
    let at = Instant::now();
    assert_eq!(created.0, 201, "{}", created.1);
    assert_eq!(created.1["public_url"], tunnel_host);
    eventually(
        "the new tunnel at the agent",
        Duration::from_secs(2),
        || {
            let read = status(agent_dir.clone());
            async move {
                read()
                    .await
                    .filter(|s| s.tunnels.values().any(|t| t.name == "dash"))
            }
        },
    )
    .await;
    let reached_in = at.elapsed();

    // The client host downloads 100 MB from the device's [::1]-only service, byte-exact.
    let public = format!("http://{tunnel_host}:{api_port}");
    let get_ok = |http: reqwest::Client, url: String| async move {
        match http.get(&url).send().await {
            Ok(r) if r.status() == 200 => Some(()),
            _ => None,
        }
    };
    {
        let (http, url) = (http.clone(), format!("{public}/"));
        client_rt
            .spawn(async move {
                eventually("the public URL answers", Duration::from_secs(20), || {
                    get_ok(http.clone(), url.clone())
                })
                .await
            })
            .await
            .expect("join");
    }
    let (len, sha) = {
        let (http, url) = (http.clone(), format!("{public}/big"));
        client_rt
            .spawn(async move {
                let resp = http.get(&url).send().await.expect("download");
                assert_eq!(resp.status(), 200);
                let mut stream = resp.bytes_stream();
                let (mut len, mut h) = (0usize, Sha256::new());
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.expect("body");
                    len += chunk.len();
                    h.update(&chunk);
                }
                (len, h.finalize().to_vec())
            })
            .await
            .expect("join")
    };
    assert_eq!(len, BLOCK * BLOCKS);
    assert_eq!(
        sha,
        expected_sha(),
        "100 MB through the tunnel, sha256-exact"
    );

    // A WebSocket from the client host to the device's echo.
    let server_addr = server_host.addr(api_port);
    let echoed = client_rt
        .spawn(async move {
            let tcp = tokio::net::TcpStream::connect(server_addr)
                .await
                .expect("connect");
            let (mut ws, _) =
                tokio_tungstenite::client_async(format!("ws://{tunnel_host}:{api_port}/ws"), tcp)
                    .await
                    .expect("websocket upgrade through the tunnel");
            let mut got = Vec::new();
            for i in 0..3 {
                ws.send(tungstenite::Message::text(format!("ping {i}")))
                    .await
                    .expect("send");
                match ws.next().await {
                    Some(Ok(tungstenite::Message::Text(t))) => got.push(t.as_str().to_string()),
                    other => panic!("echo: {other:?}"),
                }
            }
            got
        })
        .await
        .expect("join");
    assert_eq!(echoed, ["echo: ping 0", "echo: ping 1", "echo: ping 2"]);

    // The seed's own Python client, on the device host, with the device's files.
    let python = burrow::testkit::python_with(&[("requests", "requests")]);
    let seed =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../burrow-device/tests/seed_client.py");
    let out = device_host
        .command(&python)
        .arg(&seed)
        .arg(format!("https://burrow.test:{dev_port}"))
        .arg(DSN)
        .args(["device.pem", "device.key", "ca.pem"].map(|f| agent_dir.join(f)))
        .output()
        .await
        .expect("python");
    assert!(
        out.status.success(),
        "seed client: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed_answer: Value = serde_json::from_slice(&out.stdout).expect("seed client JSON");
    assert_eq!(seed_answer["ready"], json!(["dash"]), "{seed_answer}");

    // A load balancer (nginx stream, as in docs/devices.md) on lb.test in front of the
    // device listener, and its name added to device_url (restart).
    let lb_port = free_port(&lb_rt).await;
    let lb_dir = tempfile::tempdir().expect("tempdir");
    let conf = lb_dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
             master_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{}}\n\
             stream {{\n  upstream burrow_devices {{ server burrow.test:{dev_port}; }}\n\
               server {{ listen {lb_port}; proxy_pass burrow_devices; }}\n}}\n",
            dir = lb_dir.path().display()
        ),
    )
    .expect("nginx.conf");
    let _nginx = lb_host
        .command("nginx")
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .spawn()
        .expect("nginx (Debian nginx-light and libnginx-mod-stream; scripts/test installs them)");
    let lb_addr = lb_host.addr(lb_port);
    lb_rt
        .spawn(async move {
            eventually("nginx listening", Duration::from_secs(10), || async move {
                tokio::net::TcpStream::connect(lb_addr)
                    .await
                    .ok()
                    .map(|_| ())
            })
            .await
        })
        .await
        .expect("join");

    let via_lb = format!("https://lb.test:{lb_port}");
    server.kill().await;
    let server = start_server(
        &server_host,
        &data.path().join("server"),
        &server_env(format!("{direct},{via_lb}")),
    )
    .await;
    eventually(
        "agent.toml lists the second name",
        Duration::from_secs(30),
        || {
            let listed = agent_toml().contains(&via_lb);
            async move { listed.then_some(()) }
        },
    )
    .await;
    assert!(
        agent_toml().contains(&direct),
        "both names now: {}",
        agent_toml()
    );

    // Then only the second: the agent moves to it (its certificate no longer names the first).
    server.kill().await;
    let server = start_server(
        &server_host,
        &data.path().join("server"),
        &server_env(via_lb.clone()),
    )
    .await;
    let moved = eventually(
        "the agent uses the load balancer's name",
        Duration::from_secs(60),
        || {
            let read = status(agent_dir.clone());
            let via_lb = via_lb.clone();
            async move {
                read().await.filter(|s| {
                    s.config == "ok" && s.device_url == via_lb && s.device_url_since.is_some()
                })
            }
        },
    )
    .await;
    assert!(
        !agent_toml().contains(&direct),
        "the first name is gone: {}",
        agent_toml()
    );
    assert!(
        burrow_agent::status::render(&moved).contains(&format!("server:  {via_lb} (since ")),
        "agent status prints the URL in use and since when"
    );
    {
        let (http, url) = (http.clone(), format!("{public}/"));
        client_rt
            .spawn(async move {
                eventually(
                    "the public URL answers through the moved agent",
                    Duration::from_secs(30),
                    || get_ok(http.clone(), url.clone()),
                )
                .await
            })
            .await
            .expect("join");
    }
    server.kill().await;
    eprintln!("tunnel reached the agent in {reached_in:?}");
}
