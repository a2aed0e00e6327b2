//! RFC 2136 dynamic updates signed with TSIG (RFC 8945): how DNS-01 challenges reach a zone
//! whose server accepts updates (BIND, Knot, PowerDNS, ...).

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use hickory_proto::dnssec::rdata::tsig::TsigAlgorithm;
use hickory_proto::dnssec::tsig::TSigner;
use hickory_proto::op::{update_message, Message, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
        let message = update_message::append(record.into(), self.zone.clone(), false, false);
        self.exchange(name, message).await
    }

    /// Removes the TXT record at `name` holding `value`; absent is fine.
    pub async fn remove_txt(&self, name: &str, value: &str) -> Result<(), DnsError> {
        let record = self.txt_record(name, value, 0)?;
        let message = update_message::delete_by_rdata(record.into(), self.zone.clone(), false);
        self.exchange(name, message).await
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

    /// Signs `message`, sends it over TCP and reads the answer. Done by hand rather than with
    /// hickory-client: its TSIG check turns a server's refusal (an unsigned NOTAUTH) into
    /// an opaque error, and the rcode is what tells the user what is wrong.
    async fn exchange(&self, name: &str, mut message: Message) -> Result<(), DnsError> {
        let failed = |detail: String| DnsError::Update {
            name: name.to_owned(),
            detail,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| failed(format!("clock: {e}")))?;
        // The connection is ours alone, so the id only has to match its answer.
        let id = (now.subsec_nanos() & 0xffff) as u16;
        message.set_id(id);
        let verifier = message
            .finalize(&self.signer, now.as_secs() as u32)
            .map_err(|e| failed(format!("signing: {e}")))?;
        let request = message
            .to_vec()
            .map_err(|e| failed(format!("encoding: {e}")))?;
        let length = u16::try_from(request.len()).map_err(|_| failed("message too long".into()))?;

        let answer = tokio::time::timeout(TIMEOUT, async {
            let mut stream = TcpStream::connect(self.server).await?;
            stream.write_all(&length.to_be_bytes()).await?;
            stream.write_all(&request).await?;
            let mut length = [0u8; 2];
            stream.read_exact(&mut length).await?;
            let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        })
        .await
        .map_err(|_| failed(format!("no answer from {} within {TIMEOUT:?}", self.server)))?
        .map_err(|e| failed(format!("talking to {}: {e}", self.server)))?;

        let response =
            Message::from_vec(&answer).map_err(|e| failed(format!("unreadable answer: {e}")))?;
        if response.id() != id {
            return Err(failed("the answer is for another request".into()));
        }
        match response.response_code() {
            ResponseCode::NoError => {}
            code => {
                return Err(DnsError::Rejected {
                    name: name.to_owned(),
                    rcode: rcode_text(code),
                })
            }
        }
        // A success must come from whoever holds the key too.
        if let Some(mut verify) = verifier {
            verify(&answer).map_err(|e| failed(format!("the answer's TSIG: {e}")))?;
        }
        Ok(())
    }
}

fn fqdn(name: &str) -> Result<Name, DnsError> {
    let mut parsed = Name::from_ascii(name.trim_end_matches('.'))
        .map_err(|_| DnsError::Name(name.to_owned()))?;
    parsed.set_fqdn(true);
    Ok(parsed)
}

fn rcode_text(code: ResponseCode) -> String {
    let hint = match code {
        ResponseCode::Refused => "REFUSED (the server does not allow this key to update the zone)",
        ResponseCode::NotAuth => "NOTAUTH (the server rejected the TSIG key, wrong name or secret, or does not serve the zone)",
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
            Challenge::Dns01 { name, value, .. } => self
                .set_txt(name, value, 60)
                .await
                .map_err(|e| e.to_string()),
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
