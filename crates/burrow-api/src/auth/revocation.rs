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

/// Revokes every credential issued to `user_id` up to and including second `now`.
pub async fn revoke_sessions(store: &dyn Store, user_id: i64, now: i64) -> Result<(), StoreError> {
    store.put_setting(&key(user_id), &now.to_string()).await
}

/// Whether a credential issued at `issued_at` (Unix seconds) survives a revocation at `after`.
pub fn issued_after(issued_at: i64, after: Option<i64>) -> bool {
    after.is_none_or(|after| issued_at > after)
}
