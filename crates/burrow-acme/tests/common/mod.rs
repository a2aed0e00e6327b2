//! Challenge responders and certificate checks shared by the tests: a tiny HTTP server for
//! HTTP-01, a TLS server for TLS-ALPN-01, and chain verification against pebble's root.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use burrow_acme::{tls_alpn01_certificate, Challenge, ChallengeSolver};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Challenges presented and cleaned up, by the test solvers.
#[derive(Default)]
pub struct Record {
    pub presented: Mutex<Vec<Challenge>>,
    pub cleaned: Mutex<Vec<Challenge>>,
}

/// HTTP-01 over a local HTTP server; `wrong` serves a different key authorization.
pub struct HttpSolver {
    tokens: Arc<Mutex<HashMap<String, String>>>,
    pub wrong: bool,
    pub record: Record,
    pub port: u16,
}

impl HttpSolver {
    pub async fn start(wrong: bool) -> HttpSolver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let served = tokens.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&request);
                    let path = text.split_whitespace().nth(1).unwrap_or("");
                    let answer = path
                        .strip_prefix("/.well-known/acme-challenge/")
                        .and_then(|token| served.lock().unwrap().get(token).cloned());
                    let response = match answer {
                        Some(body) => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        HttpSolver {
            tokens,
            wrong,
            record: Record::default(),
            port,
        }
    }
}

#[async_trait]
impl ChallengeSolver for HttpSolver {
    async fn present(&self, challenge: &Challenge) -> Result<(), String> {
        let Challenge::Http01 {
            token,
            key_authorization,
        } = challenge
        else {
            return Err("http-01 only".into());
        };
        let body = if self.wrong {
            format!("{token}.not-the-right-thumbprint")
        } else {
            key_authorization.clone()
        };
        self.tokens.lock().unwrap().insert(token.clone(), body);
        self.record
            .presented
            .lock()
            .unwrap()
            .push(challenge.clone());
        Ok(())
    }

    async fn cleanup(&self, challenge: &Challenge) {
        if let Challenge::Http01 { token, .. } = challenge {
            self.tokens.lock().unwrap().remove(token);
        }
        self.record.cleaned.lock().unwrap().push(challenge.clone());
    }
}

/// TLS-ALPN-01 over a local TLS server answering `acme-tls/1` with the challenge certificate.
pub struct AlpnSolver {
    certs: Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>,
    pub record: Record,
    pub port: u16,
}

#[derive(Debug)]
struct AlpnResolver(Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>>);

impl ResolvesServerCert for AlpnResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .map(|mut protocols| protocols.any(|p| p == b"acme-tls/1"))
            .unwrap_or(false);
        if !acme {
            return None;
        }
        self.0.lock().unwrap().get(hello.server_name()?).cloned()
    }
}

impl AlpnSolver {
    pub async fn start() -> AlpnSolver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let certs: Arc<Mutex<HashMap<String, Arc<CertifiedKey>>>> = Arc::default();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(AlpnResolver(certs.clone())));
        config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        AlpnSolver {
            certs,
            record: Record::default(),
            port,
        }
    }
}

#[async_trait]
impl ChallengeSolver for AlpnSolver {
    async fn present(&self, challenge: &Challenge) -> Result<(), String> {
        let Challenge::TlsAlpn01 {
            domain,
            key_authorization,
        } = challenge
        else {
            return Err("tls-alpn-01 only".into());
        };
        let (cert, key) =
            tls_alpn01_certificate(domain, key_authorization).map_err(|e| e.to_string())?;
        let signing =
            rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
        self.certs.lock().unwrap().insert(
            domain.clone(),
            Arc::new(CertifiedKey::new(vec![cert], signing)),
        );
        self.record
            .presented
            .lock()
            .unwrap()
            .push(challenge.clone());
        Ok(())
    }

    async fn cleanup(&self, challenge: &Challenge) {
        if let Challenge::TlsAlpn01 { domain, .. } = challenge {
            self.certs.lock().unwrap().remove(domain);
        }
        self.record.cleaned.lock().unwrap().push(challenge.clone());
    }
}

/// Verifies `chain_pem` (leaf first) for each of `names` against `root_pem`, as a TLS client
/// would.
pub fn verify_chain(chain_pem: &str, root_pem: &str, names: &[&str]) -> Result<(), String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let (leaf, intermediates) = chain.split_first().ok_or("empty chain")?;
    let mut roots = rustls::RootCertStore::empty();
    for root in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots
            .add(root.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    for name in names {
        let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(leaf, intermediates, &server_name, &[], UnixTime::now())
            .map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// An address on 127.0.0.1 where nothing listens (bound, read, closed).
pub fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}
