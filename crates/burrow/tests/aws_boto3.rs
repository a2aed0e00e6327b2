//! boto3 (the public AWS SDK for Python) against burrow's AWS IoT Secure Tunneling compatible
//! API: key issuance, SigV4, every operation, and tunnels that carry bytes between burrow's own
//! peers. The Python side is tests/aws_boto3.py; each step runs it once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack};
use burrow_client::{ClientConfig, ClientError, DestinationClient, SourceClient, Targets};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Py {
    python: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Py {
    /// Runs a subcommand; answers (success, parsed stdout or the stderr text).
    async fn try_run(&self, args: &[&str]) -> (bool, Value, String) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws_boto3.py");
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.arg(script).args(args).envs(self.env.iter().cloned());
        cmd.env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("python timed out")
            .expect("running python");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
        (out.status.success(), value, stderr)
    }

    async fn run(&self, args: &[&str]) -> Value {
        let (ok, value, stderr) = self.try_run(args).await;
        assert!(ok, "aws_boto3.py {args:?} failed:\n{stderr}");
        value
    }
}

async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = sock.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str()
        .unwrap_or_else(|| panic!("{k} in {v}"))
        .to_string()
}

async fn pair(
    url: &str,
    src: &str,
    dst: &str,
    echo: SocketAddr,
) -> (SourceClient, DestinationClient) {
    let d = DestinationClient::connect(
        ClientConfig::new(url, dst),
        Targets::new().service("SSH1", echo),
    )
    .await
    .expect("destination connects");
    let sc = SourceClient::connect(ClientConfig::new(url, src))
        .await
        .expect("source connects");
    let mut stream = sc.open_stream("SSH1").await.expect("open stream");
    stream
        .write_all(b"hello through boto3's tunnel")
        .await
        .unwrap();
    let mut buf = [0u8; 28];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut buf))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(&buf, b"hello through boto3's tunnel");
    (sc, d)
}

