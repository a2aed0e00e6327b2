//! DNS-01 through a real named: the TXT records reach the zone by TSIG-signed RFC 2136
//! updates, pebble reads them from named, and they are gone afterwards.

mod common;

use base64::Engine;
use burrow_acme::testing::{Bind9, Pebble, PebbleOptions};
use burrow_acme::{
    AcmeClient, AcmeError, AcmeSettings, ChallengeKind, DnsChecker, DnsError, DnsUpdate, TsigKey,
};
use common::{dead_addr, verify_chain};

const ZONE: &str = "fleet.test";

async fn named() -> Bind9 {
    Bind9::start(ZONE, &[("*.fleet.test", "127.0.0.1")])
        .await
        .expect("named")
}

#[tokio::test]
async fn dns01_issues_a_wildcard_and_its_apex_and_removes_the_records() {
    let bind = named().await;
    let pebble = Pebble::start(PebbleOptions {
        dns_server: bind.addr(),
        http_port: dead_addr().port(),
        tls_port: dead_addr().port(),
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
    let update = DnsUpdate::new(bind.addr(), ZONE, bind.key().expect("key")).expect("update");
    let names = vec!["*.fleet.test".to_string(), "fleet.test".to_string()];
    let issued = client
        .issue(&names, ChallengeKind::Dns01, &update)
        .await
        .unwrap_or_else(|e| panic!("issue: {e}\n{}\n{}", pebble.log(), bind.log()));
    let root = pebble.issuance_root_pem().await.expect("root");
    verify_chain(
        &issued.chain_pem,
        &root,
        &["device.fleet.test", "fleet.test"],
    )
    .expect("valid chain");

    let checker = DnsChecker::new(Some(bind.addr())).expect("checker");
    let left = checker
        .txt("_acme-challenge.fleet.test")
        .await
        .expect("lookup");
    assert!(left.is_empty(), "challenge records left behind: {left:?}");
}

#[tokio::test]
async fn set_and_remove_txt_show_in_the_zone() {
    let bind = named().await;
    let update = DnsUpdate::new(bind.addr(), ZONE, bind.key().expect("key")).expect("update");
    let checker = DnsChecker::new(Some(bind.addr())).expect("checker");
    let name = "_burrow-challenge.shop.fleet.test";

    update.set_txt(name, "one", 60).await.expect("set one");
    update.set_txt(name, "two", 60).await.expect("set two");
    let mut values = checker.txt(name).await.expect("lookup");
    values.sort();
    assert_eq!(values, vec!["one".to_string(), "two".to_string()]);

    update.remove_txt(name, "one").await.expect("remove one");
    assert_eq!(checker.txt(name).await.expect("lookup"), vec!["two"]);
    update.remove_txt(name, "two").await.expect("remove two");
    assert!(checker.txt(name).await.expect("lookup").is_empty());

    let outside = update
        .set_txt("_acme-challenge.example.org", "x", 60)
        .await
        .expect_err("outside the zone");
    assert!(
        outside.to_string().contains("not inside the zone"),
        "{outside}"
    );
}

#[tokio::test]
async fn a_wrong_tsig_secret_is_refused_with_a_clear_reason() {
    let bind = named().await;
    let mut key = bind.key().expect("key");
    key.secret = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let update = DnsUpdate::new(bind.addr(), ZONE, key).expect("update");
    let error = update
        .set_txt("_acme-challenge.fleet.test", "x", 60)
        .await
        .expect_err("a wrong secret must not update the zone");
    let text = error.to_string();
    assert!(
        matches!(error, DnsError::Rejected { .. }),
        "unexpected error: {text}"
    );
    assert!(text.contains("NOTAUTH"), "{text}");

    // The same through issuance: the solver's failure is the order's error, named.
    let pebble = Pebble::start(PebbleOptions {
        dns_server: bind.addr(),
        http_port: dead_addr().port(),
        tls_port: dead_addr().port(),
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
    let error = client
        .issue(&["fleet.test".to_string()], ChallengeKind::Dns01, &update)
        .await
        .expect_err("no record could be published");
    let text = error.to_string();
    assert!(matches!(error, AcmeError::Solver { .. }), "{text}");
    assert!(text.contains("NOTAUTH"), "{text}");
    // named is still there and answers.
    let checker = DnsChecker::new(Some(bind.addr())).expect("checker");
    assert!(!checker
        .addresses("ns.fleet.test")
        .await
        .expect("lookup")
        .is_empty());
}

#[test]
fn tsig_keys_are_read_from_tsig_keygen_output_and_never_shown() {
    let text = "key \"burrow-test\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\";\n};\n";
    let key = TsigKey::from_bind_file(text).expect("parse");
    assert_eq!(key.name, "burrow-test");
    assert_eq!(key.algorithm, "hmac-sha256");
    assert_eq!(key.secret, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");
    assert!(
        !format!("{key:?}").contains("c2Vj"),
        "Debug hides the secret"
    );

    assert!(
        TsigKey::from_bind_file("key \"k\" { algorithm hmac-md5; secret \"AAAA\"; };").is_err()
    );
    assert!(
        TsigKey::from_bind_file("key \"k\" { algorithm hmac-sha256; secret \"!!\"; };").is_err()
    );
    assert!(TsigKey::from_bind_file("nothing here").is_err());
}
