//! Traffic analytics: rollup rows, the filtered access log, retention.

use burrow_store::*;
use chrono::Duration;

use crate::{device, new_tunnel, owner_project_device, ts, us, Ctx};

fn rollup(tunnel: i64, resolution: i64, start: Timestamp, requests: i64) -> TrafficRollup {
    let mut latency = LatencySplit::default();
    latency.device.record(40);
    TrafficRollup {
        reverse_tunnel_id: tunnel,
        resolution_secs: resolution,
        bucket_start: start,
        requests,
        by_class: [0, requests - 1, 0, 1, 0],
        bytes_in: 3 * requests,
        bytes_out: 100 * requests,
        distinct_clients: 2,
        latency,
    }
}

fn entry(tunnel: i64, at: Timestamp, status: i64, ip: &str) -> NewAccessLogEntry {
    NewAccessLogEntry {
        reverse_tunnel_id: tunnel,
        at,
        user_id: None,
        method: "GET".into(),
        path: "/".into(),
        status,
        bytes_in: 0,
        bytes_out: 1,
        duration_ms: 2,
        client_ip: Some(ip.into()),
        user_agent: Some("curl/8".into()),
    }
}

pub async fn traffic_rollups_and_retention(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "traffic").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "traffic.example.com"))
        .await
        .unwrap();
    let base = ts(1_750_000_000, 0);
    s.insert_traffic_rollups(&[]).await.unwrap();
    let rows = vec![
        rollup(t.id, MINUTE, base, 5),
        rollup(t.id, MINUTE, base, 2), // the same bucket, another node
        rollup(t.id, MINUTE, base + Duration::minutes(1), 1),
        rollup(t.id, HOUR, base, 8),
        rollup(9_999_999, MINUTE, base, 1), // a deleted tunnel: dropped
    ];
    s.insert_traffic_rollups(&rows).await.unwrap();
    let got = s
        .list_traffic_rollups(t.id, MINUTE, base, base + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 2, "[from, to): the second minute is outside");
    assert_eq!(
        got[0],
        TrafficRollup {
            bucket_start: us(base),
            ..rows[0].clone()
        }
    );
    assert_eq!(got[1].requests, 2);
    let hours = s
        .list_traffic_rollups(t.id, HOUR, base, base + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].latency.device.quantile(0.5), Some(50));

    let usage = s
        .project_tunnel_usage(d.project_id, base, base + Duration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        usage,
        vec![TunnelUsage {
            reverse_tunnel_id: t.id,
            tunnel_name: t.name.clone(),
            device_id: d.id,
            dsn: d.dsn.clone(),
            requests: 8,
            errors: 3,
            bytes_in: 24,
            bytes_out: 800,
        }],
        "minute rows of the range added up"
    );
    assert!(s
        .project_tunnel_usage(d.project_id + 1000, base, base + Duration::hours(1), 10)
        .await
        .unwrap()
        .is_empty());

    s.insert_access_log(&[
        entry(t.id, base, 200, "10.0.0.1"),
        entry(t.id, base + Duration::seconds(1), 503, "10.0.0.2"),
        entry(t.id, base + Duration::seconds(2), 404, "10.0.0.1"),
    ])
    .await
    .unwrap();
    let filter = |f: AccessLogFilter| AccessLogFilter {
        reverse_tunnel_id: t.id,
        limit: 100,
        ..f
    };
    let all = s
        .list_access_log_filtered(&filter(AccessLogFilter::default()))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.status).collect::<Vec<_>>(),
        [404, 503, 200]
    );
    assert_eq!(all[0].client_ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(all[0].user_agent.as_deref(), Some("curl/8"));
    let errors = s
        .list_access_log_filtered(&filter(AccessLogFilter {
            status_min: Some(500),
            status_max: Some(599),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    let by_client = s
        .list_access_log_filtered(&filter(AccessLogFilter {
            client_ip: Some("10.0.0.1".into()),
            from: Some(base + Duration::seconds(1)),
            ..Default::default()
        }))
        .await
        .unwrap();
    assert_eq!(
        by_client.iter().map(|e| e.status).collect::<Vec<_>>(),
        [404]
    );

    // Retention: everything before the cutoffs goes, the rest stays.
    let pruned = s
        .prune_traffic(&TrafficCutoffs {
            access_log_before: base + Duration::seconds(1),
            minute_before: base + Duration::minutes(1),
            hour_before: base,
        })
        .await
        .unwrap();
    assert_eq!(
        pruned,
        PrunedRows {
            access_log: 1,
            minute: 2,
            hour: 0,
            principal_usage: 0,
        }
    );
    let left = s
        .list_access_log_filtered(&filter(AccessLogFilter::default()))
        .await
        .unwrap();
    assert_eq!(left.len(), 2);
    let minutes = s
        .list_traffic_rollups(t.id, MINUTE, base, base + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(minutes.len(), 1);
}

fn used(
    tunnel: i64,
    hour: Timestamp,
    kind: PrincipalKind,
    id: i64,
    requests: i64,
) -> PrincipalUsage {
    PrincipalUsage {
        reverse_tunnel_id: tunnel,
        bucket_start: hour,
        kind,
        principal_id: id,
        requests,
        errors: 1,
        bytes_in: 10 * requests,
        bytes_out: 100 * requests,
    }
}

pub async fn principal_usage_per_device(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, project, d) = owner_project_device(s, "usage").await;
    let d2 = device(s, project.id, "dsn-usage-2").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "usage1.example.com"))
        .await
        .unwrap();
    let t2 = s
        .create_reverse_tunnel(new_tunnel(d.id, "usage2.example.com"))
        .await
        .unwrap();
    let t3 = s
        .create_reverse_tunnel(new_tunnel(d2.id, "usage3.example.com"))
        .await
        .unwrap();
    let key = s
        .create_tunnel_key(NewTunnelKey {
            reverse_tunnel_id: t3.id,
            name: "monitoring".into(),
            prefix: "bk_usage".into(),
            key_hash: "usage-hash".into(),
            methods: vec![],
            expires_at: None,
            created_by: Some(owner.id),
        })
        .await
        .unwrap();
    let base = ts(1_750_000_000 / 3600 * 3600, 0);
    let next = base + Duration::hours(1);
    s.add_principal_usage(&[]).await.unwrap();
    use PrincipalKind::*;
    s.add_principal_usage(&[
        used(t.id, base, User, owner.id, 5),
        used(t2.id, base, User, owner.id, 2), // another tunnel of the same device
        used(t3.id, base, Key, key.id, 4),
        used(t.id, base, Anonymous, 0, 1),
        used(9_999_999, base, User, owner.id, 50), // a deleted tunnel: dropped
    ])
    .await
    .unwrap();
    // Another node (or a later flush) adds to the same rows.
    s.add_principal_usage(&[
        used(t.id, base, User, owner.id, 3),
        used(t.id, next, User, owner.id, 7),
    ])
    .await
    .unwrap();
    let got = s
        .project_principal_usage(project.id, base, next, 10)
        .await
        .unwrap();
    let row =
        |device_id, kind: &str, id, label: Option<&str>, requests, errors| DevicePrincipalUsage {
            device_id,
            principal_kind: kind.into(),
            principal_id: id,
            label: label.map(Into::into),
            requests,
            errors,
            bytes_in: 10 * requests,
            bytes_out: 100 * requests,
        };
    assert_eq!(
        got,
        vec![
            row(d.id, "user", owner.id, Some("usage@example.com"), 10, 3),
            row(d2.id, "key", key.id, Some("monitoring"), 4, 1),
            row(d.id, "anonymous", 0, None, 1, 1),
        ],
        "[from, to) added up per device and principal, most first"
    );
    let all = s
        .project_principal_usage(project.id, base, next + Duration::hours(1), 1)
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![row(
            d.id,
            "user",
            owner.id,
            Some("usage@example.com"),
            17,
            4
        )]
    );
    assert!(s
        .project_principal_usage(project.id + 1000, base, next, 10)
        .await
        .unwrap()
        .is_empty());

    // Retention: the hourly cutoff prunes the first hour, keeps the second.
    let pruned = s
        .prune_traffic(&TrafficCutoffs {
            access_log_before: base,
            minute_before: base,
            hour_before: next,
        })
        .await
        .unwrap();
    assert_eq!(pruned.principal_usage, 4, "four rows of the first hour");
    let left = s
        .project_principal_usage(project.id, base, next + Duration::hours(1), 10)
        .await
        .unwrap();
    assert_eq!(
        left,
        vec![row(d.id, "user", owner.id, Some("usage@example.com"), 7, 1)]
    );
}
