//! AWS Signature Version 4 verification (header-based, `AWS4-HMAC-SHA256`).
//!
//! The canonical request is rebuilt from what arrived, the signature is recomputed with the
//! secret of the key named in the credential scope, and the two are compared in constant
//! time. The payload hash is always computed from the body itself.

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case names, as listed (`;`-separated in the header).
    pub signed_headers: Vec<String>,
    /// Lower-case hex.
    pub signature: String,
}

impl AuthHeader {
    pub fn parse(value: &str) -> Option<AuthHeader> {
        let rest = value.strip_prefix(ALGORITHM)?.trim_start();
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => return None,
            }
        }
        let scope: Vec<&str> = credential?.split('/').collect();
        let [akid, date, region, service, "aws4_request"] = scope.as_slice() else {
            return None;
        };
        let signature = signature?;
        if akid.is_empty()
            || signature.len() != 64
            || !signature.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return None;
        }
        let signed_headers: Vec<String> =
            signed?.split(';').map(|h| h.to_ascii_lowercase()).collect();
        if signed_headers.iter().any(String::is_empty) {
            return None;
        }
        Some(AuthHeader {
            access_key_id: akid.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }

    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// Parses `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`).
pub fn parse_amz_date(value: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Whether `at` lies within [`MAX_SKEW`] of `now`.
pub fn within_skew(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - at).abs() <= MAX_SKEW
}

/// What the canonical request is built from.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string (without `?`), possibly empty.
    pub query: &'a str,
    /// All request headers (any case; repeated names allowed).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Each path segment URI-encoded once (S3 style is not needed here); empty stays `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/')
        .map(|seg| encode(&decode(seg)))
        .collect::<Vec<_>>()
        .join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trims and collapses runs of spaces, as SigV4 requires.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The canonical request, or `None` if a signed header is absent.
pub fn canonical_request(req: &Request<'_>, signed_headers: &[String]) -> Option<String> {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| normalize_value(v))
            .collect();
        if values.is_empty() {
            return None;
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Some(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        canonical_headers,
        signed_headers.join(";"),
        sha256_hex(req.body)
    ))
}

pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// The hex signature of `req` as `auth` describes it, made with `secret`.
pub fn signature(
    req: &Request<'_>,
    auth: &AuthHeader,
    amz_date: &str,
    secret: &str,
) -> Option<String> {
    let creq = canonical_request(req, &auth.signed_headers)?;
    let sts = string_to_sign(amz_date, &auth.scope(), &creq);
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    Some(hex::encode(hmac(&key, sts.as_bytes())))
}

/// Recomputes the signature and compares it with the one sent, in constant time.
pub fn verify(req: &Request<'_>, auth: &AuthHeader, amz_date: &str, secret: &str) -> bool {
    match signature(req, auth, amz_date, secret) {
        Some(expected) => bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const DATE: &str = "20150830T123600Z";
    const VANILLA: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn headers() -> Vec<(String, String)> {
        vec![
            ("Host".into(), "example.amazonaws.com".into()),
            ("X-Amz-Date".into(), DATE.into()),
        ]
    }

    fn auth(signature: &str) -> AuthHeader {
        AuthHeader::parse(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={signature}"
        ))
        .unwrap()
    }

    #[test]
    fn get_vanilla_vector() {
        let h = headers();
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
        };
        let a = auth(VANILLA);
        assert_eq!(a.access_key_id, "AKIDEXAMPLE");
        assert_eq!(signature(&req, &a, DATE, SECRET).unwrap(), VANILLA);
        assert!(verify(&req, &a, DATE, SECRET));
        assert!(!verify(&req, &a, DATE, "wrong-secret"));
    }

    #[test]
    fn tampering_fails() {
        let h = headers();
        let a = auth(VANILLA);
        let body = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            body: b"x",
        };
        assert!(!verify(&body, &a, DATE, SECRET));
        let mut other = headers();
        other[0].1 = "evil.example.com".into();
        let host = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &other,
            body: b"",
        };
        assert!(!verify(&host, &a, DATE, SECRET));
        let post = Request {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
        };
        assert!(!verify(&post, &a, DATE, SECRET));
        // A signed header that is missing cannot verify.
        let missing = vec![("Host".to_string(), "example.amazonaws.com".to_string())];
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &missing,
            body: b"",
        };
        assert!(!verify(&req, &a, DATE, SECRET));
    }

    #[test]
    fn header_values_are_normalized_and_query_sorted() {
        let h = vec![
            ("host".to_string(), "  example.amazonaws.com ".to_string()),
            ("x-amz-date".to_string(), DATE.to_string()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: "",
            headers: &h,
            body: b"",
        };
        assert!(verify(&req, &auth(VANILLA), DATE, SECRET));
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("x=a b"), "x=a%20b");
    }

    #[test]
    fn parse_rejects_garbage() {
        assert!(AuthHeader::parse("Bearer abc").is_none());
        assert!(AuthHeader::parse("AWS4-HMAC-SHA256 Credential=A/B").is_none());
        assert!(AuthHeader::parse(
            "AWS4-HMAC-SHA256 Credential=A/d/r/s/aws4_request, SignedHeaders=host, Signature=zz"
        )
        .is_none());
    }

    #[test]
    fn skew_window() {
        let at = parse_amz_date(DATE).unwrap();
        assert!(within_skew(at, at + chrono::Duration::minutes(5)));
        assert!(within_skew(at, at - chrono::Duration::minutes(4)));
        assert!(!within_skew(at, at + chrono::Duration::minutes(6)));
        assert!(!within_skew(at, at - chrono::Duration::seconds(301)));
        assert!(parse_amz_date("2015-08-30").is_none());
    }
}
