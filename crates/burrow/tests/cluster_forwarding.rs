//! Three nodes on one PostgreSQL, the device's agent connected to one of them: a public
//! request through any node reaches the device, forwarded over the cluster link (mutual TLS
//! with the cluster's link CA) by the node that received it. Real servers on real sockets.

use std::path::Path;
use std::time::{Duration, Instant};

use burrow::cluster::link;
use burrow::config::Config;
use burrow::secret::Secret;
use burrow::testkit::{device_service, Backend, Load, TestStack};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

const BIG: usize = 8 * 1024 * 1024;

fn as_node(c: &mut Config, name: &str, key: &Path, db: Option<&str>) {
    c.node_name = Some(name.into());
    c.cluster_key_file = Some(key.to_path_buf());
    c.cluster_listen = Some("127.0.0.1:0".parse().expect("addr"));
    if let Some(url) = db {
        c.database_url = Some(Secret::new(url));
    }
}

async fn three_nodes(key: &Path) -> Option<[TestStack; 3]> {
    if burrow_store::testing::skip_postgres() {
        return None;
    }
    let n1 = TestStack::start_configured(Backend::Postgres, |c| as_node(c, "node-1", key, None))
        .await
        .expect("node 1");
    let db = n1.database_url();
    let n2 = TestStack::start_configured(Backend::Sqlite, |c| as_node(c, "node-2", key, Some(&db)))
        .await
        .expect("node 2");
    let n3 = TestStack::start_configured(Backend::Sqlite, |c| as_node(c, "node-3", key, Some(&db)))
        .await
        .expect("node 3");
    Some([n1, n2, n3])
}

fn pattern_sha256(len: usize) -> String {
    let body: Vec<u8> = (0..len).map(device_service::pattern).collect();
    hex::encode(Sha256::digest(&body))
}

async fn get(node: &TestStack, host: &str, path: &str) -> reqwest::Response {
    node.http
        .get(format!("http://{}{path}", node.addr))
        .header("host", host)
        .send()
        .await
        .expect("request")
}

/// Streams the body into a hash: nothing here holds the whole download.
async fn sha256_of(resp: reqwest::Response) -> (usize, String) {
    let mut hash = Sha256::new();
    let mut len = 0;
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body chunk");
        len += chunk.len();
        hash.update(&chunk);
    }
    (len, hex::encode(hash.finalize()))
}

