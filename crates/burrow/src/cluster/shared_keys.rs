//! The server's keys — the JWT key (and so the edge's session-cookie key, derived from it),
//! the token key (tunnel access tokens, AWS secret keys) and the device CA. On SQLite they
//! are files in the data directory, as always. On PostgreSQL they are the cluster's: one
//! bundle sealed with the cluster key in the `settings` table, created by the first node
//! (insert-if-absent, then read back, so nodes starting together agree) and loaded by every
//! later one. A node that cannot open the bundle refuses to start; it never makes its own.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use burrow_device::DeviceCa;
use burrow_store::Store;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::cluster_key::{ClusterKey, HOW_TO_MAKE};
use crate::config::Config;
use crate::keys;

/// Where the sealed bundle lives (`settings`), and the label it is sealed under.
const SETTING: &str = "cluster.keys.v1";
const LABEL: &[u8] = b"burrow cluster keys v1";
const CA_DIR: &str = "device-ca";
/// The CA of the node-to-node link, sealed on its own (added after the bundle existed).
const LINK_SETTING: &str = "cluster.link-ca.v1";
const LINK_LABEL: &[u8] = b"burrow cluster link CA v1";

/// The keys a server runs with.
pub struct ServerKeys {
    pub jwt: Vec<u8>,
    pub token: Vec<u8>,
    pub ca: DeviceCa,
    /// The CA that issues the nodes' link certificates (a cluster only: PostgreSQL).
    pub link_ca: Option<DeviceCa>,
}

#[derive(Serialize, Deserialize)]
struct LinkCa {
    cert: String,
    key: String,
}

/// What is sealed: every key, so that one row is created (or not) atomically.
#[derive(Serialize, Deserialize)]
struct Bundle {
    jwt_key: String,
    token_key: String,
    device_ca_cert: String,
    device_ca_key: String,
}

/// The keys for this server: the data directory's on SQLite, the cluster's on PostgreSQL.
pub async fn load(config: &Config, store: &dyn Store) -> anyhow::Result<ServerKeys> {
    if store.backend() != "postgres" {
        return from_data_dir(&config.data_dir);
    }
    let Some(path) = &config.cluster_key_file else {
        bail!(
            "cluster_key_file is not set. With PostgreSQL, burrow's nodes share their keys \
             through the database, sealed with a cluster key that the database never holds: \
             {HOW_TO_MAKE}"
        );
    };
    let key = ClusterKey::read(path)?;
    let mut keys = cluster_keys(store, &key, &config.data_dir)
        .await
        .map_err(|e| anyhow!("{e:#} (cluster_key_file {})", path.display()))?;
    keys.link_ca = Some(link_ca(store, &key).await?);
    Ok(keys)
}

/// The cluster's node-link CA, created by the first node that needs it.
async fn link_ca(store: &dyn Store, key: &ClusterKey) -> anyhow::Result<DeviceCa> {
    let plain = sealed_setting(store, key, LINK_SETTING, LINK_LABEL, || {
        let (cert, key) = DeviceCa::generate_pem_named("burrow cluster link CA")?;
        Ok(serde_json::to_vec(&LinkCa { cert, key })?)
    })
    .await?;
    let ca: LinkCa = serde_json::from_slice(&plain).context("the cluster link CA is malformed")?;
    DeviceCa::from_pem(&ca.cert, &ca.key).context("the cluster link CA")
}

/// The value of `setting`, sealed under `key` with `label`; made by `make` and stored when
/// absent (insert-if-absent, then read back: nodes starting together use the winner's).
async fn sealed_setting(
    store: &dyn Store,
    key: &ClusterKey,
    setting: &str,
    label: &[u8],
    make: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    let sealed = match store.get_setting(setting).await? {
        Some(s) => s,
        None => {
            let plain = make()?;
            if store
                .put_setting_if_absent(setting, &key.seal(label, &plain))
                .await?
            {
                tracing::info!(setting, "created the cluster's keys in the database");
            }
            store
                .get_setting(setting)
                .await?
                .context("the cluster's keys vanished from the database")?
        }
    };
    key.open(label, &sealed).map_err(|_| {
        anyhow!(
            "refusing to start: the cluster's keys in the database do not open with this \
             cluster_key_file — it is not the key the first node sealed them with. Give this \
             node the same cluster key file as the others"
        )
    })
}

fn from_data_dir(dir: &Path) -> anyhow::Result<ServerKeys> {
    Ok(ServerKeys {
        jwt: keys::load_or_create(dir, "jwt.key", 32)?,
        token: keys::load_or_create(dir, "token.key", 32)?,
        ca: DeviceCa::load_or_create(&dir.join(CA_DIR))?,
        link_ca: None,
    })
}

/// The cluster's keys from `store`, created when absent. A first node whose data directory
/// already has keys (a single-node PostgreSQL deployment becoming a cluster) seals those, so
/// that sessions, tokens and enrolled devices stay valid.
pub async fn cluster_keys(
    store: &dyn Store,
    key: &ClusterKey,
    data_dir: &Path,
) -> anyhow::Result<ServerKeys> {
    let plain = sealed_setting(store, key, SETTING, LABEL, || {
        Ok(serde_json::to_vec(&first_bundle(data_dir)?)?)
    })
    .await?;
    let bundle: Bundle =
        serde_json::from_slice(&plain).context("the cluster's keys are malformed")?;
    Ok(ServerKeys {
        jwt: hex::decode(&bundle.jwt_key).context("cluster jwt key")?,
        token: hex::decode(&bundle.token_key).context("cluster token key")?,
        ca: DeviceCa::from_pem(&bundle.device_ca_cert, &bundle.device_ca_key)
            .context("the cluster's device CA")?,
        link_ca: None,
    })
}

/// The keys a first node brings: those of its data directory when present, else new ones.
fn first_bundle(data_dir: &Path) -> anyhow::Result<Bundle> {
    let random = || {
        let mut b = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut b);
        b
    };
    let jwt = keys::load_existing(data_dir, "jwt.key")?.unwrap_or_else(random);
    let token = keys::load_existing(data_dir, "token.key")?.unwrap_or_else(random);
    let ca_dir = data_dir.join(CA_DIR);
    let (cert, key) = match (
        std::fs::read_to_string(ca_dir.join(burrow_device::ca::CA_CERT_FILE)),
        std::fs::read_to_string(ca_dir.join(burrow_device::ca::CA_KEY_FILE)),
    ) {
        (Ok(cert), Ok(key)) => {
            tracing::info!(dir = %ca_dir.display(), "sealing this data directory's device CA as the cluster's");
            (cert, key)
        }
        _ => DeviceCa::generate_pem()?,
    };
    Ok(Bundle {
        jwt_key: hex::encode(jwt),
        token_key: hex::encode(token),
        device_ca_cert: cert,
        device_ca_key: key,
    })
}
