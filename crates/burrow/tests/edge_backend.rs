//! The edge's in-memory backend (what burrow-edge's own tests run on, with no database)
//! against the SQL store behind `SqlBackend` (what the server runs on): one script, the same
//! answers, so the edge's tests on memory say something about the server.

use std::sync::Arc;

use burrow_edge::backend::memory::MemoryBackend;
use burrow_edge::EdgeBackend;
use burrow_store::{
    Device, LoginCode, NewDevice, NewReverseTunnel, NewShareLink, NewTunnelKey, NewUser,
    ReverseTunnel, ShareLink, SqliteStore, Store, TunnelKey, UsageDelta, User, VisitorAdmission,
};
use chrono::{DateTime, Duration, Utc};

const HOST: &str = "web.burrow.test";

struct Fixture {
    backend: EdgeBackend,
    user: i64,
    other: i64,
    project: i64,
    device: i64,
    tunnel: i64,
    link: i64,
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_750_000_000 + secs, 0).expect("valid time")
}

fn tunnel_row(id: i64, device_id: i64) -> ReverseTunnel {
    ReverseTunnel {
        id,
        device_id,
        name: "web".into(),
        description: None,
        public_url: HOST.into(),
        is_enabled: true,
        tunnel_id: None,
        tunnel_arn: None,
        source_access_token: None,
        destination_access_token: None,
        local_port: 8080,
        protocol: "http".into(),
        require_auth: true,
        allowed_user_ids: vec![],
        ip_allow: vec![],
        ip_deny: vec![],
        total_requests: 0,
        last_accessed_at: None,
        created_at: Utc::now(),
        updated_at: None,
        expires_at: None,
        limits: Default::default(),
    }
}

async fn sql() -> Fixture {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.expect("sqlite"));
    let mut ids = vec![];
    for email in ["a@x.test", "b@x.test"] {
        let user = NewUser {
            email: email.into(),
            password_hash: "h".into(),
            is_admin: false,
        };
        ids.push(store.create_user(user).await.expect("user").id);
    }
    let project = store.create_project("p", ids[0]).await.expect("project");
    let device = NewDevice {
        project_id: project.id,
        dsn: "D1".into(),
        name: "d".into(),
    };
    let device = store.create_device(device).await.expect("device");
    let tunnel = NewReverseTunnel {
        device_id: device.id,
        name: "web".into(),
        description: None,
        public_url: HOST.into(),
        is_enabled: true,
        local_port: 8080,
        protocol: "http".into(),
        require_auth: true,
        allowed_user_ids: vec![],
        ip_allow: vec![],
        ip_deny: vec![],
    };
    let tunnel = store.create_reverse_tunnel(tunnel).await.expect("tunnel");
    let key = NewTunnelKey {
        reverse_tunnel_id: tunnel.id,
        name: "k".into(),
        prefix: "bk_1".into(),
        key_hash: "k-hash".into(),
        methods: vec![],
        expires_at: None,
        created_by: Some(ids[0]),
    };
    store.create_tunnel_key(key).await.expect("key");
    let link = NewShareLink {
        reverse_tunnel_id: tunnel.id,
        prefix: "bs_1".into(),
        secret_hash: "s-hash".into(),
        note: None,
        methods: vec![],
        max_uses: Some(1),
        expires_at: Utc::now() + Duration::hours(1),
        created_by: Some(ids[0]),
    };
    let link = store.create_share_link(link).await.expect("link");
    Fixture {
        backend: EdgeBackend::from(store),
        user: ids[0],
        other: ids[1],
        project: project.id,
        device: device.id,
        tunnel: tunnel.id,
        link: link.id,
    }
}

fn memory() -> Fixture {
    let m = Arc::new(MemoryBackend::default());
    let now = Utc::now();
    m.with(|s| {
        for (id, email) in [(1, "a@x.test"), (2, "b@x.test")] {
            s.users.push(User {
                id,
                email: email.into(),
                password_hash: "h".into(),
                is_admin: false,
                created_at: now,
                disabled: false,
            });
        }
        s.members.insert((1, 1));
        s.devices.insert(
            1,
            Device {
                id: 1,
                project_id: 1,
                dsn: "D1".into(),
                name: "d".into(),
                created_at: now,
                last_seen_at: None,
                cert_serial: None,
                cert_not_after: None,
                revoked_at: None,
            },
        );
        s.tunnels.insert(HOST.into(), tunnel_row(1, 1));
        s.keys.push(TunnelKey {
            id: 1,
            reverse_tunnel_id: 1,
            name: "k".into(),
            prefix: "bk_1".into(),
            key_hash: "k-hash".into(),
            methods: vec![],
            expires_at: None,
            created_by: Some(1),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        });
        s.links.push(ShareLink {
            id: 1,
            reverse_tunnel_id: 1,
            prefix: "bs_1".into(),
            secret_hash: "s-hash".into(),
            note: None,
            methods: vec![],
            max_uses: Some(1),
            uses: 0,
            expires_at: now + Duration::hours(1),
            created_by: Some(1),
            created_at: now,
            revoked_at: None,
        });
    });
    Fixture {
        backend: EdgeBackend::of(m),
        user: 1,
        other: 2,
        project: 1,
        device: 1,
        tunnel: 1,
        link: 1,
    }
}

