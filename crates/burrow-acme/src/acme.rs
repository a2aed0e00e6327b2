//! ACME client (RFC 8555) over instant-acme: one account, one order at a time, the
//! challenges answered by a [`ChallengeSolver`] the caller provides (the edge for HTTP-01 and
//! TLS-ALPN-01, a DNS server for DNS-01).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, BodyWrapper, ChallengeType, Identifier,
    NewAccount, NewOrder, Order, OrderStatus, Problem,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::certs::{certificate_validity, csr};

/// Where the ACME server is and how to reach it.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    pub directory_url: String,
    pub contact_email: Option<String>,
    /// Extra PEM roots trusted for the ACME server's own HTTPS (e.g. a test CA's), on top of
    /// the system's.
    pub ca_file: Option<PathBuf>,
}

/// Which challenge type proves control of every name of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeKind {
    Http01,
    TlsAlpn01,
    Dns01,
}

impl fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
            ChallengeKind::Dns01 => "dns-01",
        })
    }
}

/// What a solver must make visible to the ACME server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Serve `key_authorization` at `http://<domain>/.well-known/acme-challenge/<token>`.
    Http01 {
        token: String,
        key_authorization: String,
    },
    /// Answer TLS connections for `domain` with ALPN `acme-tls/1` with
    /// [`tls_alpn01_certificate`].
    TlsAlpn01 {
        domain: String,
        key_authorization: String,
    },
    /// Publish a TXT record `name` (`_acme-challenge.<domain without "*.">`) holding `value`.
    Dns01 {
        domain: String,
        name: String,
        value: String,
    },
}

/// Makes challenges visible to the ACME server, and takes them down afterwards.
#[async_trait]
pub trait ChallengeSolver: Send + Sync {
    /// Errors are short human reasons; they end up in [`AcmeError::Solver`].
    async fn present(&self, challenge: &Challenge) -> Result<(), String>;
    /// Called for every presented challenge once the order is over, whatever its outcome.
    async fn cleanup(&self, challenge: &Challenge);
}

/// An issued certificate chain (leaf first) and its private key.
#[derive(Clone)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"<redacted>")
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish()
    }
}

/// Errors carry the ACME server's own words (its problem detail) so a UI can show them.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("cannot reach the ACME server at {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("ACME account: {0}")]
    Account(String),
    #[error("ACME order: {0}")]
    Order(String),
    #[error("authorization for {identifier} invalid: {detail}")]
    Authorization { identifier: String, detail: String },
    #[error("the ACME server offers no {kind} challenge for {identifier}")]
    NoChallenge {
        identifier: String,
        kind: ChallengeKind,
    },
    #[error("could not present the {kind} challenge for {identifier}: {detail}")]
    Solver {
        identifier: String,
        kind: ChallengeKind,
        detail: String,
    },
    #[error("gave up after {0:?} waiting for the ACME server to {1}")]
    Timeout(Duration, &'static str),
    #[error("certificate: {0}")]
    Certificate(String),
}

/// An ACME account on one directory.
pub struct AcmeClient {
    account: Account,
    /// Overall limit for one order's validation and issuance.
    pub deadline: Duration,
    /// Longest pause between two polls of an order.
    pub max_poll_interval: Duration,
}

impl fmt::Debug for AcmeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcmeClient")
            .field("account", &self.account.id())
            .field("deadline", &self.deadline)
            .finish()
    }
}

/// How long connecting to the directory (and creating an account) may take: a directory that
/// is down must fail the caller, not hang it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

