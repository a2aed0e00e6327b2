//! burrow's device CA: one self-made CA per server data dir, which signs device certificates
//! at enrollment and the device listener's own server certificate (so one `ca.pem` on the
//! device trusts the listener and proves the device to it).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use burrow_identity::fsutil::{ensure_private_dir, write_atomic};
use burrow_store::Timestamp;
use chrono::Utc;
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, SerialNumber, SubjectPublicKeyInfo,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::{RootCertStore, ServerConfig};
use x509_parser::prelude::{FromDer, X509CertificationRequest};

use crate::error::{DeviceError, Result};
use crate::identity::device_urn;

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca.key";

/// The CA certificate (as written to disk) and its key. The key never leaves this struct.
pub struct DeviceCa {
    /// Issuer form of the CA for rcgen (same subject and key identifier as `pem`).
    issuer: rcgen::Certificate,
    key: KeyPair,
    pem: String,
    der: CertificateDer<'static>,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl DeviceCa {
    /// Loads `dir/ca.pem` + `dir/ca.key`, or creates both when neither exists. One without
    /// the other is an error: silently minting a new CA would orphan every enrolled device.
    pub fn load_or_create(dir: &Path) -> Result<DeviceCa> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                let pem = std::fs::read_to_string(&cert_path)?;
                let key = std::fs::read_to_string(&key_path)?;
                Self::from_pem(&pem, &key)
            }
            (false, false) => {
                let (ca, key_pem) = Self::generate_with_key_pem()?;
                ensure_private_dir(dir)?;
                write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
                write_atomic(&cert_path, ca.pem.as_bytes(), 0o644)?;
                tracing::info!(path = %cert_path.display(), "created device CA");
                Ok(ca)
            }
            _ => Err(DeviceError::InvalidCa(format!(
                "only one of {CA_CERT_FILE} and {CA_KEY_FILE} exists in {}",
                dir.display()
            ))),
        }
    }

    /// A fresh CA held in memory only (tests, ephemeral servers).
    pub fn generate() -> Result<DeviceCa> {
        Ok(Self::generate_with_key_pem()?.0)
    }

    /// A fresh CA as (certificate PEM, key PEM), for keeping elsewhere than a data dir (a
    /// cluster seals both into its database); [`DeviceCa::from_pem`] loads them.
    pub fn generate_pem() -> Result<(String, String)> {
        let (ca, key_pem) = Self::generate_with_key_pem()?;
        Ok((ca.pem, key_pem))
    }

    /// [`DeviceCa::generate_pem`] for another purpose than devices, named `common_name`
    /// (the cluster's node-link CA).
    pub fn generate_pem_named(common_name: &str) -> Result<(String, String)> {
        let (ca, key_pem) = Self::generate_named(common_name)?;
        Ok((ca.pem, key_pem))
    }

    /// Rebuilds the CA from its PEM certificate and PEM (PKCS#8) key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<DeviceCa> {
        let key = KeyPair::from_pem(key_pem)?;
        let params = CertificateParams::from_ca_cert_pem(cert_pem)?;
        let der = first_cert(cert_pem)?;
        let (_, parsed) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| DeviceError::InvalidCa(e.to_string()))?;
        if parsed.public_key().raw != key.public_key_der().as_slice() {
            return Err(DeviceError::InvalidCa(
                "ca.key does not match ca.pem".into(),
            ));
        }
        // rcgen signs with an issuer `Certificate`; re-signing the parsed params gives one
        // with the same subject DN and key identifier. Only `pem`/`der` are ever published.
        let issuer = params.self_signed(&key)?;
        Ok(DeviceCa {
            issuer,
            key,
            pem: cert_pem.to_string(),
            der,
        })
    }

    fn generate_with_key_pem() -> Result<(DeviceCa, String)> {
        Self::generate_named("burrow device CA")
    }

    fn generate_named(common_name: &str) -> Result<(DeviceCa, String)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "burrow");
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = Utc::now();
        params.not_before = to_offset(now - chrono::Duration::hours(1));
        params.not_after = to_offset(now + chrono::Duration::days(365 * 20));
        params.serial_number = Some(random_serial());
        let issuer = params.self_signed(&key)?;
        let pem = issuer.pem();
        let der = issuer.der().clone();
        let key_pem = key.serialize_pem();
        Ok((
            DeviceCa {
                issuer,
                key,
                pem,
                der,
            },
            key_pem,
        ))
    }

    /// The CA certificate, PEM: what devices store as `ca.pem`.
    pub fn ca_pem(&self) -> &str {
        &self.pem
    }

    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// What `burrow-agent enroll --ca-sha256` pins.
    pub fn fingerprint(&self) -> crate::fingerprint::CaFingerprint {
        crate::fingerprint::CaFingerprint::of(&self.der)
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots
            .add(self.der.clone())
            .expect("the CA certificate was parsed when loaded");
        roots
    }

    /// Signs a device certificate for the public key in `csr_pem` (whose self-signature is
    /// checked: the requester holds the private key). Subject CN and the SAN URI
    /// `urn:burrow:device:<dsn>` come from `dsn` (the device record); the CSR's subject and
    /// requested extensions are ignored. Answers `(cert_pem, serial_hex)`.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        dsn: &str,
        not_after: Timestamp,
    ) -> Result<(String, String)> {
        let spki = csr_public_key(csr_pem)?;
        let cert = self.sign_device_key(&spki, dsn, not_after)?;
        let serial = serial_hex(cert.der())?;
        Ok((cert.pem(), serial))
    }

    fn sign_device_key(
        &self,
        public_key: &SubjectPublicKeyInfo,
        dsn: &str,
        not_after: Timestamp,
    ) -> Result<rcgen::Certificate> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, dsn);
        params.distinguished_name = dn;
        let urn = device_urn(dsn);
        params.subject_alt_names = vec![SanType::URI(
            urn.try_into()
                .map_err(|e: rcgen::Error| DeviceError::InvalidCsr(e.to_string()))?,
        )];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let (nb, na) = validity(not_after);
        params.not_before = nb;
        params.not_after = na;
        params.serial_number = Some(random_serial());
        Ok(params.signed_by(public_key, &self.issuer, &self.key)?)
    }

    /// A server certificate for the device listener, for `hostnames` (DNS names or IP
    /// addresses; e.g. `localhost` and `127.0.0.1` in dev), with a fresh key made in memory.
    /// Answers the chain (leaf, CA) and the leaf key.
    pub fn issue_server_cert(
        &self,
        hostnames: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.issue_leaf(hostnames, vec![ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A certificate a cluster node presents on the node-to-node link, both as server and as
    /// client (issued by the cluster's link CA, never by the device CA: a device certificate
    /// must not open the link).
    pub fn issue_node_cert(
        &self,
        hostnames: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.issue_leaf(
            hostnames,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    fn issue_leaf(
        &self,
        hostnames: &[String],
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            hostnames.first().map(String::as_str).unwrap_or("burrow"),
        );
        params.distinguished_name = dn;
        for h in hostnames {
            let san = match h.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(h.as_str().try_into()?),
            };
            params.subject_alt_names.push(san);
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        let now = Utc::now();
        params.not_before = to_offset(now - chrono::Duration::hours(1));
        params.not_after = to_offset(now + chrono::Duration::days(365));
        params.serial_number = Some(random_serial());
        let cert = params.signed_by(&key, &self.issuer, &self.key)?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((vec![cert.der().clone(), self.der.clone()], key_der))
    }

    /// A rustls server config for the device listener: a leaf for `hostnames` signed by
    /// this CA, client certificates checked by `client_verifier`, ALPN http/1.1 only (the
    /// device endpoints are plain request/response; agents and `requests` speak HTTP/1.1).
    pub fn server_config(
        &self,
        hostnames: &[String],
        client_verifier: Arc<dyn ClientCertVerifier>,
    ) -> Result<Arc<ServerConfig>> {
        let (chain, key) = self.issue_server_cert(hostnames)?;
        let mut config = ServerConfig::builder_with_provider(crate::mtls::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(client_verifier)
            .with_single_cert(chain, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Whether `csr_pem` is a well-formed CSR with a valid self-signature over a supported key.
pub(crate) fn check_csr(csr_pem: &str) -> Result<()> {
    csr_public_key(csr_pem).map(|_| ())
}

/// Checks the CSR's self-signature and answers its public key; nothing else of the CSR is
/// used (its subject and extensions are the requester's claims, not burrow's).
fn csr_public_key(csr_pem: &str) -> Result<SubjectPublicKeyInfo> {
    let mut reader = csr_pem.as_bytes();
    let der = match rustls_pemfile::read_one(&mut reader) {
        Ok(Some(rustls_pemfile::Item::Csr(der))) => der,
        _ => {
            return Err(DeviceError::InvalidCsr(
                "expected a PEM CERTIFICATE REQUEST".into(),
            ))
        }
    };
    let (rest, csr) = X509CertificationRequest::from_der(&der)
        .map_err(|e| DeviceError::InvalidCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DeviceError::InvalidCsr("trailing bytes".into()));
    }
    csr.verify_signature()
        .map_err(|_| DeviceError::InvalidCsr("signature does not verify".into()))?;
    SubjectPublicKeyInfo::from_der(csr.certification_request_info.subject_pki.raw)
        .map_err(|e| DeviceError::InvalidCsr(format!("unsupported public key: {e}")))
}

fn first_cert(pem: &str) -> Result<CertificateDer<'static>> {
    let mut reader = pem.as_bytes();
    let first = rustls_pemfile::certs(&mut reader).next();
    first
        .and_then(|c| c.ok())
        .ok_or_else(|| DeviceError::InvalidCa("no certificate in ca.pem".into()))
}

/// The serial of a DER certificate as lower-case hex of its DER integer bytes: the form
/// stored in `fleet_devices.cert_serial` and compared on every device request.
pub fn serial_hex(der: &[u8]) -> Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| DeviceError::InvalidCert(e.to_string()))?;
    Ok(hex::encode(cert.raw_serial()))
}

/// 128 random bits, first byte in 0x40..=0x7f: positive and without a leading zero byte, so
/// the DER bytes (and so the stored hex) are exactly these 16 bytes.
fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b[0] = (b[0] & 0x3f) | 0x40;
    SerialNumber::from_slice(&b)
}

/// Back-dates `not_before` an hour for clock skew, but never past `not_after` (certificates
/// made already expired, for tests, must still be well-formed).
fn validity(not_after: Timestamp) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let mut not_before = Utc::now() - chrono::Duration::hours(1);
    if not_before >= not_after {
        not_before = not_after - chrono::Duration::hours(1);
    }
    (to_offset(not_before), to_offset(not_after))
}

fn to_offset(t: Timestamp) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(t.timestamp())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}
