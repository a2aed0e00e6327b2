//! The device CA on disk.

mod common;

use std::os::unix::fs::PermissionsExt;

use burrow_device::{mtls, DeviceCa};
use chrono::Utc;
use rustls::pki_types::UnixTime;

#[test]
fn load_or_create_persists_and_reloaded_ca_signs_chaining_certs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let first = DeviceCa::load_or_create(&dir).unwrap();
    let key_mode = std::fs::metadata(dir.join("ca.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);
    assert!(!format!("{first:?}").contains("PRIVATE"));

    let again = DeviceCa::load_or_create(&dir).unwrap();
    assert_eq!(first.ca_pem(), again.ca_pem());

    // A certificate signed after reloading chains to the original root (same DN and key id).
    let creds = common::creds_from(&again, "DEV-9", Utc::now() + chrono::Duration::days(1));
    let der = rustls_pemfile::certs(&mut creds.cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    mtls::client_verifier(&first)
        .unwrap()
        .verify_client_cert(&der, &[], UnixTime::now())
        .unwrap();
    assert_eq!(creds.serial.len(), 32, "128-bit serial, hex");
}

#[test]
fn one_file_without_the_other_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    DeviceCa::load_or_create(tmp.path()).unwrap();
    std::fs::remove_file(tmp.path().join("ca.key")).unwrap();
    assert!(DeviceCa::load_or_create(tmp.path()).is_err());
}

#[test]
fn mismatched_key_is_refused() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    DeviceCa::load_or_create(a.path()).unwrap();
    DeviceCa::load_or_create(b.path()).unwrap();
    std::fs::copy(b.path().join("ca.key"), a.path().join("ca.key")).unwrap();
    assert!(DeviceCa::load_or_create(a.path()).is_err());
}
