//! Broker tunnels: round trip, conflicts, paging, single-use tokens, connection states.

use burrow_store::*;
use chrono::Duration;

use crate::devices::race;
use crate::{assert_conflict, assert_not_found, owner_project_device, ts, us, Ctx};

/// A broker tunnel with every field set (timestamps with nanoseconds).
fn tunnel(id: &str, project_id: Option<i64>, created_at: Timestamp) -> BrokerTunnel {
    BrokerTunnel {
        tunnel_id: id.to_string(),
        tunnel_arn: format!("arn:aws:iot:local:000000000000:tunnel/{id}"),
        project_id,
        status: TunnelStatus::Open,
        description: Some(format!("tunnel {id}")),
        thing_name: Some("thing-a".to_string()),
        services: vec!["HTTP-8080".to_string(), "SSH".to_string()],
        tags: vec![Tag {
            key: "env".into(),
            value: "prod".into(),
        }],
        max_lifetime_minutes: 720,
        source: TokenSlot {
            hash: Some(format!("src-{id}")),
            nonce: Some(format!("nonce-src-{id}")),
            ..Default::default()
        },
        destination: TokenSlot {
            hash: Some(format!("dst-{id}")),
            nonce: Some(format!("nonce-dst-{id}")),
            ..Default::default()
        },
        created_at,
        last_updated_at: created_at,
        expires_at: created_at + Duration::minutes(720),
    }
}

/// `t` as a store gives it back: timestamps at microsecond precision.
fn stored(mut t: BrokerTunnel) -> BrokerTunnel {
    t.created_at = us(t.created_at);
    t.last_updated_at = us(t.last_updated_at);
    t.expires_at = us(t.expires_at);
    for slot in [&mut t.source, &mut t.destination] {
        slot.used_at = slot.used_at.map(us);
        slot.state_updated_at = slot.state_updated_at.map(us);
    }
    t
}

