//! Devices, enrollment, cascades.

use std::sync::Arc;

use burrow_store::*;
use chrono::{Duration, Utc};

use crate::{
    assert_conflict, assert_not_found, device, new_tunnel, owner_project_device, ts, us, Ctx,
};

pub async fn devices_roundtrip(ctx: &Ctx) {
    let s = ctx.s();
    let (_, project, d) = owner_project_device(s, "dev").await;
    assert_eq!((d.project_id, d.dsn.as_str()), (project.id, "dsn-dev"));
    assert_eq!(d.name, "device dsn-dev");
    assert_eq!((d.last_seen_at, d.cert_serial.clone()), (None, None));
    assert_eq!((d.cert_not_after, d.revoked_at), (None, None));
    assert_eq!(s.device_by_id(d.id).await.unwrap(), Some(d.clone()));
    assert_eq!(s.device_by_dsn("dsn-dev").await.unwrap(), Some(d.clone()));
    assert_eq!(s.device_by_dsn("nope").await.unwrap(), None);
    assert_eq!(s.device_by_id(9_999_999).await.unwrap(), None);

    let d2 = device(s, project.id, "dsn-dev-2").await;
    assert_eq!(
        s.list_devices_in_project(project.id).await.unwrap(),
        vec![d.clone(), d2.clone()]
    );
    assert_eq!(s.list_devices_in_project(9_999_999).await.unwrap(), vec![]);

    assert_not_found(
        s.create_device(NewDevice {
            project_id: 9_999_999,
            dsn: "x".into(),
            name: "x".into(),
        })
        .await,
    );

    s.delete_device(d2.id).await.unwrap();
    assert_eq!(s.device_by_id(d2.id).await.unwrap(), None);
    assert_not_found(s.delete_device(d2.id).await);
    assert_eq!(
        s.list_devices_in_project(project.id).await.unwrap(),
        vec![d]
    );
}

pub async fn duplicate_dsn_conflicts(ctx: &Ctx) {
    let s = ctx.s();
    let (_, project, _) = owner_project_device(s, "dup").await;
    let dup = s
        .create_device(NewDevice {
            project_id: project.id,
            dsn: "dsn-dup".into(),
            name: "x".into(),
        })
        .await;
    assert_conflict(dup);
    assert_eq!(
        s.list_devices_in_project(project.id).await.unwrap().len(),
        1
    );
}

pub async fn device_updates(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "upd").await;
    let seen = ts(1_750_000_000, 123_456_789);
    s.touch_device(d.id, seen).await.unwrap();
    let not_after = ts(1_780_000_000, 987_654_321);
    s.set_device_certificate(d.id, "0a1b2c", not_after)
        .await
        .unwrap();
    let got = s.device_by_id(d.id).await.unwrap().unwrap();
    assert_eq!(got.last_seen_at, Some(us(seen)));
    assert_eq!(got.cert_serial.as_deref(), Some("0a1b2c"));
    assert_eq!(got.cert_not_after, Some(us(not_after)));
    assert_eq!(got.revoked_at, None);

    let revoked = ts(1_760_000_000, 5_000);
    s.revoke_device(d.id, revoked).await.unwrap();
    assert_eq!(
        s.device_by_id(d.id).await.unwrap().unwrap().revoked_at,
        Some(us(revoked))
    );

    // A new certificate clears the revocation.
    s.set_device_certificate(d.id, "ffee", not_after)
        .await
        .unwrap();
    let got = s.device_by_id(d.id).await.unwrap().unwrap();
    assert_eq!(
        (got.cert_serial.as_deref(), got.revoked_at),
        (Some("ffee"), None)
    );

    let renamed = s.rename_device(d.id, "rover 7").await.unwrap();
    assert_eq!((renamed.id, renamed.name.as_str()), (d.id, "rover 7"));
    assert_eq!(s.device_by_id(d.id).await.unwrap().unwrap().name, "rover 7");
    assert_not_found(s.rename_device(9_999_999, "x").await);
    assert_not_found(s.touch_device(9_999_999, seen).await);
    assert_not_found(s.set_device_certificate(9_999_999, "aa", not_after).await);
    assert_not_found(s.revoke_device(9_999_999, revoked).await);
}

pub async fn enrollment_single_use(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "enr").await;
    let now = ts(1_750_000_000, 0);
    let e = s
        .create_enrollment(d.id, "hash-1", now + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (e.device_id, e.token_hash.as_str(), e.used_at),
        (d.id, "hash-1", None)
    );
    assert_eq!(e.expires_at, now + Duration::hours(1));
    assert_conflict(s.create_enrollment(d.id, "hash-1", now).await);
    assert_not_found(s.create_enrollment(9_999_999, "hash-x", now).await);

    assert_eq!(s.consume_enrollment("unknown", now).await.unwrap(), None);
    // Expired at `now`: refused, and stays usable before that.
    s.create_enrollment(d.id, "hash-old", now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(s.consume_enrollment("hash-old", now).await.unwrap(), None);
    assert_eq!(
        s.consume_enrollment("hash-old", now - Duration::seconds(2))
            .await
            .unwrap(),
        Some(d.id)
    );

    assert_eq!(
        s.consume_enrollment("hash-1", now).await.unwrap(),
        Some(d.id)
    );
    assert_eq!(s.consume_enrollment("hash-1", now).await.unwrap(), None);
    assert_eq!(
        s.consume_enrollment("hash-1", now + Duration::seconds(1))
            .await
            .unwrap(),
        None
    );
}

