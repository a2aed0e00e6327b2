//! Reverse tunnels, usage counters, access log.

use burrow_store::*;
use chrono::Duration;

use crate::devices::race;
use crate::{assert_conflict, assert_not_found, new_tunnel, owner_project_device, ts, us, Ctx};

pub async fn reverse_tunnels_roundtrip(ctx: &Ctx) {
    let s = ctx.s();
    let (_, project, d) = owner_project_device(s, "rt").await;
    let mut new = new_tunnel(d.id, "Device-ABC123.Fleet.Example.com");
    new.allowed_user_ids = vec![3, 1, 2];
    new.local_port = 3000;
    new.protocol = "wss".into();
    new.require_auth = false;
    let t = s.create_reverse_tunnel(new).await.unwrap();
    assert_eq!(t.device_id, d.id);
    assert_eq!(t.public_url, "device-abc123.fleet.example.com");
    assert_eq!(
        (t.name.as_str(), t.description.as_deref()),
        ("Web Dashboard", Some("Robot control interface"))
    );
    assert_eq!((t.local_port, t.protocol.as_str()), (3000, "wss"));
    assert!(t.is_enabled && !t.require_auth);
    assert_eq!(t.allowed_user_ids, vec![3, 1, 2]);
    assert_eq!((t.total_requests, t.last_accessed_at), (0, None));
    assert_eq!((t.tunnel_id.clone(), t.tunnel_arn.clone()), (None, None));
    assert_eq!(
        (
            t.source_access_token.clone(),
            t.destination_access_token.clone()
        ),
        (None, None)
    );
    assert_eq!((t.updated_at, t.expires_at), (None, None));

    assert_eq!(s.reverse_tunnel_by_id(t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(s.reverse_tunnel_by_id(9_999_999).await.unwrap(), None);
    assert_eq!(
        s.reverse_tunnel_by_public_url("DEVICE-abc123.fleet.example.com")
            .await
            .unwrap(),
        Some(t.clone())
    );
    assert_eq!(
        s.reverse_tunnel_by_public_url("other.example.com")
            .await
            .unwrap(),
        None
    );

    let other = crate::device(s, project.id, "dsn-rt-2").await;
    let t2 = s
        .create_reverse_tunnel(new_tunnel(d.id, "second.example.com"))
        .await
        .unwrap();
    let t3 = s
        .create_reverse_tunnel(new_tunnel(other.id, "third.example.com"))
        .await
        .unwrap();
    assert_eq!(t2.allowed_user_ids, Vec::<i64>::new());
    assert_eq!(
        s.list_reverse_tunnels(d.id).await.unwrap(),
        vec![t.clone(), t2.clone()]
    );
    assert_eq!(
        s.list_reverse_tunnels(other.id).await.unwrap(),
        vec![t3.clone()]
    );
    assert_eq!(
        s.list_all_reverse_tunnels().await.unwrap(),
        vec![t.clone(), t2.clone(), t3]
    );
    assert_not_found(
        s.create_reverse_tunnel(new_tunnel(9_999_999, "x.example.com"))
            .await,
    );

    s.delete_reverse_tunnel(t2.id).await.unwrap();
    assert_eq!(s.list_reverse_tunnels(d.id).await.unwrap(), vec![t]);
    assert_not_found(s.delete_reverse_tunnel(t2.id).await);
}

pub async fn duplicate_public_url_conflicts(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "url").await;
    s.create_reverse_tunnel(new_tunnel(d.id, "taken.example.com"))
        .await
        .unwrap();
    assert_conflict(
        s.create_reverse_tunnel(new_tunnel(d.id, "TAKEN.example.com"))
            .await,
    );
    assert_eq!(s.list_reverse_tunnels(d.id).await.unwrap().len(), 1);
}

pub async fn update_reverse_tunnel_patch(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "patch").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "patch.example.com"))
        .await
        .unwrap();

    // Only the Some fields change.
    let at = ts(1_750_000_000, 111_222_333);
    let patch = ReverseTunnelPatch {
        name: Some("Camera".into()),
        ..Default::default()
    };
    let got = s.update_reverse_tunnel(t.id, patch, at).await.unwrap();
    let expected = ReverseTunnel {
        name: "Camera".into(),
        updated_at: Some(us(at)),
        ..t.clone()
    };
    assert_eq!(got, expected);
    assert_eq!(
        s.reverse_tunnel_by_id(t.id).await.unwrap(),
        Some(expected.clone())
    );

    let at2 = at + Duration::seconds(5);
    let patch = ReverseTunnelPatch {
        name: None,
        description: Some(None),
        is_enabled: Some(false),
        local_port: Some(9090),
        protocol: Some("https".into()),
        require_auth: Some(false),
        allowed_user_ids: Some(vec![7, 8]),
        ip_allow: Some(vec!["10.0.0.0/8".into(), "2001:db8::/32".into()]),
        ip_deny: Some(vec!["10.1.0.0/16".into()]),
        limits: Some(TunnelLimits {
            rate_limit: Some(RateLimit {
                requests_per_second: 10,
                burst: 20,
                per: RateLimitScope::ClientIp,
            }),
            bandwidth_limit: Some(BandwidthLimit {
                bytes_per_second: 1_000_000,
            }),
            max_connections_per_client: Some(4),
        }),
    };
    assert_eq!(patch.limits, Some(patch_limits()));
    let got = s.update_reverse_tunnel(t.id, patch, at2).await.unwrap();
    let expected = ReverseTunnel {
        description: None,
        is_enabled: false,
        local_port: 9090,
        protocol: "https".into(),
        require_auth: false,
        allowed_user_ids: vec![7, 8],
        ip_allow: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        ip_deny: vec!["10.1.0.0/16".into()],
        updated_at: Some(us(at2)),
        limits: patch_limits(),
        ..expected
    };
    assert_eq!(got, expected);

    // Setting a description again; an empty patch only moves updated_at.
    let patch = ReverseTunnelPatch {
        description: Some(Some("back".into())),
        ..Default::default()
    };
    let got = s.update_reverse_tunnel(t.id, patch, at2).await.unwrap();
    assert_eq!(got.description.as_deref(), Some("back"));
    let got = s
        .update_reverse_tunnel(t.id, ReverseTunnelPatch::default(), at)
        .await
        .unwrap();
    assert_eq!(
        got,
        ReverseTunnel {
            updated_at: Some(us(at)),
            ..got.clone()
        }
    );
    assert_eq!(
        (got.name.as_str(), got.allowed_user_ids.clone()),
        ("Camera", vec![7, 8])
    );

    assert_not_found(
        s.update_reverse_tunnel(9_999_999, ReverseTunnelPatch::default(), at)
            .await,
    );
}

