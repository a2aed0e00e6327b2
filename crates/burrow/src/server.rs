//! `burrow server`: wires the store, the keys, the API and the listeners, and serves until
//! shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use burrow_api::{ApiConfig, AppState, JwtKeys};
use burrow_broker::{Broker, BrokerConfig, Clock, SystemClock, TokenKey};
use burrow_device::{
    CaFingerprint, ConfigNotifier, DeviceCa, DeviceConfig, DeviceState, DeviceUrls,
};
use burrow_edge::{CertStore, Edge, EdgeConfig};
use burrow_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::{first_admin, CreatedAdmin};
use crate::cluster::link_setup::ClusterLink;
use crate::cluster::link_streams::LinkStreams;
use crate::cluster::presence::Presence;
use crate::cluster::roles::Role;
use crate::cluster::{self, Membership, ServerKeys};
use crate::config::Config;
use crate::dialer::BrokerDialer;
use crate::keys;
use crate::lifecycle::{BrokerLifecycle, BrokerProvisioner};
use crate::scheduler::{Scheduler, SchedulerConfig};
use crate::succession::Succession;

/// A started server: where it listens, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    /// The devices' TLS listener: config endpoint (mTLS) and broker data plane.
    pub device_addr: SocketAddr,
    /// The plain-HTTP redirect listener of an HTTPS deployment.
    pub redirect_addr: Option<SocketAddr>,
    pub store: Arc<dyn Store>,
    pub broker: Arc<Broker>,
    /// The device CA's certificate (what agents trust for the device listener).
    pub device_ca_pem: String,
    /// What devices dial for the device listener.
    pub device_urls: DeviceUrls,
    /// Wakes the devices' config long-polls (tests watch who waits).
    pub device_notifier: ConfigNotifier,
    /// The device CA's fingerprint, as enrollment commands pin it.
    pub device_ca_sha256: CaFingerprint,
    pub admin: Option<CreatedAdmin>,
    /// This node's name in the `nodes` table.
    pub node_name: String,
    /// The lifecycle jobs (they also run by themselves every minute).
    pub scheduler: Arc<Scheduler>,
    edge: Arc<Edge>,
    presence: Option<Arc<Presence>>,
    link_streams: Option<Arc<LinkStreams>>,
    /// The dedicated `/metrics` listener, when `metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    /// Health, readiness and metrics.
    pub ops: Arc<crate::ops::Ops>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn stop_signal(
    rx: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await?
    }

    /// Waits until the server stops by itself (or fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }

    /// Moves this node's devices to other nodes and lets the connections it carries end
    /// (bounded), while everything keeps serving; then [`Running::shutdown`] stops it.
    pub async fn drain(&self) {
        // Not ready from the start of the drain, so load balancers stop sending new clients
        // here while the requests and devices already here finish and move.
        self.ops
            .serving
            .store(false, std::sync::atomic::Ordering::Relaxed);
        crate::drain::drain(crate::drain::Draining {
            broker: &self.broker,
            edge: &self.edge,
            notifier: &self.device_notifier,
            presence: self.presence.as_deref(),
            link_streams: self.link_streams.as_deref(),
        })
        .await;
    }

    /// Serves until `signal` completes (then drains and stops) or the server fails by itself.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            res = &mut self.task => res?,
            () = signal => {
                tracing::info!("shutting down: draining");
                self.drain().await;
                self.shutdown().await
            }
        }
    }
}

