//! First start: the first administrator account. A generated password goes to a file only
//! its owner can read (`<data_dir>/admin-password`), never to stdout, where service managers
//! and log collectors would keep it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use burrow_api::hash_password;
use burrow_store::{NewUser, Store};
use rand::distributions::{Alphanumeric, DistString};

use crate::secret::Secret;

/// Credentials of an administrator created by this start; never printed or logged.
pub struct CreatedAdmin {
    pub email: String,
    pub password: Secret,
    pub generated: bool,
    /// Where a generated password was written (mode 0600).
    pub password_file: Option<PathBuf>,
}

/// The file a generated first-admin password is written to.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

fn write_password_file(data_dir: &Path, password: &Secret) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(ADMIN_PASSWORD_FILE);
    // A leftover from an earlier start that died before creating the user is replaced.
    let _ = std::fs::remove_file(&path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(password.expose().as_bytes())?;
    f.write_all(b"\n")?;
    Ok(path)
}

/// Creates the first administrator when the store has no user yet: from
/// `BURROW_ADMIN_EMAIL`/`BURROW_ADMIN_PASSWORD` when given, else with a generated password.
pub async fn first_admin(
    store: &dyn Store,
    email: Option<&str>,
    password: Option<&Secret>,
    data_dir: &Path,
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
        Ok(_) => {
            let password_file = if generated {
                Some(write_password_file(data_dir, &password)?)
            } else {
                None
            };
            Ok(Some(CreatedAdmin {
                email,
                password,
                generated,
                password_file,
            }))
        }
        // Another node created the first admin at the same moment.
        Err(burrow_store::StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
