//! `POST /api/v1/auth/oidc/exchange`: the web UI trades the one-time code of a finished
//! single sign-on for its JWT.

use axum::extract::State;
use axum::Json;
use burrow_api::{ApiError, ApiResult, LoginResponse, ValidJson};
use http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;

use super::browser::cookie_values;
use super::routes::https;
use super::{account, handoff, Sso};

/// The one-time code from the callback's `#sso=` fragment.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "q2V0b3b1cnJvdy1sb2dpbi1zdGF0ZQq2V0b3b1cnJvdy"}))]
pub struct ExchangeRequest {
    pub code: String,
}

/// Trades the one-time code a single sign-on left in the web UI's URL fragment for a bearer
/// JWT (the answer of `POST /api/v1/auth/login`). Each code works once, within 60 seconds,
/// and only in the browser the sign-in finished in (with its binding cookie).
#[utoipa::path(post, path = "/api/v1/auth/oidc/exchange", operation_id = "exchange_oidc_code",
    tag = "auth", request_body = ExchangeRequest,
    responses(
        (status = 200, description = "a bearer token", body = LoginResponse),
        (status = 400, description = "the code is unknown, used, expired, or from another \
            browser"),
        (status = 403, description = "the account is disabled"),
        (status = 404, description = "single sign-on is not configured"),
        (status = 415, description = "the body is not `application/json`"),
        (status = 422, description = "the body is not valid: `field` names the culprit when \
            known")))]
pub async fn exchange(
    State(sso): State<Sso>,
    headers: HeaderMap,
    ValidJson(req): ValidJson<ExchangeRequest>,
) -> ApiResult<Json<LoginResponse>> {
    if sso.provider.is_none() {
        return Err(ApiError::NotFound("single sign-on"));
    }
    let store = sso.api.store.as_ref();
    let (bind_name, _) = handoff::bind_cookie_name_and_path(https(&sso));
    let bindings = cookie_values(&headers, bind_name);
    let user = match handoff::redeem(store, &req.code, &bindings).await? {
        Some(id) => store.user_by_id(id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Err(ApiError::BadRequest(
            "this sign-in code is not valid (unknown, used or expired); sign in again".into(),
        ));
    };
    if !account::may_sign_in(&user) {
        return Err(ApiError::Forbidden("this account is disabled"));
    }
    let token = sso
        .api
        .jwt
        .issue(user.id, &user.email, chrono::Utc::now())
        .map_err(ApiError::internal)?;
    Ok(Json(LoginResponse {
        access_token: token,
        token_type: "bearer",
        expires_in: sso.api.jwt.ttl().num_seconds(),
    }))
}
