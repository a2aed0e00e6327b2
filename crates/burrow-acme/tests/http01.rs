//! HTTP-01 against a real pebble, names resolved by pebble-challtestsrv to 127.0.0.1 where a
//! local HTTP server answers the challenges.

mod common;

use burrow_acme::testing::{ChallTestSrv, Pebble, PebbleOptions};
use burrow_acme::{certificate_validity, AcmeClient, AcmeSettings, ChallengeKind};
use common::{dead_addr, verify_chain, HttpSolver};

#[tokio::test]
async fn http01_issues_a_certificate_for_two_names_and_the_stored_account_works_again() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let solver = HttpSolver::start(false).await;
    let pebble = Pebble::start(PebbleOptions {
        dns_server: dns.dns_addr(),
        http_port: solver.port,
        tls_port: dead_addr().port(),
        validity_secs: Some(3600),
        blocklist: Vec::new(),
    })
    .await
    .expect("pebble");
    let settings = AcmeSettings {
        directory_url: pebble.directory_url(),
        contact_email: Some("ops@example.com".into()),
        ca_file: Some(pebble.ca_file().to_path_buf()),
    };

    let (client, credentials) = AcmeClient::connect(&settings, None).await.expect("connect");
    let credentials = credentials.expect("a new account returns its credentials");
    let names = vec!["a.http.test".to_string(), "b.http.test".to_string()];
    let issued = client
        .issue(&names, ChallengeKind::Http01, &solver)
        .await
        .unwrap_or_else(|e| panic!("issue: {e}\n{}", pebble.log()));

    let root = pebble.issuance_root_pem().await.expect("root");
    verify_chain(&issued.chain_pem, &root, &["a.http.test", "b.http.test"]).expect("valid chain");
    assert!(
        verify_chain(&issued.chain_pem, &root, &["c.http.test"]).is_err(),
        "the certificate must not cover other names"
    );
    assert!(issued.key_pem.contains("PRIVATE KEY"));
    assert!(
        !format!("{issued:?}").contains("PRIVATE KEY"),
        "Debug hides the key"
    );

    // pebble makes certificates valid for exactly the configured period, minus its one
    // second of inclusive end.
    let lifetime = (issued.not_after - issued.not_before).num_seconds();
    assert!((3599..=3600).contains(&lifetime), "lifetime {lifetime}s");
    assert_eq!(
        certificate_validity(&issued.chain_pem).expect("validity"),
        (issued.not_before, issued.not_after)
    );

    let presented = solver.record.presented.lock().unwrap().clone();
    let cleaned = solver.record.cleaned.lock().unwrap().clone();
    assert_eq!(presented.len(), 2, "one challenge per name");
    assert_eq!(
        presented, cleaned,
        "every presented challenge is cleaned up"
    );

    // The stored credentials load the same account: no new credentials, and it can order.
    let (again, none) = AcmeClient::connect(&settings, Some(&credentials))
        .await
        .expect("reconnect");
    assert!(
        none.is_none(),
        "an existing account returns no new credentials"
    );
    let issued = again
        .issue(&["c.http.test".to_string()], ChallengeKind::Http01, &solver)
        .await
        .expect("issue with the stored account");
    verify_chain(&issued.chain_pem, &root, &["c.http.test"]).expect("valid chain");

    // Credentials of another directory make a new account on this one.
    let elsewhere = AcmeSettings {
        directory_url: pebble.directory_url().replace("127.0.0.1", "localhost"),
        ..settings.clone()
    };
    let (_, fresh) = AcmeClient::connect(&elsewhere, Some(&credentials))
        .await
        .expect("connect to the other directory");
    assert!(fresh.is_some_and(|c| c != credentials), "a new account");
}
