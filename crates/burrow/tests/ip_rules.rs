//! A tunnel's IP rules on the test topology (issue 15): the server, two client hosts and a
//! load balancer, each in its own network namespace. An `ip_deny` rule refuses one client host
//! while the other gets through; a forged `X-Forwarded-For` from an untrusted client changes
//! nothing; behind a trusted proxy speaking the PROXY protocol (nginx `proxy_protocol on;`, v1,
//! and a hand-written v2 header) the rules apply to the real client.
//!
//! Needs root, iproute2, nftables, and nginx with the stream module (`scripts/test` installs
//! them).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::topology::{HostRuntime, HostSpec, Topology};
use burrow::testkit::{serve_local, Backend, TestStack};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DSN: &str = "IPR-1";

/// `GET /` for tunnel host `host` at `addr`, sent from `rt`'s host with `headers`: the status.
async fn get_from(rt: &HostRuntime, addr: SocketAddr, host: &str, headers: &[(&str, &str)]) -> u16 {
    let host = host.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rt.spawn(async move {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        let mut req = http
            .get(format!("http://{addr}/"))
            .header("host", host)
            .header("accept", "application/json");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send().await.expect("request").status().as_u16()
    })
    .await
    .expect("join")
}

/// A raw HTTP/1.1 `GET /` after `preface` (a PROXY header), from `rt`'s host: the status line.
async fn raw_from(rt: &HostRuntime, addr: SocketAddr, host: &str, preface: Vec<u8>) -> String {
    let host = host.to_string();
    rt.spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut req = preface;
        req.extend_from_slice(
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        s.write_all(&req).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    })
    .await
    .expect("join")
}

