//! OpenAPI shapes of the sharing inputs (documentation only: the handlers parse plain strings
//! with [`super::parse_cidrs`] and [`super::parse_methods`]).

/// An IPv4 CIDR (`10.0.0.0/8`) or address; IPv6 CIDRs (`2001:db8::/32`) are accepted too.
#[derive(utoipa::ToSchema)]
#[schema(
    value_type = String,
    example = "10.0.0.0/8",
    pattern = r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}(/(3[0-2]|[12]?[0-9]))?$"
)]
pub struct Cidr(pub String);

/// An HTTP method a key or link may use.
#[derive(utoipa::ToSchema)]
#[allow(clippy::upper_case_acronyms)]
pub enum HttpMethod {
    GET,
    HEAD,
    POST,
    PUT,
    PATCH,
    DELETE,
    OPTIONS,
}
