//! The seed's two Celery Beat jobs, in process: close expired tunnels (hourly) and rotate
//! tunnels expiring soon (every 30 minutes, within 1 hour). With several nodes on one
//! PostgreSQL, `Store::claim_job` lets exactly one node run each job per interval; both jobs
//! are idempotent, so a node that crashes half-way leaves work the next run finishes.

use std::sync::Arc;

use burrow_broker::{Broker, Clock};
use burrow_store::{BrokerLink, Store};

use crate::lifecycle::BrokerLifecycle;

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub cleanup_interval: chrono::Duration,
    pub rotate_interval: chrono::Duration,
    /// Tunnels expiring within this are rotated.
    pub rotate_threshold: chrono::Duration,
    /// How often traffic data past its retention is deleted.
    pub prune_interval: chrono::Duration,
    pub retention: Retention,
}

/// How long traffic data is kept (config `retention_*_days`).
#[derive(Debug, Clone)]
pub struct Retention {
    pub access_log: chrono::Duration,
    pub minute_rollups: chrono::Duration,
    pub hourly_rollups: chrono::Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            access_log: chrono::Duration::days(7),
            minute_rollups: chrono::Duration::days(30),
            hourly_rollups: chrono::Duration::days(365),
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            cleanup_interval: chrono::Duration::hours(1),
            rotate_interval: chrono::Duration::minutes(30),
            rotate_threshold: chrono::Duration::hours(1),
            prune_interval: chrono::Duration::hours(1),
            retention: Retention::default(),
        }
    }
}

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub broker: Arc<Broker>,
    pub lifecycle: Arc<BrokerLifecycle>,
    pub clock: Arc<dyn Clock>,
    pub config: SchedulerConfig,
    pub stats: SchedulerStats,
}

/// Ticks since start and those that failed (`/metrics`).
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub runs: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
}

pub const CLEANUP_JOB: &str = "cleanup_expired_reverse_tunnels";
pub const ROTATE_JOB: &str = "rotate_expiring_reverse_tunnels";
pub const PRUNE_JOB: &str = "prune_traffic";

impl Scheduler {
    /// Runs whichever job is due (and claimed by this node). Answers (cleaned, rotated).
    pub async fn tick(&self) -> anyhow::Result<(usize, usize)> {
        use std::sync::atomic::Ordering;
        self.stats.runs.fetch_add(1, Ordering::Relaxed);
        let done = self.run_due().await;
        if done.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    async fn run_due(&self) -> anyhow::Result<(usize, usize)> {
        let now = self.clock.now();
        let mut cleaned = 0;
        let mut rotated = 0;
        if self
            .store
            .claim_job(CLEANUP_JOB, now, self.config.cleanup_interval)
            .await?
        {
            cleaned = self.cleanup_expired().await?;
        }
        if self
            .store
            .claim_job(ROTATE_JOB, now, self.config.rotate_interval)
            .await?
        {
            rotated = self.rotate_expiring().await?;
        }
        if self
            .store
            .claim_job(PRUNE_JOB, now, self.config.prune_interval)
            .await?
        {
            self.prune_traffic().await?;
        }
        Ok((cleaned, rotated))
    }

    /// Closes tunnels whose `expires_at` has passed and clears their tunnel id from the row.
    pub async fn cleanup_expired(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        // Broker tunnels of every kind (AWS API ones too) past their lifetime.
        self.broker.expire_due().await?;
        let mut n = 0;
        for t in self.store.list_reverse_tunnels_expiring_before(now).await? {
            if let Some(id) = &t.tunnel_id {
                match self.broker.close(id, false).await {
                    Ok(()) | Err(burrow_broker::BrokerError::NotFound) => {}
                    Err(e) => {
                        tracing::warn!(tunnel = %id, error = %e, "cleanup: close failed");
                        continue;
                    }
                }
            }
            self.store
                .set_reverse_tunnel_broker(t.id, BrokerLink::default(), now)
                .await?;
            self.lifecycle.notifier.device_changed(t.device_id);
            n += 1;
        }
        if n > 0 {
            tracing::info!(count = n, "closed expired tunnels");
        }
        Ok(n)
    }

    /// Rotates enabled tunnels expiring within the threshold (make-before-break).
    pub async fn rotate_expiring(&self) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut n = 0;
        for t in self
            .store
            .list_reverse_tunnels_expiring_before(now + self.config.rotate_threshold)
            .await?
        {
            if !t.is_enabled || t.tunnel_id.is_none() || t.expires_at.is_some_and(|e| e <= now) {
                continue; // expired ones are the cleanup job's
            }
            let Some(device) = self.store.device_by_id(t.device_id).await? else {
                continue;
            };
            match self.lifecycle.rotate(&device, t).await {
                Ok(_) => n += 1,
                Err(e) => tracing::warn!(error = %e, "rotation failed"),
            }
        }
        if n > 0 {
            tracing::info!(count = n, "rotated expiring tunnels");
        }
        Ok(n)
    }

    /// Deletes access log entries and rollups older than their retention, by the clock.
    pub async fn prune_traffic(&self) -> anyhow::Result<burrow_store::PrunedRows> {
        let now = self.clock.now();
        let r = &self.config.retention;
        let pruned = self
            .store
            .prune_traffic(&burrow_store::TrafficCutoffs {
                access_log_before: now - r.access_log,
                minute_before: now - r.minute_rollups,
                hour_before: now - r.hourly_rollups,
            })
            .await?;
        if pruned != burrow_store::PrunedRows::default() {
            tracing::info!(?pruned, "pruned traffic data past its retention");
        }
        Ok(pruned)
    }

    /// Ticks every `every` until `stop` resolves.
    pub async fn run(
        self: Arc<Self>,
        every: std::time::Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = timer.tick() => {
                    if let Err(e) = self.tick().await {
                        tracing::warn!(error = %format!("{e:#}"), "scheduler tick failed");
                    }
                }
            }
        }
    }
}
