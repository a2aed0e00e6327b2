//! Custom domains against real servers: pebble (an RFC 8555 ACME server), pebble-challtestsrv
//! (the DNS where the owner publishes records) and BIND (RFC 2136 updates for DNS-01), each
//! started on free ports. burrow proves ownership through DNS, obtains certificates by
//! TLS-ALPN-01, HTTP-01 and DNS-01, serves them by SNI, renews them without a restart, and
//! stops serving a removed domain. Records missing or wrong, and a CA that is down, show why.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use burrow::testkit::processes::eventually;
use burrow::testkit::{Backend, TestStack};
use burrow_acme::testing::{free_port, Bind9, ChallTestSrv, Pebble, PebbleOptions};
use rcgen::{CertificateParams, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const BASE: &str = "fleet.test";
const LONG: Duration = Duration::from_secs(90);

async fn device_service() -> SocketAddr {
    let app = axum::Router::new().route("/", get(|| async { "hello from the device" }));
    burrow::testkit::serve_local(app).await.expect("service")
}

/// A self-signed wildcard for the base domain, as `tls_cert`/`tls_key`; answers its PEM.
fn write_wildcard(dir: &std::path::Path) -> String {
    let params =
        CertificateParams::new(vec![format!("*.{BASE}"), BASE.to_string()]).expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
    cert.pem()
}

/// An HTTPS client trusting only `root_pem`, reaching `names` at `addr`.
fn https_client(root_pem: &str, addr: SocketAddr, names: &[&str]) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(root_pem.as_bytes()).expect("root");
    let mut b = reqwest::Client::builder()
        .add_root_certificate(root)
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20));
    for n in names {
        b = b.resolve(n, addr);
    }
    b.build().expect("client")
}

/// The leaf a TLS handshake for `name` gets when only `root_pem` is trusted; `None` when the
/// handshake fails (no certificate of that root for the name).
async fn leaf_for(root_pem: &str, addr: SocketAddr, name: &str) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut root_pem.as_bytes()) {
        roots.add(c.ok()?).ok()?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .ok()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).ok()?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(server_name, tcp)
        .await
        .ok()?;
    Some(tls.get_ref().1.peer_certificates()?.first()?.to_vec())
}

fn domains_path(dsn: &str, tunnel: &Value) -> String {
    format!(
        "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{}/domains",
        tunnel["id"]
    )
}

async fn add_domain(s: &TestStack, admin: &str, path: &str, hostname: &str) -> Value {
    let (status, d) = s
        .call(
            Method::POST,
            path,
            admin,
            Some(&json!({ "hostname": hostname })),
        )
        .await
        .expect("add domain");
    assert_eq!(status, StatusCode::CREATED, "{d}");
    d
}

/// Waits until the domain's status is `status`; answers the domain.
async fn until_status(s: &TestStack, admin: &str, path: &str, d: &Value, status: &str) -> Value {
    let url = format!("{path}/{}", d["id"]);
    eventually(
        &format!("{} becomes {status}", d["hostname"]),
        LONG,
        || async {
            let (code, now) = s.call(Method::GET, &url, admin, None).await.ok()?;
            (code == StatusCode::OK && now["status"] == status).then_some(now)
        },
    )
    .await
}

