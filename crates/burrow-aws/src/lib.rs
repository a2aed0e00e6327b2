//! burrow's AWS IoT Secure Tunneling compatible control API (docs/aws-api.md).
//!
//! `POST /` with `X-Amz-Target: IoTSecuredTunneling.<Operation>` (AWS JSON 1.1, SigV4-signed
//! with a burrow-issued access key) drives the broker's tunnels, scoped to the key's project.
//! Access keys are managed under `/api/v1` with a bearer JWT.

mod auth;
pub mod errors;
pub mod keys;
pub mod openapi;
mod ops;
pub mod shapes;
pub mod sigv4;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use burrow_broker::Broker;
use burrow_store::Store;

use crate::errors::{AwsError, CONTENT_TYPE};

/// Largest request body accepted on `POST /` (413 beyond).
pub const MAX_BODY: usize = 64 * 1024;
/// The `X-Amz-Target` prefix of this service.
pub const TARGET_PREFIX: &str = "IoTSecuredTunneling.";

#[derive(Clone)]
pub struct AwsState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    broker: Arc<Broker>,
    api: burrow_api::AppState,
    /// Derives the keys' secrets (the server's `token.key`). Never logged.
    server_key: Vec<u8>,
}

impl AwsState {
    pub fn new(
        store: Arc<dyn Store>,
        broker: Arc<Broker>,
        api: burrow_api::AppState,
        server_key: Vec<u8>,
    ) -> Self {
        AwsState {
            inner: Arc::new(Inner {
                store,
                broker,
                api,
                server_key,
            }),
        }
    }
}

/// `POST /` (the AWS JSON API) and the key endpoints; merge into the main port's router.
/// Sets no fallback, so it merges with routers that do.
pub fn router(state: AwsState) -> Router {
    Router::new()
        .route("/", post(entry))
        .route(
            "/api/v1/projects/{id}/aws-keys",
            post(keys::create).get(keys::list),
        )
        .route("/api/v1/aws-keys/{access_key_id}", delete(keys::revoke))
        .with_state(state)
}

async fn entry(State(state): State<AwsState>, req: Request) -> Response {
    let op = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(op) = op else {
        return burrow_api::ApiError::NotFound("route").into_response();
    };
    let (parts, body) = req.into_parts();
    let too_large = || {
        AwsError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("request body exceeds {MAX_BODY} bytes"),
        )
        .into_response()
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return too_large();
    };
    let key = match auth::authenticate(&state, &parts, &body).await {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let Some(op) = op.strip_prefix(TARGET_PREFIX) else {
        return AwsError::new(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "unknown operation",
        )
        .into_response();
    };
    match ops::dispatch(&state, &key, op, &body).await {
        Ok(value) => {
            let mut resp = Response::new(Body::from(value.to_string()));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
            resp
        }
        Err(e) => e.into_response(),
    }
}
