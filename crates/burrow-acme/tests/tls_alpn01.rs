//! TLS-ALPN-01 against a real pebble: a local TLS server answers `acme-tls/1` with the
//! certificate `tls_alpn01_certificate` makes.

mod common;

use burrow_acme::testing::{ChallTestSrv, Pebble, PebbleOptions};
use burrow_acme::{tls_alpn01_certificate, AcmeClient, AcmeSettings, ChallengeKind};
use common::{dead_addr, verify_chain, AlpnSolver};
use sha2::Digest;

#[tokio::test]
async fn tls_alpn01_issues_a_certificate() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let solver = AlpnSolver::start().await;
    let pebble = Pebble::start(PebbleOptions {
        dns_server: dns.dns_addr(),
        http_port: dead_addr().port(),
        tls_port: solver.port,
        validity_secs: None,
        blocklist: Vec::new(),
    })
    .await
    .expect("pebble");
    let settings = AcmeSettings {
        directory_url: pebble.directory_url(),
        contact_email: None,
        ca_file: Some(pebble.ca_file().to_path_buf()),
    };
    let (client, _) = AcmeClient::connect(&settings, None).await.expect("connect");
    let issued = client
        .issue(
            &["alpn.test".to_string()],
            ChallengeKind::TlsAlpn01,
            &solver,
        )
        .await
        .unwrap_or_else(|e| panic!("issue: {e}\n{}", pebble.log()));
    let root = pebble.issuance_root_pem().await.expect("root");
    verify_chain(&issued.chain_pem, &root, &["alpn.test"]).expect("valid chain");
    assert_eq!(solver.record.cleaned.lock().unwrap().len(), 1);
}

#[test]
fn the_challenge_certificate_carries_the_critical_acme_identifier() {
    let (cert, _key) = tls_alpn01_certificate("x.test", "token.thumb").expect("cert");
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).expect("parse");
    let oid = x509_parser::oid_registry::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).expect("oid");
    let extension = parsed
        .extensions()
        .iter()
        .find(|e| e.oid == oid)
        .expect("acmeIdentifier extension");
    assert!(extension.critical);
    let digest = sha2::Sha256::digest(b"token.thumb");
    // DER OCTET STRING of the 32-byte digest.
    let mut expected = vec![0x04, 0x20];
    expected.extend_from_slice(&digest);
    assert_eq!(extension.value, expected.as_slice());
    let names: Vec<String> = parsed
        .subject_alternative_name()
        .expect("san")
        .expect("san present")
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, vec!["DNSName(x.test)".to_string()]);
}
