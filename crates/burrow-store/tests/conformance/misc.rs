//! API keys, settings, the scheduler's job claims, timestamp precision.

use std::sync::Arc;

use burrow_store::*;
use chrono::{Duration, Utc};

use crate::{assert_conflict, assert_not_found, owner_project_device, ts, us, user, Ctx};

pub async fn api_keys(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, project, _) = owner_project_device(s, "keys").await;
    let other = user(s, "other@example.com").await;
    let at = ts(1_750_000_000, 42_424_242);
    let key = |id: &str, user_id, created_at| ApiKey {
        access_key_id: id.to_string(),
        user_id,
        project_id: project.id,
        nonce: format!("nonce-{id}"),
        description: Some(format!("key {id}")),
        created_at,
        revoked_at: None,
    };
    let k1 = key("AKIA1", owner.id, at);
    let k2 = ApiKey {
        description: None,
        ..key("AKIA2", owner.id, at + Duration::seconds(1))
    };
    let k3 = key("AKIA3", other.id, at);
    for k in [&k1, &k2, &k3] {
        s.create_api_key(k).await.unwrap();
    }
    assert_conflict(s.create_api_key(&k1).await);
    assert_not_found(s.create_api_key(&key("AKIA4", 9_999_999, at)).await);

    let stored = |k: &ApiKey| ApiKey {
        created_at: us(k.created_at),
        revoked_at: k.revoked_at.map(us),
        ..k.clone()
    };
    assert_eq!(s.api_key("AKIA1").await.unwrap(), Some(stored(&k1)));
    assert_eq!(s.api_key("nope").await.unwrap(), None);
    assert_eq!(
        s.list_api_keys_for_user(owner.id).await.unwrap(),
        vec![stored(&k1), stored(&k2)]
    );
    assert_eq!(
        s.list_api_keys_for_user(other.id).await.unwrap(),
        vec![stored(&k3)]
    );

    let revoked = at + Duration::minutes(1);
    s.revoke_api_key("AKIA1", revoked).await.unwrap();
    // A second revocation keeps the first time.
    s.revoke_api_key("AKIA1", revoked + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        s.api_key("AKIA1").await.unwrap().unwrap().revoked_at,
        Some(us(revoked))
    );
    assert_eq!(s.api_key("AKIA2").await.unwrap().unwrap().revoked_at, None);
    assert_not_found(s.revoke_api_key("nope", revoked).await);
}

pub async fn settings(ctx: &Ctx) {
    let s = ctx.s();
    assert_eq!(s.get_setting("jwt.issuer").await.unwrap(), None);
    s.put_setting("jwt.issuer", "burrow").await.unwrap();
    s.put_setting("other", "x").await.unwrap();
    assert_eq!(
        s.get_setting("jwt.issuer").await.unwrap().as_deref(),
        Some("burrow")
    );
    s.put_setting("jwt.issuer", "burrow-2").await.unwrap();
    assert_eq!(
        s.get_setting("jwt.issuer").await.unwrap().as_deref(),
        Some("burrow-2")
    );
    assert_eq!(s.get_setting("other").await.unwrap().as_deref(), Some("x"));
}

pub async fn claim_job_interval(ctx: &Ctx) {
    let s = ctx.s();
    let every = Duration::minutes(5);
    let t0 = ts(1_750_000_000, 123_456_789);
    assert!(s.claim_job("cleanup", t0, every).await.unwrap());
    assert!(!s.claim_job("cleanup", t0, every).await.unwrap());
    assert!(!s
        .claim_job("cleanup", t0 + Duration::minutes(4), every)
        .await
        .unwrap());
    // Other jobs are independent.
    assert!(s.claim_job("rotate", t0, every).await.unwrap());
    // Due exactly one interval after the last start, and counted from the new start then.
    assert!(s.claim_job("cleanup", t0 + every, every).await.unwrap());
    assert!(!s
        .claim_job("cleanup", t0 + every + Duration::minutes(1), every)
        .await
        .unwrap());
    assert!(s.claim_job("cleanup", t0 + every * 3, every).await.unwrap());
}

/// Two store instances (two pools, as two nodes) race for the same runs.
pub async fn claim_job_two_instances_race(ctx: &Ctx) {
    let stores: [Arc<dyn Store>; 2] = [ctx.store.clone(), ctx.reopen().await];
    let every = Duration::seconds(60);
    let t0 = Utc::now();
    for round in 0..4 {
        let now = t0 + every * round;
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (s, barrier) = (stores[i % 2].clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    s.claim_job("two-nodes", now, every).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "round {round}");
    }
}

/// Every written timestamp reads back equal, sub-microsecond digits dropped, on both
/// backends; far and near dates alike.
pub async fn timestamps_roundtrip(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, project, d) = owner_project_device(s, "ts").await;
    // Creation times come from the store and read back equal.
    assert_eq!(
        s.user_by_id(owner.id).await.unwrap().unwrap().created_at,
        owner.created_at
    );
    assert_eq!(
        s.project_by_id(project.id)
            .await
            .unwrap()
            .unwrap()
            .created_at,
        project.created_at
    );
    assert_eq!(
        s.device_by_id(d.id).await.unwrap().unwrap().created_at,
        d.created_at
    );
    assert_eq!(owner.created_at, us(owner.created_at));
    for t in [
        ts(0, 0),
        ts(1, 1),
        ts(1_750_000_000, 999_999_999),
        ts(1_750_000_000, 500_000),
        ts(4_102_444_800, 123_000), // 2100-01-01
        Utc::now(),
    ] {
        s.touch_device(d.id, t).await.unwrap();
        assert_eq!(
            s.device_by_id(d.id).await.unwrap().unwrap().last_seen_at,
            Some(us(t)),
            "{t}"
        );
    }
}
