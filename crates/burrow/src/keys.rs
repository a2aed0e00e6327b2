//! Server secrets kept in the data directory: each a file of random bytes, mode 0600, made on
//! first start. Losing `jwt.key` logs every user out; losing `token.key` invalidates every
//! tunnel access token (devices fetch fresh ones).

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use rand::RngCore;

pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating data dir {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))?;
    Ok(())
}

/// Reads `dir/name` when it exists.
pub fn load_existing(dir: &Path, name: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let path = dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let bytes =
        hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
    if bytes.len() < 32 {
        bail!("{} holds fewer than 32 bytes", path.display());
    }
    Ok(Some(bytes))
}

/// Reads `dir/name`, or creates it with `len` random bytes (hex) readable by the owner only.
pub fn load_or_create(dir: &Path, name: &str, len: usize) -> anyhow::Result<Vec<u8>> {
    let path = dir.join(name);
    if let Some(bytes) = load_existing(dir, name)? {
        return Ok(bytes);
    }
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(hex::encode(&bytes).as_bytes())?;
    f.sync_all()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused_with_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create(dir.path(), "k", 32).expect("create");
        let b = load_or_create(dir.path(), "k", 32).expect("load");
        assert_eq!(a, b);
        let mode = std::fs::metadata(dir.path().join("k"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
