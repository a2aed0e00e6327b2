use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The most argon2 working memory a verifier keeps between calls (64 MiB, in 1 KiB blocks);
/// a hash that needs more is checked with memory of its own, freed after.
const MAX_KEPT_BLOCKS: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct PasswordError;

/// Argon2id with the crate's recommended parameters, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError)
}

/// What an unknown user's password is checked against: a hash with the default parameters
/// (so it costs what a real one does), of a password nobody uses. A constant, so that the
/// first such login spends no extra hash (nor its memory).
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$YJrKlzJ0ouilZOtmg1wyCg$YP4Ac5Y43sKNahicZFqGAecoNpP2YbmG1QCFiAaKolg";

/// Verifies `password` against a PHC string. With `None` (unknown user) it still spends the
/// time of one verification, so response timing does not reveal which emails exist.
pub fn verify_password(password: &str, phc: Option<&str>) -> bool {
    verify_password_in(&mut Vec::new(), password, phc)
}

/// [`verify_password`] with argon2's working memory (19 MiB with the default parameters) in
/// `memory`, which the caller keeps for the next call. A thread that verifies passwords in a
/// loop then holds one block of memory for good, instead of asking the allocator for a fresh
/// one each time (glibc keeps those around per thread: hundreds of MiB after a burst).
pub fn verify_password_in(memory: &mut Vec<Block>, password: &str, phc: Option<&str>) -> bool {
    let (phc, real) = match phc {
        Some(p) => (p, true),
        None => (DUMMY_HASH, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = verify_parsed(memory, password.as_bytes(), &parsed).unwrap_or(false);
    ok && real
}

fn verify_parsed(memory: &mut Vec<Block>, password: &[u8], hash: &PasswordHash) -> Option<bool> {
    let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
    let version = match hash.version {
        Some(v) => Version::try_from(v).ok()?,
        None => Version::default(),
    };
    let params = Params::try_from(hash).ok()?;
    let expected = hash.hash?;
    let blocks = params.block_count();
    if blocks > MAX_KEPT_BLOCKS {
        return Some(Argon2::default().verify_password(password, hash).is_ok());
    }
    let mut salt = [0u8; 64];
    let salt = hash.salt?.decode_b64(&mut salt).ok()?;
    memory.resize(blocks, Block::default());
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = out.get_mut(..expected.len())?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..])
        .ok()?;
    // `Output`'s equality is constant-time.
    Some(Output::new(out).ok()? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let h = hash_password("correct horse").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a phc string")));
        assert!(
            !verify_password("burrow-dummy-password", None),
            "unknown user"
        );
        assert!(verify_password("burrow-dummy-password", Some(DUMMY_HASH)));
        let mut memory = Vec::new();
        assert!(verify_password_in(&mut memory, "correct horse", Some(&h)));
        assert!(!verify_password_in(&mut memory, "wrong", Some(&h)));
        assert!(verify_password_in(&mut memory, "correct horse", Some(&h)));
        assert_eq!(memory.len(), Params::DEFAULT.block_count());
        // Another algorithm, version and parameters verify the same way.
        let other = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(1024, 3, 2, Some(48)).expect("params"),
        )
        .hash_password(b"pw", &SaltString::generate(&mut OsRng))
        .expect("hash")
        .to_string();
        assert!(verify_password_in(&mut memory, "pw", Some(&other)));
        assert!(!verify_password_in(&mut memory, "px", Some(&other)));
    }
}
