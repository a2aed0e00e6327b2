//! The config endpoint over the real mTLS listener (and, behind a proxy, plain HTTP).

mod common;

use burrow_device::{DeviceCa, DeviceConfigResponse};
use chrono::Utc;
use common::*;

#[tokio::test]
async fn own_config_over_mtls_has_the_seed_shape() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-A").await;
    let web = fx.tunnel(&dev, "Web", 8080, true).await;
    let cam = fx.tunnel(&dev, "Cam", 9000, false).await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds));

    let resp = client.get(config_url(addr, "DEV-A")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    let tunnels = json["tunnels"].as_array().unwrap();
    assert_eq!(tunnels.len(), 2);
    let w = &tunnels[0];
    let mut keys: Vec<&str> = w.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "destination_access_token",
            "expires_at",
            "id",
            "is_enabled",
            "local_port",
            "name",
            "protocol",
            "public_url",
            "service",
            "tunnel_arn",
            "tunnel_id"
        ]
    );
    assert_eq!(w["id"], web.id);
    assert_eq!(w["name"], "Web");
    assert_eq!(w["is_enabled"], true);
    assert_eq!(w["local_port"], 8080);
    assert_eq!(w["protocol"], "http");
    assert_eq!(w["service"], "HTTP-8080");
    assert_eq!(w["public_url"], web.public_url);
    assert!(w["tunnel_id"].as_str().unwrap().starts_with("tun-"));
    assert!(w["tunnel_arn"].is_string());
    assert!(w["destination_access_token"]
        .as_str()
        .unwrap()
        .starts_with("dest-token-"));
    assert!(w["expires_at"].as_str().unwrap().ends_with('Z'));
    let c = &tunnels[1];
    assert_eq!(c["id"], cam.id);
    assert_eq!(c["is_enabled"], false);
    assert!(c["destination_access_token"].is_null());
    assert!(json["version"].is_string());

    // The broker tunnel is recorded on the reverse tunnel; presence is recorded.
    let row = fx
        .store
        .reverse_tunnel_by_id(web.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.tunnel_id.as_deref(), w["tunnel_id"].as_str());
    assert!(
        row.destination_access_token.is_none(),
        "tokens are never stored"
    );
    let seen = fx
        .store
        .device_by_id(dev.id)
        .await
        .unwrap()
        .unwrap()
        .last_seen_at
        .unwrap();
    assert!(burrow_device::is_online(
        &fx.store.device_by_id(dev.id).await.unwrap().unwrap(),
        Utc::now(),
        burrow_device::default_online_window()
    ));
    assert!(Utc::now() - seen < chrono::Duration::seconds(10));

    // Fetching again reuses the active tunnel: same version, no new tunnel.
    let again: DeviceConfigResponse = client
        .get(config_url(addr, "DEV-A"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again.version, json["version"].as_str().unwrap());
    assert_eq!(fx.broker.state.lock().unwrap().next, 1);
}

