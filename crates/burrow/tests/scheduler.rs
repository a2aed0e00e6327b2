//! The lifecycle jobs with injected time: a 12 h lifetime in milliseconds.

use std::sync::Arc;

use burrow::lifecycle::BrokerLifecycle;
use burrow::scheduler::{Scheduler, SchedulerConfig};
use burrow_api::Lifecycle;
use burrow_broker::{Broker, BrokerConfig, Clock, ManualClock, TokenKey};
use burrow_device::ConfigNotifier;
use burrow_store::{Device, NewDevice, NewReverseTunnel, NewUser, Store, TunnelStatus};

struct Setup {
    store: Arc<dyn Store>,
    broker: Arc<Broker>,
    clock: Arc<ManualClock>,
    lifecycle: Arc<BrokerLifecycle>,
    device: Device,
}

async fn setup(store: Arc<dyn Store>) -> Setup {
    let clock = Arc::new(ManualClock::starting_now());
    let broker = Broker::new(
        store.clone(),
        TokenKey::generate(),
        BrokerConfig::default(),
        clock.clone(),
    );
    let lifecycle = Arc::new(BrokerLifecycle {
        store: store.clone(),
        broker: broker.clone(),
        notifier: ConfigNotifier::new(),
        succession: Default::default(),
        locks: Default::default(),
        enrollment_ttl: chrono::Duration::hours(1),
    });
    let user = store
        .create_user(NewUser {
            email: format!("{}@x.io", uuid::Uuid::new_v4()),
            password_hash: "x".into(),
            is_admin: false,
        })
        .await
        .expect("user");
    let project = store.create_project("p", user.id).await.expect("project");
    let device = store
        .create_device(NewDevice {
            project_id: project.id,
            dsn: format!("D{}", uuid::Uuid::new_v4().simple()),
            name: "d".into(),
        })
        .await
        .expect("device");
    Setup {
        store,
        broker,
        clock,
        lifecycle,
        device,
    }
}

fn scheduler(s: &Setup) -> Scheduler {
    Scheduler {
        store: s.store.clone(),
        broker: s.broker.clone(),
        lifecycle: s.lifecycle.clone(),
        clock: s.clock.clone(),
        config: SchedulerConfig::default(),
        stats: Default::default(),
    }
}

async fn tunnel(s: &Setup, name: &str) -> burrow_store::ReverseTunnel {
    let row = s
        .store
        .create_reverse_tunnel(NewReverseTunnel {
            device_id: s.device.id,
            name: name.into(),
            description: None,
            public_url: format!("{}-{}.localhost", name, uuid::Uuid::new_v4().simple()),
            is_enabled: true,
            local_port: 8080,
            protocol: "http".into(),
            require_auth: true,
            allowed_user_ids: vec![],
            ip_allow: vec![],
            ip_deny: vec![],
        })
        .await
        .expect("row");
    s.lifecycle
        .tunnel_created(&s.device, row)
        .await
        .expect("opened")
}

#[tokio::test]
async fn rotation_then_cleanup_over_a_simulated_day() {
    let (store, _guard) = burrow_store::testing::sqlite_temp().await;
    let s = setup(store).await;
    let t = tunnel(&s, "web").await;
    let first = t.tunnel_id.clone().expect("tunnel id");
    let first_expiry = t.expires_at.expect("expiry");
    assert_eq!(first_expiry, s.clock.now() + chrono::Duration::hours(12));
    let sched = scheduler(&s);

    // Nothing due at the start: no rotation, no cleanup.
    assert_eq!(sched.tick().await.expect("tick"), (0, 0));

    // 11.5 h later the tunnel expires within the 1 h threshold: rotated.
    s.clock.advance(chrono::Duration::minutes(11 * 60 + 30));
    let (_, rotated) = sched.tick().await.expect("tick");
    assert_eq!(rotated, 1);
    let now_row = s
        .store
        .reverse_tunnel_by_id(t.id)
        .await
        .expect("get")
        .expect("row");
    let second = now_row.tunnel_id.clone().expect("new tunnel id");
    assert_ne!(second, first);
    assert!(
        now_row.expires_at.expect("expiry") > first_expiry,
        "a fresh 12 h lifetime"
    );
    assert_eq!(
        s.broker.describe(&second).await.expect("describe").status,
        TunnelStatus::Open
    );

    // Run again within the interval: the job is not due, nothing happens twice.
    assert_eq!(sched.tick().await.expect("tick"), (0, 0));

    // A day later, nothing rotated it again (device offline, scheduler not ticking):
    // cleanup closes it and clears the row; the broker says CLOSED.
    s.clock.advance(chrono::Duration::hours(13));
    let cleaned = sched.cleanup_expired().await.expect("cleanup");
    assert_eq!(cleaned, 1);
    let row = s
        .store
        .reverse_tunnel_by_id(t.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.tunnel_id, None);
    assert_eq!(row.expires_at, None);
    assert_eq!(
        s.broker.describe(&second).await.expect("describe").status,
        TunnelStatus::Closed
    );
    // Idempotent: a second run finds nothing.
    assert_eq!(sched.cleanup_expired().await.expect("cleanup"), 0);
}

