//! What the caller sees when issuance cannot work: a solver serving the wrong content, an
//! ACME server that is down.

mod common;

use std::time::{Duration, Instant};

use burrow_acme::testing::{ChallTestSrv, Pebble, PebbleOptions};
use burrow_acme::{AcmeClient, AcmeError, AcmeSettings, ChallengeKind};
use common::{dead_addr, HttpSolver};

#[tokio::test]
async fn a_wrong_answer_fails_the_authorization_with_the_servers_reason() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let solver = HttpSolver::start(true).await;
    let pebble = Pebble::start(PebbleOptions {
        dns_server: dns.dns_addr(),
        http_port: solver.port,
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
        .issue(&["bad.test".to_string()], ChallengeKind::Http01, &solver)
        .await
        .expect_err("a wrong key authorization must not be accepted");
    let text = error.to_string();
    assert!(
        matches!(error, AcmeError::Authorization { .. }),
        "unexpected error: {text}"
    );
    assert!(
        text.contains("authorization for bad.test invalid"),
        "{text}"
    );
    // pebble's own words about the mismatch.
    assert!(text.to_lowercase().contains("key authorization"), "{text}");
    assert_eq!(solver.record.cleaned.lock().unwrap().len(), 1, "cleaned up");
}

#[tokio::test]
async fn nothing_listening_where_the_challenge_is_served_names_the_refusal() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let solver = HttpSolver::start(false).await;
    let pebble = Pebble::start(PebbleOptions {
        dns_server: dns.dns_addr(),
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
    let text = client
        .issue(&["down.test".to_string()], ChallengeKind::Http01, &solver)
        .await
        .expect_err("nobody answers the challenge")
        .to_string();
    assert!(
        text.contains("authorization for down.test invalid"),
        "{text}"
    );
    assert!(text.contains("connection refused"), "{text}");
}

#[tokio::test]
async fn a_directory_that_is_down_fails_connect_quickly() {
    let settings = AcmeSettings {
        directory_url: format!("https://{}/dir", dead_addr()),
        contact_email: None,
        ca_file: None,
    };
    let started = Instant::now();
    let error = AcmeClient::connect(&settings, None)
        .await
        .expect_err("nothing listens there");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(error, AcmeError::Unreachable { .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains(&settings.directory_url), "{text}");
    assert!(text.to_lowercase().contains("refused"), "{text}");
}

#[tokio::test]
async fn stored_credentials_that_are_not_json_are_an_account_error() {
    let settings = AcmeSettings {
        directory_url: format!("https://{}/dir", dead_addr()),
        contact_email: None,
        ca_file: None,
    };
    let error = AcmeClient::connect(&settings, Some("not json"))
        .await
        .expect_err("garbage credentials");
    assert!(matches!(error, AcmeError::Account(_)), "{error}");
}
