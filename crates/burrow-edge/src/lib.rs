//! burrow's edge: what Cloudflare and the API gateway did in the seed. Every enabled reverse
//! tunnel is reachable at its `public_url`, only by the people allowed.
//!
//! A request's host picks the tunnel; its IP rules refuse clients first; `require_auth`
//! tunnels take a user JWT, a host-only session cookie, one of the tunnel's API keys or a
//! share link's session; the request is forwarded as the
//! tunnel's source peer over a byte stream from a [`TunnelDialer`];
//! usage and an access log are counted in memory and flushed in batches.
//! See `docs/edge.md`.

mod auth;
mod authorize;
pub mod backend;
mod cache;
mod certs;
mod codes;
mod config;
mod counting;
mod dialer;
mod edge;
mod forward;
mod headers;
mod host;
mod idle;
mod limits;
mod login;
mod look;
pub mod openapi;
mod origin;
mod pages;
mod pool;
mod recheck;
mod redirect;
mod route;
mod session_cookie;
mod share_cookie;
mod sharing;
mod sso;
mod tls;
pub mod traffic;
mod upstream;
mod url;

pub use backend::EdgeBackend;
pub use certs::{CertError, CertStore};
pub use config::EdgeConfig;
pub use dialer::{service_name, DialError, TunnelDialer, TunnelIo};
pub use edge::Edge;
pub use headers::{X_BURROW_USER_EMAIL, X_BURROW_USER_ID};
pub use host::CustomHosts;
pub use limits::{server_builder, ConnLimiter, ConnPermit};
pub use session_cookie::{LOGIN_COOKIE, SECURE_SESSION_COOKIE, SESSION_COOKIE};
pub use share_cookie::{SECURE_SHARE_COOKIE, SHARE_COOKIE};
pub use sharing::X_BURROW_KEY;