/// A PROXY protocol v2 header (TCP over IPv4) naming `src` as the client.
fn proxy_v2(src: std::net::Ipv4Addr, dst: std::net::Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(src.octets());
    h.extend(dst.octets());
    h.extend(40000u16.to_be_bytes());
    h.extend(dport.to_be_bytes());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_rules_apply_to_the_real_client_only() {
    let topo = Topology::build(&[
        HostSpec::new("burrow.test"),
        HostSpec::new("lb.test"),
        HostSpec::new("office.test"),
        HostSpec::new("cafe.test"),
    ])
    .expect("test hosts (network namespaces)");
    let server_host = topo.host("burrow.test").clone();
    let lb_host = topo.host("lb.test").clone();
    let (office, cafe) = (
        topo.host("office.test").clone(),
        topo.host("cafe.test").clone(),
    );
    let server_rt = server_host.runtime().expect("runtime");
    let lb_rt = lb_host.runtime().expect("runtime");
    let office_rt = office.runtime().expect("runtime");
    let cafe_rt = cafe.runtime().expect("runtime");

    // The server (in this process, on the server host), trusting the load balancer only.
    let (server_ip, lb_ip) = (server_host.ip, lb_host.ip);
    let stack = server_rt
        .spawn(async move {
            TestStack::start_configured(Backend::Sqlite, |c| {
                c.listen = SocketAddr::from((server_ip, 0));
                c.trusted_proxies = vec![lb_ip.into()];
            })
            .await
        })
        .await
        .expect("join")
        .expect("stack");
    let stack = Arc::new(stack);
    let server = stack.addr;

    // A device with a real agent and its service, on the server host too.
    let s = stack.clone();
    let (host, tunnel, agent) = server_rt
        .spawn(async move {
            let admin = s.admin_token().await.expect("login");
            let agent = s.start_agent(&admin, DSN).await.expect("agent");
            let app = axum::Router::new().route("/", get(|| async { "device page" }));
            let svc = serve_local(app).await.expect("service");
            let (status, t) = s
                .call(
                    Method::POST,
                    &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels"),
                    &admin,
                    Some(&json!({"name": "dash", "local_port": svc.port(),
                                 "require_auth": false})),
                )
                .await
                .expect("create");
            assert_eq!(status, 201, "{t}");
            let id = t["id"].as_i64().expect("id");
            s.wait_agent_connected(&admin, DSN, id, Duration::from_secs(15))
                .await
                .expect("connected");
            (
                t["public_url"].as_str().expect("host").to_string(),
                id,
                agent,
            )
        })
        .await
        .expect("join");
    let set_rules = |rules: Value| {
        let s = stack.clone();
        server_rt.spawn(async move {
            let admin = s.admin_token().await.expect("login");
            let (status, t) = s
                .call(
                    Method::PUT,
                    &format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels/{tunnel}"),
                    &admin,
                    Some(&rules),
                )
                .await
                .expect("update");
            (status.as_u16(), t)
        })
    };

    // No rules: both client hosts get through.
    assert_eq!(get_from(&office_rt, server, &host, &[]).await, 200);
    assert_eq!(get_from(&cafe_rt, server, &host, &[]).await, 200);

    // Deny the cafe: 403 for it (before any auth), the office still gets through.
    let (status, t) = set_rules(json!({"ip_deny": [format!("{}/32", cafe.ip)]}))
        .await
        .expect("join");
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["ip_deny"], json!([format!("{}/32", cafe.ip)]));
    // The edge's tunnel cache lives at most 2 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get_from(&cafe_rt, server, &host, &[]).await != 403 {
        assert!(tokio::time::Instant::now() < deadline, "cafe never refused");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_from(&office_rt, server, &host, &[]).await, 200);

    // A forged X-Forwarded-For from the (untrusted) cafe changes nothing.
    let office_ip = office.ip.to_string();
    let forged = [("x-forwarded-for", office_ip.as_str())];
    assert_eq!(get_from(&cafe_rt, server, &host, &forged).await, 403);
    // Nor does a PROXY header it writes itself: it is not a trusted proxy.
    let line = raw_from(
        &cafe_rt,
        server,
        &host,
        format!(
            "PROXY TCP4 {} {} 40000 {}\r\n",
            office.ip,
            server_ip,
            server.port()
        )
        .into_bytes(),
    )
    .await;
    assert!(!line.contains(" 200 "), "{line}");

    // Allow only the office network: the cafe is still refused (deny wins anyway), and an
    // allow-list refuses everything else, the load balancer's own address included.
    let (status, t) = set_rules(json!({"ip_allow": [format!("{}/32", office.ip)],
                                       "ip_deny": [format!("{}/32", cafe.ip)]}))
    .await
    .expect("join");
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["ip_allow"], json!([format!("{}/32", office.ip)]), "{t}");
    // The load balancer's own address is not on the allow-list (the edge's tunnel cache
    // lives at most 2 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get_from(&lb_rt, server, &host, &[]).await != 403 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the allow-list never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The load balancer: nginx stream with `proxy_protocol on;` in front of the server.
    let lb_port = lb_rt
        .spawn(async {
            let l = tokio::net::TcpListener::bind("0.0.0.0:0")
                .await
                .expect("bind");
            l.local_addr().expect("addr").port()
        })
        .await
        .expect("join");
    let lb_dir = tempfile::tempdir().expect("tempdir");
    let conf = lb_dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n\
             master_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
             events {{}}\n\
             stream {{\n  server {{ listen {lb_port}; proxy_pass {server}; proxy_protocol on; }}\n}}\n",
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
    let lb = lb_host.addr(lb_port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let up = office_rt
            .spawn(async move { tokio::net::TcpStream::connect(lb).await.is_ok() })
            .await
            .expect("join");
        if up {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Through the trusted proxy the rules see the real client: office in, cafe out — also
    // when the cafe forges X-Forwarded-For through the proxy.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while get_from(&office_rt, lb, &host, &[]).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "office refused via the proxy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(get_from(&cafe_rt, lb, &host, &[]).await, 403);
    assert_eq!(get_from(&cafe_rt, lb, &host, &forged).await, 403);
    // Directly, the office still gets through; the load balancer's own requests do not (it is
    // not on the allow-list, and it sends no PROXY header for itself).
    assert_eq!(get_from(&office_rt, server, &host, &[]).await, 200);
    assert_eq!(get_from(&lb_rt, server, &host, &[]).await, 403);

    // PROXY protocol v2 from the trusted host: the named client is the one judged.
    let line = raw_from(
        &lb_rt,
        server,
        &host,
        proxy_v2(office.ip, server_ip, server.port()),
    )
    .await;
    assert!(line.contains(" 200 "), "v2 naming the office: {line}");
    let line = raw_from(
        &lb_rt,
        server,
        &host,
        proxy_v2(cafe.ip, server_ip, server.port()),
    )
    .await;
    assert!(line.contains(" 403 "), "v2 naming the cafe: {line}");

    // Bad rules: a clear 422, nothing changes.
    for bad in [
        json!({"ip_deny": ["10.0.0.0/33"]}),
        json!({"ip_allow": ["office"]}),
        json!({"ip_allow": "10.0.0.0/8"}),
    ] {
        let (status, err) = set_rules(bad.clone()).await.expect("join");
        assert_eq!(status, 422, "{bad} → {err}");
    }

    drop(agent);
    drop(_nginx);
    // The server's tasks live on the server host's runtime: end the stack there.
    let stack = Arc::try_unwrap(stack).ok().expect("one owner");
    server_rt
        .spawn(async move { drop(stack) })
        .await
        .expect("join");
}
