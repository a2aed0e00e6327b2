//! `burrow server`: wires the store, the keys, the API and the listeners, and serves until
//! shut down.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use burrow_api::{ApiConfig, AppState, BasicLifecycle, JwtKeys};
use burrow_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::bootstrap::{first_admin, CreatedAdmin};
use crate::config::Config;
use crate::keys;

/// A started server: where it listens, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    pub admin: Option<CreatedAdmin>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<()>>,
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

    /// Serves until `signal` completes (then drains) or the server fails by itself.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            res = &mut self.task => res?,
            () = signal => {
                tracing::info!("shutting down");
                self.shutdown().await
            }
        }
    }
}

/// Builds every part and binds the listeners. Returns once the server accepts connections.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    keys::ensure_data_dir(&config.data_dir)?;
    let jwt_secret = keys::load_or_create(&config.data_dir, "jwt.key", 32)?;
    let store = burrow_store::connect(&config.database_url())
        .await
        .context("opening the database")?;
    let admin = first_admin(
        store.as_ref(),
        config.admin_email.as_deref(),
        config.admin_password.as_ref(),
    )
    .await?;

    let jwt = JwtKeys::new(
        &jwt_secret,
        chrono::Duration::minutes(config.jwt_ttl_minutes),
    );
    let lifecycle = Arc::new(BasicLifecycle {
        store: store.clone(),
        enrollment_ttl: chrono::Duration::hours(24),
    });
    let api = AppState::new(
        store.clone(),
        jwt,
        ApiConfig {
            base_domain: config.base_domain.clone(),
            ..ApiConfig::default()
        },
        lifecycle,
    );
    let app: Router = burrow_api::router(api).layer(tower_http::trace::TraceLayer::new_for_http());

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await
        .context("serving http")
    });
    Ok(Running {
        addr,
        store,
        admin,
        shutdown,
        task,
    })
}