/// Two server processes on one PostgreSQL database (two pools): each job runs once per
/// interval.
#[tokio::test]
async fn two_nodes_on_postgres_run_each_job_once_per_interval() {
    if burrow_store::testing::skip_postgres() {
        return;
    }
    let db = burrow_store::testing::postgres_db().await;
    let a = setup(db.store().await).await;
    let b_store = db.store().await;
    let b = Setup {
        broker: Broker::new(
            b_store.clone(),
            TokenKey::generate(),
            BrokerConfig::default(),
            a.clock.clone(),
        ),
        lifecycle: a.lifecycle.clone(),
        store: b_store,
        clock: a.clock.clone(),
        device: a.device.clone(),
    };
    for name in ["one", "two", "three"] {
        tunnel(&a, name).await;
    }
    let (sa, sb) = (scheduler(&a), scheduler(&b));
    let mut total_rotations = 0;
    for _round in 0..3 {
        a.clock.advance(chrono::Duration::minutes(11 * 60 + 30));
        let (ra, rb) = tokio::join!(sa.tick(), sb.tick());
        let (ra, rb) = (ra.expect("a"), rb.expect("b"));
        // Exactly one node rotated this round, and it rotated all three.
        assert!((ra.1 == 3) ^ (rb.1 == 3), "round: a={ra:?} b={rb:?}");
        assert_eq!(ra.1 + rb.1, 3);
        total_rotations += ra.1 + rb.1;
    }
    assert_eq!(total_rotations, 9);
}

/// The whole stack with injected time: a device offline while its tunnel expires. The
/// cleanup job closes the tunnel and clears the row; when the device's agent comes back, it
/// gets a new tunnel and the public URL works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_device_coming_back_after_expiry_gets_a_working_tunnel() {
    use burrow::testkit::{Backend, TestStack};
    let clock = Arc::new(burrow_broker::ManualClock::starting_now());
    let s = TestStack::start_with_clock(Backend::Sqlite, clock.clone())
        .await
        .expect("stack");
    let admin = s.admin_token().await.expect("login");
    let (_pid, device) = s.project_with_device(&admin, "OFF1").await.expect("device");
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("agent");
    let enrollment = device["enrollment_token"].as_str().expect("token");
    s.enroll_agent(enrollment, &dir).await.expect("enrolls");

    let app = axum::Router::new().route("/", axum::routing::get(|| async { "back online" }));
    let svc_addr = burrow::testkit::serve_local(app)
        .await
        .expect("local service");
    let path = "/api/v1/reverse-tunnels/devices/OFF1/reverse-tunnels";
    let (status, t) = s
        .call(
            reqwest::Method::POST,
            path,
            &admin,
            Some(&serde_json::json!({"name": "web", "local_port": svc_addr.port(), "require_auth": false})),
        )
        .await
        .expect("create");
    assert_eq!(status, 201, "{t}");
    let first = t["tunnel_id"]
        .as_str()
        .expect("opened at creation")
        .to_string();

    // The device stays offline past the tunnel's 12 h lifetime; the cleanup job runs.
    clock.advance(chrono::Duration::hours(13));
    assert_eq!(
        s.running
            .scheduler
            .cleanup_expired()
            .await
            .expect("cleanup"),
        1
    );
    let (_, row) = s
        .call(
            reqwest::Method::GET,
            &format!("{path}/{}", t["id"]),
            &admin,
            None,
        )
        .await
        .expect("get");
    assert!(row["tunnel_id"].is_null(), "{row}");
    assert_eq!(
        s.running
            .broker
            .describe(&first)
            .await
            .expect("describe")
            .status,
        TunnelStatus::Closed
    );

    // The agent comes back: its config fetch opens a new tunnel, and it connects.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(async move {
        burrow_agent::run(&dir, async {
            let _ = stopped.await;
        })
        .await
    });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    let host = t["public_url"].as_str().expect("host").to_string();
    loop {
        let r = s
            .http
            .get(format!("http://{}/", s.addr))
            .header("host", &host)
            .send()
            .await
            .expect("send");
        if r.status() == 200 {
            assert_eq!(r.text().await.expect("body"), "back online");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the device never got a working tunnel: {}",
            r.status()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (_, row) = s
        .call(
            reqwest::Method::GET,
            &format!("{path}/{}", t["id"]),
            &admin,
            None,
        )
        .await
        .expect("get");
    let second = row["tunnel_id"].as_str().expect("a new tunnel");
    assert_ne!(second, first);
    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), agent).await;
}