/// Builds every part and binds the listeners. Returns once the server accepts connections.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// [`start`] with the broker's and the scheduler's time from `clock` (tests move it).
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Running> {
    keys::ensure_data_dir(&config.data_dir)?;
    let store = burrow_store::connect(&config.database_url())
        .await
        .context("opening the database")?;
    // The data directory's keys on SQLite; the cluster's, from the database, on PostgreSQL.
    let ServerKeys {
        jwt: jwt_secret,
        token: token_key,
        ca,
        link_ca,
    } = cluster::shared_keys::load(&config, store.as_ref()).await?;
    let admin = first_admin(
        store.as_ref(),
        config.admin_email.as_deref(),
        config.admin_password.as_ref(),
        &config.data_dir,
    )
    .await?;

    let broker = Broker::new(
        store.clone(),
        TokenKey::from_bytes(&token_key)?,
        BrokerConfig {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            ..BrokerConfig::default()
        },
        clock.clone(),
    );
    let notifier = ConfigNotifier::new();
    // Several nodes on PostgreSQL: a change made through one wakes the polls on all.
    let succession = Succession::default();
    let change_tasks: Vec<JoinHandle<()>> = if config.database_url().starts_with("postgres") {
        let mut tasks: Vec<JoinHandle<()>> =
            crate::cluster::changes::start(&config.database_url(), &notifier)
                .await
                .context("starting the cross-node change relay")?
                .into();
        tasks.extend(
            crate::cluster::tunnel_events::start(
                &config.database_url(),
                &config.node_name(),
                &broker,
                &succession,
            )
            .await
            .context("starting the cross-node tunnel events")?,
        );
        tasks
    } else {
        Vec::new()
    };
    let instance_id = Membership::new_instance_id();
    let link = match (&link_ca, config.cluster_listen) {
        (Some(link_ca), Some(at)) => Some(
            ClusterLink::bind(&config, link_ca, at, &instance_id)
                .await
                .context("starting the cluster link")?,
        ),
        (None, Some(_)) => anyhow::bail!(
            "cluster_listen is set, but a cluster needs PostgreSQL (database_url = postgres://...)"
        ),
        _ => None,
    };

    // Bind both listeners first: the printed and advertised addresses are the real ones.
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let roles = config.roles();
    // A node without the broker role holds no device: it opens no device listener.
    let device_listener = if roles.has(Role::Broker) {
        Some(
            TcpListener::bind(config.device_listen)
                .await
                .with_context(|| format!("binding the device listener {}", config.device_listen))?,
        )
    } else {
        None
    };
    let device_addr = match &device_listener {
        Some(l) => l.local_addr()?,
        None => config.device_listen,
    };
    let redirect_listener = match config.http_redirect_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the HTTP redirect listener {a}"))?,
        ),
        None => None,
    };
    let redirect_addr = match &redirect_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let metrics_listener = match config.metrics_listen {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("binding the metrics listener {a}"))?,
        ),
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let certs = match config.tls() {
        Some((cert, key)) => Some(
            CertStore::load(cert, key)
                .context("loading the TLS certificate (tls_cert, tls_key)")?,
        ),
        None => None,
    };
    // Custom domains' certificates and the base domain's (ACME) beside the files' wildcard.
    let sealer = Arc::new(crate::certs::Sealer::from_token_key(&token_key)?);
    let served = config
        .serves_tls()
        .then(|| crate::certs::ServedCerts::new(&config.base_domain, certs.clone()));
    let tls = match &served {
        Some(s) => Some(s.server_config()?),
        None => None,
    };
    let challenges = crate::certs::Challenges::new(store.clone());

    let ca = Arc::new(ca);
    let device_urls = config.device_urls(device_addr);
    let devices = DeviceState::new(
        store.clone(),
        ca.clone(),
        Arc::new(BrokerProvisioner(broker.clone())),
        notifier.clone(),
        DeviceConfig {
            device_urls: device_urls.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            ..DeviceConfig::default()
        },
    )?;

    if config.database_url().starts_with("postgres") {
        // Several nodes may change one device at once: serialize them in the database.
        devices.locks().share(Arc::new(
            crate::cluster::advisory::AdvisoryLocks::connect(&config.database_url()).await?,
        ));
    }
    let jwt = JwtKeys::new(
        &jwt_secret,
        chrono::Duration::minutes(config.jwt_ttl_minutes),
    );
    let lifecycle = Arc::new(BrokerLifecycle {
        store: store.clone(),
        broker: broker.clone(),
        notifier: notifier.clone(),
        succession: succession.clone(),
        locks: devices.locks(),
        enrollment_ttl: chrono::Duration::hours(24),
    });
    let scheduler = Arc::new(Scheduler {
        store: store.clone(),
        broker: broker.clone(),
        lifecycle: lifecycle.clone(),
        clock,
        config: SchedulerConfig {
            retention: config.retention(),
            ..SchedulerConfig::default()
        },
        stats: Default::default(),
    });
    let mut api = AppState::new(
        store.clone(),
        jwt,
        ApiConfig {
            base_domain: config.base_domain.clone(),
            enroll_server_url: config.api_origin(addr.port()),
            device_ca_sha256: ca.fingerprint().to_string(),
            tunnel_scheme: if tls.is_some() || config.public_https() {
                "https".into()
            } else {
                "http".into()
            },
            tunnel_port: config.public_port(addr.port()),
            share_link_max_minutes: config.share_link_max_minutes,
            api_origin: config.api_origin(addr.port()),
            password_login: config.password_login,
            ..ApiConfig::default()
        },
        lifecycle,
    );
    let domains_changed = api.domains_changed.clone();
    let sso_settings =
        crate::sso::SsoSettings::from_config(&config, &config.api_origin(addr.port()));
    // One login guard for the API's login and the edge's form: the same quotas for both.
    let login_guard = Arc::new(burrow_api::LoginGuard::default());
    api.login_guard = login_guard.clone();
    api.mailer = config.mailer()?.map(Arc::new);
    // The main port: API, enrollment, and the broker's data plane over plain WebSocket
    // (burrow's own peers in development; the AWS local proxy needs the TLS port).
    let edge = Edge::new(
        store.clone(),
        JwtKeys::new(
            &jwt_secret,
            chrono::Duration::minutes(config.jwt_ttl_minutes),
        ),
        Arc::new(BrokerDialer {
            broker: broker.clone(),
            succession: succession.clone(),
            cluster: link.as_ref().map(ClusterLink::remote),
        }),
        EdgeConfig {
            base_domain: config.base_domain.clone(),
            https: tls.is_some() || config.public_https(),
            login_url: format!("{}/edge/login", config.api_origin(addr.port())),
            public_port: config.public_port(addr.port()),
            login_guard: Some(login_guard),
            trusted_proxies: config.trusted_proxies.clone(),
            analytics: config.analytics,
            password_login: config.password_login,
            sso_label: sso_settings.label().map(str::to_string),
            max_conns_per_client: config.conns_per_client,
            ..EdgeConfig::default()
        },
    );
    succession.set_edge(&edge);
    if let Some(l) = &link {
        succession.set_remote(l.remote());
        let remote = l.remote();
        broker.forward_sources_with(Arc::new(crate::cluster::source_forward::LinkSources {
            presence: remote.presence,
            connector: remote.connector,
        }));
    }
    let aws = burrow_aws::AwsState::new(
        store.clone(),
        broker.clone(),
        api.clone(),
        token_key.to_vec(),
    );
    let ops = crate::ops::Ops::new(
        store.clone(),
        broker.clone(),
        edge.clone(),
        scheduler.clone(),
        config.metrics_token.clone(),
    );
    let sso = crate::sso::Sso::new(api.clone(), edge.clone(), sso_settings, &jwt_secret)
        .context("setting up single sign-on")?;
    let mut app = Router::new().merge(crate::ops::router(
        ops.clone(),
        config.metrics_token.is_some(),
    ));
    if roles.has(Role::Api) {
        app = app
            .merge(burrow_api::router(api))
            .merge(crate::sso::router(sso))
            .merge(crate::openapi::router(device_urls.first().as_str()))
            .merge(burrow_aws::router(aws))
            .merge(burrow_device::enroll_router(devices.clone()))
            .merge(crate::web::router());
    }
    if roles.has(Role::Broker) {
        app = app.merge(broker.router());
    }
    if roles.has(Role::Edge) {
        app = app.merge(edge.auth_router());
    }
    let app = app.layer(tower_http::trace::TraceLayer::new_for_http());
    // The device port (TLS, device CA): the config endpoint, which demands a device
    // certificate, and the broker, where the access token is the credential.
    let device_app: Router = burrow_device::config_router(devices).merge(broker.router());
    let device_tls = device_tls_config(&ca, &device_urls)?;

    // Last: once claimed, the node's lease is released only by the serving task.
    let membership = Arc::new(
        Membership::join(
            store.clone(),
            &config,
            // Without a link, an explicit cluster_url is still recorded (nothing dials it:
            // such a node records no presence).
            link.as_ref()
                .map(|l| l.url.clone())
                .or_else(|| config.cluster_url()),
            instance_id,
        )
        .await?,
    );
    let (shutdown, rx) = watch::channel(false);
    let presence = link.as_ref().map(|l| l.presence.clone());
    let link_streams = link.as_ref().map(|l| l.streams.clone());
    let link_tasks = link
        .map(|l| l.spawn(broker.clone(), || stop_signal(&rx)))
        .unwrap_or_default();
    let heartbeat_task = tokio::spawn(membership.clone().run(
        {
            let broker = broker.clone();
            move || broker.destinations_connected()
        },
        stop_signal(&rx),
    ));
    let device_stop = stop_signal(&rx);
    let api_stop = stop_signal(&rx);
    // Every minute each node asks whether a job is due; `claim_job` picks one node per run.
    let scheduler_task = roles.has(Role::Scheduler).then(|| {
        tokio::spawn(
            scheduler
                .clone()
                .run(std::time::Duration::from_secs(60), stop_signal(&rx)),
        )
    });
    let cert_worker = crate::certs::worker_for(
        &config,
        store.clone(),
        edge.clone(),
        served.clone(),
        sealer.clone(),
        domains_changed,
    )?;
    let cert_worker_task = roles
        .has(Role::Edge)
        .then(|| tokio::spawn(cert_worker.run(stop_signal(&rx))));
    // A per-address connection cap on the device port too (larger: fleets share NATs).
    let device_limiter = burrow_edge::ConnLimiter::new(config.device_conns_per_address);
    let device_task = device_listener.map(|device_listener| {
        tokio::spawn(burrow_device::mtls::serve_device_listener_admitting(
            device_listener,
            device_tls,
            device_app,
            device_stop,
            move |ip| {
                device_limiter
                    .try_acquire(ip)
                    .map(|p| Box::new(p) as burrow_device::mtls::ConnSlot)
            },
        ))
    });
    let flush_task = tokio::spawn(edge.flush_task(std::time::Duration::from_secs(5)));
    let cert_task = certs.map(|c| tokio::spawn(c.watch(std::time::Duration::from_secs(5))));
    let redirect_task = redirect_listener.map(|l| {
        tokio::spawn(crate::front::serve_redirect(
            l,
            edge.clone(),
            challenges.clone(),
            addr.port(),
            stop_signal(&rx),
        ))
    });
    let metrics_task = metrics_listener
        .map(|l| tokio::spawn(crate::ops::serve_metrics(l, ops.clone(), stop_signal(&rx))));
    // Ready from here until the stop signal (load balancers drain before the listener closes).
    ops.serving
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let not_ready = stop_signal(&rx);
    let serving = ops.serving.clone();
    tokio::spawn(async move {
        not_ready.await;
        serving.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    let node = membership.clone();
    let serving_edge = edge.clone();
    let task = tokio::spawn(async move {
        let edge = serving_edge;
        let served =
            crate::front::serve(listener, tls, challenges, edge.clone(), app, api_stop).await;
        if let Some(t) = device_task {
            t.abort();
        }
        if let Some(t) = cert_task {
            t.abort();
        }
        if let Some(t) = redirect_task {
            t.abort();
        }
        if let Some(t) = metrics_task {
            t.abort();
        }
        if let Some(t) = scheduler_task {
            t.abort();
        }
        if let Some(t) = cert_worker_task {
            t.abort();
        }
        flush_task.abort();
        for t in change_tasks {
            t.abort();
        }
        // Withdraws this node's presence records before the lease goes.
        for t in link_tasks {
            let _ = t.await;
        }
        // Counters, access log entries and open rollup buckets still in memory.
        edge.flush_all().await;
        // Also when serving failed by itself (no stop signal): free the node's lease now.
        heartbeat_task.abort();
        node.leave().await;
        served
    });
    Ok(Running {
        addr,
        device_addr,
        redirect_addr,
        store,
        broker,
        device_ca_pem: ca.ca_pem().to_string(),
        device_urls,
        device_ca_sha256: ca.fingerprint(),
        device_notifier: notifier,
        admin,
        node_name: membership.name().to_string(),
        scheduler,
        edge,
        presence,
        link_streams,
        metrics_addr,
        ops,
        shutdown,
        task,
    })
}

/// TLS for the device listener: a server certificate from the device CA for every host of
/// `device_url` (issued anew at each start, so a changed list is always covered) and the
/// loopback names, and client
/// certificates *requested* but not required — the broker's `/tunnel` authenticates by
/// access token (the AWS local proxy has no client certificate), while the config endpoint
/// refuses any request that did not present a certificate chained to the device CA.
fn device_tls_config(
    ca: &DeviceCa,
    urls: &DeviceUrls,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(ca.root_store()),
        burrow_device::mtls::crypto_provider(),
    )
    .allow_unauthenticated()
    .build()?;
    let mut hosts = urls.hosts();
    for local in ["localhost", "127.0.0.1", "::1"] {
        if !hosts.iter().any(|h| h == local) {
            hosts.push(local.to_string());
        }
    }
    Ok(ca.server_config(&hosts, verifier)?)
}
