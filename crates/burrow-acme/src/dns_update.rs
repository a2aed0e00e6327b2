//! RFC 2136 dynamic updates signed with TSIG (RFC 8945): how DNS-01 challenges reach a zone
//! whose server accepts updates (BIND, Knot, PowerDNS, ...).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use hickory_client::client::{Client, ClientHandle};
use hickory_client::proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_client::proto::dnssec::tsig::TSigner;
use hickory_client::proto::op::ResponseCode;
use hickory_client::proto::rr::rdata::TXT;
use hickory_client::proto::rr::{Name, RData, Record};
use hickory_client::proto::runtime::TokioRuntimeProvider;
use hickory_client::proto::tcp::TcpClientStream;
use hickory_client::proto::xfer::DnsResponse;
use hickory_client::ClientError;

use crate::{Challenge, ChallengeSolver, DnsError};

/// How far our clock may be from the server's (RFC 8945's recommended fudge).
const FUDGE_SECS: u16 = 300;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A TSIG key: its name, algorithm (`hmac-sha256`, `hmac-sha384`, `hmac-sha512`) and secret
/// (base64, as BIND writes it).
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    pub secret: String,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl TsigKey {
    /// Reads what `tsig-keygen -a hmac-sha256 NAME` prints:
    /// `key "NAME" { algorithm hmac-sha256; secret "BASE64"; };`
    pub fn from_bind_file(text: &str) -> Result<TsigKey, DnsError> {
        let name = quoted_after(text, "key")
            .ok_or_else(|| DnsError::Key("no `key \"NAME\"` clause".into()))?;
        let algorithm = text
            .split_once("algorithm")
            .and_then(|(_, rest)| rest.split(';').next())
            .map(|a| a.trim().trim_matches('"').to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| DnsError::Key("no `algorithm` clause".into()))?;
        let secret = quoted_after(text, "secret")
            .ok_or_else(|| DnsError::Key("no `secret \"...\"` clause".into()))?;
        let key = TsigKey {
            name,
            algorithm,
            secret,
        };
        key.signer()?;
        Ok(key)
    }

    fn signer(&self) -> Result<TSigner, DnsError> {
        let algorithm = match self.algorithm.trim_end_matches('.') {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(DnsError::Key(format!(
                    "unsupported algorithm {other:?} (use hmac-sha256, hmac-sha384 or hmac-sha512)"
                )))
            }
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(self.secret.trim())
            .map_err(|_| DnsError::Key("the secret is not base64".into()))?;
        let name = Name::from_ascii(&self.name)
            .map_err(|_| DnsError::Key(format!("invalid key name {:?}", self.name)))?;
        TSigner::new(secret, algorithm, name, FUDGE_SECS).map_err(|e| DnsError::Key(e.to_string()))
    }
}

/// `keyword "value"` → value.
fn quoted_after(text: &str, keyword: &str) -> Option<String> {
    let mut rest = text;
    while let Some(at) = rest.find(keyword) {
        let after = rest[at + keyword.len()..].trim_start();
        if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            return Some(quoted[..end].to_owned());
        }
        rest = &rest[at + keyword.len()..];
    }
    None
}

/// Adds and removes TXT records in one zone on its primary server, over TCP.
pub struct DnsUpdate {
    server: SocketAddr,
    zone: Name,
    signer: TSigner,
    key_name: String,
}

impl fmt::Debug for DnsUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsUpdate")
            .field("server", &self.server)
            .field("zone", &self.zone.to_ascii())
            .field("key", &self.key_name)
            .finish()
    }
}

impl DnsUpdate {
    pub fn new(server: SocketAddr, zone: &str, key: TsigKey) -> Result<DnsUpdate, DnsError> {
        Ok(DnsUpdate {
            server,
            zone: fqdn(zone)?,
            signer: key.signer()?,
            key_name: key.name,
        })
    }

