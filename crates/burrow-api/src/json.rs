//! A JSON body extractor whose rejections are [`ApiError`]s: malformed JSON, wrong types and
//! unknown fields become 422 with serde's message (which names the field), a wrong
//! content type 415, so bad input never turns into a 500 or a plain-text error.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};

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
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::Unsupported(
                "expected Content-Type: application/json".to_string(),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation {
                field: None,
                message: body_text(&e.body_text()),
            }),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::Validation {
                field: None,
                message: body_text(&e.body_text()),
            }),
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// axum prefixes serde's message with its own words; keep the part that names the problem.
fn body_text(s: &str) -> String {
    s.strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(s)
        .to_string()
}
