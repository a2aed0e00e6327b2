//! Accounts: disabling, password change, deleting users, invitations, personal tokens.

use burrow_store::*;
use chrono::Duration;

use crate::{assert_conflict, assert_not_found, user, Ctx};

fn now() -> Timestamp {
    chrono::Utc::now()
}

pub async fn users_disabled_reset_and_deleted(ctx: &Ctx) {
    let s = ctx.s();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    assert!(!alice.disabled, "users start enabled");

    let off = s.set_user_disabled(bob.id, true).await.unwrap();
    assert!(off.disabled);
    assert!(s.user_by_id(bob.id).await.unwrap().unwrap().disabled);
    assert!(!s.set_user_disabled(bob.id, false).await.unwrap().disabled);
    assert_not_found(s.set_user_disabled(9_999_999, true).await);

    s.set_user_password(bob.id, "new-hash").await.unwrap();
    assert_eq!(
        s.user_by_id(bob.id).await.unwrap().unwrap().password_hash,
        "new-hash"
    );
    assert_not_found(s.set_user_password(9_999_999, "x").await);

    // The last owner of a project cannot be deleted; once another owner exists, they can,
    // and their memberships and tokens go with them.
    let p = s.create_project("robots", alice.id).await.unwrap();
    s.add_member(p.id, bob.id, "member").await.unwrap();
    s.create_personal_token(token(alice.id, "h-alice"))
        .await
        .unwrap();
    match s.delete_user(alice.id).await {
        Err(StoreError::Conflict(why)) => assert!(why.contains(&p.id.to_string()), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(s.user_by_id(alice.id).await.unwrap().is_some());
    s.set_member_role(p.id, bob.id, "owner").await.unwrap();
    s.delete_user(alice.id).await.unwrap();
    assert!(s.user_by_id(alice.id).await.unwrap().is_none());
    assert_eq!(s.member_role(p.id, alice.id).await.unwrap(), None);
    assert!(s.personal_token_by_hash("h-alice").await.unwrap().is_none());
    assert_eq!(
        s.member_role(p.id, bob.id).await.unwrap().as_deref(),
        Some("owner")
    );
    assert_not_found(s.delete_user(alice.id).await);
}

fn invitation(project_id: i64, email: &str, role: &str, hash: &str, by: i64) -> NewInvitation {
    NewInvitation {
        project_id,
        email: email.into(),
        role: role.into(),
        token_hash: hash.into(),
        invited_by: by,
        created_at: now(),
        expires_at: now() + Duration::days(7),
    }
}

pub async fn invitations_single_use(ctx: &Ctx) {
    let s = ctx.s();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let p = s.create_project("robots", alice.id).await.unwrap();

    // A second invitation of the same email replaces the first.
    let first = s
        .create_invitation(invitation(
            p.id,
            "Bob@Example.com",
            "viewer",
            "h1",
            alice.id,
        ))
        .await
        .unwrap();
    assert_eq!(first.email, "bob@example.com");
    s.create_invitation(invitation(p.id, "bob@example.com", "admin", "h2", alice.id))
        .await
        .unwrap();
    let pending = s.list_invitations(p.id, now()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].role, "admin");
    assert!(s.invitation_by_hash("h1").await.unwrap().is_none());

    // Only its email's account may accept it; once.
    let carol = user(s, "carol@example.com").await;
    assert_not_found(s.accept_invitation("h2", carol.id, now()).await);
    assert_eq!(s.member_role(p.id, carol.id).await.unwrap(), None);
    let m = s.accept_invitation("h2", bob.id, now()).await.unwrap();
    assert_eq!((m.project_id, m.role.as_str()), (p.id, "admin"));
    assert_not_found(s.accept_invitation("h2", bob.id, now()).await);
    let spent = s.invitation_by_hash("h2").await.unwrap().unwrap();
    assert_eq!(spent.accepted_by, Some(bob.id));
    assert!(s.list_invitations(p.id, now()).await.unwrap().is_empty());

    // An existing member: nothing spent.
    s.create_invitation(invitation(
        p.id,
        "bob@example.com",
        "viewer",
        "h3",
        alice.id,
    ))
    .await
    .unwrap();
    assert_conflict(s.accept_invitation("h3", bob.id, now()).await);
    assert!(s
        .invitation_by_hash("h3")
        .await
        .unwrap()
        .unwrap()
        .accepted_at
        .is_none());
    s.delete_invitation(p.id, s.invitation_by_hash("h3").await.unwrap().unwrap().id)
        .await
        .unwrap();
    assert!(s.invitation_by_hash("h3").await.unwrap().is_none());
    assert_not_found(s.delete_invitation(p.id, 9_999_999).await);

    // Expired: not listed, not accepted.
    let mut old = invitation(p.id, "dave@example.com", "member", "h4", alice.id);
    old.expires_at = now() - Duration::seconds(1);
    s.create_invitation(old).await.unwrap();
    assert!(s.list_invitations(p.id, now()).await.unwrap().is_empty());
    assert_not_found(
        s.sign_up_by_invitation("h4", "phc", now())
            .await
            .map(|_| ()),
    );
    assert!(s.user_by_email("dave@example.com").await.unwrap().is_none());

    // Sign-up creates the account and the membership at once; an existing email conflicts
    // and creates nothing.
    s.create_invitation(invitation(
        p.id,
        "erin@example.com",
        "viewer",
        "h5",
        alice.id,
    ))
    .await
    .unwrap();
    let (erin, m) = s.sign_up_by_invitation("h5", "phc", now()).await.unwrap();
    assert_eq!(erin.email, "erin@example.com");
    assert!(!erin.is_admin);
    assert_eq!((m.user_id, m.role.as_str()), (erin.id, "viewer"));
    assert_not_found(
        s.sign_up_by_invitation("h5", "phc", now())
            .await
            .map(|_| ()),
    );
    s.create_invitation(invitation(
        p.id,
        "carol@example.com",
        "member",
        "h6",
        alice.id,
    ))
    .await
    .unwrap();
    assert_conflict(
        s.sign_up_by_invitation("h6", "phc", now())
            .await
            .map(|_| ()),
    );
    assert!(s
        .invitation_by_hash("h6")
        .await
        .unwrap()
        .unwrap()
        .accepted_at
        .is_none());

    // Deleting the project takes its invitations.
    s.delete_project(p.id).await.unwrap();
    assert!(s.invitation_by_hash("h6").await.unwrap().is_none());
}

pub async fn invitation_race(ctx: &Ctx) {
    let s = ctx.s();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let p = s.create_project("robots", alice.id).await.unwrap();
    s.create_invitation(invitation(
        p.id,
        "bob@example.com",
        "member",
        "hr",
        alice.id,
    ))
    .await
    .unwrap();
    let other = ctx.reopen().await;
    let (a, b) = tokio::join!(
        s.accept_invitation("hr", bob.id, now()),
        other.accept_invitation("hr", bob.id, now())
    );
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "exactly one acceptance: {a:?} {b:?}"
    );
    assert_eq!(s.list_members(p.id).await.unwrap().len(), 2);
}

