//! The one error type of the API: every handler returns `Result<_, ApiError>`, and every
//! error leaves as JSON `{"detail": "...", "code": "..."}` (plus `"field"` for validation),
//! the shape FastAPI-style clients of the seed expect. Internal errors are logged, never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burrow_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not authenticated")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// 410: the thing existed but is spent or expired (an invitation).
    #[error("{0}")]
    Gone(&'static str),
    #[error("{message}")]
    Validation {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Unavailable(String),
    /// 429 with `Retry-After` (whole seconds, at least 1).
    #[error("too many attempts; try again later")]
    TooManyRequests(std::time::Duration),
    /// 503 with `Retry-After: 1`: a bounded resource is busy.
    #[error("{0}")]
    Busy(&'static str),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error answer (the OpenAPI document's `Error` schema).
#[derive(Serialize, ToSchema)]
#[schema(as = Error, example = json!({"detail": "local_port must be 1-65535",
    "code": "validation_error", "field": "local_port"}))]
pub struct ErrorBody {
    /// What went wrong, for people.
    pub detail: String,
    /// What went wrong, for programs: `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `validation_error`, `unsupported_media_type`, `unavailable`, `internal`...
    pub code: String,
    /// The input field at fault (validation errors only, when known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(e.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone"),
            ApiError::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation_error"),
            ApiError::Unsupported(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(_) => ApiError::Conflict("already exists".to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (detail, field) = match &self {
            ApiError::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                ("internal error".to_string(), None)
            }
            ApiError::Unauthorized(why) => ((*why).to_string(), None),
            ApiError::Validation { field, message } => (message.clone(), field.clone()),
            other => (other.to_string(), None),
        };
        let mut resp = (
            status,
            Json(ErrorBody {
                detail,
                code: code.to_string(),
                field,
            }),
        )
            .into_response();
        let retry_after = match &self {
            ApiError::TooManyRequests(wait) => Some(retry_after_secs(*wait)),
            ApiError::Busy(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: std::time::Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl From<crate::LoginRefused> for ApiError {
    fn from(r: crate::LoginRefused) -> Self {
        match r {
            crate::LoginRefused::Throttled(wait) => ApiError::TooManyRequests(wait),
            crate::LoginRefused::Busy => ApiError::Busy("too many sign-ins at once; try again"),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
