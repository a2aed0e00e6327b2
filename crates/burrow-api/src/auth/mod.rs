//! Who is calling: passwords (argon2), user JWTs (HS256, pinned), and the extractor.

mod extract;
mod jwt;
mod password;

pub use extract::{AdminUser, AuthUser};
pub use jwt::{Claims, JwtKeys};
pub use password::{hash_password, verify_password};