#[tokio::test]
async fn expiring_tunnel_is_replaced_and_the_old_one_closed() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-R").await;
    let web = fx.tunnel(&dev, "Web", 8080, true).await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds));
    let first: DeviceConfigResponse = client
        .get(config_url(addr, "DEV-R"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old = first.tunnels[0].tunnel_id.clone().unwrap();
    fx.broker.expire(&old);
    let second: DeviceConfigResponse = client
        .get(config_url(addr, "DEV-R"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new = second.tunnels[0].tunnel_id.clone().unwrap();
    assert_ne!(old, new);
    assert_ne!(first.version, second.version);
    assert_eq!(fx.broker.state.lock().unwrap().closed, vec![old]);
    let row = fx
        .store
        .reverse_tunnel_by_id(web.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.tunnel_id.as_deref(), Some(new.as_str()));
}

#[tokio::test]
async fn broker_failure_degrades_to_null_tunnel() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-F").await;
    fx.tunnel(&dev, "Web", 8080, true).await;
    let creds = fx.creds(&dev).await;
    fx.broker.state.lock().unwrap().fail = true;
    let addr = fx.start_mtls().await;
    let cfg: DeviceConfigResponse = fx
        .client(Some(&creds))
        .get(config_url(addr, "DEV-F"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(cfg.tunnels[0].tunnel_id.is_none());
    assert!(cfg.tunnels[0].destination_access_token.is_none());
}

#[tokio::test]
async fn device_x_asking_for_y_is_forbidden() {
    let fx = Fixture::new().await;
    let x = fx.device("DEV-X").await;
    let y = fx.device("DEV-Y").await;
    fx.tunnel(&y, "Secret", 22, true).await;
    let creds_x = fx.creds(&x).await;
    let addr = fx.start_mtls().await;
    let resp = fx
        .client(Some(&creds_x))
        .get(config_url(addr, "DEV-Y"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(fx.broker.state.lock().unwrap().ensure_calls, 0);
}

#[tokio::test]
async fn foreign_ca_expired_and_missing_certificates_fail_the_handshake() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-T").await;
    let addr = fx.start_mtls().await;
    let url = config_url(addr, "DEV-T");

    let other_ca = DeviceCa::generate().unwrap();
    let foreign = creds_from(&other_ca, "DEV-T", Utc::now() + chrono::Duration::days(1));
    // Even recorded as the device's serial, a foreign CA's certificate never gets in.
    fx.store
        .set_device_certificate(dev.id, &foreign.serial, Utc::now())
        .await
        .unwrap();
    assert!(
        fx.client(Some(&foreign)).get(&url).send().await.is_err(),
        "foreign CA accepted"
    );

    let expired = fx
        .creds_until(&dev, Utc::now() - chrono::Duration::days(1))
        .await;
    assert!(
        fx.client(Some(&expired)).get(&url).send().await.is_err(),
        "expired cert accepted"
    );

    assert!(
        fx.client(None).get(&url).send().await.is_err(),
        "no client cert accepted"
    );

    // And the listener still serves a good device afterwards.
    let good = fx.creds(&dev).await;
    assert_eq!(
        fx.client(Some(&good))
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn revoked_device_is_refused_at_once_on_the_same_connection() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-V").await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_mtls().await;
    let client = fx.client(Some(&creds)); // keeps its connection alive between requests
    let url = config_url(addr, "DEV-V");
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    fx.store.revoke_device(dev.id, Utc::now()).await.unwrap();
    assert_eq!(client.get(&url).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn re_enrollment_retires_the_previous_certificate() {
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-E").await;
    let old = fx.creds(&dev).await;
    let new = fx.creds(&dev).await; // recorded last: the current certificate
    let addr = fx.start_mtls().await;
    let url = config_url(addr, "DEV-E");
    assert_eq!(
        fx.client(Some(&old))
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        fx.client(Some(&new))
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

fn header_value(pem: &str) -> String {
    percent_encoding::utf8_percent_encode(pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn device_certificate_header_is_honoured_only_from_trusted_proxies() {
    // Untrusted: the header alone gets nothing on the plain port.
    let fx = Fixture::new().await;
    let dev = fx.device("DEV-P").await;
    let creds = fx.creds(&dev).await;
    let addr = fx.start_http().await;
    let resp = reqwest::Client::new()
        .get(http_config_url(addr, "DEV-P"))
        .header("X-Device-Certificate", header_value(&creds.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Untrusted on the mTLS listener: X's own certificate counts, not the header naming Y.
    let x = fx.device("DEV-PX").await;
    let creds_x = fx.creds(&x).await;
    let tls = fx.start_mtls().await;
    let client = fx.client(Some(&creds_x));
    let resp = client
        .get(config_url(tls, "DEV-P"))
        .header("X-Device-Certificate", header_value(&creds.cert_pem))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Trusted (127.0.0.1 is the proxy): honoured, and still verified against the CA.
    let fx = Fixture::with_trusted(vec!["127.0.0.1".parse().unwrap()]).await;
    let dev = fx.device("DEV-P").await;
    let other = fx.device("DEV-Q").await;
    let creds = fx.creds(&dev).await;
    fx.creds(&other).await;
    let addr = fx.start_http().await;
    let get = |dsn: &'static str, pem: String| {
        reqwest::Client::new()
            .get(http_config_url(addr, dsn))
            .header("X-Device-Certificate", header_value(&pem))
            .send()
    };
    assert_eq!(
        get("DEV-P", creds.cert_pem.clone()).await.unwrap().status(),
        200
    );
    assert_eq!(
        get("DEV-Q", creds.cert_pem.clone()).await.unwrap().status(),
        403
    );
    let foreign = creds_from(
        &DeviceCa::generate().unwrap(),
        "DEV-P",
        Utc::now() + chrono::Duration::days(1),
    );
    assert_eq!(get("DEV-P", foreign.cert_pem).await.unwrap().status(), 401);
    let expired = creds_from(&fx.ca, "DEV-P", Utc::now() - chrono::Duration::days(1));
    assert_eq!(get("DEV-P", expired.cert_pem).await.unwrap().status(), 401);
    let no_header = reqwest::Client::new()
        .get(http_config_url(addr, "DEV-P"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_header.status(), 401);
}
