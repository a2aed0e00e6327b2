//! A JSON body extractor whose rejections are [`ApiError`]s: malformed JSON, wrong types and
//! unknown fields become 422 with serde's message (which names the field), a wrong
//! content type 415, so bad input never turns into a 500 or a plain-text error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, OptionalFromRequest, Request};

use crate::error::ApiError;

pub struct ValidJson<T>(pub T);

impl<S, T> FromRequest<S> for ValidJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ValidJson(v)),
            Err(e) => Err(rejected(e)),
        }
    }
}

/// `Option<ValidJson<T>>`: an optional body. No `Content-Type` is no body (`None`); anything
/// sent must be JSON, with the same errors as [`ValidJson`].
impl<S, T> OptionalFromRequest<S> for ValidJson<T>
where
    axum::Json<T>: OptionalFromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        match <axum::Json<T> as OptionalFromRequest<S>>::from_request(req, state).await {
            Ok(v) => Ok(v.map(|axum::Json(v)| ValidJson(v))),
            Err(e) => Err(rejected(e)),
        }
    }
}

fn rejected(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::Unsupported("expected Content-Type: application/json".to_string())
        }
        JsonRejection::JsonDataError(e) => ApiError::Validation {
            field: None,
            message: body_text(&e.body_text()),
        },
        JsonRejection::JsonSyntaxError(e) => ApiError::Validation {
            field: None,
            message: body_text(&e.body_text()),
        },
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// axum prefixes serde's message with its own words; keep the part that names the problem.
fn body_text(s: &str) -> String {
    s.strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(s)
        .to_string()
}
