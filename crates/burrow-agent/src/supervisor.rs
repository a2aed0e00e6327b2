//! One supervised destination task per enabled tunnel, reconciled against each config.
//!
//! A task is keyed by (tunnel id, broker tunnel_id, service): a new tunnel_id (rotation)
//! starts a new task, and the predecessor is *retired*: it makes no new connection, but a
//! session it has up keeps carrying the connections on it until the broker closes the old
//! tunnel, which the server does once those connections have ended (make-before-break and
//! drain). A new token for the same tunnel_id reaches the running task through a `watch` and
//! is used from its next connection on.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow_client::{ClientConfig, ClientError, DestinationClient, Secret, Targets};
use burrow_identity::TunnelConfig;
use chrono::Utc;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::backoff::{self, Backoff};
use crate::status::{StatusBoard, TunnelState, TunnelStatus};

/// The agent's own bound on a retired session (the server closes it much sooner: when its
/// connections have ended, or at its drain limit).
const RETIRED_MAX: Duration = Duration::from_secs(6 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    id: i64,
    tunnel_id: String,
    service: String,
}

impl Key {
    fn status_key(&self) -> String {
        format!("{}/{}", self.id, self.tunnel_id)
    }
}

/// A running task; dropping it stops the task.
struct Task {
    token: watch::Sender<Secret>,
    /// `true`: rotated out; end once the current session (if any) ends.
    retire: watch::Sender<bool>,
    /// Whether the task's status entry is its own to remove when it ends (not when a
    /// successor of the same key took it over).
    owns_status: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// What every task shares.
#[derive(Clone)]
pub struct Context {
    pub ca_pem: Vec<u8>,
    pub status: StatusBoard,
    /// Asks the main loop for a fresh config (a connection ended or was refused).
    pub refresh: Arc<Notify>,
    /// `true` once the agent is stopping: each task takes no new connection, lets its open
    /// ones finish and ends (the main loop bounds the wait).
    pub draining: watch::Receiver<bool>,
}

pub struct Supervisor {
    ctx: Context,
    /// The broker URL of the device listener in use: a task reads it at each connection
    /// attempt, so a changed `device_url` is followed without cutting live sessions.
    broker_url: watch::Sender<String>,
    tasks: HashMap<Key, Task>,
    /// Rotated-out tasks draining their last session.
    retired: Vec<Task>,
}

impl Supervisor {
    pub fn new(ctx: Context) -> Self {
        Supervisor {
            ctx,
            broker_url: watch::channel(String::new()).0,
            tasks: HashMap::new(),
            retired: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Makes the running tasks match `tunnels`: starts the new ones first, hands a new
    /// token to a running one, and stops the rest.
    pub fn reconcile(&mut self, tunnels: &[TunnelConfig], broker_url: &str) {
        let mut first = false;
        let moved = self.broker_url.send_if_modified(|cur| {
            let changed = cur != broker_url;
            first = cur.is_empty();
            if changed {
                broker_url.clone_into(cur);
            }
            changed
        });
        if moved && !first {
            // The agent moved to another device URL (its node is draining, or went away):
            // make before break. Every tunnel connects anew at the new URL, and a session
            // still up at the old one is retired, not cut: it carries its connections until
            // that node closes it.
            for (_, task) in self.tasks.drain() {
                task.owns_status.store(false, Ordering::SeqCst);
                let _ = task.retire.send(true);
                self.retired.push(task);
            }
        }
        let mut wanted = HashMap::new();
        for t in tunnels {
            let (true, Some(tunnel_id), Some(token)) = (
                t.is_enabled,
                t.tunnel_id.as_ref(),
                t.destination_access_token.as_ref(),
            ) else {
                continue;
            };
            let Ok(port) = u16::try_from(t.local_port) else {
                tracing::warn!(tunnel = %t.name, port = t.local_port, "local port out of range");
                continue;
            };
            let key = Key {
                id: t.id,
                tunnel_id: tunnel_id.clone(),
                service: t.service.clone(),
            };
            wanted.insert(key, (t, port, Secret::new(token.clone())));
        }
        let mut stale: Vec<Key> = self
            .tasks
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for (key, (t, port, token)) in wanted {
            if let Some(task) = self.tasks.get(&key) {
                task.token.send_if_modified(|cur| {
                    let changed = *cur != token;
                    *cur = token;
                    changed
                });
                continue;
            }
            // A rotation: the old task of the same tunnel is retired, not stopped: its live
            // session drains (the broker closes it when its connections have ended).
            if let Some(old) = stale
                .iter()
                .position(|k| k.id == key.id)
                .map(|i| stale.swap_remove(i))
                .and_then(|k| self.tasks.remove(&k))
            {
                tracing::info!(tunnel = %t.name, "rotated: the previous session drains");
                let _ = old.retire.send(true);
                self.retired.push(old);
            }
            tracing::info!(tunnel = %t.name, tunnel_id = %key.tunnel_id, port, "starting destination");
            let spec = Spec {
                status_key: key.status_key(),
                target: localhost(port),
                entry: TunnelStatus {
                    id: t.id,
                    name: t.name.clone(),
                    tunnel_id: key.tunnel_id.clone(),
                    public_url: t.public_url.clone(),
                    target: format!("localhost:{port}"),
                    state: TunnelState::Connecting,
                    last_error: None,
                    since: Utc::now(),
                },
                service: key.service.clone(),
            };
            let (tx, rx) = watch::channel(token);
            let (retire, retired) = watch::channel(false);
            let owns_status = Arc::new(AtomicBool::new(true));
            let handle = tokio::spawn(run_task(
                spec,
                rx,
                retired,
                self.broker_url.subscribe(),
                self.ctx.clone(),
                owns_status.clone(),
            ));
            self.tasks.insert(
                key,
                Task {
                    token: tx,
                    retire,
                    owns_status,
                    handle,
                },
            );
        }
        for key in stale {
            if self.tasks.remove(&key).is_some() {
                tracing::info!(tunnel_id = %key.tunnel_id, "stopping destination");
            }
        }
        self.retired.retain(|t| !t.handle.is_finished());
    }

    /// Retired sessions still draining.
    pub fn draining(&self) -> usize {
        self.retired
            .iter()
            .filter(|t| !t.handle.is_finished())
            .count()
    }

    /// Resolves once every task (retired ones included) has ended: after
    /// [`Context::draining`] turned `true`, when every session has drained.
    pub async fn finished(&mut self) {
        for task in self.tasks.values_mut().chain(self.retired.iter_mut()) {
            let _ = (&mut task.handle).await;
        }
    }

    pub fn stop_all(&mut self) {
        self.tasks.clear();
        self.retired.clear();
    }
}

/// `localhost:port` as users mean it: IPv4 loopback, else IPv6 (a service bound only to
/// `::1` works too).
fn localhost(port: u16) -> [SocketAddr; 2] {
    [
        SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ]
}

struct Spec {
    status_key: String,
    target: [SocketAddr; 2],
    entry: TunnelStatus,
    service: String,
}

/// Removes the task's status entry however the task ends (including abort).
struct StatusGuard(StatusBoard, String, Arc<AtomicBool>);

impl Drop for StatusGuard {
    fn drop(&mut self) {
        if self.2.load(Ordering::SeqCst) {
            self.0.remove_tunnel(&self.1);
        }
    }
}

async fn connect(
    spec: &Spec,
    ctx: &Context,
    broker_url: String,
    token: Secret,
) -> Result<DestinationClient, ClientError> {
    let config = ClientConfig::new(broker_url, token).with_ca_pem(ctx.ca_pem.clone());
    let targets = Targets::new()
        .service_addrs(spec.service.clone(), &spec.target)
        .default_addrs(&spec.target);
    // On the multi-thread runtime: a busy tunnel's connections use every core.
    DestinationClient::connect(config, targets).await
}

/// Connects, waits for the session to end, backs off, reconnects — until aborted, or, once
/// retired, until the session it has ends.
async fn run_task(
    spec: Spec,
    mut token: watch::Receiver<Secret>,
    retired: watch::Receiver<bool>,
    mut broker_url: watch::Receiver<String>,
    ctx: Context,
    owns_status: Arc<AtomicBool>,
) {
    let key = spec.status_key.clone();
    ctx.status.set_tunnel(&key, spec.entry.clone());
    let _guard = StatusGuard(ctx.status.clone(), key.clone(), owns_status.clone());
    // A task retired by a move keeps its session but no longer speaks for the tunnel.
    let set_state = |state, error| {
        if owns_status.load(Ordering::SeqCst) {
            ctx.status.set_state(&key, state, error);
        }
    };
    let mut backoff = Backoff::from_pair(backoff::CONNECT);
    let mut draining = ctx.draining.clone();
    loop {
        if *retired.borrow() || *draining.borrow() {
            return;
        }
        set_state(TunnelState::Connecting, None);
        let current = token.borrow_and_update().clone();
        let broker = broker_url.borrow_and_update().clone();
        let error = match connect(&spec, &ctx, broker, current).await {
            Ok(client) => {
                set_state(TunnelState::Connected, None);
                tracing::info!(tunnel = %spec.entry.name, "destination connected");
                let up_since = Instant::now();
                // A token that changes meanwhile is kept for the next connection: a live
                // session stays up (reconnecting would cut the connections it carries); if the
                // broker ends it because of a rotation, the next attempt uses the new token.
                let ended = wait_session(client, retired.clone(), draining.clone()).await;
                backoff.connection_ended(up_since);
                if *retired.borrow() || *draining.borrow() {
                    tracing::info!(tunnel = %spec.entry.name, "drained session ended");
                    return;
                }
                match ended {
                    Ok(close) => format!("closed by the broker ({}: {})", close.code, close.reason),
                    Err(e) => e.to_string(),
                }
            }
            Err(e @ ClientError::HandshakeRejected { .. }) => {
                format!("{e} (token spent or rotated; fetching a fresh config)")
            }
            Err(e) => e.to_string(),
        };
        tracing::info!(tunnel = %spec.entry.name, error = %error, "destination down");
        ctx.refresh.notify_one();
        set_state(TunnelState::Backoff, Some(error));
        // A new broker URL (the agent moved to another device URL) is worth trying at once.
        tokio::select! {
            () = tokio::time::sleep(backoff.next_delay()) => {}
            _ = broker_url.changed() => {}
            _ = draining.wait_for(|d| *d) => return,
        }
    }
}

/// The session's end; a retired session is given at most [`RETIRED_MAX`] more. Once the
/// agent is draining, the session refuses new connections and closes when its open ones
/// have ended.
async fn wait_session(
    client: DestinationClient,
    mut retired: watch::Receiver<bool>,
    mut draining: watch::Receiver<bool>,
) -> Result<burrow_client::CloseReason, ClientError> {
    let ended = client.wait();
    tokio::pin!(ended);
    let stopping = async {
        tokio::select! {
            r = &mut ended => return Some(r),
            _ = retired.wait_for(|r| *r) => {}
            _ = draining.wait_for(|d| *d) => return None,
        }
        tokio::select! {
            r = tokio::time::timeout(RETIRED_MAX, &mut ended) => Some(r.unwrap_or_else(|_| {
                Err(ClientError::Connect("retired session outlived its drain limit".into()))
            })),
            _ = draining.wait_for(|d| *d) => None,
        }
    };
    if let Some(ended) = stopping.await {
        return ended;
    }
    client.drain();
    let open = client.open_connections();
    tracing::info!(open, "draining: refusing new connections");
    tokio::select! {
        r = &mut ended => return r,
        () = client.drained() => {}
    }
    client.close();
    ended.await
}
