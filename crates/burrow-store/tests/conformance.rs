//! The `Store` conformance suite: every test below runs on SQLite (a temporary file, WAL,
//! pooled) and on PostgreSQL (a fresh database per test). PostgreSQL tests fail when the
//! server is unreachable, unless `BURROW_SKIP_POSTGRES=1`.

use std::sync::Arc;

use burrow_store::*;
use chrono::{SubsecRound, TimeZone, Utc};

#[path = "conformance/accounts.rs"]
mod accounts;
#[path = "conformance/broker.rs"]
mod broker;
#[path = "conformance/devices.rs"]
mod devices;
#[path = "conformance/domains.rs"]
mod domains;
#[path = "conformance/login_codes.rs"]
mod login_codes;
#[path = "conformance/misc.rs"]
mod misc;
#[path = "conformance/nodes.rs"]
mod nodes;
#[path = "conformance/sharing.rs"]
mod sharing;
#[path = "conformance/traffic.rs"]
mod traffic;
#[path = "conformance/tunnels.rs"]
mod tunnels;
#[path = "conformance/users.rs"]
mod users;

/// What a conformance test gets: the store, and the means to open a second instance (its
/// own pool) on the same database.
pub struct Ctx {
    pub store: Arc<dyn Store>,
    url: String,
}

impl Ctx {
    pub fn s(&self) -> &dyn Store {
        &*self.store
    }

    pub async fn reopen(&self) -> Arc<dyn Store> {
        burrow_store::connect(&self.url)
            .await
            .expect("reopen store")
    }
}

/// Runs each listed `module::test(&Ctx)` once per backend, as `sqlite::test` and
/// `postgres::test`.
macro_rules! conformance {
    ($($m:ident :: { $($name:ident),* $(,)? }),* $(,)?) => {
        mod sqlite {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, guard) = burrow_store::testing::sqlite_temp().await;
                    assert_eq!(store.backend(), "sqlite");
                    let ctx = super::Ctx { store, url: guard.url().to_string() };
                    super::$m::$name(&ctx).await;
                }
            )*)*
        }
        mod postgres {
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if burrow_store::testing::skip_postgres() {
                        return;
                    }
                    let db = burrow_store::testing::postgres_db().await;
                    let store = db.store().await;
                    assert_eq!(store.backend(), "postgres");
                    let ctx = super::Ctx { store, url: db.url().to_string() };
                    super::$m::$name(&ctx).await;
                    drop(ctx);
                }
            )*)*
        }
    };
}

conformance! {
    domains::{custom_domains_lifecycle, certificates_and_challenges, domain_claim_race},
    accounts::{
        users_disabled_reset_and_deleted,
        invitations_single_use,
        invitation_race,
        personal_tokens,
    },
    users::{
        users_roundtrip,
        duplicate_email_conflicts,
        projects_and_members,
        project_changes_keep_an_owner,
    },
    devices::{
        devices_roundtrip,
        duplicate_dsn_conflicts,
        device_updates,
        enrollment_single_use,
        enrollment_race,
        enrollment_tokens_cancelled,
        delete_device_cascades,
    },
    tunnels::{
        reverse_tunnels_roundtrip,
        duplicate_public_url_conflicts,
        update_reverse_tunnel_patch,
        reverse_tunnel_broker_link,
        usage_counters,
        usage_concurrent,
        access_log,
    },
    traffic::{traffic_rollups_and_retention, principal_usage_per_device},
    broker::{
        broker_tunnel_roundtrip,
        broker_tunnel_conflicts,
        broker_tunnel_paging,
        spend_token_single_use,
        spend_token_race,
        connection_state,
    },
    login_codes::{login_codes_single_use_and_capped, login_code_race},
    misc::{
        api_keys,
        settings,
        claim_job_interval,
        claim_job_two_instances_race,
        timestamps_roundtrip,
    },
    sharing::{tunnel_keys, share_links, share_link_visitors_race, sharing_audit},
    nodes::{
        node_lease_lifecycle,
        node_exclusive_claim,
        node_exclusive_race,
        setting_if_absent_race,
    },
}

// --- shared fixtures ----------------------------------------------------------------------

/// A UTC instant with sub-microsecond digits, as chrono gives them.
pub fn ts(secs: i64, nanos: u32) -> Timestamp {
    Utc.timestamp_opt(secs, nanos).unwrap()
}

/// What a store is expected to give back for a written `t`: microsecond precision.
pub fn us(t: Timestamp) -> Timestamp {
    t.trunc_subsecs(6)
}

pub async fn user(s: &dyn Store, email: &str) -> User {
    s.create_user(NewUser {
        email: email.to_string(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string(),
        is_admin: false,
    })
    .await
    .unwrap()
}

/// A user owning a project that has one device.
pub async fn owner_project_device(s: &dyn Store, tag: &str) -> (User, Project, Device) {
    let owner = user(s, &format!("{tag}@example.com")).await;
    let project = s
        .create_project(&format!("project {tag}"), owner.id)
        .await
        .unwrap();
    let device = device(s, project.id, &format!("dsn-{tag}")).await;
    (owner, project, device)
}

pub async fn device(s: &dyn Store, project_id: i64, dsn: &str) -> Device {
    s.create_device(NewDevice {
        project_id,
        dsn: dsn.to_string(),
        name: format!("device {dsn}"),
    })
    .await
    .unwrap()
}

pub fn new_tunnel(device_id: i64, public_url: &str) -> NewReverseTunnel {
    NewReverseTunnel {
        device_id,
        name: "Web Dashboard".to_string(),
        description: Some("Robot control interface".to_string()),
        public_url: public_url.to_string(),
        is_enabled: true,
        local_port: 8080,
        protocol: "http".to_string(),
        require_auth: true,
        allowed_user_ids: vec![],
        ip_allow: vec![],
        ip_deny: vec![],
    }
}

pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
}

pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) {
    match r {
        Err(StoreError::NotFound) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

// --- outside the generic suite ------------------------------------------------------------

#[tokio::test]
async fn in_memory_store_keeps_its_data() {
    let s = SqliteStore::in_memory().await.unwrap();
    let u = user(&s, "Mem@Example.com").await;
    // Several round trips through the pool: the single connection keeps the database.
    for _ in 0..3 {
        assert_eq!(
            s.user_by_email("mem@example.com").await.unwrap(),
            Some(u.clone())
        );
        tokio::task::yield_now().await;
    }
    let p = s.create_project("p", u.id).await.unwrap();
    assert!(s.is_member(p.id, u.id).await.unwrap());
    // A second in-memory store is a separate database.
    let other = SqliteStore::in_memory().await.unwrap();
    assert_eq!(other.count_users().await.unwrap(), 0);
}

#[tokio::test]
async fn connect_dispatches_on_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sub.db").display());
    let s = burrow_store::connect(&url).await.unwrap();
    assert_eq!(s.backend(), "sqlite");
    assert!(dir.path().join("sub.db").exists());
    match burrow_store::connect("mysql://localhost/x").await {
        Err(StoreError::InvalidUrl(_)) => {}
        Err(e) => panic!("expected InvalidUrl, got {e:?}"),
        Ok(_) => panic!("expected InvalidUrl, got a store"),
    }
}
