//! Who an ID token signs in: the burrow user with its verified email, created on first
//! sign-in (not an administrator, with no usable password).

use burrow_store::{NewUser, Store, StoreError, User};
use rand::RngCore;

use super::error::SsoError;
use super::settings::OidcSettings;

/// What the ID token says about the person (already verified by the crate).
pub struct Identity {
    pub email: Option<String>,
    pub email_verified: Option<bool>,
}

/// The email the person may sign in with: present, verified by the provider, and of an
/// allowed domain.
pub fn checked_email(id: &Identity, settings: &OidcSettings) -> Result<String, SsoError> {
    let email = id
        .email
        .as_deref()
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| e.contains('@') && e.len() <= 320)
        .ok_or(SsoError::Forbidden(
            "the identity provider did not share an email address (scope email)",
        ))?;
    if id.email_verified != Some(true) {
        return Err(SsoError::Forbidden(
            "the identity provider has not verified this email address",
        ));
    }
    if !settings.domain_allowed(&email) {
        return Err(SsoError::Forbidden(
            "this email domain may not sign in to this server",
        ));
    }
    Ok(email)
}

/// A password hash no password matches: not a PHC string (argon2 refuses to parse it), and
/// random, so it is no shared marker value either.
fn unusable_password_hash() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("!sso-only!{}", hex::encode(bytes))
}

/// The user with `email`, created when there is none.
pub async fn find_or_create(store: &dyn Store, email: &str) -> Result<User, StoreError> {
    if let Some(user) = store.user_by_email(email).await? {
        return Ok(user);
    }
    let created = store
        .create_user(NewUser {
            email: email.to_string(),
            password_hash: unusable_password_hash(),
            is_admin: false,
        })
        .await;
    match created {
        Ok(user) => {
            tracing::info!(user_id = user.id, "user created on first single sign-on");
            Ok(user)
        }
        // Two first sign-ins at once: the other one created it.
        Err(StoreError::Conflict(_)) => store
            .user_by_email(email)
            .await?
            .ok_or(StoreError::NotFound),
        Err(e) => Err(e),
    }
}

/// Whether `user` may sign in at all: not a disabled account (docs/accounts.md).
pub fn may_sign_in(user: &User) -> bool {
    !user.disabled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(domains: &[&str]) -> OidcSettings {
        OidcSettings {
            issuer: "https://id.example".into(),
            client_id: "burrow".into(),
            client_secret: None,
            allowed_domains: domains.iter().map(|d| d.to_string()).collect(),
            label: "SSO".into(),
            redirect_uri: "https://fleet.example/api/v1/auth/oidc/callback".into(),
        }
    }

    fn id(email: Option<&str>, verified: Option<bool>) -> Identity {
        Identity {
            email: email.map(str::to_string),
            email_verified: verified,
        }
    }

    #[test]
    fn emails_must_be_present_verified_and_allowed() {
        let s = settings(&["example.com"]);
        assert_eq!(
            checked_email(&id(Some(" Ann@Example.com"), Some(true)), &s).ok(),
            Some("ann@example.com".to_string())
        );
        for (identity, why) in [
            (id(None, Some(true)), "no email"),
            (id(Some("ann@example.com"), None), "verification unknown"),
            (id(Some("ann@example.com"), Some(false)), "unverified"),
            (id(Some("ann@other.test"), Some(true)), "other domain"),
        ] {
            assert!(checked_email(&identity, &s).is_err(), "{why}");
        }
    }

    #[test]
    fn the_unusable_hash_matches_no_password() {
        let h = unusable_password_hash();
        assert_ne!(h, unusable_password_hash(), "random");
        assert!(!burrow_api::verify_password("", Some(&h)));
        assert!(!burrow_api::verify_password(&h, Some(&h)));
    }
}
