//! Shared fixture: an in-memory store with one project, the device CA, a fake broker, and
//! real servers on 127.0.0.1 port 0 (plain HTTP with ConnectInfo, and the mTLS listener).
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use burrow_device::{
    config_router, mtls, router, ConfigNotifier, DeviceCa, DeviceConfig, DeviceState, DeviceUrls,
    EnrollTrust, ProvisionRequest, ProvisionedTunnel, Secret, TunnelProvisioner,
};
use burrow_store::{
    Device, NewDevice, NewReverseTunnel, NewUser, ReverseTunnel, SqliteStore, Store, Timestamp,
};
use chrono::Utc;
use rcgen::{CertificateParams, KeyPair};
use tokio::net::TcpListener;

/// A broker stand-in: tunnels `tun-N` with stable tokens, 12 h lifetime.
#[derive(Default)]
pub struct FakeBroker {
    pub state: Mutex<FakeState>,
}

#[derive(Default)]
pub struct FakeState {
    pub next: u64,
    /// tunnel id → (services, expires_at, token)
    pub open: HashMap<String, (Vec<String>, Timestamp, String)>,
    pub closed: Vec<String>,
    pub ensure_calls: usize,
    pub fail: bool,
}

impl FakeBroker {
    /// Makes `tunnel_id` expire now (so the next config call must replace it).
    pub fn expire(&self, tunnel_id: &str) {
        let mut s = self.state.lock().unwrap();
        s.open.get_mut(tunnel_id).unwrap().1 = Utc::now();
    }
}

#[async_trait]
impl TunnelProvisioner for FakeBroker {
    async fn ensure_active(
        &self,
        current: Option<&str>,
        req: ProvisionRequest,
        threshold: chrono::Duration,
    ) -> anyhow::Result<ProvisionedTunnel> {
        let mut s = self.state.lock().unwrap();
        s.ensure_calls += 1;
        if s.fail {
            anyhow::bail!("broker down");
        }
        if let Some(cur) = current {
            if let Some((services, exp, _)) = s.open.get(cur) {
                if *services == req.services && *exp > Utc::now() + threshold {
                    return Ok(ProvisionedTunnel {
                        tunnel_id: cur.to_string(),
                        tunnel_arn: format!("arn:burrow:tunnel/{cur}"),
                        expires_at: *exp,
                        replaced: false,
                    });
                }
            }
        }
        s.next += 1;
        let id = format!("tun-{}", s.next);
        let exp = Utc::now() + chrono::Duration::hours(12);
        let token = format!("dest-token-{}-{}", s.next, rand::random::<u64>());
        s.open.insert(id.clone(), (req.services, exp, token));
        Ok(ProvisionedTunnel {
            tunnel_arn: format!("arn:burrow:tunnel/{id}"),
            tunnel_id: id,
            expires_at: exp,
            replaced: true,
        })
    }

    async fn destination_token(&self, tunnel_id: &str) -> anyhow::Result<Secret> {
        let s = self.state.lock().unwrap();
        let (_, _, token) = s
            .open
            .get(tunnel_id)
            .ok_or_else(|| anyhow::anyhow!("no such tunnel"))?;
        Ok(Secret::new(token.clone()))
    }

    async fn close(&self, tunnel_id: &str, _delete: bool) -> anyhow::Result<()> {
        let mut s = self.state.lock().unwrap();
        s.open.remove(tunnel_id);
        s.closed.push(tunnel_id.to_string());
        Ok(())
    }
}

/// A device's credentials as files would hold them.
pub struct Creds {
    pub key_pem: String,
    pub cert_pem: String,
    pub serial: String,
}

pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub ca: Arc<DeviceCa>,
    pub broker: Arc<FakeBroker>,
    pub notifier: ConfigNotifier,
    pub state: DeviceState,
    pub project_id: i64,
}

