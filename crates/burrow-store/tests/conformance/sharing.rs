//! Sharing a tunnel: per-tunnel API keys, share links and their visitors, the audit log.

use std::sync::Arc;

use burrow_store::*;
use chrono::Duration;

use crate::{assert_conflict, assert_not_found, new_tunnel, owner_project_device, ts, us, Ctx};

fn new_key(tunnel: i64, hash: &str, by: i64) -> NewTunnelKey {
    NewTunnelKey {
        reverse_tunnel_id: tunnel,
        name: "monitoring".into(),
        prefix: "bk_abcd".into(),
        key_hash: hash.into(),
        methods: vec!["GET".into(), "HEAD".into()],
        expires_at: Some(ts(1_900_000_000, 123_456_789)),
        created_by: Some(by),
    }
}

fn new_link(tunnel: i64, hash: &str, max_uses: Option<i64>) -> NewShareLink {
    NewShareLink {
        reverse_tunnel_id: tunnel,
        prefix: "bs_abcd".into(),
        secret_hash: hash.into(),
        note: Some("for the customer".into()),
        methods: vec![],
        max_uses,
        expires_at: ts(1_900_000_000, 987_654_321),
        created_by: None,
    }
}

pub async fn tunnel_keys(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, _, d) = owner_project_device(s, "keys").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "keys.example.com"))
        .await
        .unwrap();
    let k = s
        .create_tunnel_key(new_key(t.id, "h1", owner.id))
        .await
        .unwrap();
    assert_eq!(k.reverse_tunnel_id, t.id);
    assert_eq!(k.methods, vec!["GET".to_string(), "HEAD".to_string()]);
    assert_eq!(k.expires_at, Some(us(ts(1_900_000_000, 123_456_789))));
    assert_eq!((k.last_used_at, k.revoked_at), (None, None));
    assert_eq!(k.created_by, Some(owner.id));
    assert_conflict(s.create_tunnel_key(new_key(t.id, "h1", owner.id)).await);
    assert_not_found(
        s.create_tunnel_key(new_key(9_999_999, "h9", owner.id))
            .await,
    );
    assert_eq!(s.tunnel_key_by_hash("h1").await.unwrap(), Some(k.clone()));
    assert_eq!(s.tunnel_key_by_hash("nope").await.unwrap(), None);

    let at = ts(1_800_000_000, 555_555_555);
    s.touch_tunnel_key(k.id, at).await.unwrap();
    s.touch_tunnel_key(k.id, at - Duration::seconds(10))
        .await
        .unwrap();
    let touched = s.tunnel_key_by_hash("h1").await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(us(at)), "only moves forward");

    let other = s
        .create_reverse_tunnel(new_tunnel(d.id, "keys2.example.com"))
        .await
        .unwrap();
    assert_not_found(s.revoke_tunnel_key(other.id, k.id, at).await);
    let revoked = s.revoke_tunnel_key(t.id, k.id, at).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(us(at)));
    let again = s
        .revoke_tunnel_key(t.id, k.id, at + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(us(at)), "first revocation kept");
    let k2 = s
        .create_tunnel_key(new_key(t.id, "h2", owner.id))
        .await
        .unwrap();
    let listed = s.list_tunnel_keys(t.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|k| k.id).collect::<Vec<_>>(),
        vec![k.id, k2.id]
    );
    assert!(s.list_tunnel_keys(other.id).await.unwrap().is_empty());
    // Deleting the tunnel deletes its keys.
    s.delete_reverse_tunnel(t.id).await.unwrap();
    assert_eq!(s.tunnel_key_by_hash("h2").await.unwrap(), None);
}

pub async fn share_links(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "links").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "links.example.com"))
        .await
        .unwrap();
    let l = s
        .create_share_link(new_link(t.id, "s1", Some(2)))
        .await
        .unwrap();
    assert_eq!((l.uses, l.max_uses), (0, Some(2)));
    assert_eq!(l.expires_at, us(ts(1_900_000_000, 987_654_321)));
    assert_eq!(l.note.as_deref(), Some("for the customer"));
    assert_conflict(s.create_share_link(new_link(t.id, "s1", None)).await);
    assert_eq!(s.share_link_by_hash("s1").await.unwrap(), Some(l.clone()));
    assert_eq!(s.share_link_by_id(l.id).await.unwrap(), Some(l.clone()));

    let at = ts(1_800_000_000, 0);
    use VisitorAdmission::*;
    assert_eq!(
        s.admit_share_link_visitor(l.id, "v1", at).await.unwrap(),
        New
    );
    assert_eq!(
        s.admit_share_link_visitor(l.id, "v1", at).await.unwrap(),
        Known
    );
    assert_eq!(
        s.admit_share_link_visitor(l.id, "v2", at).await.unwrap(),
        New
    );
    assert_eq!(
        s.admit_share_link_visitor(l.id, "v3", at).await.unwrap(),
        Full
    );
    assert_eq!(
        s.admit_share_link_visitor(l.id, "v2", at).await.unwrap(),
        Known
    );
    assert_eq!(s.share_link_by_id(l.id).await.unwrap().unwrap().uses, 2);
    assert_eq!(
        s.admit_share_link_visitor(9_999_999, "v1", at)
            .await
            .unwrap(),
        Full
    );

    let revoked = s.revoke_share_link(t.id, l.id, at).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(us(at)));
    assert_not_found(s.revoke_share_link(t.id, 9_999_999, at).await);
    assert_eq!(s.list_share_links(t.id).await.unwrap().len(), 1);
}

/// Ten visitors at once on a link for three, from two store instances: three get in.
pub async fn share_link_visitors_race(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, d) = owner_project_device(s, "race").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(d.id, "race.example.com"))
        .await
        .unwrap();
    let l = s
        .create_share_link(new_link(t.id, "r1", Some(3)))
        .await
        .unwrap();
    let other = ctx.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store: Arc<dyn Store> = if i % 2 == 0 {
            ctx.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .admit_share_link_visitor(l.id, &format!("v{i}"), chrono::Utc::now())
                .await
        }));
    }
    let mut new = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == VisitorAdmission::New {
            new += 1;
        }
    }
    assert_eq!(new, 3);
    assert_eq!(s.share_link_by_id(l.id).await.unwrap().unwrap().uses, 3);
}

pub async fn sharing_audit(ctx: &Ctx) {
    let s = ctx.s();
    let (owner, p, _) = owner_project_device(s, "audit").await;
    for (i, action) in ["api_key.create", "api_key.revoke"].iter().enumerate() {
        s.insert_sharing_audit(NewSharingAuditEntry {
            project_id: p.id,
            reverse_tunnel_id: Some(7),
            actor_user_id: Some(owner.id),
            actor_email: Some(owner.email.clone()),
            action: action.to_string(),
            object_id: Some(i as i64),
            detail: Some("monitoring".into()),
            at: ts(1_800_000_000 + i as i64, 1_001),
        })
        .await
        .unwrap();
    }
    let got = s.list_sharing_audit(p.id, 10).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].action, "api_key.revoke", "newest first");
    assert_eq!(got[0].at, us(ts(1_800_000_001, 1_001)));
    assert_eq!(got[1].actor_email.as_deref(), Some(owner.email.as_str()));
    assert_eq!(s.list_sharing_audit(p.id, 1).await.unwrap().len(), 1);
    assert!(s
        .list_sharing_audit(p.id + 1000, 10)
        .await
        .unwrap()
        .is_empty());
}
