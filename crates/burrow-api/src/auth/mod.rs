//! Who is calling: passwords (argon2), user JWTs (HS256, pinned), and the extractor.

mod extract;
mod jwt;
mod login_guard;
mod password;

pub use extract::{AdminUser, AuthUser, ClientIp};
pub use jwt::{Claims, JwtKeys};
pub use login_guard::{client_key, LoginGuard, LoginLimits, LoginRefused};
pub use password::{hash_password, verify_password};
