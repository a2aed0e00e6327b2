//! Several `burrow server` nodes on one PostgreSQL (see docs/cluster.md). What is shared so
//! far: the keys ([`shared_keys`]: sealed in the database with the cluster key, identical on
//! every node), who is alive ([`membership`]: a heartbeat lease per node), and config changes
//! ([`changes`]: PostgreSQL NOTIFY, so long-polls on every node wake at once). SQLite is
//! single-node: the same lease, claimed exclusively, refuses a second server.

pub mod advisory;
pub mod changes;
pub(crate) mod cluster_key;
pub mod link;
pub mod link_setup;
pub mod link_streams;
pub mod membership;
mod notify_relay;
pub mod presence;
pub mod roles;
pub mod shared_keys;
pub mod source_forward;
pub mod tunnel_events;

pub use cluster_key::ClusterKey;
pub use membership::Membership;
pub use shared_keys::ServerKeys;

use crate::config::Config;

/// The host name (the default `node_name`), or `burrow` when it cannot be read.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let name = if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    if is_label(&name) {
        name
    } else {
        "burrow".into()
    }
}

/// 1-63 characters of `A-Za-z0-9._-`: node names and regions.
fn is_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The cluster keys of the configuration, checked at load.
pub fn validate_config(c: &Config) -> Result<(), String> {
    if let Some(name) = &c.node_name {
        if !is_label(name) {
            return Err(format!(
                "node_name {name:?}: 1-63 characters of A-Z a-z 0-9 . _ -"
            ));
        }
    }
    if !is_label(&c.node_region) {
        return Err(format!(
            "node_region {:?}: 1-63 characters of A-Z a-z 0-9 . _ -",
            c.node_region
        ));
    }
    roles::Roles::new(&c.roles)?;
    if let Some(u) = &c.cluster_url {
        let rest = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains('/') || r.len() > 255) {
            return Err(format!(
                "cluster_url {u:?} must look like https://host[:port], without a path"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_name_is_a_label() {
        assert!(is_label(&host_name()));
    }

    #[test]
    fn labels() {
        assert!(is_label("node-1.eu_west"));
        assert!(!is_label(""));
        assert!(!is_label("a b"));
        assert!(!is_label(&"x".repeat(64)));
    }
}
