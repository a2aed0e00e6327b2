//! A tunnel's custom domains: `POST/GET .../reverse-tunnels/{id}/domains`,
//! `GET/DELETE .../domains/{domain_id}` and `POST .../domains/{domain_id}/check`. The API only
//! records them; the server's domain worker proves ownership by DNS, obtains the certificate
//! and moves `status` along (docs/custom-domains.md).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use burrow_store::{
    domain_status, CustomDomain, Device, NewCustomDomain, ReverseTunnel, StoreError,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::hostname::CustomHostname;
use crate::json::ValidJson;
use crate::routes::projects::parse_id;
use crate::routes::reverse_tunnels::tunnel_of;
use crate::routes::visible_device;
use crate::AppState;

type Ts = chrono::DateTime<chrono::Utc>;

/// The most custom domains one tunnel may have.
pub const MAX_DOMAINS_PER_TUNNEL: usize = 20;

/// Where the owner publishes the verification value.
pub const CHALLENGE_LABEL: &str = "_burrow-challenge";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hostname": "robot7.customer.com"}))]
pub struct AddDomain {
    /// A fully qualified name of yours (not under the base domain, no wildcard, no IP
    /// address). A Unicode name is converted to punycode.
    #[schema(min_length = 1, max_length = 253, example = "robot7.customer.com")]
    pub hostname: String,
}

/// A DNS record the owner publishes.
#[derive(Serialize, ToSchema)]
pub struct DnsRecord {
    /// `TXT` or `CNAME`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: String,
    pub value: String,
}

/// The certificate burrow holds for the hostname, if any.
#[derive(Serialize, ToSchema)]
pub struct DomainCertificate {
    /// `none`, `valid` or `expired`.
    pub status: &'static str,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_before: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<Ts>,
}

#[derive(Serialize, ToSchema)]
pub struct DomainResponse {
    pub id: i64,
    pub hostname: String,
    pub reverse_tunnel_id: i64,
    /// `pending_verification`, `verified`, `issuing`, `active` or `failed`.
    #[schema(example = "pending_verification")]
    pub status: String,
    /// Why the domain is in its status (what is missing, what failed), when there is a reason.
    pub status_reason: Option<String>,
    /// The TXT record proving ownership: publish it, and keep it.
    pub verification: DnsRecord,
    /// Point the hostname at burrow: a CNAME to the tunnel's own host (or an A/AAAA record with
    /// the same addresses).
    pub target: DnsRecord,
    pub certificate: DomainCertificate,
    /// `https://<hostname>`, once served.
    pub url: String,
    /// Whether the edge serves the hostname now (ownership proven).
    pub served: bool,
    /// The given hostname was Unicode and is kept as punycode (in creation answers only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub converted_from_unicode: bool,
    #[serde(serialize_with = "crate::time::ser_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<Ts>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub next_check_at: Ts,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Ts,
}

#[derive(Serialize, ToSchema)]
pub struct DomainList {
    pub items: Vec<DomainResponse>,
    pub total: usize,
}

async fn respond(
    state: &AppState,
    t: &ReverseTunnel,
    d: CustomDomain,
    converted: bool,
) -> ApiResult<DomainResponse> {
    let cert = state.store.certificate(&d.hostname).await?;
    let now = chrono::Utc::now();
    let certificate = match cert {
        None => DomainCertificate {
            status: "none",
            not_before: None,
            not_after: None,
        },
        Some(c) => DomainCertificate {
            status: if c.not_after > now {
                "valid"
            } else {
                "expired"
            },
            not_before: Some(c.not_before),
            not_after: Some(c.not_after),
        },
    };
    Ok(DomainResponse {
        id: d.id,
        verification: DnsRecord {
            kind: "TXT",
            name: format!("{CHALLENGE_LABEL}.{}", d.hostname),
            value: d.verification_value,
        },
        target: DnsRecord {
            kind: "CNAME",
            name: d.hostname.clone(),
            value: t.public_url.clone(),
        },
        certificate,
        url: state.config.custom_domain_url(&d.hostname),
        served: d.verified_at.is_some(),
        converted_from_unicode: converted,
        hostname: d.hostname,
        reverse_tunnel_id: d.reverse_tunnel_id,
        status: d.status,
        status_reason: d.status_reason,
        checked_at: d.checked_at,
        next_check_at: d.next_check_at,
        created_at: d.created_at,
    })
}

/// The host of the API's origin (`https://api.example.com:8443` → `api.example.com`).
fn api_host(origin: &str) -> String {
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    };
    host.to_ascii_lowercase()
}

