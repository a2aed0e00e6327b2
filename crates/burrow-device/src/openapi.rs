//! The device endpoints' part of the OpenAPI document (merged by the binary).

use utoipa::openapi::security::SecurityScheme;
use utoipa::{Modify, OpenApi};

use crate::config_endpoint::{DeviceConfigResponse, TunnelConfig};
use crate::enrollment::{DeviceCaResponse, EnrollRequest, EnrollResponse};

/// The name of the client-certificate security scheme of the config endpoint.
pub const DEVICE_CERTIFICATE: &str = "device_certificate";

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::enrollment::enroll,
        crate::enrollment::ca_certificate,
        crate::config_endpoint::get_config
    ),
    components(schemas(EnrollRequest, EnrollResponse, DeviceCaResponse, DeviceConfigResponse, TunnelConfig)),
    tags((name = "device-agent", description = "What device agents call: enrollment, and \
        their tunnel configuration on the device listener")),
    modifiers(&DeviceCertificate)
)]
struct DeviceDoc;

struct DeviceCertificate;

impl Modify for DeviceCertificate {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                DEVICE_CERTIFICATE,
                SecurityScheme::MutualTls {
                    description: Some(
                        "The device certificate of `POST /api/v1/devices/enroll`, presented \
                         in the TLS handshake with the device listener."
                            .into(),
                    ),
                    extensions: None,
                },
            );
    }
}

/// `POST /api/v1/devices/enroll` and the config endpoint, with their schemas.
pub fn openapi() -> utoipa::openapi::OpenApi {
    DeviceDoc::openapi()
}
