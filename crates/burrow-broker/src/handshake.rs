//! `GET /tunnel?local-proxy-mode=...`: checks the upgrade request (spec sections 1, 7.1 and
//! 8) and hands the WebSocket to the relay.
//!
//! Every refusal is a 4xx with a short text body, which clients take as "do not retry"; store
//! failures are 503, which they retry. The token is spent only after every other check
//! passed, so a malformed request never burns a token.

use std::sync::Arc;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use burrow_proto::{Role, Subprotocol, MAX_WS_FRAME};
use burrow_store::{BrokerTunnel, TokenMode, TunnelStatus};
use http::{HeaderMap, HeaderValue, StatusCode, Uri};
use subtle::ConstantTimeEq;

use crate::hub::PeerKind;
use crate::token::{client_token_is_valid, hash, AccessToken};
use crate::Broker;

/// AWS refuses upgrade requests over 4 KiB; so do we (431).
const MAX_HANDSHAKE: usize = 4096;
const TOKEN_HEADER: &str = "access-token";
const TOKEN_COOKIE: &str = "awsiot-tunnel-token";
const CLIENT_TOKEN_HEADER: &str = "client-token";

pub(crate) fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/tunnel", get(upgrade))
        .route("/tunnel/{*rest}", any(bad_path))
        .with_state(broker)
}

async fn bad_path() -> Response {
    refuse(StatusCode::BAD_REQUEST, "unknown path").into_response()
}

/// A refused upgrade: a status and a short text body.
struct Refusal(StatusCode, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn refuse(status: StatusCode, body: &'static str) -> Refusal {
    Refusal(status, body)
}

/// A checked upgrade request, before the token is looked up.
struct Request {
    role: Role,
    token: AccessToken,
    client_token: Option<String>,
    subprotocol: Subprotocol,
}

fn handshake_size(uri: &Uri, headers: &HeaderMap) -> usize {
    let line = uri.to_string().len() + 16;
    line + headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
}

fn mode(uri: &Uri) -> Option<Role> {
    let mut role = None;
    for pair in uri.query()?.split('&') {
        if let Some(("local-proxy-mode", value)) = pair.split_once('=') {
            if role.is_some() {
                return None;
            }
            role = Some(Role::from_mode(value)?);
        }
    }
    role
}

/// Every access token the request carries: `access-token` headers and `awsiot-tunnel-token`
/// cookies. Exactly one is allowed.
fn tokens(headers: &HeaderMap) -> Vec<&[u8]> {
    let mut found: Vec<&[u8]> = headers
        .get_all(TOKEN_HEADER)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    for cookie in headers.get_all(http::header::COOKIE) {
        for pair in cookie.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if let Some(value) = pair.strip_prefix(TOKEN_COOKIE.as_bytes()) {
                if let Some(value) = value.strip_prefix(b"=") {
                    found.push(value);
                }
            }
        }
    }
    found
}

fn check(uri: &Uri, headers: &HeaderMap) -> Result<Request, Refusal> {
    if handshake_size(uri, headers) > MAX_HANDSHAKE {
        return Err(refuse(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "upgrade request larger than 4 KiB",
        ));
    }
    let role = mode(uri).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "local-proxy-mode must be source or destination",
        )
    })?;
    let token = match tokens(headers).as_slice() {
        [] => return Err(refuse(StatusCode::UNAUTHORIZED, "missing access token")),
        [one] => *one,
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "more than one access token",
            ))
        }
    };
    let token = std::str::from_utf8(token)
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 4096 && !t.chars().any(char::is_control))
        .ok_or_else(|| refuse(StatusCode::UNAUTHORIZED, "invalid access token"))?;
    let client_token = match headers
        .get_all(CLIENT_TOKEN_HEADER)
        .iter()
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] => None,
        [one] => match one.to_str() {
            Ok(v) if client_token_is_valid(v) => Some(v.to_owned()),
            _ => return Err(refuse(StatusCode::BAD_REQUEST, "invalid client token")),
        },
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "more than one client token",
            ))
        }
    };
    let offered = headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let subprotocol = Subprotocol::negotiate(offered)
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "no supported subprotocol"))?;
    Ok(Request {
        role,
        token: AccessToken::new(token),
        client_token,
        subprotocol,
    })
}

/// Bytes the WebSocket layer reads per call. Its default (128 KiB) is zero-filled on the first
/// read, so every idle peer held 128 KiB; a larger message still gets room for all of it.
/// 4 KiB: an idle tunnel costs the server about 20.5 KiB (24.5 with 8 KiB), with bulk
/// throughput unchanged (measured in docs/benchmarks.md).
const WS_READ_BUFFER: usize = 4 * 1024;