/// The value to publish: random, so that it proves control of the zone now.
fn verification_value() -> String {
    let mut b = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut b);
    use base64::Engine;
    format!(
        "burrow-verify={}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

async fn domain_of(
    state: &AppState,
    t: &ReverseTunnel,
    domain_id: &str,
) -> ApiResult<CustomDomain> {
    let id = parse_id(domain_id)?;
    match state.store.custom_domain_by_id(id).await? {
        Some(d) if d.reverse_tunnel_id == t.id => Ok(d),
        _ => Err(ApiError::NotFound("domain")),
    }
}

async fn tunnel_for(
    state: &AppState,
    user: &burrow_store::User,
    dsn: &str,
    id: &str,
    action: Action,
) -> ApiResult<(Device, ReverseTunnel)> {
    let device = visible_device(state, user, dsn, action).await?;
    let t = tunnel_of(state, &device, id).await?;
    Ok((device, t))
}

#[utoipa::path(post, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/domains",
    operation_id = "add_custom_domain", tag = "domains",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    request_body = AddDomain,
    responses((status = 201, description = "the domain, waiting for its DNS records",
            body = DomainResponse),
        (status = 409, description = "the hostname is taken, or the tunnel has 20 domains"),
        (status = 422, description = "not a hostname burrow can serve")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    ValidJson(req): ValidJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<DomainResponse>)> {
    let (_, t) = tunnel_for(&state, &user, &dsn, &id, Action::ManageDomains).await?;
    let api_host = api_host(&state.config.api_origin);
    let hostname = CustomHostname::parse(
        &req.hostname,
        &state.config.base_domain,
        &[api_host.as_str()],
    )?;
    if state.store.list_custom_domains(t.id).await?.len() >= MAX_DOMAINS_PER_TUNNEL {
        return Err(ApiError::Conflict(format!(
            "a tunnel has at most {MAX_DOMAINS_PER_TUNNEL} custom domains"
        )));
    }
    let d = state
        .store
        .create_custom_domain(NewCustomDomain {
            reverse_tunnel_id: t.id,
            hostname: hostname.as_str().to_string(),
            verification_value: verification_value(),
            created_at: chrono::Utc::now(),
        })
        .await
        .map_err(|e| match e {
            // The same answer whoever holds it: no oracle of other tenants' names.
            StoreError::Conflict(_) => ApiError::Conflict(format!(
                "{} is already in use by a tunnel",
                hostname.as_str()
            )),
            StoreError::NotFound => ApiError::NotFound("reverse tunnel"),
            other => other.into(),
        })?;
    state.domains_changed.notify_one();
    let body = respond(&state, &t, d, hostname.converted()).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/domains",
    operation_id = "list_custom_domains", tag = "domains",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2)),
    responses((status = 200, description = "the tunnel's custom domains", body = DomainList)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
) -> ApiResult<Json<DomainList>> {
    let (_, t) = tunnel_for(&state, &user, &dsn, &id, Action::View).await?;
    let mut items = Vec::new();
    for d in state.store.list_custom_domains(t.id).await? {
        items.push(respond(&state, &t, d, false).await?);
    }
    let total = items.len();
    Ok(Json(DomainList { items, total }))
}

#[utoipa::path(get,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/domains/{domain_id}",
    operation_id = "get_custom_domain", tag = "domains",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2),
        ("domain_id" = i64, Path, description = "The domain's id", example = 1)),
    responses((status = 200, description = "the domain and its status", body = DomainResponse),
        (status = 404, description = "the tunnel has no such domain")),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<Json<DomainResponse>> {
    let (_, t) = tunnel_for(&state, &user, &dsn, &id, Action::View).await?;
    let d = domain_of(&state, &t, &domain_id).await?;
    Ok(Json(respond(&state, &t, d, false).await?))
}

#[utoipa::path(post,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/domains/{domain_id}/check",
    operation_id = "check_custom_domain", tag = "domains",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2),
        ("domain_id" = i64, Path, description = "The domain's id", example = 1)),
    responses((status = 202, description = "the domain, to be checked at once (its DNS records \
            were published or fixed)", body = DomainResponse),
        (status = 404, description = "the tunnel has no such domain")),
    security(("bearer" = [])))]
pub async fn check(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<(StatusCode, Json<DomainResponse>)> {
    let (_, t) = tunnel_for(&state, &user, &dsn, &id, Action::ManageDomains).await?;
    let d = domain_of(&state, &t, &domain_id).await?;
    // A check in progress keeps its lease; it answers soon anyway.
    let d = if d.status == domain_status::ISSUING {
        d
    } else {
        state
            .store
            .check_custom_domain_now(d.id, chrono::Utc::now())
            .await?
    };
    state.domains_changed.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(respond(&state, &t, d, false).await?),
    ))
}

#[utoipa::path(delete,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/domains/{domain_id}",
    operation_id = "delete_custom_domain", tag = "domains",
    params(("dsn" = String, Path, description = "The device serial number", example = "SHARE1"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 2),
        ("domain_id" = i64, Path, description = "The domain's id", example = 1)),
    responses((status = 204, description = "removed: no longer served, its certificate deleted"),
        (status = 404, description = "the tunnel has no such domain")),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id, domain_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (_, t) = tunnel_for(&state, &user, &dsn, &id, Action::ManageDomains).await?;
    let d = domain_of(&state, &t, &domain_id).await?;
    state
        .store
        .delete_custom_domain(d.id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound("domain"),
            other => other.into(),
        })?;
    state.domains_changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
