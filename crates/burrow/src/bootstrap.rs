//! First start: the first administrator account.

use burrow_api::hash_password;
use burrow_store::{NewUser, Store};
use rand::distributions::{Alphanumeric, DistString};

use crate::secret::Secret;

/// Credentials of an administrator created by this start; printed once, never logged.
pub struct CreatedAdmin {
    pub email: String,
    pub password: Secret,
    pub generated: bool,
}

/// Creates the first administrator when the store has no user yet: from
/// `BURROW_ADMIN_EMAIL`/`BURROW_ADMIN_PASSWORD` when given, else with a generated password.
pub async fn first_admin(
    store: &dyn Store,
    email: Option<&str>,
    password: Option<&Secret>,
) -> anyhow::Result<Option<CreatedAdmin>> {
    if store.count_users().await? > 0 {
        return Ok(None);
    }
    let (email, password, generated) = match (email, password) {
        (Some(e), Some(p)) => (e.trim().to_ascii_lowercase(), p.clone(), false),
        _ => (
            "admin@burrow.local".to_string(),
            Secret::new(Alphanumeric.sample_string(&mut rand::thread_rng(), 20)),
            true,
        ),
    };
    let pw = password.expose().to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw)).await??;
    match store
        .create_user(NewUser {
            email: email.clone(),
            password_hash: hash,
            is_admin: true,
        })
        .await
    {
        Ok(_) => Ok(Some(CreatedAdmin {
            email,
            password,
            generated,
        })),
        // Another node created the first admin at the same moment.
        Err(burrow_store::StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