async fn refused(url: &str, token: &str) {
    let err = SourceClient::connect(ClientConfig::new(url, token))
        .await
        .err()
        .expect("an old token must be refused");
    assert!(
        matches!(err, ClientError::HandshakeRejected { status, .. } if (400..500).contains(&status)),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_burrow_tunnels() {
    let python = burrow::testkit::python_with(&[("boto3", "boto3")]);
    let stack = TestStack::start(Backend::Sqlite).await.unwrap();
    let (_, token) = stack.user("aws@test.local").await.unwrap();
    let dsn = "aws-dev-1";
    let (pid, _) = stack.project_with_device(&token, dsn).await.unwrap();

    // Issue a key; the secret is shown once and never listed.
    let resp = stack
        .http
        .post(stack.url(&format!("/api/v1/projects/{pid}/aws-keys")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let key: Value = resp.json().await.unwrap();
    let (akid, secret) = (s(&key, "access_key_id"), s(&key, "secret_access_key"));
    assert!(akid.starts_with("AKIA") && akid.len() == 20, "{key}");
    assert_eq!(secret.len(), 40);
    let listed = stack
        .http
        .get(stack.url(&format!("/api/v1/projects/{pid}/aws-keys")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        listed.contains(&akid) && !listed.contains(&secret),
        "{listed}"
    );
    // Another user is no member of the project.
    let (_, other) = stack.user("other@test.local").await.unwrap();
    let resp = stack
        .http
        .post(stack.url(&format!("/api/v1/projects/{pid}/aws-keys")))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // A POST / without X-Amz-Target is not the AWS API's.
    let resp = stack.http.post(stack.url("/")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    // With a target: unsigned → 403, oversized → 413, both typed AWS errors.
    let aws_post = |body: Vec<u8>| {
        stack
            .http
            .post(stack.url("/"))
            .header("x-amz-target", "IoTSecuredTunneling.ListTunnels")
            .header("content-type", "application/x-amz-json-1.1")
            .body(body)
            .send()
    };
    let resp = aws_post(b"{}".to_vec()).await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(
        resp.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let resp = aws_post(vec![b' '; 70 * 1024]).await.unwrap();
    assert_eq!(resp.status(), 413);

    let py = Py {
        python,
        env: vec![
            ("BURROW_AWS_ENDPOINT", format!("http://{}", stack.addr)),
            ("BURROW_AWS_KEY_ID", akid.clone()),
            ("BURROW_AWS_SECRET", secret.clone()),
        ],
    };
    let url = format!("ws://{}", stack.addr);
    let echo = echo_server().await;

    // Open with boto3, carry bytes with burrow's peers.
    let opened = py.run(&["open", dsn]).await;
    let id = s(&opened, "tunnelId");
    let (src, dst) = (s(&opened, "source"), s(&opened, "destination"));
    let (sc, dc) = pair(&url, &src, &dst, echo).await;
    let mut described = Value::Null;
    for _ in 0..50 {
        described = py.run(&["describe", &id]).await;
        if described["source"] == "CONNECTED" && described["destination"] == "CONNECTED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(described["status"], "OPEN", "{described}");
    assert_eq!(described["source"], "CONNECTED", "{described}");
    assert_eq!(described["destination"], "CONNECTED", "{described}");
    assert_eq!(described["thingName"], dsn);
    drop((sc, dc));

    // Rotation: the old tokens of each rotated mode are refused, the new ones work.
    let r = py.run(&["rotate", &id, "SOURCE"]).await;
    refused(&url, &src).await;
    let src = s(&r, "source");
    let r = py.run(&["rotate", &id, "DESTINATION"]).await;
    refused(&url, &dst).await;
    let dst2 = s(&r, "destination");
    let r = py.run(&["rotate", &id, "ALL"]).await;
    refused(&url, &src).await;
    refused(&url, &dst2).await;
    let (sc, dc) = pair(&url, &s(&r, "source"), &s(&r, "destination"), echo).await;
    drop((sc, dc));

    // Listing, paging, tags, close, delete, validation and authentication failures.
    let checks = py.run(&["checks", dsn, &id]).await;
    assert_eq!(checks["ok"], true, "{checks}");

    // Another project's key sees none of these tunnels.
    let (pid2, _) = stack
        .project_with_device(&token, "aws-dev-2")
        .await
        .unwrap();
    let key2: Value = stack
        .http
        .post(stack.url(&format!("/api/v1/projects/{pid2}/aws-keys")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let py2 = Py {
        python: py.python.clone(),
        env: vec![
            ("BURROW_AWS_ENDPOINT", format!("http://{}", stack.addr)),
            ("BURROW_AWS_KEY_ID", s(&key2, "access_key_id")),
            ("BURROW_AWS_SECRET", s(&key2, "secret_access_key")),
        ],
    };
    py2.run(&["expect", "ResourceNotFoundException", "describe", &id])
        .await;
    py2.run(&["expect", "ResourceNotFoundException", "close", &id])
        .await;
    assert_eq!(py.run(&["describe", &id]).await["status"], "OPEN");

    // A key acts for its creator's role: an admin's key stops when they become a member,
    // and a member may not mint one (docs/accounts.md).
    let (ops_id, ops) = stack.user("ops@test.local").await.unwrap();
    let admin = stack.admin_token().await.unwrap();
    let members = format!("/api/v1/projects/{pid}/members");
    let (status, _) = stack
        .call(
            reqwest::Method::POST,
            &members,
            &admin,
            Some(&serde_json::json!({"user_id": ops_id, "role": "admin"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201);
    let (status, key3) = stack
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{pid}/aws-keys"),
            &ops,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{key3}");
    let py3 = Py {
        python: py.python.clone(),
        env: vec![
            ("BURROW_AWS_ENDPOINT", format!("http://{}", stack.addr)),
            ("BURROW_AWS_KEY_ID", s(&key3, "access_key_id")),
            ("BURROW_AWS_SECRET", s(&key3, "secret_access_key")),
        ],
    };
    assert_eq!(py3.run(&["describe", &id]).await["status"], "OPEN");
    let (status, _) = stack
        .call(
            reqwest::Method::PATCH,
            &format!("{members}/{ops_id}"),
            &token,
            Some(&serde_json::json!({"role": "member"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    py3.run(&["expect", "UnrecognizedClientException", "describe", &id])
        .await;
    let (status, _) = stack
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/projects/{pid}/aws-keys"),
            &ops,
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "a member may not mint AWS keys");

    // A revoked key is no longer recognised.
    let resp = stack
        .http
        .delete(stack.url(&format!("/api/v1/aws-keys/{akid}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    py.run(&["expect", "UnrecognizedClientException", "describe", &id])
        .await;
}
