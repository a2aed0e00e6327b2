//! Does a custom hostname belong to whoever claims it, and does it point at burrow? Checked
//! through DNS: a TXT record at `_burrow-challenge.<hostname>` and the hostname's CNAME or
//! addresses.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    NameServerConfig, NameServerConfigGroup, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::{ResolveError, TokioResolver};

use crate::DnsError;

/// The label under which the ownership TXT record lives.
pub const CHALLENGE_LABEL: &str = "_burrow-challenge";

/// The outcome of an ownership check. Reasons are short and meant for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    Verified,
    /// Not there yet (or DNS did not answer): check again later.
    Pending(String),
    /// There, but wrong: the user must change their DNS.
    Failed(String),
}

/// Resolves through the system's resolvers or one given server, without caching so that a
/// re-check sees a change at once.
#[derive(Clone)]
pub struct DnsChecker {
    resolver: TokioResolver,
}

impl std::fmt::Debug for DnsChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsChecker").finish_non_exhaustive()
    }
}

impl DnsChecker {
    /// `None`: the system's resolv.conf; `Some(server)`: only that server, over UDP and TCP.
    pub fn new(nameserver: Option<SocketAddr>) -> Result<DnsChecker, DnsError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = match nameserver {
            Some(server) => {
                let mut group = NameServerConfigGroup::new();
                for protocol in [Protocol::Udp, Protocol::Tcp] {
                    let mut ns = NameServerConfig::new(server, protocol);
                    ns.trust_negative_responses = true;
                    group.push(ns);
                }
                TokioResolver::builder_with_config(
                    ResolverConfig::from_parts(None, vec![], group),
                    provider,
                )
            }
            None => TokioResolver::builder(provider).map_err(|e| DnsError::Setup(e.to_string()))?,
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        // Names are always absolute here: no search domains.
        opts.ndots = 0;
        opts.preserve_intermediates = true;
        Ok(DnsChecker {
            resolver: builder.build(),
        })
    }

    /// TXT strings at `name` (each record's strings joined). None there is `Ok(empty)`.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        match self.resolver.txt_lookup(fqdn(name)).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) if is_empty(&e) => Ok(Vec::new()),
            Err(e) => Err(DnsError::Lookup(short(&e))),
        }
    }

    /// The first CNAME hop of `name`, without its trailing dot, if it has one.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        match self.resolver.lookup(fqdn(name), RecordType::CNAME).await {
            Ok(lookup) => Ok(lookup.record_iter().find_map(|r| match r.data() {
                RData::CNAME(target) => Some(bare(&target.0.to_ascii())),
                _ => None,
            })),
            Err(e) if is_empty(&e) => Ok(None),
            Err(e) => Err(DnsError::Lookup(short(&e))),
        }
    }

    /// A and AAAA addresses of `name` (following CNAMEs). None is `Ok(empty)`.
    pub async fn addresses(&self, name: &str) -> Result<BTreeSet<IpAddr>, DnsError> {
        match self.resolver.lookup_ip(fqdn(name)).await {
            Ok(lookup) => Ok(lookup.iter().collect()),
            Err(e) if is_empty(&e) => Ok(BTreeSet::new()),
            Err(e) => Err(DnsError::Lookup(short(&e))),
        }
    }

    /// Is `hostname` claimed with `expected_txt` at `_burrow-challenge.<hostname>`, and does it
    /// point at burrow: a CNAME to one of `targets`, or addresses shared with them?
    pub async fn check(&self, hostname: &str, expected_txt: &str, targets: &[String]) -> Ownership {
        match self.check_inner(hostname, expected_txt, targets).await {
            Ok(outcome) => outcome,
            Err(e) => Ownership::Pending(e.to_string()),
        }
    }

    async fn check_inner(
        &self,
        hostname: &str,
        expected_txt: &str,
        targets: &[String],
    ) -> Result<Ownership, DnsError> {
        let hostname = bare(hostname);
        let txt_name = format!("{CHALLENGE_LABEL}.{hostname}");
        let values = self.txt(&txt_name).await?;
        if values.is_empty() {
            return Ok(Ownership::Pending(format!(
                "no TXT record at {txt_name} yet"
            )));
        }
        if !values.iter().any(|v| v == expected_txt) {
            return Ok(Ownership::Failed(format!(
                "the TXT record at {txt_name} has a different value"
            )));
        }

        let targets: Vec<String> = targets.iter().map(|t| bare(t)).collect();
        if let Some(cname) = self.cname(&hostname).await? {
            if targets.iter().any(|t| t.eq_ignore_ascii_case(&cname)) {
                return Ok(Ownership::Verified);
            }
        }
        let addresses = self.addresses(&hostname).await?;
        if addresses.is_empty() {
            return Ok(Ownership::Pending(format!(
                "{hostname} has no CNAME or address record yet"
            )));
        }
        let mut seen = Vec::new();
        for target in &targets {
            let target_addresses = self.addresses(target).await?;
            if !target_addresses.is_disjoint(&addresses) {
                return Ok(Ownership::Verified);
            }
            seen.push(format!("{target}: {}", join(&target_addresses)));
        }
        Ok(Ownership::Failed(format!(
            "{hostname} resolves to {}, not to burrow ({})",
            join(&addresses),
            seen.join("; ")
        )))
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", bare(name))
}

/// Lowercase, without the trailing dot.
fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn join(addresses: &BTreeSet<IpAddr>) -> String {
    if addresses.is_empty() {
        return "no address".into();
    }
    addresses
        .iter()
        .map(IpAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// NXDOMAIN or no records of the type: an answer, not a failure.
fn is_empty(e: &ResolveError) -> bool {
    e.is_nx_domain() || e.is_no_records_found()
}

fn short(e: &ResolveError) -> String {
    e.to_string()
}