pub async fn reverse_tunnel_broker_link(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "link").await;
    let t1 = s
        .create_reverse_tunnel(new_tunnel(d.id, "l1.example.com"))
        .await
        .unwrap();
    let t2 = s
        .create_reverse_tunnel(new_tunnel(d.id, "l2.example.com"))
        .await
        .unwrap();
    let now = ts(1_750_000_000, 999_999_999);
    let link = BrokerLink {
        tunnel_id: Some("tun-1".into()),
        tunnel_arn: Some("arn:aws:iot:local:000000000000:tunnel/tun-1".into()),
        expires_at: Some(now + Duration::hours(12)),
    };
    let got = s
        .set_reverse_tunnel_broker(t1.id, link.clone(), now)
        .await
        .unwrap();
    assert_eq!(got.tunnel_id, link.tunnel_id);
    assert_eq!(got.tunnel_arn, link.tunnel_arn);
    assert_eq!(got.expires_at, Some(us(now + Duration::hours(12))));
    assert_eq!(got.updated_at, Some(us(now)));
    let link2 = BrokerLink {
        expires_at: Some(now + Duration::hours(1)),
        ..link.clone()
    };
    s.set_reverse_tunnel_broker(t2.id, link2, now)
        .await
        .unwrap();

    // Earliest expiry first; none without a broker tunnel.
    let ids = |v: Vec<ReverseTunnel>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let soon = s
        .list_reverse_tunnels_expiring_before(now + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(ids(soon), vec![t2.id]);
    let all = s
        .list_reverse_tunnels_expiring_before(now + Duration::hours(13))
        .await
        .unwrap();
    assert_eq!(ids(all), vec![t2.id, t1.id]);
    assert_eq!(
        s.list_reverse_tunnels_expiring_before(now).await.unwrap(),
        vec![]
    );

    // Clearing the link.
    let got = s
        .set_reverse_tunnel_broker(t1.id, BrokerLink::default(), now)
        .await
        .unwrap();
    assert_eq!(
        (got.tunnel_id, got.tunnel_arn, got.expires_at),
        (None, None, None)
    );
    assert_not_found(s.set_reverse_tunnel_broker(9_999_999, link, now).await);
}

pub async fn usage_counters(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "use").await;
    let t1 = s
        .create_reverse_tunnel(new_tunnel(d.id, "u1.example.com"))
        .await
        .unwrap();
    let t2 = s
        .create_reverse_tunnel(new_tunnel(d.id, "u2.example.com"))
        .await
        .unwrap();
    let at = ts(1_750_000_000, 123_456_789);
    let delta = |id, requests, last| UsageDelta {
        reverse_tunnel_id: id,
        requests,
        last_accessed_at: last,
    };
    s.add_usage(&[]).await.unwrap();
    s.add_usage(&[
        delta(t1.id, 5, at),
        delta(t2.id, 1, at),
        delta(9_999_999, 4, at),
    ])
    .await
    .unwrap();
    // An older last_accessed_at does not move it back; counts add up.
    s.add_usage(&[delta(t1.id, 2, at - Duration::seconds(30))])
        .await
        .unwrap();
    let got = s.reverse_tunnel_by_id(t1.id).await.unwrap().unwrap();
    assert_eq!(
        (got.total_requests, got.last_accessed_at),
        (7, Some(us(at)))
    );
    s.add_usage(&[delta(t1.id, 1, at + Duration::seconds(30))])
        .await
        .unwrap();
    let got = s.reverse_tunnel_by_id(t1.id).await.unwrap().unwrap();
    assert_eq!(
        (got.total_requests, got.last_accessed_at),
        (8, Some(us(at + Duration::seconds(30))))
    );
    let got = s.reverse_tunnel_by_id(t2.id).await.unwrap().unwrap();
    assert_eq!(
        (got.total_requests, got.last_accessed_at),
        (1, Some(us(at)))
    );
}