pub async fn broker_tunnel_roundtrip(ctx: &Ctx) {
    let s = ctx.s();
    let (_, project, _) = owner_project_device(s, "bt").await;
    let at = ts(1_750_000_000, 123_456_789);
    let mut t = tunnel("t1", Some(project.id), at);
    t.source.used_at = Some(at + Duration::seconds(1));
    t.source.client_token_hash = Some("client-1".into());
    t.source.connected = true;
    t.source.state_updated_at = Some(at + Duration::seconds(2));
    s.insert_broker_tunnel(&t).await.unwrap();
    assert_eq!(
        s.broker_tunnel("t1").await.unwrap(),
        Some(stored(t.clone()))
    );
    assert_eq!(s.broker_tunnel("nope").await.unwrap(), None);

    // Minimal row: no project, thing, description, tokens, services or tags.
    let bare = BrokerTunnel {
        project_id: None,
        description: None,
        thing_name: None,
        services: vec![],
        tags: vec![],
        source: TokenSlot::default(),
        destination: TokenSlot::default(),
        status: TunnelStatus::Closed,
        ..tunnel("t2", None, at)
    };
    s.insert_broker_tunnel(&bare).await.unwrap();
    assert_eq!(
        s.broker_tunnel("t2").await.unwrap(),
        Some(stored(bare.clone()))
    );

    let (found, mode) = s
        .broker_tunnel_by_token_hash("src-t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.tunnel_id.as_str(), mode), ("t1", TokenMode::Source));
    let (found, mode) = s
        .broker_tunnel_by_token_hash("dst-t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.tunnel_id.as_str(), mode),
        ("t1", TokenMode::Destination)
    );
    assert_eq!(s.broker_tunnel_by_token_hash("nope").await.unwrap(), None);

    // Whole-row update (a rotation: new tokens, closed...).
    let mut t2 = t.clone();
    t2.status = TunnelStatus::Closed;
    t2.source = TokenSlot {
        hash: Some("src-new".into()),
        nonce: Some("n2".into()),
        ..Default::default()
    };
    t2.destination.connected = true;
    t2.tags.push(Tag {
        key: "k".into(),
        value: "v".into(),
    });
    t2.services = vec!["HTTP-80".into()];
    t2.description = None;
    t2.last_updated_at = at + Duration::minutes(3);
    t2.expires_at = at + Duration::minutes(5);
    s.update_broker_tunnel(&t2).await.unwrap();
    assert_eq!(
        s.broker_tunnel("t1").await.unwrap(),
        Some(stored(t2.clone()))
    );
    assert_eq!(s.broker_tunnel_by_token_hash("src-t1").await.unwrap(), None);
    assert!(s
        .broker_tunnel_by_token_hash("src-new")
        .await
        .unwrap()
        .is_some());
    assert_not_found(s.update_broker_tunnel(&tunnel("missing", None, at)).await);

    // Open tunnels expiring before a time, soonest first.
    let mut t3 = tunnel("t3", None, at);
    t3.expires_at = at + Duration::minutes(1);
    s.insert_broker_tunnel(&t3).await.unwrap();
    let mut t4 = tunnel("t4", None, at);
    t4.expires_at = at + Duration::minutes(10);
    s.insert_broker_tunnel(&t4).await.unwrap();
    let ids = |v: Vec<BrokerTunnel>| v.into_iter().map(|t| t.tunnel_id).collect::<Vec<_>>();
    let soon = s
        .list_open_broker_tunnels_expiring_before(at + Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!(ids(soon), vec!["t3", "t4"]); // t1 is closed, t2 closed
    let soon = s
        .list_open_broker_tunnels_expiring_before(at + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(ids(soon), vec!["t3"]);

    s.delete_broker_tunnel("t3").await.unwrap();
    assert_eq!(s.broker_tunnel("t3").await.unwrap(), None);
    assert_not_found(s.delete_broker_tunnel("t3").await);
}

pub async fn broker_tunnel_conflicts(ctx: &Ctx) {
    let s = ctx.s();
    let at = ts(1_750_000_000, 0);
    s.insert_broker_tunnel(&tunnel("c1", None, at))
        .await
        .unwrap();
    assert_conflict(s.insert_broker_tunnel(&tunnel("c1", None, at)).await);
    // Another tunnel reusing c1's source token hash.
    let mut other = tunnel("c2", None, at);
    other.source.hash = Some("src-c1".into());
    assert_conflict(s.insert_broker_tunnel(&other).await);
    other.source.hash = None;
    s.insert_broker_tunnel(&other).await.unwrap();
    let mut third = tunnel("c3", None, at);
    third.source.hash = None; // several NULL hashes are fine
    s.insert_broker_tunnel(&third).await.unwrap();
    third.destination.hash = Some("dst-c1".into());
    assert_conflict(s.update_broker_tunnel(&third).await);
}

pub async fn broker_tunnel_paging(ctx: &Ctx) {
    let s = ctx.s();
    let (_, p1, _) = owner_project_device(s, "page1").await;
    let (_, p2, _) = owner_project_device(s, "page2").await;
    let base = ts(1_750_000_000, 250_000_123);
    // Created at increasing times; b and c share a created_at (tie broken by id).
    let specs = [
        ("a", 0, "thing-a", p1.id),
        ("b", 1, "thing-b", p1.id),
        ("c", 1, "thing-a", p1.id),
        ("d", 2, "thing-a", p2.id),
        ("e", 3, "thing-b", p1.id),
        ("f", 4, "thing-a", p1.id),
        ("g", 5, "thing-a", p1.id),
    ];
    for (id, secs, thing, project) in specs {
        let mut t = tunnel(id, Some(project), base + Duration::seconds(secs));
        t.thing_name = Some(thing.into());
        s.insert_broker_tunnel(&t).await.unwrap();
    }
    let page = |filter: BrokerTunnelFilter| async move {
        s.list_broker_tunnels(&filter)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.tunnel_id)
            .collect::<Vec<_>>()
    };
    let all = page(BrokerTunnelFilter::default()).await;
    assert_eq!(all, ["g", "f", "e", "d", "c", "b", "a"]);

    // Pages of 3 with the cursor of each page's last row.
    let mut seen = vec![];
    let mut before = None;
    loop {
        let rows = s
            .list_broker_tunnels(&BrokerTunnelFilter {
                before: before.clone(),
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(rows.len() <= 3);
        let Some(last) = rows.last() else { break };
        before = Some((last.created_at, last.tunnel_id.clone()));
        seen.extend(rows.into_iter().map(|t| t.tunnel_id));
    }
    assert_eq!(seen, all);

    // Thing name filter, paged.
    let thing_a = |before, limit| BrokerTunnelFilter {
        thing_name: Some("thing-a".into()),
        before,
        limit,
        ..Default::default()
    };
    assert_eq!(page(thing_a(None, 0)).await, ["g", "f", "d", "c", "a"]);
    assert_eq!(page(thing_a(None, 2)).await, ["g", "f"]);
    let f = s.broker_tunnel("f").await.unwrap().unwrap();
    assert_eq!(
        page(thing_a(Some((f.created_at, f.tunnel_id)), 2)).await,
        ["d", "c"]
    );
    let c = s.broker_tunnel("c").await.unwrap().unwrap();
    assert_eq!(
        page(thing_a(Some((c.created_at, c.tunnel_id.clone())), 2)).await,
        ["a"]
    );
    // The cursor is exclusive on (created_at, tunnel_id): b shares c's created_at.
    let all_before_c = BrokerTunnelFilter {
        before: Some((c.created_at, "c".into())),
        ..Default::default()
    };
    assert_eq!(page(all_before_c).await, ["b", "a"]);

    // Project filter, with the thing filter.
    let proj = |project_id| BrokerTunnelFilter {
        project_id: Some(project_id),
        ..Default::default()
    };
    assert_eq!(page(proj(p2.id)).await, ["d"]);
    assert_eq!(
        page(BrokerTunnelFilter {
            thing_name: Some("thing-b".into()),
            ..proj(p1.id)
        })
        .await,
        ["e", "b"]
    );
    assert_eq!(
        page(BrokerTunnelFilter {
            thing_name: Some("none".into()),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
}

pub async fn spend_token_single_use(ctx: &Ctx) {
    let s = ctx.s();
    let at = ts(1_750_000_000, 987_654_321);
    s.insert_broker_tunnel(&tunnel("s1", None, at))
        .await
        .unwrap();
    let (src, dst) = (TokenMode::Source, TokenMode::Destination);
    // Wrong hash, wrong slot, missing tunnel: nothing spent.
    assert!(!s.spend_token("s1", src, "dst-s1", None, at).await.unwrap());
    assert!(!s.spend_token("s1", src, "bogus", None, at).await.unwrap());
    assert!(!s
        .spend_token("nope", src, "src-s1", None, at)
        .await
        .unwrap());

    assert!(s
        .spend_token("s1", src, "src-s1", Some("client-hash"), at)
        .await
        .unwrap());
    assert!(!s
        .spend_token("s1", src, "src-s1", Some("other"), at)
        .await
        .unwrap());
    let got = s.broker_tunnel("s1").await.unwrap().unwrap();
    assert_eq!(got.source.used_at, Some(us(at)));
    assert_eq!(got.source.client_token_hash.as_deref(), Some("client-hash"));
    assert_eq!(got.destination.used_at, None);

    // The destination slot is independent; no client hash keeps the current one (none).
    assert!(s.spend_token("s1", dst, "dst-s1", None, at).await.unwrap());
    assert!(!s.spend_token("s1", dst, "dst-s1", None, at).await.unwrap());
    let got = s.broker_tunnel("s1").await.unwrap().unwrap();
    assert_eq!(
        (got.destination.used_at, got.destination.client_token_hash),
        (Some(us(at)), None)
    );
}

pub async fn spend_token_race(ctx: &Ctx) {
    let s = ctx.s();
    let at = ts(1_750_000_000, 0);
    s.insert_broker_tunnel(&tunnel("race", None, at))
        .await
        .unwrap();
    for mode in [TokenMode::Source, TokenMode::Destination] {
        let hash = match mode {
            TokenMode::Source => "src-race",
            TokenMode::Destination => "dst-race",
        };
        let wins = race(&ctx.store, move |s| async move {
            s.spend_token("race", mode, hash, Some("c"), at)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(wins, 1, "{mode:?}");
    }
}

pub async fn connection_state(ctx: &Ctx) {
    let s = ctx.s();
    let at = ts(1_750_000_000, 314_159_265);
    let t = tunnel("cs", None, at);
    s.insert_broker_tunnel(&t).await.unwrap();
    let later = at + Duration::seconds(9);
    s.set_connection_state("cs", TokenMode::Destination, true, later)
        .await
        .unwrap();
    let got = s.broker_tunnel("cs").await.unwrap().unwrap();
    assert!(got.destination.connected && !got.source.connected);
    assert_eq!(got.destination.state_updated_at, Some(us(later)));
    assert_eq!(got.source.state_updated_at, None);
    assert_eq!(got.last_updated_at, us(at));

    s.set_connection_state("cs", TokenMode::Source, true, later)
        .await
        .unwrap();
    s.set_connection_state(
        "cs",
        TokenMode::Destination,
        false,
        later + Duration::seconds(1),
    )
    .await
    .unwrap();
    let got = s.broker_tunnel("cs").await.unwrap().unwrap();
    assert!(!got.destination.connected && got.source.connected);
    assert_eq!(
        got.destination.state_updated_at,
        Some(us(later + Duration::seconds(1)))
    );
    assert_not_found(
        s.set_connection_state("nope", TokenMode::Source, true, at)
            .await,
    );
}