async fn upgrade(
    State(broker): State<Arc<Broker>>,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let req = match check(&uri, &headers) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let Ok(ws) = ws else {
        return refuse(StatusCode::BAD_REQUEST, "not a WebSocket upgrade").into_response();
    };
    let tunnel = match broker.authorize(&req).await {
        Ok(tunnel) => tunnel,
        Err(refusal) => return refusal.into_response(),
    };
    let (role, subprotocol) = (req.role, req.subprotocol);
    // A source for a tunnel whose device is on another node of the cluster goes there.
    if role == Role::Source && !broker.is_destination_connected(&tunnel.tunnel_id) {
        if let Some(forwarder) = broker.forwarder().cloned() {
            if forwarder.held_elsewhere(&tunnel.tunnel_id).await {
                let mut ws = ws
                    .max_message_size(MAX_WS_FRAME)
                    .max_frame_size(MAX_WS_FRAME)
                    .read_buffer_size(WS_READ_BUFFER);
                ws.set_selected_protocol(HeaderValue::from_static(subprotocol.as_str()));
                tracing::info!(tunnel = %tunnel.tunnel_id, "source forwarded to the holding node");
                let id = tunnel.tunnel_id.clone();
                return ws.on_upgrade(move |socket| async move {
                    forwarder.forward(id, subprotocol, socket).await;
                });
            }
        }
    }
    let mut ws = ws
        .max_message_size(MAX_WS_FRAME)
        .max_frame_size(MAX_WS_FRAME)
        .read_buffer_size(WS_READ_BUFFER);
    ws.set_selected_protocol(HeaderValue::from_static(subprotocol.as_str()));
    tracing::info!(tunnel = %tunnel.tunnel_id, %role, %subprotocol, "peer connecting");
    let mut response = ws.on_upgrade(move |socket| async move {
        let attached = broker
            .attach(&tunnel, role, subprotocol, PeerKind::WebSocket)
            .await;
        // The row was for the handshake; the peer task does not hold it for the tunnel's life.
        drop(tunnel);
        let Some((hub, attached)) = attached else {
            return;
        };
        let peer = attached.peer.clone();
        crate::ws::run(hub.clone(), peer.clone(), attached.rx, socket).await;
        broker.detach(&hub, &peer).await;
        tracing::info!(tunnel = %hub.id, %role, "peer disconnected");
    });
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("channel-id", id);
    }
    response
}

impl Broker {
    /// Looks the token up, checks mode, status, lifetime and single use (with the client
    /// token exception), and spends it. Serialised with rotation and close per tunnel.
    async fn authorize(&self, req: &Request) -> Result<BrokerTunnel, Refusal> {
        let forbidden = |why| refuse(StatusCode::FORBIDDEN, why);
        let unavailable = |err: burrow_store::StoreError| {
            tracing::warn!(%err, "store unavailable during handshake");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        };
        let token_hash = hash(req.token.expose());
        let found = self
            .store
            .broker_tunnel_by_token_hash(&token_hash)
            .await
            .map_err(unavailable)?;
        let Some((tunnel, _)) = found else {
            return Err(forbidden("invalid access token"));
        };
        let _guard = self.lock_tunnel(&tunnel.tunnel_id).await;
        // Re-read under the lock: a rotation may have just replaced the token.
        let found = self
            .store
            .broker_tunnel_by_token_hash(&token_hash)
            .await
            .map_err(unavailable)?;
        let Some((tunnel, mode)) = found else {
            return Err(forbidden("invalid access token"));
        };
        let slot = match mode {
            TokenMode::Source => &tunnel.source,
            TokenMode::Destination => &tunnel.destination,
        };
        let expected = slot
            .nonce
            .as_deref()
            .map(|nonce| self.key.derive(&tunnel.tunnel_id, mode, nonce));
        if expected.as_ref() != Some(&req.token) {
            // The hash matched but the server key does not derive it: a token from before a
            // key change.
            return Err(forbidden("invalid access token"));
        }
        if mode.as_str() != req.role.as_str() {
            return Err(forbidden(
                "access token mode does not match local-proxy-mode",
            ));
        }
        if tunnel.status != TunnelStatus::Open || tunnel.expires_at <= self.clock.now() {
            return Err(refuse(StatusCode::GONE, "tunnel is closed"));
        }
        let client_hash = req.client_token.as_deref().map(hash);
        if slot.used_at.is_some() {
            let bound = slot.client_token_hash.as_deref().map(str::as_bytes);
            return match (bound, client_hash.as_deref()) {
                (Some(bound), Some(given)) if bool::from(bound.ct_eq(given.as_bytes())) => {
                    Ok(tunnel)
                }
                (Some(_), Some(_)) => Err(forbidden(
                    "invalid client token: it does not match the one previously set",
                )),
                _ => Err(forbidden(
                    "invalid access token: it was previously used and cannot be used again",
                )),
            };
        }
        let spent = self
            .store
            .spend_token(
                &tunnel.tunnel_id,
                mode,
                &token_hash,
                client_hash.as_deref(),
                self.clock.now(),
            )
            .await
            .map_err(unavailable)?;
        if !spent {
            return Err(forbidden(
                "invalid access token: it was previously used and cannot be used again",
            ));
        }
        Ok(tunnel)
    }
}
