//! Edge login codes: single use (also under a race), capped per user, expired ones swept.

use burrow_store::*;
use chrono::Duration;

use crate::devices::race;
use crate::{ts, us, user, Ctx};

fn code(hash: &str, user_id: i64, created_at: Timestamp) -> LoginCode {
    LoginCode {
        code_hash: hash.to_string(),
        user_id,
        host: "device-abc.localhost".to_string(),
        state_hash: format!("state-{hash}"),
        expires_at: created_at + Duration::seconds(60),
        created_at,
    }
}

pub async fn login_codes_single_use_and_capped(ctx: &Ctx) {
    let s = ctx.s();
    let (a, b) = (
        user(s, "a@example.com").await,
        user(s, "b@example.com").await,
    );
    let at = ts(1_750_000_000, 123_456_789);
    let first = code("a0", a.id, at);
    s.insert_login_code(&first, 3).await.unwrap();
    let got = s.take_login_code("a0").await.unwrap().unwrap();
    assert_eq!(got.expires_at, us(first.expires_at));
    assert_eq!(
        (got.user_id, got.host.as_str()),
        (a.id, "device-abc.localhost")
    );
    assert_eq!(got.state_hash, "state-a0");
    assert_eq!(s.take_login_code("a0").await.unwrap(), None, "spent");

    // Five codes for a, cap 3: the two oldest go; b's code is untouched.
    s.insert_login_code(&code("b0", b.id, at), 3).await.unwrap();
    for i in 1..=5 {
        let c = code(&format!("a{i}"), a.id, at + Duration::seconds(i));
        s.insert_login_code(&c, 3).await.unwrap();
    }
    for (hash, kept) in [("a1", false), ("a2", false), ("a3", true), ("a4", true)] {
        assert_eq!(
            s.take_login_code(hash).await.unwrap().is_some(),
            kept,
            "{hash}"
        );
    }
    assert!(s.take_login_code("b0").await.unwrap().is_some());

    // A code minted after a5 expired sweeps it.
    let late = at + Duration::seconds(5 + 61);
    s.insert_login_code(&code("b1", b.id, late), 3)
        .await
        .unwrap();
    assert_eq!(
        s.take_login_code("a5").await.unwrap(),
        None,
        "expired and swept"
    );
}

pub async fn login_code_race(ctx: &Ctx) {
    let s = ctx.s();
    let u = user(s, "racer@example.com").await;
    s.insert_login_code(&code("race", u.id, ts(1_750_000_000, 0)), 20)
        .await
        .unwrap();
    let wins = race(&ctx.store, |s| async move {
        s.take_login_code("race").await.unwrap().is_some()
    })
    .await;
    assert_eq!(wins, 1);
}