pub const DEVICE_URL: &str = "https://device.test:8443";

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with_trusted(Vec::new()).await
    }

    pub async fn with_trusted(trusted_proxies: Vec<IpAddr>) -> Fixture {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
        let user = store
            .create_user(NewUser {
                email: "a@example.com".into(),
                password_hash: "x".into(),
                is_admin: true,
            })
            .await
            .unwrap();
        let project = store.create_project("fleet", user.id).await.unwrap();
        let ca = Arc::new(DeviceCa::generate().unwrap());
        let broker = Arc::new(FakeBroker::default());
        let notifier = ConfigNotifier::new();
        let config = DeviceConfig {
            device_urls: DeviceUrls::parse(DEVICE_URL).expect("device URL"),
            trusted_proxies,
            ..DeviceConfig::default()
        };
        let state = DeviceState::new(
            store.clone(),
            ca.clone(),
            broker.clone(),
            notifier.clone(),
            config,
        )
        .unwrap();
        Fixture {
            store,
            ca,
            broker,
            notifier,
            state,
            project_id: project.id,
        }
    }

    pub async fn device(&self, dsn: &str) -> Device {
        self.store
            .create_device(NewDevice {
                project_id: self.project_id,
                dsn: dsn.into(),
                name: dsn.into(),
            })
            .await
            .unwrap()
    }

    pub async fn tunnel(
        &self,
        device: &Device,
        name: &str,
        port: i64,
        enabled: bool,
    ) -> ReverseTunnel {
        self.store
            .create_reverse_tunnel(NewReverseTunnel {
                device_id: device.id,
                name: name.into(),
                description: None,
                public_url: format!(
                    "{}-{}.fleet.test",
                    name.to_lowercase(),
                    device.dsn.to_lowercase()
                ),
                is_enabled: enabled,
                local_port: port,
                protocol: "http".into(),
                require_auth: true,
                allowed_user_ids: vec![],
                ip_allow: vec![],
                ip_deny: vec![],
            })
            .await
            .unwrap()
    }

    /// Issues a certificate for `device` through the CA (as enrollment does) and records it.
    pub async fn creds(&self, device: &Device) -> Creds {
        self.creds_until(device, Utc::now() + chrono::Duration::days(30))
            .await
    }

    pub async fn creds_until(&self, device: &Device, not_after: Timestamp) -> Creds {
        let c = creds_from(&self.ca, &device.dsn, not_after);
        self.store
            .set_device_certificate(device.id, &c.serial, not_after)
            .await
            .unwrap();
        c
    }

    /// The mTLS device listener, serving the config router.
    pub async fn start_mtls(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = mtls::server_config(&self.ca, &["localhost".into(), "127.0.0.1".into()]).unwrap();
        let app = config_router(self.state.clone());
        tokio::spawn(mtls::serve_device_listener(
            listener,
            tls,
            app,
            std::future::pending(),
        ));
        addr
    }

    /// Plain HTTP (the API port in dev): enrollment and, behind a proxy, the config route.
    /// Enrollment pinned to this fixture's device CA.
    #[allow(dead_code)]
    pub fn pin(&self) -> EnrollTrust {
        EnrollTrust::Pinned(self.ca.fingerprint())
    }

    pub async fn start_http(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(self.state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// An HTTPS client trusting the device CA, presenting `creds` if given.
    pub fn client(&self, creds: Option<&Creds>) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.ca.ca_pem().as_bytes()).unwrap(),
            )
            .timeout(std::time::Duration::from_secs(20));
        if let Some(c) = creds {
            let pem = format!("{}{}", c.cert_pem, c.key_pem);
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    }
}

/// A key made here and a certificate for it signed by `ca` (any CA, e.g. a foreign one).
pub fn creds_from(ca: &DeviceCa, dsn: &str, not_after: Timestamp) -> Creds {
    let key = KeyPair::generate().unwrap();
    let csr = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let (cert_pem, serial) = ca.sign_csr(&csr.pem().unwrap(), dsn, not_after).unwrap();
    Creds {
        key_pem: key.serialize_pem(),
        cert_pem,
        serial,
    }
}

pub fn config_url(addr: SocketAddr, dsn: &str) -> String {
    format!("https://{addr}/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config")
}

pub fn http_config_url(addr: SocketAddr, dsn: &str) -> String {
    format!("http://{addr}/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config")
}
