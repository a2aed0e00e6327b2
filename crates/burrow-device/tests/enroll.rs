//! Enrollment over a real HTTP server: token → agent_enroll → files and certificate.

mod common;

use std::os::unix::fs::PermissionsExt;

use burrow_device::agent_enroll::{AGENT_CONFIG_FILE, CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE};
use burrow_device::identity::{identity_from_der, DEVICE_URN_PREFIX};
use burrow_device::{agent_enroll, enrollment, mtls, AgentFile};
use common::*;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, UnixTime};

fn der_of(pem: &str) -> CertificateDer<'static> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn enroll_round_trip_writes_files_and_token_is_single_use() {
    let fx = Fixture::new().await;
    let device = fx.device("DEV-1").await;
    let token = enrollment::issue(fx.store.as_ref(), device.id, chrono::Duration::minutes(10))
        .await
        .unwrap();
    assert!(!format!("{token:?}").contains(token.expose()));
    assert!(token.expose().len() >= 22, "at least 128 bits");
    let addr = fx.start_http().await;
    let server = format!("http://{addr}");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("agent");

    let dsn = agent_enroll(&server, token.expose(), &dir, fx.pin())
        .await
        .unwrap();
    assert_eq!(dsn, "DEV-1");

    let key_meta = std::fs::metadata(dir.join(DEVICE_KEY_FILE)).unwrap();
    assert_eq!(key_meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(!dir.join("device.key.new").exists());

    // The certificate chains to the CA we were given, for our key, with the DSN in the SAN.
    let cert_pem = std::fs::read_to_string(dir.join(DEVICE_CERT_FILE)).unwrap();
    let ca_pem = std::fs::read_to_string(dir.join(CA_FILE)).unwrap();
    assert_eq!(ca_pem, fx.ca.ca_pem());
    let cert = der_of(&cert_pem);
    mtls::client_verifier(&fx.ca)
        .unwrap()
        .verify_client_cert(&cert, &[], UnixTime::now())
        .unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let san = parsed.subject_alternative_name().unwrap().unwrap();
    let uris: Vec<String> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(uris, vec![format!("{DEVICE_URN_PREFIX}DEV-1")]);
    let key =
        KeyPair::from_pem(&std::fs::read_to_string(dir.join(DEVICE_KEY_FILE)).unwrap()).unwrap();
    assert_eq!(parsed.public_key().raw, key.public_key_der().as_slice());

    // The store now names this certificate as the device's current one.
    let identity = identity_from_der(&cert).unwrap();
    let stored = fx.store.device_by_id(device.id).await.unwrap().unwrap();
    assert_eq!(
        stored.cert_serial.as_deref(),
        Some(identity.serial_hex.as_str())
    );
    assert!(stored.cert_not_after.is_some());

    let agent = AgentFile::load(&dir).unwrap();
    assert_eq!(agent.dsn, "DEV-1");
    assert_eq!(agent.server, server);
    assert_eq!(agent.device_url.as_str(), DEVICE_URL);
    assert!(dir.join(AGENT_CONFIG_FILE).exists());

    // Second use of the same token: refused, and the first enrollment's files stay intact.
    let err = agent_enroll(&server, token.expose(), &dir, fx.pin())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join(DEVICE_CERT_FILE)).unwrap(),
        cert_pem
    );
    assert!(!dir.join("device.key.new").exists());
}

#[tokio::test]
async fn expired_or_unknown_token_is_refused_with_401_json() {
    let fx = Fixture::new().await;
    let device = fx.device("DEV-2").await;
    let token = enrollment::issue(fx.store.as_ref(), device.id, chrono::Duration::seconds(-1))
        .await
        .unwrap();
    let addr = fx.start_http().await;
    let tmp = tempfile::tempdir().unwrap();
    let err = agent_enroll(
        &format!("http://{addr}"),
        token.expose(),
        tmp.path(),
        fx.pin(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");
    assert!(!tmp.path().join(DEVICE_KEY_FILE).exists());

    let key = KeyPair::generate().unwrap();
    let csr = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/devices/enroll"))
        .json(&serde_json::json!({"token": "not-a-token", "csr": csr.pem().unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["detail"].is_string());
}

#[tokio::test]
async fn csr_claims_are_ignored_and_bad_csr_does_not_burn_the_token() {
    let fx = Fixture::new().await;
    let device = fx.device("REAL-DSN").await;
    fx.device("OTHER").await;
    let token = enrollment::issue(fx.store.as_ref(), device.id, chrono::Duration::minutes(5))
        .await
        .unwrap();
    let addr = fx.start_http().await;
    let url = format!("http://{addr}/api/v1/devices/enroll");
    let client = reqwest::Client::new();

    // A malformed CSR: 400, and the token is still good.
    let resp = client
        .post(&url)
        .json(&serde_json::json!({"token": token.expose(), "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A CSR claiming another device in its subject and SAN: the certificate names REAL-DSN.
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "OTHER");
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::URI("urn:burrow:device:OTHER".try_into().unwrap())];
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let resp = client
        .post(&url)
        .json(&serde_json::json!({"token": token.expose(), "csr": csr}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: burrow_device::EnrollResponse = resp.json().await.unwrap();
    assert_eq!(body.dsn, "REAL-DSN");
    assert_eq!(body.device_url.as_str(), DEVICE_URL);
    let identity = identity_from_der(&der_of(&body.certificate)).unwrap();
    assert_eq!(identity.dsn, "REAL-DSN");
    let der = der_of(&body.certificate);
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cn, "REAL-DSN");
}
