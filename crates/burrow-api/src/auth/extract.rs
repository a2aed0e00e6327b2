use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use burrow_store::User;

use crate::error::ApiError;
use crate::AppState;

/// The authenticated user of a request: `Authorization: Bearer` with a session JWT or a
/// personal access token (`bpat_...`; a `read` one is refused for anything but reading).
#[derive(Debug, Clone)]
pub struct AuthUser(pub User);

/// The client's address: the one a trusted proxy forwarded ([`ForwardedClient`]), else the
/// TCP peer the server put in the request (`ConnectInfo`).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

/// The client address a trusted proxy gave (`X-Forwarded-For`), set by the server.
#[derive(Debug, Clone, Copy)]
pub struct ForwardedClient(pub std::net::IpAddr);

/// The client behind a trusted proxy: when `peer` is one of `trusted`, the first untrusted hop
/// of `X-Forwarded-For` read from the right (the proxies append, so entries left of the first
/// untrusted one may be forged by the client); `None` otherwise (the peer is the client), or
/// when the header is missing or unreadable.
pub fn forwarded_client(
    headers: &axum::http::HeaderMap,
    peer: std::net::IpAddr,
    trusted: &[std::net::IpAddr],
) -> Option<std::net::IpAddr> {
    let is_trusted = |ip: std::net::IpAddr| {
        let ip = ip.to_canonical();
        trusted.iter().any(|t| t.to_canonical() == ip)
    };
    if !is_trusted(peer) {
        return None;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for").iter() {
        for entry in value.to_str().ok()?.split(',') {
            hops.push(entry.trim());
        }
    }
    let mut last = None;
    for entry in hops.into_iter().rev() {
        let ip: std::net::IpAddr = entry.parse().ok()?;
        if !is_trusted(ip) {
            return Some(ip.to_canonical());
        }
        last = Some(ip.to_canonical());
    }
    last
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(f) = parts.extensions.get::<ForwardedClient>() {
            return Ok(ClientIp(Some(f.0)));
        }
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(ClientIp(peer))
    }
}

/// An authenticated user who is an administrator (403 otherwise).
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?;
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let user = state.authenticate(token, &parts.method).await?;
        Ok(AuthUser(user))
    }
}

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let AuthUser(user) = AuthUser::from_request_parts(parts, state).await?;
        if !user.is_admin {
            return Err(ApiError::Forbidden("administrator only"));
        }
        Ok(AdminUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_client_only_from_trusted_proxies() {
        let mut h = axum::http::HeaderMap::new();
        h.append(
            "x-forwarded-for",
            "1.1.1.1, 2.2.2.2".parse().expect("value"),
        );
        h.append(
            "x-forwarded-for",
            "3.3.3.3, 4.4.4.4".parse().expect("value"),
        );
        let proxy: std::net::IpAddr = "10.0.0.1".parse().expect("ip");
        let other: std::net::IpAddr = "10.0.0.2".parse().expect("ip");
        assert_eq!(
            forwarded_client(&h, proxy, &[proxy]),
            Some("4.4.4.4".parse().expect("ip"))
        );
        assert_eq!(forwarded_client(&h, other, &[proxy]), None);
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert!(forwarded_client(&h, mapped, &[proxy]).is_some());
        let mut bad = axum::http::HeaderMap::new();
        bad.insert("x-forwarded-for", "not-an-ip".parse().expect("value"));
        assert_eq!(forwarded_client(&bad, proxy, &[proxy]), None);
        // A chain of trusted proxies: the first untrusted hop from the right.
        let inner: std::net::IpAddr = "10.0.0.3".parse().expect("ip");
        let mut chain = axum::http::HeaderMap::new();
        chain.insert(
            "x-forwarded-for",
            "6.6.6.6, 5.5.5.5, 10.0.0.3".parse().expect("value"),
        );
        assert_eq!(
            forwarded_client(&chain, proxy, &[proxy, inner]),
            Some("5.5.5.5".parse().expect("ip"))
        );
    }
}
