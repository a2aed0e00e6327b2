//! The router served over rustls (as the binary does for the AWS localproxy, which only
//! speaks TLS), with clients connecting over wss:// to a self-signed certificate.

mod common;

use std::sync::Arc;

use burrow_client::{ClientConfig, ClientError, DestinationClient, SourceClient, Targets};
use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Serves `app` over TLS on a fresh port; answers the port and the certificate PEM.
async fn serve_tls(app: axum::Router) -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let pem = cert.cert.pem();
    let chain = vec![CertificateDer::from(cert.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(app);
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, pem)
}

#[tokio::test]
async fn clients_connect_over_wss_with_a_custom_root() {
    let s = stack().await;
    let (port, pem) = serve_tls(s.broker.router()).await;
    let t = s.open(&["SSH"]).await;
    let url = format!("wss://localhost:{port}");
    let echo = echo_server().await;

    // Without the custom root the certificate is not trusted (a retryable error, not 4xx).
    let untrusted = ClientConfig::new(url.clone(), t.destination_token.expose());
    let err = DestinationClient::connect(untrusted, Targets::new())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Connect(_)), "{err:?}");

    let dst_cfg =
        ClientConfig::new(url.clone(), t.destination_token.expose()).with_ca_pem(pem.clone());
    let _dst = DestinationClient::connect(dst_cfg, Targets::new().service("SSH", echo))
        .await
        .unwrap();
    let src_cfg = ClientConfig::new(url, t.source_token.expose()).with_ca_pem(pem);
    let src = SourceClient::connect(src_cfg).await.unwrap();
    let data = pattern(500_000, 5);
    let stream = src.open_stream("SSH").await.unwrap();
    assert!(within(10, echo_round_trip(stream, &data)).await == data);
}