/// A tunnel of device `dsn` to a local service, its device side connected over the device
/// port.
async fn tunnel(
    s: &TestStack,
    admin: &str,
    dsn: &str,
) -> (Value, burrow_client::DestinationClient) {
    let svc = device_service().await;
    s.project_with_device(admin, dsn).await.expect("device");
    let (status, t) = s
        .call(
            Method::POST,
            &format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels"),
            admin,
            Some(&json!({"name": "Dash", "local_port": svc.port(), "require_auth": false})),
        )
        .await
        .expect("tunnel");
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let peer = s
        .connect_destination_over_device_port(
            t["tunnel_id"].as_str().expect("tunnel id"),
            &burrow_edge::service_name("http", i64::from(svc.port())),
            svc,
        )
        .await
        .expect("device connects");
    (t, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_domain_verified_issued_by_tls_alpn_renewed_and_removed() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let tls_port = free_port().expect("port");
    // Short-lived certificates: renewed a third before expiry, i.e. within seconds.
    let pebble = Pebble::start(PebbleOptions {
        dns_server: dns.dns_addr(),
        http_port: free_port().expect("port"),
        tls_port,
        validity_secs: Some(45),
        blocklist: vec!["blocked.customer.test".into()],
    })
    .await
    .expect("pebble");
    let files = tempfile::tempdir().expect("tempdir");
    let wildcard_pem = write_wildcard(files.path());
    let dir = files.path().to_path_buf();
    let (directory, ca_file, resolver) = (
        pebble.directory_url(),
        pebble.ca_file().to_path_buf(),
        dns.dns_addr(),
    );
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = BASE.into();
        c.listen = SocketAddr::from(([127, 0, 0, 1], tls_port));
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
        c.dns_resolver = Some(resolver);
        c.acme_directory_url = directory;
        c.acme_ca_file = Some(ca_file);
        c.acme_challenge = Some("tls-alpn-01".into());
    })
    .await
    .expect("stack");
    let addr = s.addr;
    let s = s.with_client(
        https_client(&wildcard_pem, addr, &[BASE]),
        format!("https://{BASE}:{}", addr.port()),
    );
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = tunnel(&s, &admin, "DOM1").await;
    let path = domains_path("DOM1", &t);

    // Added: nothing served yet; the records to publish are given.
    let robot = add_domain(&s, &admin, &path, "Robot7.Customer.test.").await;
    assert_eq!(robot["hostname"], "robot7.customer.test");
    assert_eq!(robot["status"], "pending_verification");
    assert_eq!(robot["served"], false);
    assert_eq!(robot["verification"]["type"], "TXT");
    assert_eq!(
        robot["verification"]["name"],
        "_burrow-challenge.robot7.customer.test"
    );
    assert_eq!(robot["target"]["value"], t["public_url"]);
    assert_eq!(robot["certificate"]["status"], "none");
    // A hostname belongs to one tunnel; names under the base domain are refused.
    let (status, e) = s
        .call(
            Method::POST,
            &path,
            &admin,
            Some(&json!({"hostname": "robot7.customer.test"})),
        )
        .await
        .expect("duplicate");
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    let (status, _) = s
        .call(
            Method::POST,
            &path,
            &admin,
            Some(&json!({"hostname": format!("x.{BASE}")})),
        )
        .await
        .expect("base");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // No TXT record: pending, and why. A wrong one: failed, and why. Neither is issued.
    let missing = add_domain(&s, &admin, &path, "missing.customer.test").await;
    let wrong = add_domain(&s, &admin, &path, "wrong.customer.test").await;
    dns.set_txt(
        "_burrow-challenge.wrong.customer.test",
        "burrow-verify=not-this",
    )
    .await
    .expect("txt");
    let wrong = until_status(&s, &admin, &path, &wrong, "failed").await;
    assert!(
        wrong["status_reason"]
            .as_str()
            .unwrap_or("")
            .contains("different value"),
        "{wrong}"
    );
    let missing_now = eventually("missing shows its reason", LONG, || async {
        let (_, d) = s
            .call(
                Method::GET,
                &format!("{path}/{}", missing["id"]),
                &admin,
                None,
            )
            .await
            .ok()?;
        d["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("TXT"))
            .then_some(d)
    })
    .await;
    assert_eq!(
        missing_now["status"], "pending_verification",
        "{missing_now}"
    );

    // Ownership proven, but the CA answers with an error: failed, with the CA's reason.
    let blocked = add_domain(&s, &admin, &path, "blocked.customer.test").await;
    dns.set_txt(
        "_burrow-challenge.blocked.customer.test",
        blocked["verification"]["value"].as_str().expect("value"),
    )
    .await
    .expect("txt");
    let blocked = until_status(&s, &admin, &path, &blocked, "failed").await;
    let reason = blocked["status_reason"].as_str().unwrap_or("");
    assert!(
        reason.starts_with("certificate:") && reason.contains("forbidden by policy"),
        "{blocked}"
    );
    assert_eq!(blocked["certificate"]["status"], "none");

    // The owner publishes the record: verified, issued by TLS-ALPN-01, served by SNI.
    dns.set_txt(
        "_burrow-challenge.robot7.customer.test",
        robot["verification"]["value"].as_str().expect("value"),
    )
    .await
    .expect("txt");
    let (status, _) = s
        .call(
            Method::POST,
            &format!("{path}/{}/check", robot["id"]),
            &admin,
            None,
        )
        .await
        .expect("check");
    assert_eq!(status, StatusCode::ACCEPTED);
    let active = until_status(&s, &admin, &path, &robot, "active").await;
    assert_eq!(active["certificate"]["status"], "valid", "{active}");
    assert_eq!(active["served"], true);
    let root = pebble.issuance_root_pem().await.expect("pebble root");
    let host = "robot7.customer.test";
    let first = eventually("the certificate is served", LONG, || {
        leaf_for(&root, addr, host)
    })
    .await;
    let client = https_client(&root, addr, &[host]);
    let r = client
        .get(format!("https://{host}:{}/", addr.port()))
        .send()
        .await
        .expect("through the custom domain");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("body"), "hello from the device");
    // Counted and logged like the tunnel's own host (only the custom host was used so far).
    s.running.ops.edge.flush_all().await;
    let (_, log) = s
        .call(
            Method::GET,
            &format!(
                "/api/v1/reverse-tunnels/devices/DOM1/reverse-tunnels/{}/access-log",
                t["id"]
            ),
            &admin,
            None,
        )
        .await
        .expect("access log");
    let items = log["items"].as_array().expect("items");
    assert!(
        items.iter().any(|e| e["path"] == "/" && e["status"] == 200),
        "{log}"
    );

    // Renewed before it expires, and served without a restart.
    let renewed = eventually("a renewed certificate is served", LONG, || async {
        leaf_for(&root, addr, host).await.filter(|l| *l != first)
    })
    .await;
    assert_ne!(renewed, first);
    let r = https_client(&root, addr, &[host])
        .get(format!("https://{host}:{}/", addr.port()))
        .send()
        .await
        .expect("after renewal");
    assert_eq!(r.status(), StatusCode::OK);
    // The wrong domain never got one.
    assert!(leaf_for(&root, addr, "wrong.customer.test").await.is_none());

    // Removed: no longer served (neither its certificate nor its route).
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("{path}/{}", robot["id"]),
            &admin,
            None,
        )
        .await
        .expect("delete");
    assert_eq!(status, StatusCode::NO_CONTENT);
    eventually("the removed domain's certificate is gone", LONG, || async {
        leaf_for(&root, addr, host).await.is_none().then_some(())
    })
    .await;
    // Nor routed: the name reaches no tunnel any more.
    let r = https_client(&wildcard_pem, addr, &[BASE])
        .get(format!("https://{BASE}:{}/", addr.port()))
        .header("host", host)
        .send()
        .await
        .expect("send");
    assert_ne!(r.text().await.expect("body"), "hello from the device");
    let (status, _) = s
        .call(
            Method::GET,
            &format!("{path}/{}", robot["id"]),
            &admin,
            None,
        )
        .await
        .expect("get");
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_domain_wildcard_by_dns01_and_a_custom_domain_by_http01() {
    // One zone, `test`, holds the base domain and the customer's name; BIND takes TSIG-signed
    // updates (burrow's DNS-01, and the test publishing the customer's TXT).
    let bind = Bind9::start(
        "test",
        &[
            ("fleet", "127.0.0.1"),
            ("*.fleet", "127.0.0.1"),
            ("shop.customer", "127.0.0.1"),
        ],
    )
    .await
    .expect("named");
    let (tls_port, http_port) = (free_port().expect("port"), free_port().expect("port"));
    let pebble = Pebble::start(PebbleOptions {
        dns_server: bind.addr(),
        http_port,
        tls_port,
        validity_secs: None,
        blocklist: Vec::new(),
    })
    .await
    .expect("pebble");
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("tsig.key");
    std::fs::write(&key_file, bind.key_file_text()).expect("key file");
    let cluster_key = burrow::testkit::write_cluster_key(keys.path()).expect("cluster key");
    let backend = if burrow_store::testing::skip_postgres() {
        Backend::Sqlite
    } else {
        Backend::Postgres
    };
    let (directory, ca_file, dns) = (
        pebble.directory_url(),
        pebble.ca_file().to_path_buf(),
        bind.addr(),
    );
    let acme = |c: &mut burrow::config::Config| {
        c.base_domain = BASE.into();
        c.dns_resolver = Some(dns);
        c.acme_directory_url = directory.clone();
        c.acme_ca_file = Some(ca_file.clone());
        c.acme_base_domain = true;
        c.acme_dns_update = Some(dns);
        c.acme_dns_update_zone = Some("test".into());
        c.acme_dns_update_key_file = Some(key_file.clone());
    };
    let s = TestStack::start_configured(backend, |c| {
        acme(c);
        c.listen = SocketAddr::from(([127, 0, 0, 1], tls_port));
        c.http_redirect_listen = Some(SocketAddr::from(([127, 0, 0, 1], http_port)));
        if backend == Backend::Postgres {
            c.cluster_key_file = Some(cluster_key.clone());
        }
    })
    .await
    .expect("stack");
    let addr = s.addr;
    let root = pebble.issuance_root_pem().await.expect("root");

    // No certificate files: the base domain's wildcard comes by DNS-01 and serves the API...
    eventually("the base domain's certificate is served", LONG, || {
        leaf_for(&root, addr, BASE)
    })
    .await;
    let s = s.with_client(
        https_client(&root, addr, &[BASE]),
        format!("https://{BASE}:{}", addr.port()),
    );
    let admin = s
        .admin_token()
        .await
        .expect("admin over the ACME certificate");
    // ...and every tunnel host.
    let (t, _peer) = tunnel(&s, &admin, "DOM2").await;
    let own = t["public_url"].as_str().expect("public url").to_string();
    let r = https_client(&root, addr, &[&own])
        .get(format!("https://{own}:{}/", addr.port()))
        .send()
        .await
        .expect("tunnel host");
    assert_eq!(r.status(), StatusCode::OK);

    // A custom domain, its TXT published by dynamic update, issued by HTTP-01 on the HTTP
    // listener (which redirects everything else to HTTPS).
    let path = domains_path("DOM2", &t);
    let shop = add_domain(&s, &admin, &path, "shop.customer.test").await;
    let update =
        burrow_acme::DnsUpdate::new(bind.addr(), "test", bind.key().expect("key")).expect("update");
    update
        .set_txt(
            "_burrow-challenge.shop.customer.test",
            shop["verification"]["value"].as_str().expect("value"),
            60,
        )
        .await
        .expect("publish TXT");
    s.call(
        Method::POST,
        &format!("{path}/{}/check", shop["id"]),
        &admin,
        None,
    )
    .await
    .expect("check");
    until_status(&s, &admin, &path, &shop, "active").await;
    let host = "shop.customer.test";
    eventually("the custom domain is served", LONG, || {
        leaf_for(&root, addr, host)
    })
    .await;
    let r = https_client(&root, addr, &[host])
        .get(format!("https://{host}:{}/", addr.port()))
        .send()
        .await
        .expect("custom domain");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.expect("body"), "hello from the device");
    // Authenticated exactly like the tunnel's own host.
    let (status, body) = s
        .call(
            Method::PUT,
            &format!(
                "/api/v1/reverse-tunnels/devices/DOM2/reverse-tunnels/{}",
                t["id"]
            ),
            &admin,
            Some(&json!({"require_auth": true})),
        )
        .await
        .expect("require auth");
    assert_eq!(status, StatusCode::OK, "{body}");
    let c = https_client(&root, addr, &[host, &own]);
    for h in [host, own.as_str()] {
        eventually("auth required", LONG, || async {
            let r = c
                .get(format!("https://{h}:{}/", addr.port()))
                .header("accept", "application/json")
                .send()
                .await
                .ok()?;
            (r.status() == StatusCode::UNAUTHORIZED).then_some(())
        })
        .await;
        let r = c
            .get(format!("https://{h}:{}/", addr.port()))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("with a token");
        assert_eq!(r.status(), StatusCode::OK, "{h}");
    }
    let redirect = s.running.redirect_addr.expect("redirect listener");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("http://{redirect}/x?y=1"))
        .header("host", host)
        .send()
        .await
        .expect("plain");
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!("https://{host}:{}/x?y=1", addr.port()).as_str()
    );

    // Another node on the same database serves both certificates, obtained by the first.
    if backend == Backend::Postgres {
        let db = s.database_url();
        let n2 = TestStack::start_configured(Backend::Sqlite, |c| {
            acme(c);
            c.database_url = Some(burrow::secret::Secret::new(&db));
            c.cluster_key_file = Some(cluster_key.clone());
            c.node_name = Some("node-2".into());
        })
        .await
        .expect("node 2");
        let first = leaf_for(&root, addr, host).await.expect("node 1's");
        let second = eventually("node 2 serves the custom domain", LONG, || {
            leaf_for(&root, n2.addr, host)
        })
        .await;
        assert_eq!(first, second, "the same certificate, from the database");
        eventually("node 2 serves the wildcard", LONG, || {
            leaf_for(&root, n2.addr, &own)
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acme_server_that_is_down_shows_why_and_blocks_nothing() {
    let dns = ChallTestSrv::start().await.expect("challtestsrv");
    let files = tempfile::tempdir().expect("tempdir");
    let wildcard_pem = write_wildcard(files.path());
    let dir = files.path().to_path_buf();
    let resolver = dns.dns_addr();
    // Nothing listens there.
    let dead = format!("https://127.0.0.1:{}/dir", free_port().expect("port"));
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.base_domain = BASE.into();
        c.tls_cert = Some(dir.join("cert.pem"));
        c.tls_key = Some(dir.join("key.pem"));
        c.dns_resolver = Some(resolver);
        c.acme_directory_url = dead;
    })
    .await
    .expect("stack");
    let addr = s.addr;
    let s = s.with_client(
        https_client(&wildcard_pem, addr, &[BASE]),
        format!("https://{BASE}:{}", addr.port()),
    );
    let admin = s.admin_token().await.expect("admin");
    let (t, _peer) = tunnel(&s, &admin, "DOM3").await;
    let path = domains_path("DOM3", &t);
    let d = add_domain(&s, &admin, &path, "down.customer.test").await;
    dns.set_txt(
        "_burrow-challenge.down.customer.test",
        d["verification"]["value"].as_str().expect("value"),
    )
    .await
    .expect("txt");
    let failed = until_status(&s, &admin, &path, &d, "failed").await;
    let reason = failed["status_reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("certificate:"), "{failed}");
    assert!(
        reason.contains("127.0.0.1"),
        "names the CA it could not reach: {failed}"
    );
    // Ownership is proven, so the name is routed; the API and the tunnel answer meanwhile.
    assert_eq!(failed["served"], true);
    let own = t["public_url"].as_str().expect("public url");
    let r = https_client(&wildcard_pem, addr, &[own])
        .get(format!("https://{own}:{}/", addr.port()))
        .send()
        .await
        .expect("tunnel");
    assert_eq!(r.status(), StatusCode::OK);
    // Retried with backoff: the waits grow (acme_retry_secs doubled per failure).
    let waits = eventually("a longer wait after more failures", LONG, || async {
        let (_, now) = s
            .call(Method::GET, &format!("{path}/{}", d["id"]), &admin, None)
            .await
            .ok()?;
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(now[k].as_str()?).ok();
        let wait = at("next_check_at")? - at("checked_at")?;
        (wait >= chrono::Duration::seconds(4)).then_some(wait)
    })
    .await;
    assert!(waits <= chrono::Duration::hours(1));
}
