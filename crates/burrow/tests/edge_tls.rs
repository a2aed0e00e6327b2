//! Production mode: the main port serves HTTPS with a wildcard certificate from PEM files
//! (HTTP/2 and HTTP/1.1 by ALPN, API and tunnel hosts on one port), a plain-HTTP listener
//! redirects to it, and a renewed certificate is served without a restart.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::{Backend, TestStack};
use burrow_client::{ClientConfig, DestinationClient, Secret, Targets};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use reqwest::{StatusCode, Version};
use serde_json::{json, Value};

const DOMAIN: &str = "fleet.test";

struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn test_ca() -> TestCa {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("ca");
    TestCa { cert, key }
}

/// Writes a wildcard leaf for `*.fleet.test` and `fleet.test` signed by `ca`; returns its DER.
fn write_leaf(ca: &TestCa, dir: &Path) -> Vec<u8> {
    let params =
        CertificateParams::new(vec![format!("*.{DOMAIN}"), DOMAIN.to_string()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let leaf = params.signed_by(&key, &ca.cert, &ca.key).expect("leaf");
    // Written to a temporary name and renamed, as certbot does: never a half-written file.
    std::fs::write(dir.join("cert.tmp"), leaf.pem()).expect("write");
    std::fs::write(dir.join("key.tmp"), key.serialize_pem()).expect("write");
    std::fs::rename(dir.join("key.tmp"), dir.join("key.pem")).expect("rename");
    std::fs::rename(dir.join("cert.tmp"), dir.join("cert.pem")).expect("rename");
    leaf.der().to_vec()
}

/// A device service that reports the scheme the edge says the client used.
async fn device_service() -> SocketAddr {
    let app = axum::Router::new().route(
        "/",
        get(|headers: axum::http::HeaderMap| async move {
            let proto = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            axum::Json(json!({ "proto": proto }))
        }),
    );
    burrow::testkit::serve_local(app)
        .await
        .expect("local service")
}

fn client(ca: &TestCa, addr: SocketAddr, names: &[&str], http1_only: bool) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.cert.pem().as_bytes()).expect("root");
    let mut b = reqwest::Client::builder()
        .add_root_certificate(root)
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none());
    for n in names {
        b = b.resolve(n, addr);
    }
    if http1_only {
        b = b.http1_only();
    }
    b.build().expect("client")
}

/// The certificate a fresh TLS connection to `addr` is given.
async fn served_cert(ca: &TestCa, addr: SocketAddr) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert.der().clone()).expect("root");
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from(format!("x.{DOMAIN}")).expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .expect("handshake");
    tls.get_ref().1.peer_certificates().expect("certs")[0].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_serves_api_and_tunnels_with_h2_redirects_and_reloads() {
    let ca = test_ca();
    let certs = tempfile::tempdir().expect("tempdir");
    let first = write_leaf(&ca, certs.path());
    let dir = certs.path().to_path_buf();
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = DOMAIN.into();
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
        c.http_redirect_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
    .expect("stack");
    let addr = s.addr;
    let origin = format!("https://{DOMAIN}:{}", addr.port());
    let tunnel_host = format!("device-tls1.{DOMAIN}");
    let s = s.with_client(
        client(&ca, addr, &[DOMAIN, &tunnel_host], false),
        origin.clone(),
    );

    // The API over HTTPS on the main port.
    let admin = s.admin_token().await.expect("login over https");
    s.project_with_device(&admin, "TLS1").await.expect("device");
    let svc = device_service().await;
    let (status, t) = s
        .call(
            reqwest::Method::POST,
            "/api/v1/reverse-tunnels/devices/TLS1/reverse-tunnels",
            &admin,
            Some(&json!({"name": "Dash", "local_port": svc.port(), "require_auth": false})),
        )
        .await
        .expect("create");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    assert_eq!(t["public_url"], tunnel_host.as_str());

    // The device connects on the device port (its CA), as the agent does.
    let tunnel_id = t["tunnel_id"].as_str().expect("tunnel id");
    let token = s
        .running
        .broker
        .destination_token(tunnel_id)
        .await
        .expect("token");
    let mut cfg = ClientConfig::new(
        format!("wss://localhost:{}", s.running.device_addr.port()),
        Secret::new(token.expose()),
    );
    cfg.ca_pem = Some(s.running.device_ca_pem.clone().into_bytes());
    let _peer = DestinationClient::connect(
        cfg,
        Targets::new().service(format!("HTTP-{}", svc.port()), svc),
    )
    .await
    .expect("destination connects");

    // The tunnel over HTTP/2 (ALPN) and over HTTP/1.1; the device is told the scheme.
    let url = format!("https://{tunnel_host}:{}/", addr.port());
    for (http1, version) in [(false, Version::HTTP_2), (true, Version::HTTP_11)] {
        let c = client(&ca, addr, &[&tunnel_host], http1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let r = loop {
            let r = c.get(&url).send().await.expect("send");
            // 503 until the broker has the destination registered.
            if r.status() != StatusCode::SERVICE_UNAVAILABLE
                || tokio::time::Instant::now() > deadline
            {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.version(), version);
        let seen: Value = r.json().await.expect("json");
        assert_eq!(seen["proto"], "https");
    }

    // Plain HTTP is redirected to the same URL over HTTPS; hosts that are not ours are not.
    let redirect = s.running.redirect_addr.expect("redirect listener");
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = plain
        .post(format!("http://{redirect}/a/b?c=1"))
        .header("host", format!("{tunnel_host}:80"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!("https://{tunnel_host}:{}/a/b?c=1", addr.port()).as_str()
    );
    let r = plain
        .get(format!("http://{redirect}/"))
        .header("host", "evil.example.com")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // A renewed certificate is served to new connections without a restart.
    assert_eq!(served_cert(&ca, addr).await, first);
    let second = write_leaf(&ca, certs.path());
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if served_cert(&ca, addr).await == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the tunnel still answers on the new certificate.
    let r = client(&ca, addr, &[&tunnel_host], false)
        .get(&url)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
}
