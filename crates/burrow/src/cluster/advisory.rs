//! Per-device serialization across nodes: a PostgreSQL transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`), held by an open transaction for as long as the guard lives and
//! released when it is dropped (rolled back) — also when the node dies, with its connection.
//! So two nodes never open two broker tunnels for one reverse tunnel.

use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use burrow_device::SharedLocks;
use sqlx::postgres::{PgPool, PgPoolOptions};

/// Keeps burrow's advisory locks apart from anyone else's on the same database: the high
/// 32 bits of the key (`"burr"`), the device id in the low ones.
const NAMESPACE: i64 = 0x6275_7272 << 32;
/// Devices changed at once on one node (each holds a connection while it does).
const CONNECTIONS: u32 = 16;

pub struct AdvisoryLocks {
    pool: PgPool,
}

impl AdvisoryLocks {
    pub async fn connect(database_url: &str) -> anyhow::Result<AdvisoryLocks> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(database_url)
            .await
            .context("connecting the cluster's device locks")?;
        Ok(AdvisoryLocks { pool })
    }

    fn key(device_id: i64) -> i64 {
        NAMESPACE | (device_id & 0xffff_ffff)
    }
}

#[async_trait]
impl SharedLocks for AdvisoryLocks {
    async fn lock(&self, device_id: i64) -> Box<dyn Send> {
        let locked = async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(Self::key(device_id))
                .execute(&mut *tx)
                .await?;
            Ok::<_, sqlx::Error>(tx)
        };
        match locked.await {
            Ok(tx) => Box::new(tx),
            Err(e) => {
                // The database is what the change itself needs next: it fails there, with
                // its own error, rather than here.
                tracing::warn!(device_id, error = %e, "cluster device lock unavailable");
                Box::new(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_per_device() {
        assert_ne!(AdvisoryLocks::key(1), AdvisoryLocks::key(2));
        assert_eq!(AdvisoryLocks::key(7) >> 32, 0x6275_7272);
    }
}