/// A new token cancels the device's older unused ones; revoking the device cancels the rest.
pub async fn enrollment_tokens_cancelled(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "cancel").await;
    let (_, _, other) = owner_project_device(s, "cancel-other").await;
    let later = Utc::now() + Duration::hours(1);
    s.create_enrollment(d.id, "c-1", later).await.unwrap();
    s.create_enrollment(other.id, "c-other", later)
        .await
        .unwrap();
    s.create_enrollment(d.id, "c-2", later).await.unwrap();
    let now = Utc::now();
    assert_eq!(
        s.consume_enrollment("c-1", now).await.unwrap(),
        None,
        "replaced"
    );
    s.revoke_device(d.id, Utc::now()).await.unwrap();
    let now = Utc::now() + Duration::milliseconds(1);
    assert_eq!(
        s.consume_enrollment("c-2", now).await.unwrap(),
        None,
        "revoked"
    );
    assert_eq!(
        s.consume_enrollment("c-other", now).await.unwrap(),
        Some(other.id),
        "another device's token is untouched"
    );
}

pub async fn enrollment_race(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "race").await;
    let now = Utc::now();
    s.create_enrollment(d.id, "race-hash", now + Duration::minutes(10))
        .await
        .unwrap();
    let wins = race(&ctx.store, move |s| async move {
        s.consume_enrollment("race-hash", now)
            .await
            .unwrap()
            .is_some()
    })
    .await;
    assert_eq!(wins, 1);
}

/// Runs `f` on 8 tasks at once (released together); answers how many returned true.
pub async fn race<F, Fut>(store: &Arc<dyn Store>, f: F) -> usize
where
    F: Fn(Arc<dyn Store>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, f, barrier) = (store.clone(), f.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                f(s).await
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    wins
}

pub async fn delete_device_cascades(ctx: &Ctx) {
    let s = ctx.s();
    let (_, project, d) = owner_project_device(s, "casc").await;
    let keep = device(s, project.id, "dsn-keep").await;
    let now = Utc::now();
    s.create_enrollment(d.id, "casc-hash", now + Duration::hours(1))
        .await
        .unwrap();
    let t1 = s
        .create_reverse_tunnel(new_tunnel(d.id, "casc-1.example.com"))
        .await
        .unwrap();
    let t2 = s
        .create_reverse_tunnel(new_tunnel(d.id, "casc-2.example.com"))
        .await
        .unwrap();
    let kept = s
        .create_reverse_tunnel(new_tunnel(keep.id, "keep.example.com"))
        .await
        .unwrap();
    let entry = |tunnel: i64| NewAccessLogEntry {
        reverse_tunnel_id: tunnel,
        at: now,
        user_id: None,
        method: "GET".into(),
        path: "/".into(),
        status: 200,
        bytes_in: 1,
        bytes_out: 2,
        duration_ms: 3,
        client_ip: None,
        user_agent: None,
    };
    s.insert_access_log(&[entry(t1.id), entry(t2.id), entry(kept.id)])
        .await
        .unwrap();

    s.delete_device(d.id).await.unwrap();
    assert_eq!(s.reverse_tunnel_by_id(t1.id).await.unwrap(), None);
    assert_eq!(
        s.reverse_tunnel_by_public_url("casc-2.example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.list_reverse_tunnels(d.id).await.unwrap(), vec![]);
    assert_eq!(s.list_access_log(t1.id, 10).await.unwrap(), vec![]);
    assert_eq!(s.list_access_log(t2.id, 10).await.unwrap(), vec![]);
    assert_eq!(s.consume_enrollment("casc-hash", now).await.unwrap(), None);
    // The enrollment row is gone, so its hash is free again.
    s.create_enrollment(keep.id, "casc-hash", now + Duration::hours(1))
        .await
        .unwrap();
    // The other device is untouched.
    assert_eq!(
        s.list_all_reverse_tunnels().await.unwrap(),
        vec![kept.clone()]
    );
    assert_eq!(s.list_access_log(kept.id, 10).await.unwrap().len(), 1);
    // The public URL of a deleted tunnel can be taken again.
    s.create_reverse_tunnel(new_tunnel(keep.id, "casc-1.example.com"))
        .await
        .unwrap();
}