impl AcmeClient {
    /// Loads the account from `credentials` (JSON made by an earlier call), or creates one
    /// (terms agreed) when there are none or they belong to another directory. New credentials
    /// come back as `Some(json)` for the caller to keep: they hold the account's private key.
    pub async fn connect(
        settings: &AcmeSettings,
        credentials: Option<&str>,
    ) -> Result<(AcmeClient, Option<String>), AcmeError> {
        let unreachable = |detail: String| AcmeError::Unreachable {
            url: settings.directory_url.clone(),
            detail,
        };
        let work = async {
            let stored = match credentials {
                Some(json) => Some(parse_credentials(json)?),
                None => None,
            };
            match stored {
                Some((creds, directory)) if directory == settings.directory_url => {
                    let account = Account::builder_with_http(http_client(settings)?)
                        .from_credentials(creds)
                        .await
                        .map_err(|e| unreachable(describe(&e)))?;
                    Ok((account, None))
                }
                _ => {
                    let contact = settings
                        .contact_email
                        .as_ref()
                        .map(|email| format!("mailto:{email}"));
                    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                    let (account, creds) = Account::builder_with_http(http_client(settings)?)
                        .create(
                            &NewAccount {
                                contact: &contact,
                                terms_of_service_agreed: true,
                                only_return_existing: false,
                            },
                            settings.directory_url.clone(),
                            None,
                        )
                        .await
                        .map_err(|e| match e {
                            instant_acme::Error::Api(p) => AcmeError::Account(problem(&p)),
                            other => unreachable(describe(&other)),
                        })?;
                    let json = serde_json::to_string(&creds)
                        .map_err(|e| AcmeError::Account(format!("serializing credentials: {e}")))?;
                    Ok((account, Some(json)))
                }
            }
        };
        let (account, new_credentials) = tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))??;
        Ok((
            AcmeClient {
                account,
                deadline: Duration::from_secs(90),
                max_poll_interval: Duration::from_secs(5),
            },
            new_credentials,
        ))
    }

    /// Orders a certificate for `names` (wildcards as `*.example.com`), answering every
    /// authorization with a challenge of `kind` through `solver`. Every presented challenge is
    /// cleaned up afterwards, whatever the outcome.
    pub async fn issue(
        &self,
        names: &[String],
        kind: ChallengeKind,
        solver: &dyn ChallengeSolver,
    ) -> Result<Issued, AcmeError> {
        if names.is_empty() {
            return Err(AcmeError::Order("no names to certify".into()));
        }
        let identifiers: Vec<Identifier> =
            names.iter().map(|n| Identifier::Dns(n.clone())).collect();
        let mut order = self
            .account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| AcmeError::Order(describe(&e)))?;
        let mut presented = Vec::new();
        let result = tokio::time::timeout(
            self.deadline,
            self.complete(&mut order, names, kind, solver, &mut presented),
        )
        .await
        .unwrap_or(Err(AcmeError::Timeout(
            self.deadline,
            "issue the certificate",
        )));
        for challenge in &presented {
            solver.cleanup(challenge).await;
        }
        result
    }

    async fn complete(
        &self,
        order: &mut Order,
        names: &[String],
        kind: ChallengeKind,
        solver: &dyn ChallengeSolver,
        presented: &mut Vec<Challenge>,
    ) -> Result<Issued, AcmeError> {
        let challenge_type = match kind {
            ChallengeKind::Http01 => ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
            ChallengeKind::Dns01 => ChallengeType::Dns01,
        };
        // Present every challenge first, then tell the server: DNS-01 for a name and its
        // wildcard share one TXT name, and both values must be there when it looks.
        let mut to_ready = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| AcmeError::Order(describe(&e)))?;
            let identifier = authorization.identifier().to_string();
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(AcmeError::Authorization {
                        identifier,
                        detail: format!("status {status:?} before any challenge"),
                    })
                }
            }
            let challenge = authorization
                .challenge(challenge_type.clone())
                .ok_or_else(|| AcmeError::NoChallenge {
                    identifier: identifier.clone(),
                    kind,
                })?;
            let key_authorization = challenge.key_authorization();
            let domain = match challenge.identifier().identifier {
                Identifier::Dns(domain) => domain.clone(),
                other => {
                    return Err(AcmeError::Order(format!(
                        "unsupported identifier {other:?}"
                    )))
                }
            };
            let presentable = match kind {
                ChallengeKind::Http01 => Challenge::Http01 {
                    token: challenge.token.clone(),
                    key_authorization: key_authorization.as_str().to_owned(),
                },
                ChallengeKind::TlsAlpn01 => Challenge::TlsAlpn01 {
                    domain,
                    key_authorization: key_authorization.as_str().to_owned(),
                },
                ChallengeKind::Dns01 => Challenge::Dns01 {
                    name: format!("_acme-challenge.{domain}"),
                    domain: identifier.clone(),
                    value: key_authorization.dns_value(),
                },
            };
            presented.push(presentable.clone());
            solver
                .present(&presentable)
                .await
                .map_err(|detail| AcmeError::Solver {
                    identifier: identifier.clone(),
                    kind,
                    detail,
                })?;
            to_ready.push(identifier);
        }

        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization.map_err(|e| AcmeError::Order(describe(&e)))?;
            let identifier = authorization.identifier().to_string();
            if !to_ready.contains(&identifier) {
                continue;
            }
            let mut challenge =
                authorization
                    .challenge(challenge_type.clone())
                    .ok_or_else(|| AcmeError::NoChallenge {
                        identifier: identifier.clone(),
                        kind,
                    })?;
            challenge
                .set_ready()
                .await
                .map_err(|e| AcmeError::Authorization {
                    identifier: identifier.clone(),
                    detail: describe(&e),
                })?;
        }

        let status = self
            .poll(order, "validate the challenges", |s| {
                matches!(s, OrderStatus::Ready | OrderStatus::Invalid)
            })
            .await?;
        if status == OrderStatus::Invalid {
            return Err(failed_authorization(order).await);
        }

        let (csr_der, key_pem) = csr(names)?;
        order
            .finalize_csr(&csr_der)
            .await
            .map_err(|e| AcmeError::Order(format!("finalizing: {}", describe(&e))))?;
        let status = self
            .poll(order, "issue the certificate", |s| {
                matches!(s, OrderStatus::Valid | OrderStatus::Invalid)
            })
            .await?;
        if status == OrderStatus::Invalid {
            return Err(AcmeError::Order(
                "the order became invalid while the certificate was being issued".into(),
            ));
        }
        let chain_pem = order
            .certificate()
            .await
            .map_err(|e| AcmeError::Certificate(describe(&e)))?
            .ok_or_else(|| AcmeError::Certificate("the ACME server sent no certificate".into()))?;
        let (not_before, not_after) = certificate_validity(&chain_pem)?;
        Ok(Issued {
            chain_pem,
            key_pem,
            not_before,
            not_after,
        })
    }

    /// Refreshes the order until `done(status)`, backing off exponentially up to
    /// `max_poll_interval` (the overall deadline is `issue`'s).
    async fn poll(
        &self,
        order: &mut Order,
        what: &'static str,
        done: impl Fn(&OrderStatus) -> bool,
    ) -> Result<OrderStatus, AcmeError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let state = order
                .refresh()
                .await
                .map_err(|e| AcmeError::Order(describe(&e)))?;
            if done(&state.status) {
                return Ok(state.status);
            }
            if let Some(error) = &state.error {
                return Err(AcmeError::Order(problem(error)));
            }
            if started.elapsed() >= self.deadline {
                return Err(AcmeError::Timeout(self.deadline, what));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.max_poll_interval);
        }
    }
}

