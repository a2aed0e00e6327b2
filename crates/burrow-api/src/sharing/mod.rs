//! Sharing a tunnel (issue 15): the secrets of per-tunnel API keys and share links, the HTTP
//! methods they may be limited to, and a tunnel's IP rules. Parsed here once, used by the
//! API (which creates them) and the edge (which checks them).

mod ip_rules;
mod methods;
mod schema;
pub(crate) mod secret;

pub use ip_rules::{parse_cidrs, IpRules, MAX_CIDRS};
pub use methods::{method_allowed, parse_methods};
pub use schema::{Cidr, HttpMethod};
pub use secret::{
    hash_secret, is_key_shaped, is_link_shaped, new_secret, same_hash, NewSecret, KEY_PREFIX,
    LINK_PREFIX,
};
