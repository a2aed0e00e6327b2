//! The API contract, checked against a live server on SQLite from outside: schemathesis (a
//! property-based API fuzzer) over the whole OpenAPI document, and a Python client generated
//! from the document driving the seed's walk-through. The Python side is tests/api_contract.py.

use std::path::PathBuf;
use std::time::Duration;

use burrow::testkit::{Backend, TestStack};
use serde_json::{json, Value};

/// (module, pip requirement): the versions whose command lines api_contract.py speaks.
const PACKAGES: [(&str, &str); 2] = [
    ("schemathesis", "schemathesis>=4.32,<5"),
    ("openapi_python_client", "openapi-python-client>=0.29,<0.30"),
];

/// The project's `.venv` python (or `BURROW_TEST_PYTHON`), with the tools installed.
fn python() -> PathBuf {
    burrow::testkit::python_with(&PACKAGES)
}

/// Runs `api_contract.py <command>`; answers (success, stdout, stderr).
async fn run_script(
    python: &PathBuf,
    command: &str,
    env: &[(&str, String)],
    limit: Duration,
) -> (bool, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api_contract.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script)
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true);
    let out = tokio::time::timeout(limit, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("api_contract.py {command} took longer than {limit:?}"))
        .expect("running python");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The server's `metrics_token` (`GET /metrics` is fuzzed with it).
const METRICS_TOKEN: &str = "contract-metrics-token-0123";

