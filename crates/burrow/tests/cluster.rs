//! Several server nodes on one PostgreSQL (docs/cluster.md): shared keys sealed with the
//! cluster key, the `nodes` table and its endpoint, and SQLite's single-node guard. The nodes
//! are real servers on real sockets (the test kit), one a real `burrow server` process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burrow::config::Config;
use burrow::secret::Secret;
use burrow::testkit::{serve_local, Backend, TestStack};
use reqwest::Method;
use serde_json::{json, Value};

/// A cluster key file as `openssl rand -base64 32` writes it.
fn key_file(dir: &Path, name: &str) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    burrow::testkit::write_cluster_key(&sub).unwrap()
}

fn as_node(c: &mut Config, name: &str, key: &Path, db: Option<&str>) {
    c.node_name = Some(name.into());
    c.node_region = format!("region-of-{name}");
    c.cluster_key_file = Some(key.to_path_buf());
    if let Some(url) = db {
        c.database_url = Some(Secret::new(url));
    }
}

/// Node 1 on a fresh PostgreSQL database, and a configure step for more nodes on it.
async fn first_node(dir: &Path, key: &Path) -> Option<TestStack> {
    if burrow_store::testing::skip_postgres() {
        return None;
    }
    let key = key.to_path_buf();
    let _ = dir;
    Some(
        TestStack::start_configured(Backend::Postgres, |c| as_node(c, "node-1", &key, None))
            .await
            .expect("node 1"),
    )
}

async fn nodes(stack: &TestStack, token: &str) -> Vec<Value> {
    let (status, body) = stack
        .call(Method::GET, "/api/v1/cluster/nodes", token, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("an array").clone()
}

fn node<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no node {name} in {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_jwt_key_and_the_device_ca() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "cluster.key");
    let Some(n1) = first_node(dir.path(), &key).await else {
        return;
    };
    let db = n1.database_url();
    let n2 =
        TestStack::start_configured(Backend::Sqlite, |c| as_node(c, "node-2", &key, Some(&db)))
            .await
            .expect("node 2");
    // Node 2's data directory holds no key of its own: the cluster's came from the database.
    assert!(!n2.data_dir.join("jwt.key").exists());
    assert!(!n2.data_dir.join("device-ca").exists());
    assert_eq!(n1.running.device_ca_sha256, n2.running.device_ca_sha256);

    // A JWT minted by node 1 is accepted by node 2.
    let admin = n1.admin_token().await.unwrap();
    let (status, me) = n2
        .call(Method::GET, "/api/v1/auth/me", &admin, None)
        .await
        .unwrap();
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], burrow::testkit::ADMIN_EMAIL);

    // A device enrolled through node 1 fetches its config from node 2's device listener
    // (mutual TLS: node 2 trusts the certificate node 1 issued, and the device trusts node 2).
    let (_, device) = n1.project_with_device(&admin, "CLUSTER1").await.unwrap();
    let enrollment = device["enrollment_token"].as_str().unwrap();
    let agent_dir = dir.path().join("agent");
    n1.enroll_agent(enrollment, &agent_dir).await.unwrap();
    let read = |name: &str| std::fs::read(agent_dir.join(name)).unwrap();
    let mut identity = read("device.pem");
    identity.push(b'\n');
    identity.extend_from_slice(&read("device.key"));
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&read("ca.pem")).unwrap())
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .build()
        .unwrap();
    let url = format!(
        "https://localhost:{}/api/v1/reverse-tunnels/devices/CLUSTER1/reverse-tunnels-config",
        n2.running.device_addr.port()
    );
    let resp = client
        .get(&url)
        .send()
        .await
        .expect("node 2's device listener");
    assert_eq!(resp.status(), 200);
    let config: Value = resp.json().await.unwrap();
    assert!(config["tunnels"].is_array(), "{config}");

    // A change made through node 1 reaches a long-poll waiting on node 2 at once (PostgreSQL
    // NOTIFY), not at the poll's 25 s timeout.
    let version = config["version"].as_str().unwrap().to_string();
    let poll = tokio::spawn(async move {
        let resp = client
            .get(&url)
            .query(&[("wait", "25"), ("version", version.as_str())])
            .send()
            .await
            .expect("long-poll");
        (Instant::now(), resp.json::<Value>().await.expect("config"))
    });
    poll_until_waiting(&n2, "CLUSTER1").await;
    let (status, created) = n1
        .call(
            Method::POST,
            "/api/v1/reverse-tunnels/devices/CLUSTER1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "across nodes", "local_port": 8080, "protocol": "http"})),
        )
        .await
        .unwrap();
    let made = Instant::now();
    assert_eq!(status, 201, "{created}");
    let (answered, config) = tokio::time::timeout(Duration::from_secs(20), poll)
        .await
        .expect("the poll answers")
        .expect("join");
    let took = answered.saturating_duration_since(made);
    assert!(
        config["tunnels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "across nodes"),
        "{config}"
    );
    assert!(
        took < Duration::from_secs(2),
        "reached node 2's poll in {took:?}"
    );
}

