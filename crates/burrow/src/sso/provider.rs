//! The OpenID provider as burrow sees it: its metadata and signing keys (discovery), fetched
//! lazily and cached, so the server starts while the provider is down (the SSO routes answer
//! 503 until it is back) and picks up rotated keys.

use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};
use tokio::sync::Mutex;

use super::settings::OidcSettings;

/// A client made from discovery: authorization endpoint set, token endpoint maybe.
pub type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Discovery is redone after this long (key rotation).
const REFRESH_AFTER: Duration = Duration::from_secs(60 * 60);
/// After a failed discovery, requests wait this long before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Every call to the provider (discovery, keys, token) gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Provider {
    pub settings: OidcSettings,
    /// Never follows redirects (SSRF), as the crate advises.
    pub http: reqwest::Client,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    client: Option<(std::sync::Arc<Client>, Instant)>,
    failed_at: Option<Instant>,
}

impl Provider {
    pub fn new(settings: OidcSettings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()?;
        Ok(Provider {
            settings,
            http,
            cache: Mutex::default(),
        })
    }

    /// The client, discovering the provider first when needed; `None` while it cannot be
    /// reached (a stale client is kept when a refresh fails).
    pub async fn client(&self) -> Option<std::sync::Arc<Client>> {
        let mut cache = self.cache.lock().await;
        if let Some((client, at)) = &cache.client {
            if at.elapsed() < REFRESH_AFTER {
                return Some(client.clone());
            }
        }
        let backing_off = cache.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if !backing_off {
            match self.discover().await {
                Ok(client) => {
                    let client = std::sync::Arc::new(client);
                    cache.client = Some((client.clone(), Instant::now()));
                    cache.failed_at = None;
                    return Some(client);
                }
                Err(e) => {
                    tracing::warn!(issuer = %self.settings.issuer, error = %format!("{e:#}"),
                        "OpenID Connect discovery failed");
                    cache.failed_at = Some(Instant::now());
                }
            }
        }
        cache.client.as_ref().map(|(c, _)| c.clone())
    }

    async fn discover(&self) -> anyhow::Result<Client> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())?;
        // Checks that the document names this very issuer, and fetches the signing keys.
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http).await?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(RedirectUrl::new(self.settings.redirect_uri.clone())?))
    }
}
