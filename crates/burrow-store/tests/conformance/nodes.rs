//! Cluster nodes: heartbeat leases, exclusive (single-node) claims, insert-if-absent settings.

use std::sync::Arc;

use burrow_store::*;
use chrono::{Duration, Utc};

use crate::{us, Ctx};

fn claim(name: &str, instance: &str, exclusive: bool) -> NodeClaim {
    NodeClaim {
        name: name.to_string(),
        instance_id: instance.to_string(),
        region: "eu".to_string(),
        roles: "api,edge,broker,scheduler".to_string(),
        cluster_url: Some(format!("https://{name}.internal:8702")),
        exclusive,
    }
}

pub async fn node_lease_lifecycle(ctx: &Ctx) {
    let s = ctx.s();
    let t0 = Utc::now();
    assert_eq!(
        s.claim_node(&claim("n1", "i1", false), t0).await.unwrap(),
        None
    );
    // The same instance claiming again (a retry) keeps it.
    assert_eq!(
        s.claim_node(&claim("n1", "i1", false), t0).await.unwrap(),
        None
    );
    // Another process of the same name is refused while the lease is live.
    let holder = s
        .claim_node(&claim("n1", "i2", false), t0 + Duration::seconds(1))
        .await
        .unwrap()
        .expect("held");
    assert_eq!(holder.instance_id, "i1");
    assert!(s
        .renew_node("n1", "i1", t0 + Duration::seconds(2), 3)
        .await
        .unwrap());
    assert!(!s
        .renew_node("n1", "i2", t0 + Duration::seconds(2), 0)
        .await
        .unwrap());
    let nodes = s.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1);
    let n = &nodes[0];
    assert_eq!(
        (n.name.as_str(), n.region.as_str(), n.tunnels_held),
        ("n1", "eu", 3)
    );
    assert_eq!(n.cluster_url.as_deref(), Some("https://n1.internal:8702"));
    assert_eq!(n.heartbeat_at, us(t0 + Duration::seconds(2)));
    assert_eq!(n.started_at, us(t0));
    assert!(n.is_alive(t0 + Duration::seconds(6)));
    assert!(!n.is_alive(t0 + Duration::seconds(8)));
    // Lapsed (5 s after the last heartbeat): another instance takes the name over, and the
    // old one learns it at its next renewal.
    let later = t0 + Duration::seconds(2 + NODE_LEASE_SECS + 1);
    assert_eq!(
        s.claim_node(&claim("n1", "i2", false), later)
            .await
            .unwrap(),
        None
    );
    assert!(!s.renew_node("n1", "i1", later, 0).await.unwrap());
    assert_eq!(s.list_nodes().await.unwrap()[0].tunnels_held, 0);
    // A graceful stop frees the name at once; a stale instance cannot release it.
    s.release_node("n1", "i1", later).await.unwrap();
    assert!(s.list_nodes().await.unwrap()[0].is_alive(later));
    s.release_node("n1", "i2", later).await.unwrap();
    let left = &s.list_nodes().await.unwrap()[0];
    assert!(!left.is_alive(later));
    assert_eq!(left.left_at, Some(us(later)));
    assert!(!s.renew_node("n1", "i2", later, 0).await.unwrap());
    assert_eq!(
        s.claim_node(&claim("n1", "i3", false), later)
            .await
            .unwrap(),
        None
    );
    assert!(s.list_nodes().await.unwrap()[0].left_at.is_none());
}

pub async fn node_exclusive_claim(ctx: &Ctx) {
    let s = ctx.s();
    let t0 = Utc::now();
    assert_eq!(
        s.claim_node(&claim("a", "ia", true), t0).await.unwrap(),
        None
    );
    // An exclusive claim is refused while another node lives, naming it...
    let holder = s
        .claim_node(&claim("b", "ib", true), t0)
        .await
        .unwrap()
        .expect("a is alive");
    assert_eq!(holder.name, "a");
    assert_eq!(s.list_nodes().await.unwrap().len(), 1);
    // ...while a shared (cluster) claim is not.
    assert_eq!(
        s.claim_node(&claim("c", "ic", false), t0).await.unwrap(),
        None
    );
    s.release_node("c", "ic", t0).await.unwrap();
    // Once `a` left, or lapsed, an exclusive claim succeeds.
    s.release_node("a", "ia", t0).await.unwrap();
    assert_eq!(
        s.claim_node(&claim("b", "ib", true), t0).await.unwrap(),
        None
    );
    let later = t0 + Duration::seconds(NODE_LEASE_SECS + 1);
    assert_eq!(
        s.claim_node(&claim("a", "ia2", true), later).await.unwrap(),
        None
    );
}

/// Many callers on two instances race to claim one exclusive lease: exactly one wins.
pub async fn node_exclusive_race(ctx: &Ctx) {
    let stores: [Arc<dyn Store>; 2] = [ctx.store.clone(), ctx.reopen().await];
    let now = Utc::now();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (s, barrier) = (stores[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let c = claim(&format!("node-{i}"), &format!("i{i}"), true);
                s.claim_node(&c, now).await.unwrap().is_none()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    if ctx.store.backend() == "sqlite" {
        assert_eq!(wins, 1);
        assert_eq!(ctx.s().list_nodes().await.unwrap().len(), 1);
    } else {
        // PostgreSQL never takes exclusive claims (a cluster); it still answers each one.
        assert!(wins >= 1);
    }
}

pub async fn setting_if_absent_race(ctx: &Ctx) {
    let stores: [Arc<dyn Store>; 2] = [ctx.store.clone(), ctx.reopen().await];
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (s, barrier) = (stores[i % 2].clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let won = s
                    .put_setting_if_absent("cluster.k", &format!("v{i}"))
                    .await
                    .unwrap();
                (won, format!("v{i}"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (won, value) = t.await.unwrap();
        if won {
            winners.push(value);
        }
    }
    assert_eq!(winners.len(), 1);
    for s in &stores {
        assert_eq!(
            s.get_setting("cluster.k").await.unwrap().as_deref(),
            Some(winners[0].as_str())
        );
    }
    assert!(!ctx
        .s()
        .put_setting_if_absent("cluster.k", "late")
        .await
        .unwrap());
}
