//! Ownership checks through pebble-challtestsrv's DNS, its records changed between checks.

mod common;

use std::net::Ipv4Addr;

use burrow_acme::testing::ChallTestSrv;
use burrow_acme::{DnsChecker, Ownership};
use common::dead_addr;

const HOST: &str = "shop.example.test";
const TXT_NAME: &str = "_burrow-challenge.shop.example.test";
const TOKEN: &str = "burrow-verify=abc123";

#[tokio::test]
async fn ownership_follows_the_txt_record_and_where_the_name_points() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let checker = DnsChecker::new(Some(dns.dns_addr())).expect("checker");
    let targets = vec!["edge.burrow.test".to_string()];

    assert_eq!(
        checker.check(HOST, TOKEN, &targets).await,
        Ownership::Pending(format!("no TXT record at {TXT_NAME} yet"))
    );

    dns.set_txt(TXT_NAME, "burrow-verify=someone-else")
        .await
        .expect("txt");
    assert_eq!(
        checker.check(HOST, TOKEN, &targets).await,
        Ownership::Failed(format!(
            "the TXT record at {TXT_NAME} has a different value"
        ))
    );

    dns.clear_txt(TXT_NAME).await.expect("clear");
    dns.set_txt(TXT_NAME, TOKEN).await.expect("txt");
    // Both names resolve to challtestsrv's default, 127.0.0.1.
    assert_eq!(
        checker.check(HOST, TOKEN, &targets).await,
        Ownership::Verified
    );

    dns.add_a(HOST, Ipv4Addr::new(10, 9, 9, 9))
        .await
        .expect("a");
    match checker.check(HOST, TOKEN, &targets).await {
        Ownership::Failed(reason) => assert_eq!(
            reason,
            "shop.example.test resolves to 10.9.9.9, not to burrow (edge.burrow.test: 127.0.0.1)"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }

    // A CNAME to the target counts, whatever the addresses (case and trailing dot aside).
    dns.set_cname(HOST, "EDGE.burrow.test")
        .await
        .expect("cname");
    assert_eq!(
        checker.check(HOST, TOKEN, &targets).await,
        Ownership::Verified
    );
    dns.set_cname(HOST, "elsewhere.test").await.expect("cname");
    dns.add_a("elsewhere.test", Ipv4Addr::new(10, 9, 9, 9))
        .await
        .expect("a");
    assert!(matches!(
        checker
            .check(HOST, TOKEN, &["edge.burrow.test.".to_string()])
            .await,
        Ownership::Failed(_)
    ));

    dns.clear_cname(HOST).await.expect("clear cname");
    dns.clear_a(HOST).await.expect("clear a");
    assert_eq!(
        checker.check(HOST, TOKEN, &targets).await,
        Ownership::Verified
    );
    assert_eq!(checker.txt(TXT_NAME).await.expect("txt"), vec![TOKEN]);
}

#[tokio::test]
async fn a_dns_server_that_does_not_answer_leaves_the_check_pending() {
    let checker = DnsChecker::new(Some(dead_addr())).expect("checker");
    match checker
        .check(HOST, TOKEN, &["edge.burrow.test".to_string()])
        .await
    {
        Ownership::Pending(reason) => {
            assert!(reason.starts_with("DNS lookup failed"), "{reason}")
        }
        other => panic!("expected Pending, got {other:?}"),
    }
}
