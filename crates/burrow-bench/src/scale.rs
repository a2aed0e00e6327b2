//! Idle tunnels at scale: tunnels opened through the AWS-compatible API (SigV4), each with a
//! simulated destination peer: a WebSocket over TLS to the device listener, as agents connect,
//! that only answers pings.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type HmacSha256 = Hmac<Sha256>;

/// A TLS client config that trusts the device CA (`ca.pem` of an enrolled agent).
pub fn device_tls(ca_pem: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let pem = std::fs::read(ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An AWS access key of the bench project.
pub struct AwsKey {
    pub id: String,
    pub secret: String,
}

pub async fn aws_key(
    http: &reqwest::Client,
    api: &str,
    token: &str,
    project_id: i64,
) -> anyhow::Result<AwsKey> {
    let resp = http
        .post(format!("{api}/projects/{project_id}/aws-keys"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    if !status.is_success() {
        bail!("aws-keys: {status} {body}");
    }
    Ok(AwsKey {
        id: body["access_key_id"]
            .as_str()
            .context("access_key_id")?
            .into(),
        secret: body["secret_access_key"]
            .as_str()
            .context("secret_access_key")?
            .into(),
    })
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// One AWS JSON 1.1 call, SigV4-signed (host, x-amz-date, x-amz-target).
async fn aws_call(
    http: &reqwest::Client,
    port: u16,
    key: &AwsKey,
    op: &str,
    body: &Value,
) -> anyhow::Result<Value> {
    let body = serde_json::to_vec(body)?;
    let now = chrono::Utc::now();
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = now.format("%Y%m%d").to_string();
    let host = format!("127.0.0.1:{port}");
    let target = format!("IoTSecuredTunneling.{op}");
    let (region, service) = ("us-east-1", "iotsecuredtunneling");
    let signed = "host;x-amz-date;x-amz-target";
    let creq = format!(
        "POST\n/\n\nhost:{host}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n{signed}\n{}",
        hex::encode(Sha256::digest(&body))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(creq.as_bytes()))
    );
    let mut k = hmac(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        k = hmac(&k, part.as_bytes());
    }
    let sig = hex::encode(hmac(&k, sts.as_bytes()));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
        key.id
    );
    let resp = http
        .post(format!("http://{host}/"))
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-date", amz_date)
        .header("x-amz-target", target)
        .header("authorization", auth)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{op}: {status} {v}");
    }
    Ok(v)
}

/// Idle destination peers held open by this process.
#[derive(Default)]
pub struct IdlePeers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub closed: Arc<AtomicUsize>,
}

impl IdlePeers {
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Opens `n` more tunnels and connects a destination peer to each, `parallel` at a time.
    #[allow(clippy::too_many_arguments)]
    pub async fn add(
        &mut self,
        http: &reqwest::Client,
        port: u16,
        device_port: u16,
        tls: &Arc<rustls::ClientConfig>,
        key: &AwsKey,
        n: usize,
        parallel: usize,
    ) -> anyhow::Result<()> {
        let start = self.tasks.len();
        let closed = self.closed.clone();
        let new: Vec<tokio::task::JoinHandle<()>> = futures_util::stream::iter(start..start + n)
            .map(|i| {
                let closed = closed.clone();
                let tls = tls.clone();
                async move {
                    let opened = aws_call(
                        http,
                        port,
                        key,
                        "OpenTunnel",
                        &json!({"destinationConfig": {"thingName": format!("idle-{i}"),
                                                      "services": ["HTTP"]},
                                "timeoutConfig": {"maxLifetimeTimeoutMinutes": 720}}),
                    )
                    .await?;
                    let token = opened["destinationAccessToken"]
                        .as_str()
                        .context("destinationAccessToken")?;
                    let mut req = format!(
                        "wss://localhost:{device_port}/tunnel?local-proxy-mode=destination"
                    )
                    .into_client_request()?;
                    req.headers_mut()
                        .insert("access-token", HeaderValue::from_str(token)?);
                    req.headers_mut().insert(
                        "sec-websocket-protocol",
                        HeaderValue::from_static("burrow.tunnel-1.0"),
                    );
                    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
                        req,
                        None,
                        true,
                        Some(tokio_tungstenite::Connector::Rustls(tls)),
                    )
                    .await
                    .with_context(|| format!("destination peer {i}"))?;
                    Ok::<_, anyhow::Error>(tokio::spawn(async move {
                        // Reading answers pings; the peer stays idle otherwise.
                        while let Some(Ok(_)) = ws.next().await {}
                        closed.fetch_add(1, Ordering::Relaxed);
                    }))
                }
            })
            .buffer_unordered(parallel)
            .try_collect()
            .await?;
        self.tasks.extend(new);
        Ok(())
    }
}

impl Drop for IdlePeers {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}
