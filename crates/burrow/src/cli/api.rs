//! The API client of the CLI: one call, its answer as JSON, and every failure turned into a
//! [`Failure`] with its exit code and the API's own error message (`detail`, `field`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::{exit, ApiArgs, Failure};

pub struct Api {
    http: reqwest::Client,
    pub base: String,
    token: String,
    /// Print error bodies as JSON on stdout too (`--json`).
    json: bool,
}

impl Api {
    pub fn new(args: &ApiArgs) -> anyhow::Result<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Api {
            http,
            base: args.server(),
            token: args.token()?,
            json: args.json,
        })
    }

    /// `method path` with an optional JSON body; the answer's JSON (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let (status, value) = self.send(method, path, body).await?;
        if status.is_success() {
            return Ok(value);
        }
        if self.json {
            super::output::json(&value);
        }
        Err(failure(status, &value).into())
    }

    /// Like [`Api::call`], but the status and body are answered whatever the status (the
    /// `burrow tunnel ...` commands print error bodies too).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| {
            Failure::new(
                exit::UNREACHABLE,
                format!(
                    "cannot reach the server at {}: {:#} (check --server / BURROW_SERVER)",
                    self.base,
                    anyhow::Error::new(e)
                ),
            )
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }
}

/// The failure for an error answer: its exit code, and the API's `detail` (and `field`).
pub fn failure(status: StatusCode, body: &Value) -> Failure {
    let detail = body["detail"]
        .as_str()
        .map(str::to_string)
        .or_else(|| body.as_str().map(str::to_string))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_string());
    let detail = match body["field"].as_str() {
        Some(f) if !detail.contains(f) => format!("{f}: {detail}"),
        _ => detail,
    };
    let code = match status {
        StatusCode::NOT_FOUND => exit::NOT_FOUND,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::AUTH,
        _ => exit::ERROR,
    };
    let hint = if status == StatusCode::UNAUTHORIZED {
        " (the token is missing, expired or revoked: run `burrow login` again)"
    } else {
        ""
    };
    Failure::new(code, format!("{detail} (HTTP {}){hint}", status.as_u16()))
}
