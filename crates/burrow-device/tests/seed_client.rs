//! The seed's own Python client (`requests` with a client certificate) fetches the config
//! from the mTLS listener after a real enrollment. Skips only when python3 is absent.

mod common;

use std::process::Command;

use burrow_device::agent_enroll::{CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE};
use burrow_device::{agent_enroll, config_router, enrollment, mtls};
use common::*;
use tokio::net::TcpListener;

fn python_with_requests() -> Option<&'static str> {
    let has = |args: &[&str]| {
        Command::new("python3")
            .args(args)
            .output()
            .map(|o| o.status.success())
    };
    match has(&["-c", "import requests"]) {
        Err(_) => None, // no python3 on this machine
        Ok(true) => Some("python3"),
        Ok(false) => {
            let installed = has(&["-m", "pip", "install", "--quiet", "requests"]).unwrap_or(false);
            assert!(
                installed,
                "python3 is here but `pip install requests` failed"
            );
            Some("python3")
        }
    }
}

#[tokio::test]
async fn seed_python_client_fetches_config_over_mtls() {
    let Some(python) = python_with_requests() else {
        eprintln!("SKIPPED: python3 not found");
        return;
    };
    let fx = Fixture::new().await;
    let dev = fx.device("ABC123DEF456").await;
    fx.tunnel(&dev, "Web Dashboard", 8080, true).await;
    fx.tunnel(&dev, "Off", 8081, false).await;
    let token = enrollment::issue(fx.store.as_ref(), dev.id, chrono::Duration::minutes(5))
        .await
        .unwrap();
    let api = fx.start_http().await;
    let tmp = tempfile::tempdir().unwrap();
    agent_enroll(
        &format!("http://{api}"),
        token.expose(),
        tmp.path(),
        fx.pin(),
    )
    .await
    .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = mtls::server_config(&fx.ca, &["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(mtls::serve_device_listener(
        listener,
        tls,
        config_router(fx.state.clone()),
        async {
            let _ = stopped.await;
        },
    ));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_client.py");
    let dir = tmp.path();
    let out = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("https://127.0.0.1:{}", addr.port()))
        .arg("ABC123DEF456")
        .arg(dir.join(DEVICE_CERT_FILE))
        .arg(dir.join(DEVICE_KEY_FILE))
        .arg(dir.join(CA_FILE))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "seed client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["tunnels"].as_array().unwrap().len(), 2);
    assert_eq!(json["ready"], serde_json::json!(["Web Dashboard"]));

    // The listener stops when asked.
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