/// Until a long-poll of `dsn` waits on `stack`'s config endpoint.
async fn poll_until_waiting(stack: &TestStack, dsn: &str) {
    let store = stack.running.store.clone();
    let device = store
        .device_by_dsn(dsn)
        .await
        .expect("store")
        .expect("device");
    poll(Duration::from_secs(10), "the long-poll waits", || {
        let waiting = stack.running.device_notifier.waiting(device.id) > 0;
        async move { waiting }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_create_one_set_of_keys() {
    if burrow_store::testing::skip_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "cluster.key");
    let db = burrow_store::testing::postgres_db().await;
    let url = db.url().to_string();
    let start = |name: &'static str| {
        let (key, url) = (key.clone(), url.clone());
        async move {
            TestStack::start_configured(Backend::Sqlite, move |c| {
                as_node(c, name, &key, Some(&url))
            })
            .await
            .expect(name)
        }
    };
    let (a, b, c) = tokio::join!(start("race-a"), start("race-b"), start("race-c"));
    assert_eq!(a.running.device_ca_sha256, b.running.device_ca_sha256);
    assert_eq!(a.running.device_ca_sha256, c.running.device_ca_sha256);
    let token = a.admin_token().await.unwrap();
    for other in [&b, &c] {
        let (status, _) = other
            .call(Method::GET, "/api/v1/auth/me", &token, None)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_the_right_cluster_key_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "cluster.key");
    let Some(n1) = first_node(dir.path(), &key).await else {
        return;
    };
    let db = n1.database_url();
    let wrong = key_file(dir.path(), "other.key");
    let err =
        TestStack::start_configured(Backend::Sqlite, |c| as_node(c, "node-2", &wrong, Some(&db)))
            .await
            .err()
            .expect("a wrong cluster key must not start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("do not open with this cluster_key_file"),
        "{msg}"
    );
    // No cluster key at all: refused, saying how to make one.
    let err = TestStack::start_configured(Backend::Sqlite, |c| {
        as_node(c, "node-3", &key, Some(&db));
        c.cluster_key_file = None;
    })
    .await
    .err()
    .expect("PostgreSQL without a cluster key must not start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cluster_key_file is not set") && msg.contains("openssl rand -base64 32"),
        "{msg}"
    );
    // Neither attempt made keys of its own or registered: node 1 alone, keys unchanged.
    let admin = n1.admin_token().await.unwrap();
    let listed = nodes(&n1, &admin).await;
    assert_eq!(listed.len(), 1, "{listed:?}");

    // The same as a real process: `burrow server` exits non-zero with the message.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_burrow"))
            .arg("server")
            .env("BURROW_DATABASE_URL", &db)
            .env("BURROW_CLUSTER_KEY_FILE", &wrong)
            .env("BURROW_NODE_NAME", "process-node")
            .env("BURROW_DATA_DIR", dir.path().join("process-data"))
            .env("BURROW_LISTEN", "127.0.0.1:0")
            .env("BURROW_DEVICE_LISTEN", "127.0.0.1:0")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the process exits by itself")
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("do not open with this cluster_key_file"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_nodes_endpoint_lists_nodes_and_sees_a_killed_one_die() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), "cluster.key");
    let Some(n1) = first_node(dir.path(), &key).await else {
        return;
    };
    let db = n1.database_url();
    let n2 = TestStack::start_isolated_configured(Backend::Sqlite, |c| {
        as_node(c, "node-2", &key, Some(&db));
        c.cluster_url = Some("https://node-2.internal:8702".into());
    })
    .await
    .expect("node 2");
    let admin = n1.admin_token().await.unwrap();

    // Non-administrators are refused.
    let (_, user) = n1.user("plain@test.local").await.unwrap();
    let (status, body) = n1
        .call(Method::GET, "/api/v1/cluster/nodes", &user, None)
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");

    let listed = nodes(&n2, &admin).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    let one = node(&listed, "node-1");
    assert_eq!(one["alive"], true);
    assert_eq!(one["region"], "region-of-node-1");
    assert_eq!(
        one["roles"],
        serde_json::json!(["api", "edge", "broker", "scheduler"])
    );
    assert_eq!(
        node(&listed, "node-2")["cluster_url"],
        "https://node-2.internal:8702"
    );

    // A device connected to node 1 shows in its tunnels held, at the next heartbeat.
    let svc = serve_local(axum::Router::new()).await.unwrap();
    let (_, _peer) = n1.public_tunnel(&admin, "HOLD1", svc).await.unwrap();
    poll(
        Duration::from_secs(5),
        "node-1 to hold 1 tunnel",
        || async { node(&nodes(&n1, &admin).await, "node-1")["tunnels_held"] == 1 },
    )
    .await;

    // Killed (its runtime ends at once, nothing released): dead to node 1 within ~6 s.
    assert_eq!(node(&nodes(&n1, &admin).await, "node-2")["alive"], true);
    n2.kill();
    let killed = Instant::now();
    poll(Duration::from_secs(8), "node-2 to be seen dead", || async {
        node(&nodes(&n1, &admin).await, "node-2")["alive"] == false
    })
    .await;
    let took = killed.elapsed();
    assert!(took <= Duration::from_millis(6500), "took {took:?}");
    // It was alive until its lease lapsed (its heartbeats had kept it so).
    assert!(took >= Duration::from_secs(3), "dead after only {took:?}");
    assert_eq!(node(&nodes(&n1, &admin).await, "node-1")["alive"], true);

    // Restarted at once after a kill, under the same name: it rejoins, waiting at most for
    // the dead process's lease to lapse. (How long it waits is not asserted: a CI run saw it
    // rejoin after 23 ms, a race between the kill and the lease that is still to be found.)
    let start_node_2 = || {
        let (key, db) = (key.clone(), db.clone());
        TestStack::start_isolated_configured(Backend::Sqlite, move |c| {
            as_node(c, "node-2", &key, Some(&db))
        })
    };
    let again = start_node_2().await.expect("node 2 again");
    again.kill();
    let restarted = Instant::now();
    let _again = start_node_2().await.expect("node 2 after a kill");
    let waited = restarted.elapsed();
    assert!(
        waited <= Duration::from_secs(8),
        "rejoined after {waited:?}"
    );
    assert_eq!(node(&nodes(&n1, &admin).await, "node-2")["alive"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_server_on_one_sqlite_database_is_refused() {
    let first = TestStack::start(Backend::Sqlite).await.unwrap();
    let db = first.database_url();
    let started = Instant::now();
    let err = TestStack::start_configured(Backend::Sqlite, |c| {
        c.database_url = Some(Secret::new(&db));
        c.node_name = Some("second".into());
    })
    .await
    .err()
    .expect("a second server on one SQLite database must not start");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("is running on this SQLite database") && msg.contains("single-node"),
        "{msg}"
    );
    // It waited (bounded) for a lapsed lease of a killed server, no longer.
    assert!(started.elapsed() < Duration::from_secs(15));
    let admin = first.admin_token().await.unwrap();
    assert_eq!(nodes(&first, &admin).await.len(), 1);
    // Once the first stops gracefully, its lease is free at once.
    first.running.shutdown().await.unwrap();
    let started = Instant::now();
    let again = TestStack::start_configured(Backend::Sqlite, |c| {
        c.database_url = Some(Secret::new(&db));
        c.node_name = Some("second".into());
    })
    .await
    .expect("the database is free again");
    assert!(started.elapsed() < Duration::from_secs(3));
    let listed = nodes(&again, &again.admin_token().await.unwrap()).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(node(&listed, "second")["alive"], true);
}

/// Polls `check` until it holds, failing after `limit`.
async fn poll<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