    /// Adds `value` to the TXT records at `name` (others stay: a name and its wildcard
    /// share one challenge name).
    pub async fn set_txt(&self, name: &str, value: &str, ttl: u32) -> Result<(), DnsError> {
        let record = self.txt_record(name, value, ttl)?;
        let mut client = self.client(name).await?;
        let response = client.append(record, self.zone.clone(), false).await;
        outcome(name, response)
    }

    /// Removes the TXT record at `name` holding `value`; absent is fine.
    pub async fn remove_txt(&self, name: &str, value: &str) -> Result<(), DnsError> {
        let record = self.txt_record(name, value, 0)?;
        let mut client = self.client(name).await?;
        let response = client.delete_by_rdata(record, self.zone.clone()).await;
        outcome(name, response)
    }

    fn txt_record(&self, name: &str, value: &str, ttl: u32) -> Result<Record, DnsError> {
        let owner = fqdn(name)?;
        if !self.zone.zone_of(&owner) {
            return Err(DnsError::Update {
                name: name.to_owned(),
                detail: format!("not inside the zone {}", self.zone.to_ascii()),
            });
        }
        Ok(Record::from_rdata(
            owner,
            ttl,
            RData::TXT(TXT::new(vec![value.to_owned()])),
        ))
    }

    async fn client(&self, name: &str) -> Result<Client, DnsError> {
        let (stream, sender) =
            TcpClientStream::new(self.server, None, Some(TIMEOUT), TokioRuntimeProvider::new());
        let (client, background) =
            Client::with_timeout(stream, sender, TIMEOUT, Some(Arc::new(self.signer.clone())))
                .await
                .map_err(|e| DnsError::Update {
                    name: name.to_owned(),
                    detail: format!("connecting to {}: {e}", self.server),
                })?;
        // Ends by itself when the client is dropped.
        tokio::spawn(background);
        Ok(client)
    }
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_ascii(name.trim_end_matches('.'))
        .map_err(|_| DnsError::Name(name.to_owned()))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

fn outcome(name: &str, response: Result<DnsResponse, ClientError>) -> Result<(), DnsError> {
    let response = response.map_err(|e| DnsError::Update {
        name: name.to_owned(),
        detail: e.to_string(),
    })?;
    match response.response_code() {
        ResponseCode::NoError => Ok(()),
        code => Err(DnsError::Rejected {
            name: name.to_owned(),
            rcode: rcode_text(code),
        }),
    }
}

fn rcode_text(code: ResponseCode) -> String {
    let hint = match code {
        ResponseCode::Refused => "REFUSED (the server does not allow this key to update the zone)",
        ResponseCode::NotAuth => "NOTAUTH (the server rejected the TSIG key: wrong name or secret)",
        ResponseCode::NotZone => "NOTZONE (the name is not in the zone)",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::NotImp => "NOTIMP (the server does not support dynamic updates)",
        ResponseCode::BADKEY => "BADKEY (the server does not know the TSIG key)",
        ResponseCode::BADSIG => "BADSIG (wrong TSIG secret)",
        ResponseCode::BADTIME => "BADTIME (our clock and the server's differ)",
        other => return format!("{other:?} ({})", u16::from(other)),
    };
    hint.to_owned()
}

#[async_trait]
impl ChallengeSolver for DnsUpdate {
    async fn present(&self, challenge: &Challenge) -> Result<(), String> {
        match challenge {
            Challenge::Dns01 { name, value, .. } => {
                self.set_txt(name, value, 60).await.map_err(|e| e.to_string())
            }
            _ => Err("a DNS update can only answer dns-01 challenges".into()),
        }
    }

    async fn cleanup(&self, challenge: &Challenge) {
        if let Challenge::Dns01 { name, value, .. } = challenge {
            if let Err(e) = self.remove_txt(name, value).await {
                tracing::warn!(%name, error = %e, "could not remove the dns-01 TXT record");
            }
        }
    }
}
