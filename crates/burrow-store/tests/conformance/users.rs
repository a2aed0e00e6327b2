//! Users, projects, members.

use burrow_store::*;

use crate::{assert_conflict, assert_not_found, device, user, Ctx};

pub async fn users_roundtrip(ctx: &Ctx) {
    let s = ctx.s();
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert_eq!(s.list_users().await.unwrap(), vec![]);

    let alice = s
        .create_user(NewUser {
            email: "Alice@Example.COM".to_string(),
            password_hash: "$argon2id$hash".to_string(),
            is_admin: true,
        })
        .await
        .unwrap();
    assert_eq!(alice.email, "alice@example.com");
    assert!(alice.is_admin);
    assert_eq!(alice.password_hash, "$argon2id$hash");
    let bob = user(s, "bob@example.com").await;
    assert!(!bob.is_admin);
    assert_ne!(alice.id, bob.id);

    assert_eq!(s.user_by_id(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(s.user_by_id(9_999_999).await.unwrap(), None);
    assert_eq!(
        s.user_by_email("ALICE@example.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        s.user_by_email("alice@example.com").await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(s.user_by_email("nobody@example.com").await.unwrap(), None);
    assert_eq!(s.count_users().await.unwrap(), 2);
    assert_eq!(s.list_users().await.unwrap(), vec![alice, bob]);
}

pub async fn duplicate_email_conflicts(ctx: &Ctx) {
    let s = ctx.s();
    user(s, "carol@example.com").await;
    let dup = s
        .create_user(NewUser {
            email: "CAROL@example.com".to_string(),
            password_hash: "x".to_string(),
            is_admin: false,
        })
        .await;
    assert_conflict(dup);
    assert_eq!(s.count_users().await.unwrap(), 1);
}

pub async fn projects_and_members(ctx: &Ctx) {
    let s = ctx.s();
    let owner = user(s, "owner@example.com").await;
    let member = user(s, "member@example.com").await;
    let outsider = user(s, "outsider@example.com").await;

    let p1 = s.create_project("Fleet A", owner.id).await.unwrap();
    let p2 = s.create_project("Fleet B", member.id).await.unwrap();
    assert_eq!(p1.name, "Fleet A");
    assert_eq!(s.project_by_id(p1.id).await.unwrap(), Some(p1.clone()));
    assert_eq!(s.project_by_id(9_999_999).await.unwrap(), None);
    assert_eq!(
        s.list_all_projects().await.unwrap(),
        vec![p1.clone(), p2.clone()]
    );

    // The owner membership comes with the project.
    let members = s.list_members(p1.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        (members[0].user_id, members[0].role.as_str()),
        (owner.id, "owner")
    );
    assert!(s.is_member(p1.id, owner.id).await.unwrap());
    assert!(!s.is_member(p1.id, member.id).await.unwrap());

    let m = s.add_member(p1.id, member.id, "member").await.unwrap();
    assert_eq!(
        (m.project_id, m.user_id, m.role.as_str()),
        (p1.id, member.id, "member")
    );
    assert!(s.is_member(p1.id, member.id).await.unwrap());
    let members = s.list_members(p1.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        vec![owner.id, member.id]
    );
    assert_eq!(members[1], m);

    assert_conflict(s.add_member(p1.id, member.id, "owner").await);
    assert_conflict(s.add_member(p1.id, owner.id, "member").await);
    assert_not_found(s.add_member(p1.id, 9_999_999, "member").await);
    assert_not_found(s.add_member(9_999_999, member.id, "member").await);

    assert_eq!(
        s.list_projects_for_user(owner.id).await.unwrap(),
        vec![p1.clone()]
    );
    assert_eq!(
        s.list_projects_for_user(member.id).await.unwrap(),
        vec![p1.clone(), p2.clone()]
    );
    assert_eq!(s.list_projects_for_user(outsider.id).await.unwrap(), vec![]);

    // A missing owner: nothing is created (one transaction).
    assert_not_found(s.create_project("orphan", 9_999_999).await);
    assert_eq!(s.list_all_projects().await.unwrap().len(), 2);

    // Membership decides which devices a user sees.
    let d1 = device(s, p1.id, "dsn-a1").await;
    let d2 = device(s, p2.id, "dsn-b1").await;
    let d3 = device(s, p1.id, "dsn-a2").await;
    assert_eq!(
        s.list_devices_for_user(owner.id).await.unwrap(),
        vec![d1.clone(), d3.clone()]
    );
    assert_eq!(
        s.list_devices_for_user(member.id).await.unwrap(),
        vec![d1, d2, d3]
    );
    assert_eq!(s.list_devices_for_user(outsider.id).await.unwrap(), vec![]);
}

/// Renaming and deleting projects; removing members and changing roles, never leaving a
/// project without an owner — also when two owners remove each other at once.
pub async fn project_changes_keep_an_owner(ctx: &Ctx) {
    let s = ctx.s();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let carol = user(s, "carol@example.com").await;
    let p = s.create_project("robots", alice.id).await.unwrap();
    assert_eq!(
        s.rename_project(p.id, "rovers").await.unwrap().name,
        "rovers"
    );
    assert_not_found(s.rename_project(9_999_999, "x").await);

    s.add_member(p.id, bob.id, "member").await.unwrap();
    // The only owner can neither leave nor be demoted.
    assert_conflict(s.remove_member(p.id, alice.id).await);
    assert_conflict(s.set_member_role(p.id, alice.id, "member").await);
    assert_not_found(s.remove_member(p.id, carol.id).await);
    assert_not_found(s.set_member_role(p.id, carol.id, "owner").await);
    assert_not_found(s.remove_member(9_999_999, bob.id).await);

    // With a second owner, the first may step down; then the second is the last one.
    assert_eq!(
        s.set_member_role(p.id, bob.id, "owner").await.unwrap().role,
        "owner"
    );
    assert_eq!(
        s.set_member_role(p.id, alice.id, "member")
            .await
            .unwrap()
            .role,
        "member"
    );
    assert_conflict(s.remove_member(p.id, bob.id).await);
    s.remove_member(p.id, alice.id).await.unwrap();
    assert!(!s.is_member(p.id, alice.id).await.unwrap());

    // Two owners removing each other at once: exactly one succeeds.
    s.add_member(p.id, carol.id, "owner").await.unwrap();
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            s.remove_member(p.id, bob.id),
            s.remove_member(p.id, carol.id)
        );
        assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
        let owners = s
            .list_members(p.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|m| m.role == "owner")
            .count();
        assert_eq!(owners, 1);
        let gone = if a.is_ok() { bob.id } else { carol.id };
        s.add_member(p.id, gone, "owner").await.unwrap();
    }

    // Deleting the project takes its members and devices with it.
    let d = device(s, p.id, "dsn-gone").await;
    s.delete_project(p.id).await.unwrap();
    assert_eq!(s.project_by_id(p.id).await.unwrap(), None);
    assert!(s.list_members(p.id).await.unwrap().is_empty());
    assert_eq!(s.device_by_id(d.id).await.unwrap(), None);
    assert_not_found(s.delete_project(p.id).await);
}
