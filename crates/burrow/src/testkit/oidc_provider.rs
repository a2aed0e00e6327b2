//! A real OpenID provider for tests: `ui-tests/oidc-provider.mjs` (panva's oidc-provider under
//! Node.js) on an ephemeral port, with burrow's client registered once burrow listens, and
//! accounts to sign in as (see the script).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::Config;
use crate::secret::Secret;

pub const CLIENT_ID: &str = "burrow-test";
pub const CLIENT_SECRET: &str = "burrow-test-client-secret-0123456789";
/// The accounts of the script, and their emails.
pub const VERIFIED: (&str, &str) = ("verified", "sso-user@example.com");
pub const NEWCOMER: (&str, &str) = ("newcomer", "newcomer@example.com");
pub const UNVERIFIED: (&str, &str) = ("unverified", "unverified@example.com");
pub const OUTSIDER: (&str, &str) = ("outsider", "someone@elsewhere.test");
/// The one domain the tests allow.
pub const ALLOWED_DOMAIN: &str = "example.com";

/// `ui-tests/` of this repository (its `node_modules` holds oidc-provider).
pub fn ui_tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../ui-tests")
}

pub struct TestProvider {
    pub issuer: String,
    http: reqwest::Client,
    stderr: Arc<Mutex<Vec<String>>>,
    _child: tokio::process::Child,
}

impl TestProvider {
    /// Starts the provider; answers once it listens.
    pub async fn start() -> anyhow::Result<TestProvider> {
        let dir = ui_tests_dir();
        anyhow::ensure!(
            dir.join("node_modules/oidc-provider").exists(),
            "run `npm ci` in {} (scripts/test does this)",
            dir.display()
        );
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("oidc-provider.mjs"))
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting node (apt-get install -y nodejs; scripts/test does this)")?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let keep = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(err).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    keep.lock().unwrap_or_else(|e| e.into_inner()).push(line);
                }
            });
        }
        let out = child.stdout.take().context("provider stdout")?;
        let mut lines = BufReader::new(out).lines();
        let issuer = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(issuer) = line.strip_prefix("ISSUER ") {
                    return Ok(issuer.to_string());
                }
            }
            anyhow::bail!("the provider exited before listening")
        })
        .await
        .context("the provider did not listen within 30 s")??;
        // Keep draining stdout so the script never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(TestProvider {
            issuer,
            http: reqwest::Client::new(),
            stderr,
            _child: child,
        })
    }

    /// What the provider wrote to stderr so far (for failure messages).
    pub fn logs(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    /// Registers burrow's client with `redirect_uri` and starts serving OpenID Connect.
    pub async fn register(&self, redirect_uri: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "redirect_uri": redirect_uri});
        self.control("/__test/setup", body).await
    }

    /// The next login at the provider signs in as `account` (see the constants).
    pub async fn sign_in_as(&self, account: &str) -> anyhow::Result<()> {
        self.control("/__test/account", serde_json::json!({"account": account}))
            .await
    }

    async fn control(&self, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let resp = self
            .http
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status() == 204, "{path}: {}", resp.status());
        Ok(())
    }

    /// Points `config` at this provider, allowing only [`ALLOWED_DOMAIN`].
    pub fn configure(&self, c: &mut Config) {
        c.oidc_issuer = Some(self.issuer.clone());
        c.oidc_client_id = Some(CLIENT_ID.into());
        c.oidc_client_secret = Some(Secret::new(CLIENT_SECRET));
        c.oidc_allowed_domains = vec![ALLOWED_DOMAIN.into()];
    }
}