fn code(hash: &str, user_id: i64, created: i64, expires: i64) -> LoginCode {
    LoginCode {
        code_hash: hash.into(),
        user_id,
        host: HOST.into(),
        state_hash: "st".into(),
        expires_at: at(expires),
        created_at: at(created),
    }
}

async fn script(f: Fixture) {
    let b = &f.backend;
    // Routing: the tunnel with its device; an unknown host is nothing.
    let (t, d) = b
        .tunnels
        .tunnel_by_host(HOST)
        .await
        .unwrap()
        .expect("routed");
    assert_eq!((t.id, d.id, d.project_id), (f.tunnel, f.device, f.project));
    assert!(b
        .tunnels
        .tunnel_by_host("nope.burrow.test")
        .await
        .unwrap()
        .is_none());

    // Users: email case-insensitive, membership per project, no revocation yet.
    let u = b
        .users
        .user_by_email("A@X.test")
        .await
        .unwrap()
        .expect("user");
    assert_eq!(u.id, f.user);
    assert!(b.users.user_by_id(f.other).await.unwrap().is_some());
    assert!(b.users.user_by_id(999).await.unwrap().is_none());
    assert!(b.users.is_member(f.project, f.user).await.unwrap());
    assert!(!b.users.is_member(f.project, f.other).await.unwrap());
    assert_eq!(b.users.sessions_valid_after(f.user).await.unwrap(), None);

    // Login codes: capped per user (oldest dropped), expired ones swept, single use.
    let c = &b.codes;
    c.insert_login_code(&code("old", f.user, 1, 100), 2)
        .await
        .unwrap();
    c.insert_login_code(&code("mid", f.user, 2, 100), 2)
        .await
        .unwrap();
    c.insert_login_code(&code("theirs", f.other, 3, 4), 2)
        .await
        .unwrap();
    c.insert_login_code(&code("new", f.user, 5, 100), 2)
        .await
        .unwrap();
    assert!(
        c.take_login_code("old").await.unwrap().is_none(),
        "over the cap"
    );
    assert!(
        c.take_login_code("theirs").await.unwrap().is_none(),
        "expired"
    );
    let mid = c.take_login_code("mid").await.unwrap().expect("kept");
    assert_eq!((mid.user_id, mid.host.as_str()), (f.user, HOST));
    assert!(
        c.take_login_code("mid").await.unwrap().is_none(),
        "single use"
    );
    assert!(c.take_login_code("new").await.unwrap().is_some());

    // Keys and share links: a link counts each visitor once, up to max_uses.
    let cr = &b.credentials;
    let k = cr.tunnel_key_by_hash("k-hash").await.unwrap().expect("key");
    assert_eq!((k.reverse_tunnel_id, k.last_used_at), (f.tunnel, None));
    cr.touch_tunnel_key(k.id, at(10)).await.unwrap();
    let k = cr.tunnel_key_by_hash("k-hash").await.unwrap().expect("key");
    assert_eq!(k.last_used_at, Some(at(10)));
    assert!(cr.tunnel_key_by_hash("other").await.unwrap().is_none());
    let l = cr
        .share_link_by_hash("s-hash")
        .await
        .unwrap()
        .expect("link");
    assert_eq!((l.id, l.uses), (f.link, 0));
    let admit = |v: &'static str| cr.admit_share_link_visitor(f.link, v, at(11));
    assert_eq!(admit("v1").await.unwrap(), VisitorAdmission::New);
    assert_eq!(admit("v1").await.unwrap(), VisitorAdmission::Known);
    assert_eq!(admit("v2").await.unwrap(), VisitorAdmission::Full);
    let gone = cr
        .admit_share_link_visitor(999, "v1", at(11))
        .await
        .unwrap();
    assert_eq!(gone, VisitorAdmission::Full);
    let l = cr.share_link_by_id(f.link).await.unwrap().expect("link");
    assert_eq!(l.uses, 1);

    // Usage: totals and the latest access land on the tunnel row.
    let delta = |n, t| UsageDelta {
        reverse_tunnel_id: f.tunnel,
        requests: n,
        last_accessed_at: at(t),
    };
    b.usage.add_usage(&[delta(3, 20)]).await.unwrap();
    b.usage.add_usage(&[delta(4, 15)]).await.unwrap();
    let (t, _) = b
        .tunnels
        .tunnel_by_host(HOST)
        .await
        .unwrap()
        .expect("routed");
    assert_eq!((t.total_requests, t.last_accessed_at), (7, Some(at(20))));
}

#[tokio::test]
async fn sql_store_answers_the_script() {
    script(sql().await).await;
}

#[tokio::test]
async fn memory_backend_answers_the_same_script() {
    script(memory()).await;
}
