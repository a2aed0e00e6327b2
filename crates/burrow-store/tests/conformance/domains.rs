//! Custom domains, their claims and states, certificates and ACME challenge answers.

use burrow_store::*;
use chrono::Duration;

use crate::{assert_conflict, assert_not_found, new_tunnel, owner_project_device, us, Ctx};

fn domain(tunnel: i64, hostname: &str, at: Timestamp) -> NewCustomDomain {
    NewCustomDomain {
        reverse_tunnel_id: tunnel,
        hostname: hostname.into(),
        verification_value: format!("v-{hostname}"),
        created_at: at,
    }
}

fn cert(name: &str, at: Timestamp) -> StoredCertificate {
    StoredCertificate {
        name: name.into(),
        chain_pem: format!("chain of {name}"),
        key_sealed: "sealed".into(),
        not_before: at,
        not_after: at + Duration::days(90),
        updated_at: at,
    }
}

pub async fn custom_domains_lifecycle(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, dev) = owner_project_device(s, "dom").await;
    let t1 = s
        .create_reverse_tunnel(new_tunnel(dev.id, "a.fleet.test"))
        .await
        .unwrap();
    let t2 = s
        .create_reverse_tunnel(new_tunnel(dev.id, "b.fleet.test"))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let d = s
        .create_custom_domain(domain(t1.id, "Robot7.Customer.com", now))
        .await
        .unwrap();
    assert_eq!(d.hostname, "robot7.customer.com");
    assert_eq!(d.status, domain_status::PENDING_VERIFICATION);
    assert_eq!(d.verified_at, None);
    assert_eq!(d.next_check_at, us(now));
    // A hostname belongs to one tunnel in the whole installation.
    assert_conflict(
        s.create_custom_domain(domain(t2.id, "robot7.customer.com", now))
            .await,
    );
    let other = s
        .create_custom_domain(domain(t1.id, "cam.customer.com", now))
        .await
        .unwrap();
    assert_eq!(s.list_custom_domains(t1.id).await.unwrap().len(), 2);
    assert!(s.list_custom_domains(t2.id).await.unwrap().is_empty());

    // Not served until verified.
    assert!(s.served_custom_domains().await.unwrap().is_empty());
    assert!(s
        .reverse_tunnel_by_custom_domain("robot7.customer.com")
        .await
        .unwrap()
        .is_none());

    // A due domain is claimed by one caller only.
    let lease = now + Duration::minutes(5);
    let claimed = s.claim_due_custom_domains(now, lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(s
        .claim_due_custom_domains(now, lease, 10)
        .await
        .unwrap()
        .is_empty());

    let state = DomainState {
        status: domain_status::ACTIVE.into(),
        status_reason: None,
        verified_at: Some(now),
        checked_at: Some(now),
        next_check_at: now + Duration::hours(1),
        failures: 0,
    };
    let d = s.update_custom_domain_state(d.id, &state).await.unwrap();
    assert_eq!(d.status, "active");
    assert_eq!(d.verified_at, Some(us(now)));
    assert_eq!(
        s.served_custom_domains().await.unwrap(),
        vec!["robot7.customer.com".to_string()]
    );
    let routed = s
        .reverse_tunnel_by_custom_domain("ROBOT7.customer.com")
        .await
        .unwrap()
        .expect("served domain routes to its tunnel");
    assert_eq!(routed.id, t1.id);
    assert_not_found(s.update_custom_domain_state(9_999_999, &state).await);

    // "Check now" makes it due again and resets the backoff.
    let due = s.check_custom_domain_now(other.id, now).await.unwrap();
    assert_eq!(due.next_check_at, us(now));
    assert_eq!(
        s.claim_due_custom_domains(now, lease, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // Deleting the domain deletes its certificate.
    s.put_certificate(&cert("robot7.customer.com", now))
        .await
        .unwrap();
    assert!(s
        .certificate("robot7.customer.com")
        .await
        .unwrap()
        .is_some());
    s.delete_custom_domain(d.id).await.unwrap();
    assert!(s.custom_domain_by_id(d.id).await.unwrap().is_none());
    assert!(s
        .certificate("robot7.customer.com")
        .await
        .unwrap()
        .is_none());
    assert!(s.served_custom_domains().await.unwrap().is_empty());
    assert_not_found(s.delete_custom_domain(d.id).await);

    // Deleting the tunnel deletes its domains.
    s.delete_reverse_tunnel(t1.id).await.unwrap();
    assert!(s.custom_domain_by_id(other.id).await.unwrap().is_none());
}

pub async fn certificates_and_challenges(ctx: &Ctx) {
    let s = ctx.s();
    let t0 = chrono::Utc::now();
    s.put_certificate(&cert("*.fleet.test", t0)).await.unwrap();
    let mut renewed = cert("*.fleet.test", t0 + Duration::days(60));
    renewed.chain_pem = "renewed".into();
    s.put_certificate(&renewed).await.unwrap();
    let got = s.certificate("*.fleet.test").await.unwrap().unwrap();
    assert_eq!(got.chain_pem, "renewed");
    assert_eq!(got.not_after, us(t0 + Duration::days(150)));
    assert_eq!(
        s.certificate_stamps().await.unwrap(),
        vec![("*.fleet.test".to_string(), us(t0 + Duration::days(60)))]
    );
    s.delete_certificate("*.fleet.test").await.unwrap();
    assert!(s.certificate("*.fleet.test").await.unwrap().is_none());
    s.delete_certificate("*.fleet.test").await.unwrap();

    let now = chrono::Utc::now();
    s.put_acme_challenge("http-01:tok", "tok.thumb", now + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(
        s.acme_challenge("http-01:tok", now)
            .await
            .unwrap()
            .as_deref(),
        Some("tok.thumb")
    );
    // Expired answers are not given.
    assert_eq!(
        s.acme_challenge("http-01:tok", now + Duration::minutes(6))
            .await
            .unwrap(),
        None
    );
    s.delete_acme_challenge("http-01:tok").await.unwrap();
    assert_eq!(s.acme_challenge("http-01:tok", now).await.unwrap(), None);
}

pub async fn domain_claim_race(ctx: &Ctx) {
    let s = ctx.s();
    let (_, _, dev) = owner_project_device(s, "race").await;
    let t = s
        .create_reverse_tunnel(new_tunnel(dev.id, "r.fleet.test"))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    for i in 0..5 {
        s.create_custom_domain(domain(t.id, &format!("d{i}.race.test"), now))
            .await
            .unwrap();
    }
    let other = ctx.reopen().await;
    let lease = now + Duration::minutes(5);
    let (a, b) = tokio::join!(
        s.claim_due_custom_domains(now, lease, 10),
        other.claim_due_custom_domains(now, lease, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    // Every domain claimed, none twice.
    assert_eq!(a.len() + b.len(), 5, "{a:?} {b:?}");
    assert!(a.iter().all(|x| b.iter().all(|y| x.id != y.id)));
}
