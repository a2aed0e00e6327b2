//! Who is calling: passwords (argon2), user JWTs (HS256, pinned), and the extractor.

mod extract;
mod guess_guard;
mod jwt;
mod login_guard;
mod password;
pub mod personal_token;
mod revocation;

pub use extract::{forwarded_client, AdminUser, AuthUser, ClientIp, ForwardedClient};
pub use guess_guard::{GuessGuard, GuessLimits};
pub use jwt::{Claims, JwtKeys};
pub use login_guard::{client_key, LoginGuard, LoginLimits, LoginRefused};
pub use password::{hash_password, verify_password};
pub use revocation::{issue_at, issued_after, revoke_sessions, sessions_valid_after};
