//! AWS JSON 1.1 errors: `{"__type": ..., "message": ...}` plus `x-amzn-ErrorType`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use burrow_broker::BrokerError;
use burrow_store::StoreError;

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub status: StatusCode,
    /// The `__type`, which boto3 maps to `client.exceptions.<type>`.
    pub kind: &'static str,
    pub message: String,
}

impl AwsError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationException", message)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "The requested resource was not found",
        )
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SerializationException", message)
    }

    pub fn unrecognized_client() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    pub fn bad_signature() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        )
    }

    pub fn missing_auth(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            message,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "internal error",
        )
    }
}

impl From<BrokerError> for AwsError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::NotFound => AwsError::not_found(),
            BrokerError::Closed => AwsError::validation("The tunnel is closed"),
            BrokerError::Invalid(msg) => AwsError::validation(msg),
            BrokerError::LimitExceeded => AwsError::new(
                StatusCode::BAD_REQUEST,
                "LimitExceededException",
                "Limit exceeded",
            ),
            other => {
                tracing::error!(error = %other, "aws api: broker error");
                AwsError::internal()
            }
        }
    }
}

impl From<StoreError> for AwsError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "aws api: store error");
        AwsError::internal()
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"__type": self.kind, "message": self.message});
        let mut resp = (self.status, body.to_string()).into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        h.insert("x-amzn-errortype", HeaderValue::from_static(self.kind));
        resp
    }
}
