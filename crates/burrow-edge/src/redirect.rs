//! The plain-HTTP listener of an HTTPS deployment: every request for one of our hosts is sent
//! to the same URL over HTTPS (308, so a POST stays a POST). Hosts that are not ours get 400,
//! so the listener can't be used to bounce browsers to arbitrary sites.

use axum::body::Body;
use http::header::{CACHE_CONTROL, LOCATION};
use http::{HeaderValue, Request, Response, StatusCode};

use crate::edge::Edge;
use crate::host::{request_host, HostKind};
use crate::pages::{wants_json, EdgeError};

impl Edge {
    /// The redirect for `req`, received on the plain-HTTP listener, to the HTTPS listener on
    /// `https_port` (omitted from the URL when it is 443).
    pub fn https_redirect<B>(&self, req: &Request<B>, https_port: u16) -> Response<Body> {
        let json = wants_json(req.headers());
        let host = match request_host(req, 80) {
            Ok(h) if self.matcher.classify(&h.name) != HostKind::Other => h,
            _ => return EdgeError::BadRequest("unknown or invalid Host").response(json),
        };
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let location = format!("https://{}{port}{path}", host.name);
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
        match HeaderValue::from_str(&location) {
            Ok(v) => {
                resp.headers_mut().insert(LOCATION, v);
            }
            Err(_) => return EdgeError::BadRequest("invalid request target").response(json),
        }
        resp.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}
