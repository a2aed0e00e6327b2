//! `burrow tunnel domains ...` against a real server: add prints the TXT and CNAME records
//! the API answers, list / show / check / remove (by id or hostname, text and `--json`), the
//! API's refusals with their messages and exit codes (422 for a wildcard, 409 for a taken
//! name, 404 for an unknown one) and a viewer of the project refused (403) where an admin or
//! owner is needed, while still allowed to look. Status is whatever the API says: no domain
//! can be verified here (no DNS records exist), so none is `active`.

use std::path::Path;
use std::process::{Command, Stdio};

use burrow::testkit::{Backend, TestStack};
use reqwest::Method;
use serde_json::{json, Value};

const DSN: &str = "DOMAINS1";
const HOST: &str = "robot7.customer.com";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }

    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn fails(self, code: i32, message: &str) -> Out {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        assert!(self.stderr.contains(message), "{message}: {}", self.stderr);
        self
    }
}

/// `burrow ARGS` as the user of `token` against `server`, with nothing of the test
/// process's environment that burrow reads (off the runtime: the server runs on it).
async fn burrow(home: &Path, server: &str, token: &str, args: &[&str]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_burrow"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BURROW_") {
            c.env_remove(k);
        }
    }
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("BURROW_SERVER", server)
        .env("BURROW_TOKEN", token)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tokio::task::spawn_blocking(move || {
        let out = c.output().expect("run burrow");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

/// The tunnel's domains as the API lists them.
async fn api_domains(s: &TestStack, token: &str, path: &str) -> Vec<Value> {
    let (status, list) = s
        .call(Method::GET, &format!("{path}/domains"), token, None)
        .await
        .expect("list domains");
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().expect("items").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domains_commands_against_a_real_server() {
    let s = TestStack::start(Backend::Sqlite).await.expect("stack");
    let server = s.url("");
    let admin = s.admin_token().await.expect("admin");
    let (pid, _) = s.project_with_device(&admin, DSN).await.expect("device");
    let tunnels = format!("/api/v1/reverse-tunnels/devices/{DSN}/reverse-tunnels");
    let (status, t) = s
        .call(
            Method::POST,
            &tunnels,
            &admin,
            Some(&json!({"name": "web", "local_port": 8080})),
        )
        .await
        .expect("create tunnel");
    assert_eq!(status, 201, "{t}");
    let tid = t["id"].as_i64().expect("tunnel id");
    let tunnel_host = t["public_url"].as_str().expect("public_url").to_string();
    let path = format!("{tunnels}/{tid}");
    let (viewer_id, viewer) = s.user("viewer@domains.test").await.expect("viewer");
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{pid}/members"),
            &admin,
            Some(&json!({"user_id": viewer_id, "role": "viewer"})),
        )
        .await
        .expect("add viewer");
    assert_eq!(status, 201, "{body}");

    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path();
    let tid_s = tid.to_string();
    let as_admin = |args: Vec<&str>| {
        let mut full = vec!["tunnel", "domains"];
        full.extend(args);
        let full: Vec<String> = full.iter().map(|a| a.to_string()).collect();
        let (server, admin) = (server.clone(), admin.clone());
        async move {
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            burrow(home, &server, &admin, &args).await
        }
    };

    // add: the records printed are exactly the API's.
    let added = as_admin(vec!["add", DSN, &tid_s, HOST]).await.ok().stdout;
    let listed = api_domains(&s, &admin, &path).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let d = &listed[0];
    let id = d["id"].as_i64().expect("domain id");
    let txt_name = d["verification"]["name"].as_str().expect("TXT name");
    let txt_value = d["verification"]["value"].as_str().expect("TXT value");
    assert_eq!(txt_name, format!("_burrow-challenge.{HOST}"));
    assert_eq!(d["target"]["value"], tunnel_host.as_str());
    assert!(
        added.starts_with(&format!("added {HOST} (id {id}): ")),
        "{added}"
    );
    assert!(
        added.contains(&format!(
            "  TXT    name:  {txt_name}\n         value: {txt_value}\n"
        )),
        "{added}"
    );
    assert!(
        added.contains(&format!(
            "  CNAME  name:  {HOST}\n         value: {tunnel_host}\n"
        )),
        "{added}"
    );
    assert!(
        added.contains(&format!("  {txt_name}. IN TXT \"{txt_value}\"\n")),
        "{added}"
    );
    assert!(
        added.contains(&format!("  {HOST}. IN CNAME {tunnel_host}.\n")),
        "{added}"
    );
    assert!(
        added.contains(&format!("burrow tunnel domains check {DSN} {tid} {id}")),
        "{added}"
    );
    assert!(!added.contains("converted"), "{added}");

    // A Unicode name is kept as punycode, and the CLI says so; --json is the API's answer.
    let unicode = as_admin(vec!["add", DSN, &tid_s, "Bücher.example.com", "--json"])
        .await
        .ok()
        .json();
    assert_eq!(unicode["hostname"], "xn--bcher-kva.example.com");
    assert_eq!(unicode["converted_from_unicode"], true);
    assert_eq!(unicode["status"], "pending_verification");
    let text = as_admin(vec!["add", DSN, &tid_s, "Ärger.example.com"])
        .await
        .ok()
        .stdout;
    assert!(
        text.contains(
            "converted to its ASCII form: publish the records under xn--rger-koa.example.com"
        ),
        "{text}"
    );

    // list: a table with hostname, status, reason and certificate expiry.
    let table = as_admin(vec!["list", DSN, &tid_s]).await.ok().stdout;
    let mut lines = table.lines();
    let head = lines.next().unwrap_or_default();
    for col in [
        "ID",
        "HOSTNAME",
        "STATUS",
        "REASON",
        "CERT EXPIRES",
        "CHECKED",
    ] {
        assert!(head.contains(col), "{col} in {table}");
    }
    let now = api_domains(&s, &admin, &path).await;
    assert_eq!(now.len(), 3);
    let row = lines
        .find(|l| l.contains(HOST))
        .unwrap_or_else(|| panic!("{HOST} listed: {table}"));
    let api_status = now.iter().find(|d| d["hostname"] == HOST).expect("in API")["status"]
        .as_str()
        .expect("status")
        .to_string();
    assert!(row.contains(&api_status), "{row} has status {api_status}");
    assert!(row.starts_with(&format!("{id} ")), "{row}");
    let json_list = as_admin(vec!["list", DSN, &tid_s, "--json"])
        .await
        .ok()
        .json();
    assert_eq!(json_list["total"], 3, "{json_list}");

    // show: by hostname and by id.
    let shown = as_admin(vec!["show", DSN, &tid_s, HOST]).await.ok().stdout;
    let url = d["url"].as_str().expect("url");
    assert!(url.contains(HOST), "{url}");
    assert!(shown.contains(&format!("URL:          {url}\n")), "{shown}");
    assert!(shown.contains("STATUS:       "), "{shown}");
    assert!(shown.contains(&format!("value: {txt_value}")), "{shown}");
    let by_id = as_admin(vec!["show", DSN, &tid_s, &id.to_string(), "--json"])
        .await
        .ok()
        .json();
    assert_eq!(by_id["hostname"], HOST);
    assert_eq!(by_id["verification"]["value"], txt_value);
    as_admin(vec!["show", DSN, &tid_s, "nothing.example.org"])
        .await
        .fails(3, "the tunnel has no domain nothing.example.org");
    as_admin(vec!["show", DSN, &tid_s, "999999"])
        .await
        .fails(3, "HTTP 404");

    // check: due at once (or checked already by the server's worker).
    // The API shows whole seconds.
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    let checked = as_admin(vec!["check", DSN, &tid_s, HOST]).await.ok().stdout;
    assert!(
        checked.starts_with(&format!("checking {HOST} now (status: ")),
        "{checked}"
    );
    let after = api_domains(&s, &admin, &path).await;
    let d = after.iter().find(|d| d["hostname"] == HOST).expect("kept");
    let next: chrono::DateTime<chrono::Utc> = d["next_check_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("next_check_at");
    let checked_at: Option<chrono::DateTime<chrono::Utc>> =
        d["checked_at"].as_str().and_then(|t| t.parse().ok());
    assert!(
        next <= chrono::Utc::now() || checked_at.is_some_and(|c| c >= before),
        "check now made the domain due: {d}"
    );

    // Refusals, with the API's own words.
    as_admin(vec!["add", DSN, &tid_s, "*.x.com"])
        .await
        .fails(1, "wildcards are not supported")
        .fails(1, "HTTP 422");
    as_admin(vec!["add", DSN, &tid_s, HOST])
        .await
        .fails(1, &format!("{HOST} is already in use"))
        .fails(1, "HTTP 409");
    let refused = as_admin(vec!["add", DSN, &tid_s, "*.x.com", "--json"]).await;
    assert_eq!(refused.code, 1);
    assert_eq!(refused.json()["field"], "hostname", "{}", refused.stdout);

    // A viewer may look, not add, check or remove.
    let as_viewer = |args: Vec<String>| {
        let (server, viewer) = (server.clone(), viewer.clone());
        async move {
            let mut full = vec!["tunnel".to_string(), "domains".to_string()];
            full.extend(args);
            let args: Vec<&str> = full.iter().map(String::as_str).collect();
            burrow(home, &server, &viewer, &args).await
        }
    };
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let seen = as_viewer(v(&["list", DSN, &tid_s])).await.ok().stdout;
    assert!(seen.contains(HOST), "{seen}");
    as_viewer(v(&["add", DSN, &tid_s, "viewer.example.net"]))
        .await
        .fails(4, "HTTP 403");
    as_viewer(v(&["check", DSN, &tid_s, &id.to_string()]))
        .await
        .fails(4, "HTTP 403");
    as_viewer(v(&["remove", DSN, &tid_s, &id.to_string()]))
        .await
        .fails(4, "HTTP 403");
    assert_eq!(api_domains(&s, &admin, &path).await.len(), 3);

    // remove: by hostname, then by id with --json (the API's empty answer).
    let removed = as_admin(vec!["remove", DSN, &tid_s, HOST])
        .await
        .ok()
        .stdout;
    assert_eq!(removed.trim(), format!("removed domain {HOST}"));
    let uid = unicode["id"].as_i64().expect("id").to_string();
    as_admin(vec!["delete", DSN, &tid_s, &uid, "--json"])
        .await
        .ok();
    let left = api_domains(&s, &admin, &path).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["hostname"], "xn--rger-koa.example.com");
    as_admin(vec!["remove", DSN, &tid_s, HOST])
        .await
        .fails(3, "the tunnel has no domain");

    s.running.shutdown().await.expect("shutdown");
}
