//! The certificate worker of a node: every tick (or at once when the API changed a domain) it
//! refreshes what the edge serves — the custom hostnames and the certificates — from the
//! store, takes the due custom domains (each leased to one node) and runs their steps a few at
//! a time, and keeps the base domain's certificate. Issuance never blocks a request: the
//! steps run in their own tasks, and the edge serves what is stored meanwhile.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use burrow_edge::Edge;
use burrow_store::Store;
use tokio::sync::{Notify, Semaphore};

use super::domains::DomainSteps;
use super::seal::Sealer;
use super::served::ServedCerts;
use super::wildcard::BaseDomainCert;

/// Steps of custom domains run at once on a node.
const PARALLEL_STEPS: usize = 4;
/// How long a claimed domain stays leased to this node (a step takes far less).
const LEASE_MINUTES: i64 = 15;

pub struct CertWorker {
    pub store: Arc<dyn Store>,
    pub steps: Arc<DomainSteps>,
    pub base: Option<Arc<BaseDomainCert>>,
    pub served: Option<Arc<ServedCerts>>,
    pub sealer: Arc<Sealer>,
    pub edge: Arc<Edge>,
    /// The API's nudge (a domain added, removed, or to be checked now).
    pub changed: Arc<Notify>,
    pub tick: Duration,
}

impl CertWorker {
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let me = Arc::new(self);
        let permits = Arc::new(Semaphore::new(PARALLEL_STEPS));
        let done = Arc::new(Notify::new());
        let base_running = Arc::new(Semaphore::new(1));
        tokio::pin!(stop);
        loop {
            me.refresh().await;
            if let (Some(base), Ok(permit)) = (&me.base, base_running.clone().try_acquire_owned()) {
                let (base, me2) = (base.clone(), me.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if base.step(me2.store.as_ref()).await {
                        me2.refresh().await;
                    }
                });
            }
            me.start_due_steps(&permits, &done).await;
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(me.tick) => {}
                () = me.changed.notified() => {}
                () = done.notified() => {}
            }
        }
    }

    async fn start_due_steps(self: &Arc<Self>, permits: &Arc<Semaphore>, done: &Arc<Notify>) {
        let free = permits.available_permits();
        if free == 0 {
            return;
        }
        let now = chrono::Utc::now();
        let due = match self
            .store
            .claim_due_custom_domains(
                now,
                now + chrono::Duration::minutes(LEASE_MINUTES),
                free as i64,
            )
            .await
        {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "custom domains: claiming due checks failed");
                return;
            }
        };
        for d in due {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                break;
            };
            let (me, done) = (self.clone(), done.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let hostname = d.hostname.clone();
                if let Err(e) = me.steps.run(d).await {
                    tracing::warn!(%hostname, error = %e, "custom domain step failed");
                }
                done.notify_one();
            });
        }
    }

    /// Brings the edge's custom hostnames and the served certificates up to the store's.
    pub async fn refresh(&self) {
        match self.store.served_custom_domains().await {
            Ok(names) => {
                let names: HashSet<String> = names.into_iter().collect();
                if self.edge.custom_hosts().replace(names) {
                    self.edge.forget_routes();
                }
            }
            Err(e) => tracing::warn!(error = %e, "custom domains: reading the served hosts failed"),
        }
        if let Some(served) = &self.served {
            if let Err(e) = served.refresh(self.store.as_ref(), &self.sealer).await {
                tracing::warn!(error = %e, "reading certificates failed");
            }
        }
    }
}
