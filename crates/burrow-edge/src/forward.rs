//! Forwarding one request over the tunnel: plain HTTP/1.1 (`http`, `ws`) or TLS (`https`,
//! `wss`) to the device's service, bodies streamed both ways (hyper `Incoming` passed
//! through, nothing buffered), keep-alive connections reused per tunnel, WebSocket upgrades
//! switched to a byte pipe once the service has answered 101.

use std::net::IpAddr;

use axum::body::Body;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::counting::CountIn;
use crate::dialer::service_name;
use crate::edge::Edge;
use crate::headers::{self, EdgeUser, Upstream};
use crate::pages::EdgeError;
use crate::pool::{ParkOnEnd, Sender};
use crate::recheck::{Recheck, Revocable};
use crate::route::Route;
use crate::upstream::{classify, Target};

pub struct Client<'a> {
    pub authority: &'a str,
    pub peer: IpAddr,
    /// Re-checks access while a WebSocket or a streaming response stays open.
    pub recheck: Recheck,
    pub user: Option<&'a EdgeUser>,
    pub bytes_in: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Marks dispatch, connection and answer (analytics' edge/tunnel/device time).
    pub phases: std::sync::Arc<crate::traffic::Phases>,
    /// The tunnel's limits a WebSocket pipe stays under (shaping, the client's slot).
    pub limits: crate::traffic::PipeLimits,
}

fn uses_tls(protocol: &str) -> Option<bool> {
    match protocol.to_ascii_lowercase().as_str() {
        "http" | "ws" => Some(false),
        "https" | "wss" => Some(true),
        _ => None,
    }
}

pub async fn forward(
    edge: &Edge,
    route: &Route,
    mut req: Request<Body>,
    client: Client<'_>,
) -> Result<Response<Body>, EdgeError> {
    client.phases.dispatched();
    let tunnel = &route.tunnel;
    let routed = edge
        .dialer
        .route(tunnel.tunnel_id.as_deref().ok_or(EdgeError::NotActive)?)
        .await;
    let tunnel_id = routed.as_str();
    if !edge.dialer.is_connected(tunnel_id).await {
        return Err(EdgeError::Offline {
            last_seen: route.device.last_seen_at,
        });
    }
    let tls = uses_tls(&tunnel.protocol).ok_or(EdgeError::BadGateway(
        "the tunnel's protocol is not supported",
    ))?;
    if req.method() == Method::CONNECT {
        return Err(EdgeError::BadRequest("CONNECT is not supported"));
    }
    let service = service_name(&tunnel.protocol, tunnel.local_port);
    let target = Target {
        tunnel_id,
        service: &service,
        tls,
        last_seen: route.device.last_seen_at,
    };
    let websocket = req.version() == Version::HTTP_11 && headers::is_websocket(req.headers());
    let client_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));

    let (mut parts, body) = req.into_parts();
    headers::to_device(
        &mut parts.headers,
        &Upstream {
            authority: client.authority,
            peer: client.peer,
            https: edge.config.https,
            user: client.user,
            websocket,
            issued: &|token| edge.auth.issued(token) || crate::sharing::is_tunnel_key(token),
        },
    );
    // Origin form: the path and query only (an absolute-form or HTTP/2 URI names the edge).
    let uri = parts
        .uri
        .path_and_query()
        .cloned()
        .map_or_else(|| Uri::from_static("/"), Uri::from);
    let build = |body: Body, headers: HeaderMap| {
        let mut r = Request::new(body);
        *r.method_mut() = parts.method.clone();
        *r.version_mut() = Version::HTTP_11;
        *r.headers_mut() = headers;
        *r.uri_mut() = uri.clone();
        r
    };
    let retry_safe = hyper::body::Body::is_end_stream(&body)
        && matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let body = Body::new(CountIn::new(body, client.bytes_in.clone()));

    if let Some(client_upgrade) = client_upgrade {
        let up = build(body, parts.headers);
        let mut sender = edge.connector.open(edge.dialer.as_ref(), &target).await?;
        client.phases.connected();
        let resp = sender.send_request(up).await.map_err(|e| classify(&e))?;
        client.phases.answered();
        return Ok(switch_or_pass(
            resp,
            client_upgrade,
            client.recheck,
            client.limits,
        ));
    }

    // A parked keep-alive connection first; if it turns out dead before the request was
    // written, or (for a body-less request) before any response, retry once on a new one.
    let parked = edge.pool.take(tunnel_id);
    // Kept only for that retry: the request itself is gone once written.
    let spare = (parked.is_some() && retry_safe).then(|| parts.headers.clone());
    let mut up = Some(build(body, parts.headers));
    if let Some(mut sender) = parked {
        client.phases.connected();
        if let Some(req) = up.take() {
            match sender.try_send_request(req).await {
                Ok(resp) => {
                    client.phases.answered();
                    return finish(edge, tunnel_id, sender, resp, client.recheck);
                }
                Err(mut e) => {
                    up = e.take_message();
                    let failure = classify(e.error());
                    if up.is_none() && !(retry_safe && failure == EdgeError::Refused) {
                        return Err(failure);
                    }
                }
            }
        }
    }
    let up = match up {
        Some(up) => up,
        None => build(Body::empty(), spare.unwrap_or_default()),
    };
    let mut sender = edge.connector.open(edge.dialer.as_ref(), &target).await?;
    client.phases.connected();
    let resp = sender.send_request(up).await.map_err(|e| classify(&e))?;
    client.phases.answered();
    finish(edge, tunnel_id, sender, resp, client.recheck)
}

fn finish(
    edge: &Edge,
    tunnel_id: &str,
    sender: Sender,
    resp: Response<hyper::body::Incoming>,
    recheck: Recheck,
) -> Result<Response<Body>, EdgeError> {
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        return Err(EdgeError::BadGateway(
            "the device's service switched protocols without being asked",
        ));
    }
    let (mut parts, body) = resp.into_parts();
    headers::to_client(&mut parts.headers, false);
    let body = ParkOnEnd::new(body, edge.pool.clone(), tunnel_id, sender);
    Ok(Response::from_parts(
        parts,
        Body::new(Revocable::new(body, recheck)),
    ))
}

/// 101 from the service: answer 101 to the client and pipe bytes between the two upgraded
/// connections, under the tunnel's limits. Anything else is passed through as an ordinary
/// response.
fn switch_or_pass(
    mut resp: Response<hyper::body::Incoming>,
    client: OnUpgrade,
    recheck: Recheck,
    limits: crate::traffic::PipeLimits,
) -> Response<Body> {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        let (mut parts, body) = resp.into_parts();
        headers::to_client(&mut parts.headers, false);
        return Response::from_parts(parts, Body::new(Revocable::new(body, recheck)));
    }
    let upstream = hyper::upgrade::on(&mut resp);
    let revoked = recheck.watch();
    tokio::spawn(async move {
        let (c, u) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "edge: websocket upgrade failed");
                return;
            }
        };
        let (mut c, mut u) = (TokioIo::new(c), TokioIo::new(u));
        // The tunnel side carries the idle timeout, which ends a silent pipe.
        let pipe = crate::traffic::pipe(&mut c, &mut u, &limits);
        tokio::select! {
            ended = pipe => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "edge: websocket pipe ended");
                }
            }
            // Access revoked: dropping both ends closes the pipe.
            Ok(()) = revoked => {}
        }
    });
    let (mut parts, _) = resp.into_parts();
    headers::to_client(&mut parts.headers, true);
    Response::from_parts(parts, Body::empty())
}
