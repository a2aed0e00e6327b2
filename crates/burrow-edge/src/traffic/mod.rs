//! Traffic of tunnel hosts: Prometheus metrics, per-tunnel limits, analytics rollups and
//! usage per principal (user, key, share link) and tunnel.
//! Kept apart from the request path's other parts; `edge.rs` and `counting.rs` call in.

mod guard;
mod metrics;
mod phases;
mod pipe;
mod rollup;
mod shaper;
mod usage;

pub use self::guard::{ConnSlot, Guard, Guards, Refusal};
pub use self::metrics::{EdgeMetrics, MAX_TUNNEL_LABELS};
pub use self::phases::Phases;
pub use self::pipe::{pipe, PipeLimits};
pub use self::rollup::{Rollups, Sample};
pub use self::shaper::{Shaped, Shaper};
pub use self::usage::{PrincipalCounts, Who};

/// Longest user agent kept in the access log.
const MAX_USER_AGENT: usize = 256;

/// The request's `User-Agent`, cut to [`MAX_USER_AGENT`] characters.
pub fn user_agent(headers: &http::HeaderMap) -> Option<String> {
    let ua = headers.get(http::header::USER_AGENT)?.to_str().ok()?;
    Some(match ua.char_indices().nth(MAX_USER_AGENT) {
        Some((i, _)) => ua[..i].to_string(),
        None => ua.to_string(),
    })
}
