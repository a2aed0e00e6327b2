//! A node's part in the cluster link: its listener and certificate, the URL it advertises,
//! and its presence records, put together at start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use burrow_broker::Broker;
use burrow_device::DeviceCa;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::link::{self, LinkTls, NodeAddr};
use super::link_streams::LinkStreams;
use super::presence::Presence;
use crate::config::Config;
use crate::dialer::Remote;

pub struct ClusterLink {
    /// What the other nodes dial (recorded with this node's lease).
    pub url: String,
    listener: TcpListener,
    tls: LinkTls,
    pub presence: Arc<Presence>,
    pub streams: Arc<LinkStreams>,
}

impl ClusterLink {
    /// Binds `at` (port 0 picks one) and makes this node's link certificate for the host
    /// of its URL and the bound address.
    pub async fn bind(
        config: &Config,
        link_ca: &DeviceCa,
        at: SocketAddr,
        instance_id: &str,
    ) -> anyhow::Result<ClusterLink> {
        let listener = TcpListener::bind(at)
            .await
            .with_context(|| format!("binding cluster_listen {at}"))?;
        let bound = listener.local_addr()?;
        let url = match config.cluster_url.as_deref() {
            Some(u) => u.trim_end_matches('/').to_string(),
            None if bound.ip().is_unspecified() => anyhow::bail!(
                "cluster_listen {at} is a wildcard address: set cluster_url (env \
                 BURROW_CLUSTER_URL) to the https://host:port other nodes reach this node at"
            ),
            None => format!("https://{bound}"),
        };
        let addr = NodeAddr::parse(&url)
            .with_context(|| format!("cluster_url {url:?} must look like https://host:port"))?;
        let mut hosts = vec![addr.host.clone()];
        if !bound.ip().is_unspecified() && bound.ip().to_string() != addr.host {
            hosts.push(bound.ip().to_string());
        }
        let tls = LinkTls::new(link_ca, &hosts)?;
        let presence =
            Presence::connect(&config.database_url(), &config.node_name(), instance_id).await?;
        tracing::info!(%bound, %url, "cluster link listening");
        Ok(ClusterLink {
            url,
            listener,
            tls,
            presence,
            streams: Arc::new(LinkStreams::default()),
        })
    }

    /// How this node's edge reaches devices held by other nodes.
    pub fn remote(&self) -> Remote {
        Remote {
            presence: self.presence.clone(),
            connector: self.tls.connector.clone(),
        }
    }

    /// Serves the link and records presence until the stop future completes.
    pub fn spawn<F, S>(self, broker: Arc<Broker>, stop: S) -> Vec<JoinHandle<()>>
    where
        F: Future<Output = ()> + Send + 'static,
        S: Fn() -> F,
    {
        vec![
            tokio::spawn(link::serve(
                self.listener,
                self.tls.acceptor,
                broker.clone(),
                self.streams.clone(),
                stop(),
            )),
            tokio::spawn(self.presence.publish(broker, stop())),
        ]
    }
}