/// The first invalid authorization and its challenge's problem, for an order that failed.
async fn failed_authorization(order: &mut Order) -> AcmeError {
    let order_error = order.state().error.as_ref().map(problem);
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let Ok(mut authorization) = authorization else {
            continue;
        };
        // The stored state is from before validation.
        let Ok(state) = authorization.refresh().await else {
            continue;
        };
        if state.status != AuthorizationStatus::Invalid {
            continue;
        }
        let detail = state
            .challenges
            .iter()
            .find_map(|c| c.error.as_ref().map(problem))
            .or_else(|| order_error.clone())
            .unwrap_or_else(|| "the ACME server gave no reason".into());
        return AcmeError::Authorization {
            identifier: state.identifier().to_string(),
            detail,
        };
    }
    AcmeError::Order(order_error.unwrap_or_else(|| "the order became invalid".into()))
}

fn parse_credentials(json: &str) -> Result<(AccountCredentials, String), AcmeError> {
    // The directory is inside the (otherwise opaque) credentials; read it to notice a change
    // of ACME server.
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| AcmeError::Account(format!("stored credentials are not JSON: {e}")))?;
    let directory = value
        .get("directory")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_owned();
    let creds = serde_json::from_value(value)
        .map_err(|e| AcmeError::Account(format!("stored credentials are unusable: {e}")))?;
    Ok((creds, directory))
}

/// HTTPS client for the directory: system roots plus `ca_file`'s, ring only.
fn http_client(settings: &AcmeSettings) -> Result<Box<dyn instant_acme::HttpClient>, AcmeError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped: a test CA or a public one may still work.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = &settings.ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| AcmeError::Account(format!("reading {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(AcmeError::Account(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| AcmeError::Account(format!("{}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| AcmeError::Account(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(https);
    Ok(Box::new(client))
}

/// An instant-acme error in words: the problem detail for API errors.
fn describe(error: &instant_acme::Error) -> String {
    match error {
        instant_acme::Error::Api(p) => problem(p),
        other => {
            // hyper's errors hide their cause (e.g. "connection refused") in the source chain.
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                let s_text = s.to_string();
                if !text.contains(&s_text) {
                    text.push_str(": ");
                    text.push_str(&s_text);
                }
                source = s.source();
            }
            text
        }
    }
}

fn problem(p: &Problem) -> String {
    let mut text = p
        .detail
        .clone()
        .or_else(|| p.r#type.clone())
        .unwrap_or_else(|| "unspecified problem".into());
    for sub in &p.subproblems {
        if let Some(detail) = &sub.detail {
            text.push_str("; ");
            text.push_str(detail);
        }
    }
    text
}