async fn sse(node: &TestStack, host: &str) {
    let resp = get(node, host, "/events?n=5").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream",
        "{:?}",
        resp.headers()
    );
    let mut text = String::new();
    let mut body = resp.bytes_stream();
    // Events arrive as they are sent, not at the end (each read is bounded).
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .expect("an event in time")
    {
        text.push_str(std::str::from_utf8(&chunk.expect("chunk")).expect("utf-8"));
    }
    let want: String = (0..5).map(|i| format!("data: event {i}\n\n")).collect();
    assert_eq!(text, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_reaches_a_device_held_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("key");
    let Some(nodes) = three_nodes(&key).await else {
        return;
    };
    let [n1, n2, n3] = &nodes;
    let admin = n1.admin_token().await.expect("login");
    let (svc, hits) = device_service::start().await.expect("service");
    // The device's peer connects to node 1 only.
    let (tunnel, _peer) = n1.public_tunnel(&admin, "FWD1", svc).await.expect("tunnel");
    let host = tunnel["public_url"]
        .as_str()
        .expect("public_url")
        .to_string();
    let service = burrow_edge::service_name("http", i64::from(svc.port()));
    assert!(n1
        .running
        .broker
        .is_destination_connected(tunnel["tunnel_id"].as_str().unwrap()));
    assert!(!n2
        .running
        .broker
        .is_destination_connected(tunnel["tunnel_id"].as_str().unwrap()));

    // Node 1 records that it holds the device within a publish interval or two.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let resp = get(n2, &host, "/").await;
        if resp.status() == 200 {
            assert_eq!(resp.text().await.expect("body"), "hello from the device");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 2 never reached the device: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let want = pattern_sha256(BIG);
    for (i, node) in nodes.iter().enumerate() {
        let resp = get(node, &host, &format!("/big?bytes={BIG}")).await;
        assert_eq!(resp.status(), 200, "download through node {}", i + 1);
        assert_eq!(sha256_of(resp).await, (BIG, want.clone()), "node {}", i + 1);
        device_service::ws_echo_roundtrip(node.addr, &host).await;
        sse(node, &host).await;
    }
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(before >= 9, "the device served {before} requests");

    // Something holding a certificate of another CA (not a node of this cluster) is refused
    // by node 1's link before it can ask for anything.
    let (status, list) = n1
        .call(reqwest::Method::GET, "/api/v1/cluster/nodes", &admin, None)
        .await
        .expect("nodes");
    assert_eq!(status, 200);
    let url = list
        .as_array()
        .expect("array")
        .iter()
        .find(|n| n["name"] == "node-1")
        .and_then(|n| n["cluster_url"].as_str())
        .expect("node 1's cluster_url")
        .to_string();
    let addr = link::NodeAddr::parse(&url).expect("a link address");
    let stranger = burrow_device::DeviceCa::generate().expect("ca");
    let tls = link::LinkTls::new(&stranger, &["127.0.0.1".into()]).expect("tls");
    let tunnel_id = tunnel["tunnel_id"].as_str().expect("tunnel_id");
    let refused = link::dial(&tls.connector, &addr, tunnel_id, &service).await;
    assert!(
        matches!(refused, Err(burrow_edge::DialError::Other(_))),
        "a stranger's dial must fail"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before);

    edge_login_across_nodes(&nodes, &admin).await;

    // The device goes: every node answers the offline page, none hangs.
    drop(_peer);
    let deadline = Instant::now() + Duration::from_secs(5);
    for (i, node) in [n3, n2, n1].iter().enumerate() {
        loop {
            let status = get(node, &host, "/").await.status();
            if status == 503 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} still answers {status}",
                3 - i
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The edge's login handoff spread over the nodes, as a load balancer may spread it: the
/// code is minted by node 1's `/edge/authorize`, spent at node 2's callback (once: node 3
/// refuses it again), and the session cookie is accepted by node 3.
async fn edge_login_across_nodes(nodes: &[TestStack; 3], admin: &str) {
    let [n1, n2, n3] = nodes;
    n1.project_with_device(admin, "LOGIN1")
        .await
        .expect("device");
    let (status, t) = n1
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/LOGIN1/reverse-tunnels",
            admin,
            Some(&serde_json::json!({"name": "private", "local_port": 9, "require_auth": true})),
        )
        .await
        .expect("create");
    assert_eq!(status, 201, "{t}");
    let host = t["public_url"].as_str().expect("public_url").to_string();
    let state = "cluster-login-state-0123456789abcdef";
    let resp = n1
        .http
        .post(n1.url(&format!(
            "/edge/authorize?host={host}:{}&return=%2F&state={state}",
            n1.addr.port()
        )))
        .bearer_auth(admin)
        .send()
        .await
        .expect("authorize");
    assert_eq!(resp.status(), 200);
    let link: serde_json::Value = resp.json().await.expect("json");
    let link = link["redirect"].as_str().expect("redirect");
    let callback = &link[link.find("/__burrow/callback").expect("callback path")..];
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let spend = |node: &TestStack| {
        no_redirects
            .get(format!("http://{}{callback}", node.addr))
            .header("host", &host)
            .header("cookie", format!("__burrow_state={state}"))
            .send()
    };
    let resp = spend(n2).await.expect("callback on node 2");
    assert_eq!(resp.status(), 302, "node 2 takes node 1's code");
    let session = resp.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string();
    assert!(session.starts_with("__burrow_session="), "{session}");
    let replay = spend(n3).await.expect("callback on node 3");
    assert_eq!(replay.status(), 400, "a spent code is spent on every node");
    let page = |cookie: Option<String>| {
        let mut req = no_redirects
            .get(format!("http://{}/", n3.addr))
            .header("host", &host)
            .header("accept", "application/json");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    assert_eq!(page(None).await.expect("get").status(), 401, "no session");
    // Signed in on node 3 too: past the login, to the (offline) device.
    assert_eq!(page(Some(session)).await.expect("get").status(), 503);
}

/// The row of reverse tunnel `id` of device `dsn`, through `node`.
async fn tunnel_row(node: &TestStack, admin: &str, dsn: &str, id: i64) -> serde_json::Value {
    let (status, row) = node
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}"),
            admin,
            None,
        )
        .await
        .expect("get tunnel");
    assert_eq!(status, 200, "{row}");
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotations_run_by_another_node_than_the_agents_fail_no_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("key");
    let Some(nodes) = three_nodes(&key).await else {
        return;
    };
    let [n1, n2, _n3] = &nodes;
    let admin = n1.admin_token().await.expect("login");
    let (svc, _hits) = device_service::start().await.expect("service");

    // A real agent, enrolled through node 1 and connected there.
    let (_, device) = n1
        .project_with_device(&admin, "ROTX")
        .await
        .expect("device");
    let enrollment = device["enrollment_token"].as_str().expect("token");
    let agent_dir = dir.path().join("agent");
    n1.enroll_agent(enrollment, &agent_dir)
        .await
        .expect("enroll");
    let (stop_agent, agent_stop) = tokio::sync::oneshot::channel::<()>();
    let run_dir = agent_dir.clone();
    let agent = tokio::spawn(async move {
        burrow_agent::run(&run_dir, async {
            let _ = agent_stop.await;
        })
        .await
    });
    let (status, t) = n1
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/ROTX/reverse-tunnels",
            &admin,
            Some(
                &serde_json::json!({"name": "dash", "local_port": svc.port(),
                                     "protocol": "http", "require_auth": false}),
            ),
        )
        .await
        .expect("create");
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_i64().expect("id");
    let host = t["public_url"].as_str().expect("public_url").to_string();
    let admin_ref = admin.as_str();
    let on_node_1 = |not: String| async move {
        let admin = admin_ref;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let row = tunnel_row(n1, admin, "ROTX", id).await;
            if let Some(t) = row["tunnel_id"].as_str() {
                if t != not && n1.running.broker.is_destination_connected(t) {
                    return t.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the agent never connected: {row}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let mut current = on_node_1(String::new()).await;
    // Node 2 sees the device through node 1 before the load starts.
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(n2, &host, "/").await.status() != 200 {
        assert!(Instant::now() < deadline, "node 2 never reached the device");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Requests through node 2 (forwarded) and node 1 (local) all along.
    let loads = [
        Load::start(&n2.http, format!("http://{}/", n2.addr), &host, 2),
        Load::start(&n1.http, format!("http://{}/", n1.addr), &host, 2),
    ];
    let mut old = Vec::new();
    for _ in 0..5 {
        let (status, rotated) = n2
            .call(
                reqwest::Method::POST,
                &format!("/api/v1/reverse-tunnels/devices/ROTX/reverse-tunnels/{id}/rotate"),
                &admin,
                None,
            )
            .await
            .expect("rotate");
        assert_eq!(status, 200, "{rotated}");
        let next = on_node_1(current.clone()).await;
        old.push(std::mem::replace(&mut current, next));
    }
    // The last hand-over switches (its grace) with the load still on.
    let counts: Vec<usize> = loads.iter().map(Load::succeeded).collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !loads
        .iter()
        .zip(&counts)
        .all(|(l, c)| l.succeeded() > c + 50)
    {
        assert!(Instant::now() < deadline, "the load stalled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every rotated-out tunnel is closed by node 2 and its session disconnected on node 1
    // (the close crosses nodes), once its connections have ended.
    let deadline = Instant::now() + Duration::from_secs(30);
    while old
        .iter()
        .any(|t| n1.running.broker.is_destination_connected(t))
    {
        assert!(
            Instant::now() < deadline,
            "a rotated-out session stays on node 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for load in loads {
        let (ok, failures) = load.stop().await;
        assert!(ok > 0);
        assert!(
            failures.is_empty(),
            "{} of {} requests failed: {:?}",
            failures.len(),
            ok + failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
    let _ = stop_agent.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_through_two_nodes_leave_one_broker_tunnel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("key");
    let Some(nodes) = three_nodes(&key).await else {
        return;
    };
    let [n1, n2, _] = &nodes;
    let admin = n1.admin_token().await.expect("login");
    n1.project_with_device(&admin, "RACE1")
        .await
        .expect("device");
    let path = "/api/v1/reverse-tunnels/devices/RACE1/reverse-tunnels";
    let (status, t) = n1
        .call(
            reqwest::Method::POST,
            path,
            &admin,
            Some(&serde_json::json!({"name": "dash", "local_port": 8000, "protocol": "http"})),
        )
        .await
        .expect("create");
    assert_eq!(status, 201, "{t}");
    let id = t["id"].as_i64().expect("id");

    // Ten port changes at once, alternating nodes: each one replaces the broker tunnel
    // (a new port is a new service), under the device's lock on whichever node runs it.
    let updates = (0..10).map(|i| {
        let node = if i % 2 == 0 { n1 } else { n2 };
        let admin = admin.clone();
        async move {
            let body = serde_json::json!({"name": "dash", "local_port": 8001 + i,
                                          "protocol": "http"});
            node.call(
                reqwest::Method::PUT,
                &format!("{path}/{id}"),
                &admin,
                Some(&body),
            )
            .await
            .expect("update")
        }
    });
    let answers = futures_util::future::join_all(updates).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
    }
    let row = tunnel_row(n1, &admin, "RACE1", id).await;
    let current = row["tunnel_id"]
        .as_str()
        .expect("a broker tunnel")
        .to_string();
    let open: Vec<String> = n1
        .running
        .store
        .list_broker_tunnels(&burrow_store::BrokerTunnelFilter {
            thing_name: Some("RACE1".into()),
            ..Default::default()
        })
        .await
        .expect("list")
        .into_iter()
        .filter(|b| b.status == burrow_store::TunnelStatus::Open)
        .map(|b| b.tunnel_id)
        .collect();
    assert_eq!(
        open,
        vec![current],
        "exactly the row's broker tunnel is open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_on_another_node_reaches_the_destination() {
    use burrow_client::{ClientConfig, DestinationClient, SourceClient, Targets};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("tempdir");
    let key = burrow::testkit::write_cluster_key(dir.path()).expect("key");
    let Some(nodes) = three_nodes(&key).await else {
        return;
    };
    let [n1, n2, _] = &nodes;
    let (svc, _hits) = device_service::start().await.expect("service");
    let service = burrow_edge::service_name("http", i64::from(svc.port()));
    let opened = n1
        .running
        .broker
        .open(burrow_broker::OpenRequest {
            project_id: None,
            description: None,
            thing_name: Some("SRC1".into()),
            services: vec![service.clone()],
            lifetime_minutes: None,
            tags: Vec::new(),
        })
        .await
        .expect("open");
    let tunnel_id = opened.tunnel.tunnel_id.clone();
    // The device's end on node 1.
    let _dest = DestinationClient::connect(
        ClientConfig::new(
            format!("ws://{}", n1.addr),
            burrow_client::Secret::new(opened.destination_token.expose()),
        ),
        Targets::new().service(service.clone(), svc),
    )
    .await
    .expect("destination");
    // Node 1 records it (bounded wait on the shared table).
    let pool = sqlx::PgPool::connect(&n1.database_url()).await.expect("db");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let held: Option<String> =
            sqlx::query_scalar("SELECT node_name FROM tunnel_presence WHERE tunnel_id = $1")
                .bind(&tunnel_id)
                .fetch_optional(&pool)
                .await
                .expect("query");
        if held.as_deref() == Some("node-1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 never recorded the tunnel"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The user's end (`burrow connect`'s client) on node 2: forwarded to node 1.
    let source = SourceClient::connect(ClientConfig::new(
        format!("ws://{}", n2.addr),
        burrow_client::Secret::new(opened.source_token.expose()),
    ))
    .await
    .expect("source on node 2");
    for _ in 0..2 {
        let mut stream = source.open_stream(&service).await.expect("stream");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: device\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
            .await
            .expect("answer in time")
            .expect("read");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello from the device"), "{answer}");
    }
    // Node 2 did not keep the source for itself.
    assert!(n2.running.broker.tunnel_stats(&tunnel_id).is_none());
    assert!(n1
        .running
        .broker
        .tunnel_stats(&tunnel_id)
        .is_some_and(|s| s.source_connected && s.destination_connected));
}
