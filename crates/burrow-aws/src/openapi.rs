//! The access-key endpoints in the OpenAPI document (merged by the binary). The AWS JSON API
//! itself (`POST /`, SigV4) is AWS's own contract, described by AWS's service model.

use utoipa::OpenApi;

use crate::keys::{CreateKey, IssuedKey, KeyList, KeyView};

#[derive(OpenApi)]
#[openapi(
    paths(crate::keys::create, crate::keys::list, crate::keys::revoke),
    components(schemas(CreateKey, IssuedKey, KeyList, KeyView)),
    tags((name = "aws-keys", description = "Access keys for the AWS IoT Secure Tunneling \
        compatible API (docs/aws-api.md)"))
)]
struct AwsKeysDoc;

/// The access-key endpoints with their schemas.
pub fn openapi() -> utoipa::openapi::OpenApi {
    AwsKeysDoc::openapi()
}
