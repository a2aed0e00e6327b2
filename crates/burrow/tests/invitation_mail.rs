//! Invitations mailed through a real SMTP server (aiosmtpd, from PyPI, on a free port): the
//! invitee gets the link, and it works; without a reachable server the invitation still
//! answers its link, marked not mailed.

use std::process::Stdio;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

struct Sink {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    port: u16,
}

impl Sink {
    async fn start() -> Sink {
        let python = burrow::testkit::python_with(&[("aiosmtpd", "aiosmtpd>=1.4,<2")]);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_sink.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("smtp sink starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = next_line(&mut lines).await;
        let port = first["port"].as_u64().expect("port") as u16;
        Sink {
            _child: child,
            lines,
            port,
        }
    }

    async fn message(&mut self) -> Value {
        next_line(&mut self.lines).await
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the SMTP sink answers in time")
        .expect("read")
        .expect("a line");
    serde_json::from_str(&line).expect("json line")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_are_mailed_and_their_link_works() {
    let mut sink = Sink::start().await;
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.smtp_url = Some(burrow::secret::Secret::new(&url));
        c.smtp_from = Some("Fleet <fleet@example.com>".into());
    })
    .await
    .expect("stack");
    let (_, owner) = s.user("owner@mail.test").await.expect("owner");
    let (pid, _) = s
        .project_with_device(&owner, "MAIL1")
        .await
        .expect("project");
    let (status, inv) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{pid}/invitations"),
            &owner,
            Some(&json!({"email": "invitee@mail.test", "role": "member"})),
        )
        .await
        .expect("invite");
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["emailed"], true);
    let mail = sink.message().await;
    assert_eq!(mail["from"], "fleet@example.com");
    assert_eq!(mail["to"], json!(["invitee@mail.test"]));
    let data = mail["body"].as_str().expect("body");
    assert!(
        mail["data"]
            .as_str()
            .is_some_and(|d| d.contains("Subject: Join")),
        "{mail}"
    );
    let accept_url = inv["accept_url"].as_str().expect("accept_url");
    assert!(
        data.contains(accept_url),
        "the mail carries the link:\n{data}"
    );
    assert!(
        data.contains("owner@mail.test") && data.contains("member"),
        "{data}"
    );

    // The mailed link's token signs the invitee up into the project.
    let token = accept_url.rsplit_once("#token=").expect("token").1;
    let resp = s
        .http
        .post(s.url("/api/v1/invitations/signup"))
        .json(&json!({"token": token, "password": "a-long-password"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(resp.status(), 201);
    let session: Value = resp.json().await.expect("json");
    assert_eq!(session["project_id"], pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smtp_server_leaves_the_link_to_pass_on() {
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("smtp://127.0.0.1:{port}");
    let s = TestStack::start_configured(Backend::Sqlite, |c| {
        c.smtp_url = Some(burrow::secret::Secret::new(&url));
    })
    .await
    .expect("stack");
    let (_, owner) = s.user("owner@mail.test").await.expect("owner");
    let (pid, _) = s
        .project_with_device(&owner, "MAIL2")
        .await
        .expect("project");
    let (status, inv) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{pid}/invitations"),
            &owner,
            Some(&json!({"email": "invitee@mail.test", "role": "viewer"})),
        )
        .await
        .expect("invite");
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["emailed"], false);
    assert!(inv["accept_url"]
        .as_str()
        .is_some_and(|u| u.contains("#token=binv_")));
}