/// A server with what the document's examples name (the README's walk-through): the example
/// user, so that the examples of `POST /api/v1/auth/login` and `POST /edge/login` sign in, and
/// project 1 with device `ABC123` and its tunnel 1 (`device-abc123.localhost`).
async fn stack() -> (TestStack, String) {
    let stack = TestStack::start_configured(Backend::Sqlite, |c| {
        c.metrics_token = Some(burrow::secret::Secret::new(METRICS_TOKEN));
    })
    .await
    .expect("server");
    let admin = stack.admin_token().await.expect("admin token");
    let seed = [
        (
            "/api/v1/users",
            json!({"email": "admin@example.com", "password": "change-me-please", "is_admin": true}),
        ),
        // Users 3-7, each for the operations that act on one user (api_contract.py): 3
        // accepts invitations of the example email; 4 is disabled, 5's password reset, 6
        // deleted by the administrator; 7 changes its own password (the example's).
        (
            "/api/v1/users",
            json!({"email": "new.operator@example.com", "password": "a-long-password"}),
        ),
        (
            "/api/v1/users",
            json!({"email": "to-disable@example.com", "password": "a-long-password"}),
        ),
        (
            "/api/v1/users",
            json!({"email": "to-reset@example.com", "password": "a-long-password"}),
        ),
        (
            "/api/v1/users",
            json!({"email": "to-delete@example.com", "password": "a-long-password"}),
        ),
        (
            "/api/v1/users",
            json!({"email": "changes-password@example.com", "password": "change-me-please"}),
        ),
        ("/api/v1/projects", json!({"name": "robots"})),
        (
            "/api/v1/projects/1/devices",
            json!({"dsn": "ABC123", "name": "robot 1"}),
        ),
        (
            "/api/v1/reverse-tunnels/devices/ABC123/reverse-tunnels",
            json!({"name": "Web Dashboard", "local_port": 8080}),
        ),
        // The sharing operations' examples: tunnel 2 of SHARE1, its key 1 and link 1.
        (
            "/api/v1/projects/1/devices",
            json!({"dsn": "SHARE1", "name": "robot 2"}),
        ),
        (
            "/api/v1/reverse-tunnels/devices/SHARE1/reverse-tunnels",
            json!({"name": "Shared", "local_port": 8080}),
        ),
        (
            "/api/v1/reverse-tunnels/devices/SHARE1/reverse-tunnels/2/api-keys",
            json!({"name": "monitoring"}),
        ),
        (
            "/api/v1/reverse-tunnels/devices/SHARE1/reverse-tunnels/2/share-links",
            json!({"expires_in_minutes": 60}),
        ),
        // Projects 2-4 for the operations that take a project (or a membership) away, each
        // its own, so that whichever runs first leaves the others something to act on:
        // delete_project on 2, remove_project_member on 3, update_project_member on 4
        // (user 2, admin@example.com, a member of 3 and 4); see api_contract.py.
        ("/api/v1/projects", json!({"name": "to delete"})),
        ("/api/v1/projects", json!({"name": "to leave"})),
        ("/api/v1/projects", json!({"name": "to promote"})),
        ("/api/v1/projects/3/members", json!({"user_id": 2})),
        ("/api/v1/projects/4/members", json!({"user_id": 2})),
        // And a device (DEL1) and a tunnel (3, of DEL2) for delete_device and
        // delete_reverse_tunnel, so that their examples never remove ABC123 or its tunnel 1,
        // which the other operations' examples name.
        (
            "/api/v1/projects/1/devices",
            json!({"dsn": "DEL1", "name": "to delete"}),
        ),
        (
            "/api/v1/projects/1/devices",
            json!({"dsn": "DEL2", "name": "keeps a tunnel to delete"}),
        ),
        (
            "/api/v1/reverse-tunnels/devices/DEL2/reverse-tunnels",
            json!({"name": "to delete", "local_port": 8080}),
        ),
    ];
    for (path, body) in seed {
        let (status, answer) = stack
            .call(reqwest::Method::POST, path, &admin, Some(&body))
            .await
            .expect("seeding");
        assert_eq!(status, 201, "{path}: {answer}");
    }
    (stack, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation() {
    let python = python();
    let (stack, admin) = stack().await;
    // A device enrolled by the agent's own code: its certificate reaches the config endpoint
    // on the device listener. It belongs to another user's project, so that the fuzzer (the
    // administrator, no member there) cannot revoke or delete it along the way.
    let dsn = "contract-device";
    let (_, owner) = stack.user("device-owner@test.local").await.expect("owner");
    let (_, device) = stack
        .project_with_device(&owner, dsn)
        .await
        .expect("device");
    let token = device["enrollment_token"]
        .as_str()
        .expect("enrollment token");
    let dir = tempfile::tempdir().expect("tempdir");
    stack.enroll_agent(token, dir.path()).await.expect("enroll");
    // Sign-out-everywhere voids the caller's tokens: the fuzzer calls it as a user of its
    // own, so that the administrator's token stays good for every other operation.
    let (_, leaver) = stack.user("signs-out@test.local").await.expect("user");
    let invitee = stack
        .login("new.operator@example.com", "a-long-password")
        .await
        .expect("invitee");
    let changer = stack
        .login("changes-password@example.com", "change-me-please")
        .await
        .expect("password changer");
    let file = |name: &str| dir.path().join(name).display().to_string();
    let env = [
        ("BURROW_API_URL", stack.url("")),
        ("BURROW_TOKEN", admin.clone()),
        ("BURROW_LOGOUT_TOKEN", leaver),
        ("BURROW_INVITEE_TOKEN", invitee),
        ("BURROW_PASSWORD_TOKEN", changer),
        ("BURROW_DEVICE_DSN", dsn.to_string()),
        ("BURROW_DEVICE_CERT", file("device.pem")),
        ("BURROW_DEVICE_KEY", file("device.key")),
        ("BURROW_DEVICE_CA", file("ca.pem")),
        ("BURROW_METRICS_TOKEN", METRICS_TOKEN.to_string()),
    ];
    let (ok, stdout, stderr) = run_script(&python, "fuzz", &env, Duration::from_secs(600)).await;
    assert!(
        ok,
        "schemathesis found contract violations:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("every operation answered at least one request without an error"),
        "{stdout}"
    );
    println!("{stdout}");
    // The server survived it, and still answers as documented.
    let (status, me) = stack
        .call(reqwest::Method::GET, "/api/v1/auth/me", &admin, None)
        .await
        .expect("me");
    assert_eq!(status, 200, "{me}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_python_client_walks_through_the_seed() {
    let python = python();
    let (stack, admin) = stack().await;
    let env = [("BURROW_API_URL", stack.url("")), ("BURROW_TOKEN", admin)];
    let (ok, stdout, stderr) = run_script(&python, "client", &env, Duration::from_secs(300)).await;
    assert!(ok, "the generated client's walk-through failed:\n{stderr}");
    let result: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(result["public_url"], "device-client1.localhost", "{result}");
    assert_eq!(result["updated_enabled"], false, "{result}");
}
