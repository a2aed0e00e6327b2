//! "Sign out everywhere": a per-user time before which every credential burrow issued to the
//! user (API JWTs, the edge's session and edge-login cookies) stops working. Kept in the
//! store's settings (`sessions_valid_after:<user id>`, Unix seconds), so every node sees it.

use burrow_store::{Store, StoreError};

fn key(user_id: i64) -> String {
    format!("sessions_valid_after:{user_id}")
}

/// Credentials issued at or before this second (Unix time) are revoked; `None`: none is.
pub async fn sessions_valid_after(
    store: &dyn Store,
    user_id: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(store
        .get_setting(&key(user_id))
        .await?
        .and_then(|v| v.parse().ok()))
}

/// Revokes every credential issued to `user_id` up to and including second `now`, and every
/// one issued before this call: a credential issued right after an earlier revocation in the
/// same second is dated a second ahead ([`issue_at`]), so the cutoff moves past it too.
pub async fn revoke_sessions(store: &dyn Store, user_id: i64, now: i64) -> Result<(), StoreError> {
    let at = match sessions_valid_after(store, user_id).await? {
        Some(old) => now.max(old.saturating_add(1)),
        None => now,
    };
    store.put_setting(&key(user_id), &at.to_string()).await
}

/// The issue time to give a credential minted at `now`: after the user's latest revocation,
/// so a sign-in in the same second as a "sign out everywhere" still works.
pub async fn issue_at(
    store: &dyn Store,
    user_id: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    Ok(match sessions_valid_after(store, user_id).await? {
        Some(after) if now.timestamp() <= after => {
            chrono::DateTime::from_timestamp(after.saturating_add(1), 0).unwrap_or(now)
        }
        _ => now,
    })
}

/// Whether a credential issued at `issued_at` (Unix seconds) survives a revocation at `after`.
pub fn issued_after(issued_at: i64, after: Option<i64>) -> bool {
    after.is_none_or(|after| issued_at > after)
}