pub async fn usage_concurrent(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "usec").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "uc.example.com"))
        .await
        .unwrap();
    let at = ts(1_750_000_000, 0);
    let id = t.id;
    // Concurrent flushes (as from several nodes) are not lost.
    race(&ctx.store, move |s| async move {
        for i in 0..5 {
            let d = UsageDelta {
                reverse_tunnel_id: id,
                requests: 3,
                last_accessed_at: at + Duration::seconds(i),
            };
            s.add_usage(&[d]).await.unwrap();
        }
        true
    })
    .await;
    let got = s.reverse_tunnel_by_id(t.id).await.unwrap().unwrap();
    assert_eq!(got.total_requests, 8 * 5 * 3);
    assert_eq!(got.last_accessed_at, Some(at + Duration::seconds(4)));
}

pub async fn access_log(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, _, d) = owner_project_device(s, "log").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "log.example.com"))
        .await
        .unwrap();
    let other = s
        .create_reverse_tunnel(new_tunnel(d.id, "log2.example.com"))
        .await
        .unwrap();
    let base = ts(1_750_000_000, 555_555_555);
    let entry = |tunnel: i64, i: i64| NewAccessLogEntry {
        reverse_tunnel_id: tunnel,
        at: base + Duration::milliseconds(i),
        user_id: if i % 2 == 0 { Some(owner.id) } else { None },
        method: if i % 2 == 0 {
            "GET".into()
        } else {
            "POST".into()
        },
        path: format!("/p/{i}"),
        status: 200 + i,
        bytes_in: 10 * i,
        bytes_out: 100 * i,
        duration_ms: i,
        client_ip: Some(format!("10.0.0.{i}")),
        user_agent: (i % 2 == 0).then(|| format!("agent/{i}")),
    };
    s.insert_access_log(&[]).await.unwrap();
    let batch: Vec<_> = (0..5).map(|i| entry(t.id, i)).collect();
    s.insert_access_log(&batch).await.unwrap();
    // Lines of a missing tunnel are dropped, the rest of the batch kept.
    s.insert_access_log(&[entry(other.id, 9), entry(9_999_999, 9)])
        .await
        .unwrap();

    let got = s.list_access_log(t.id, 3).await.unwrap();
    assert_eq!(got.len(), 3);
    for (g, i) in got.iter().zip([4, 3, 2]) {
        let e = entry(t.id, i);
        assert_eq!(g.reverse_tunnel_id, t.id);
        assert_eq!(
            (g.at, g.user_id, g.method.as_str(), g.path.as_str()),
            (us(e.at), e.user_id, e.method.as_str(), e.path.as_str())
        );
        assert_eq!(
            (g.status, g.bytes_in, g.bytes_out, g.duration_ms),
            (e.status, e.bytes_in, e.bytes_out, e.duration_ms)
        );
    }
    assert!(got[0].id > got[1].id && got[1].id > got[2].id);
    assert_eq!(s.list_access_log(t.id, 100).await.unwrap().len(), 5);
    assert_eq!(s.list_access_log(other.id, 100).await.unwrap().len(), 1);
    assert_eq!(s.list_access_log(9_999_999, 100).await.unwrap(), vec![]);

    // A flush under load: more lines than one statement takes, kept whole and in order.
    let many: Vec<_> = (100..1_303).map(|i| entry(other.id, i)).collect();
    s.insert_access_log(&many).await.unwrap();
    let got = s.list_access_log(other.id, 2_000).await.unwrap();
    assert_eq!(got.len(), 1 + many.len());
    let paths: Vec<&str> = got.iter().map(|g| g.path.as_str()).collect();
    let want: Vec<String> = (100..1_303).rev().map(|i| format!("/p/{i}")).collect();
    assert_eq!(
        paths[..many.len()],
        want.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    assert_eq!(paths[many.len()], "/p/9");
}

fn patch_limits() -> TunnelLimits {
    TunnelLimits {
        rate_limit: Some(RateLimit {
            requests_per_second: 10,
            burst: 20,
            per: RateLimitScope::ClientIp,
        }),
        bandwidth_limit: Some(BandwidthLimit {
            bytes_per_second: 1_000_000,
        }),
        max_connections_per_client: Some(4),
    }
}
