//! A browser's cookie handling, as much as the SSO flows of tests/oidc.rs need.

use std::collections::{BTreeMap, HashMap};

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde_json::Value;

/// Where the provider sends browsers back.
pub const CALLBACK: &str = "/api/v1/auth/oidc/callback";

/// A browser's cookie handling, as much as these flows need: host-only cookies per
/// authority, redirects followed by hand.
pub struct Walker {
    http: reqwest::Client,
    jar: HashMap<String, BTreeMap<String, String>>,
}

/// The response to one request: status, `Location` resolved against the URL, `Set-Cookie`s.
pub struct Step {
    pub status: StatusCode,
    pub location: Option<Url>,
    pub set_cookies: Vec<String>,
    pub body: String,
}

impl Walker {
    pub fn new() -> Walker {
        Walker {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar: HashMap::new(),
        }
    }

    /// The `Cookie` header this browser sends to `url`'s authority.
    fn cookies_for(&self, url: &Url) -> String {
        self.jar
            .get(url.authority())
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// POSTs JSON to `url` with this browser's cookies: the status and the JSON answer.
    pub async fn post_json(&self, url: Url, body: &Value) -> (StatusCode, Value) {
        let cookies = self.cookies_for(&url);
        let resp = self
            .http
            .post(url)
            .header(COOKIE, cookies)
            .json(body)
            .send()
            .await
            .expect("post");
        (resp.status(), resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&mut self, url: &Url) -> Step {
        let authority = url.authority().to_string();
        let cookies = self.cookies_for(url);
        let mut req = self
            .http
            .get(url.clone())
            .header("accept", "application/json");
        if !cookies.is_empty() {
            req = req.header(COOKIE, cookies);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let set_cookies: Vec<String> = resp
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let jar = self.jar.entry(authority).or_default();
        for c in &set_cookies {
            let pair = c.split(';').next().unwrap_or_default();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let expired = value.is_empty() || c.to_ascii_lowercase().contains("max-age=0");
            if expired {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
        let body = resp.text().await.unwrap_or_default();
        Step {
            status,
            location,
            set_cookies,
            body,
        }
    }

    /// Follows redirects from `url` until one points at burrow's callback: answers that URL
    /// (what the provider sends the browser back with).
    pub async fn walk_to_callback(&mut self, url: Url) -> Url {
        let mut at = url;
        for _ in 0..12 {
            let step = self.get(&at).await;
            let next = step.location.unwrap_or_else(|| {
                panic!(
                    "{at} answered {} without a redirect: {}",
                    step.status, step.body
                )
            });
            if next.path() == CALLBACK {
                return next;
            }
            at = next;
        }
        panic!("no callback after 12 redirects");
    }
}