fn token(user_id: i64, hash: &str) -> NewPersonalToken {
    NewPersonalToken {
        user_id,
        name: "laptop".into(),
        scope: "full".into(),
        token_hash: hash.into(),
        created_at: now(),
        expires_at: now() + Duration::days(90),
    }
}

pub async fn personal_tokens(ctx: &Ctx) {
    let s = ctx.s();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let t1 = s
        .create_personal_token(token(alice.id, "t1"))
        .await
        .unwrap();
    let mut read = token(alice.id, "t2");
    read.scope = "read".into();
    let t2 = s.create_personal_token(read).await.unwrap();
    assert_conflict(s.create_personal_token(token(bob.id, "t1")).await);
    let listed = s.list_personal_tokens(alice.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![t2.id, t1.id],
        "newest first"
    );
    assert!(s.list_personal_tokens(bob.id).await.unwrap().is_empty());
    assert_eq!(
        s.personal_token_by_hash("t2").await.unwrap().unwrap().scope,
        "read"
    );

    // Touch: recorded, then not rewritten within the minute.
    let at = now();
    s.touch_personal_token(t1.id, at).await.unwrap();
    let first = s
        .personal_token_by_hash("t1")
        .await
        .unwrap()
        .unwrap()
        .last_used_at;
    assert!(first.is_some());
    s.touch_personal_token(t1.id, at + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(
        s.personal_token_by_hash("t1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        first
    );
    s.touch_personal_token(t1.id, at + Duration::seconds(61))
        .await
        .unwrap();
    assert_ne!(
        s.personal_token_by_hash("t1")
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        first
    );

    // Revoke: only the owner's, only once; revoked ones are not listed.
    assert_not_found(s.revoke_personal_token(bob.id, t1.id, now()).await);
    s.revoke_personal_token(alice.id, t1.id, now())
        .await
        .unwrap();
    assert_not_found(s.revoke_personal_token(alice.id, t1.id, now()).await);
    assert!(s
        .personal_token_by_hash("t1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert_eq!(s.list_personal_tokens(alice.id).await.unwrap().len(), 1);
}
