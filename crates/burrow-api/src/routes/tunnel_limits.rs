//! The traffic limit fields of a reverse tunnel (`rate_limit`, `bandwidth_limit`,
//! `max_connections_per_client`): their JSON shapes, and their parsing into the store's
//! [`TunnelLimits`] with a 422 naming the field for 0, negative or absurd values.

use burrow_store::{BandwidthLimit, RateLimit, RateLimitScope, TunnelLimits};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};

pub const MAX_RPS: i64 = 100_000;
pub const MAX_BURST: i64 = 1_000_000;
/// 1 KiB/s: anything slower would time clients out before a page loads.
pub const MIN_BYTES_PER_SECOND: i64 = 1024;
/// 10 GB/s: above any link the edge can serve.
pub const MAX_BYTES_PER_SECOND: i64 = 10_000_000_000;
pub const MAX_CONNECTIONS_PER_CLIENT: i64 = 10_000;

/// Requests admitted per second; over it the edge answers 429 with `Retry-After` and the
/// request never reaches the device.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"requests_per_second": 10, "burst": 20, "per": "client_ip"}))]
pub struct RateLimitBody {
    /// 1-100000.
    #[schema(minimum = 1, maximum = 100000)]
    pub requests_per_second: i64,
    /// Requests allowed at once above the steady rate, 1-1000000; default
    /// `requests_per_second`.
    #[schema(minimum = 1, maximum = 1000000)]
    #[serde(default)]
    pub burst: Option<i64>,
    /// `tunnel` (one bucket for everyone, the default) or `client_ip` (one per client
    /// address, IPv6 by /64).
    #[serde(default)]
    #[schema(value_type = Option<RateLimitPer>)]
    pub per: Option<String>,
}

/// Whom a rate limit bucket counts.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)] // documents the accepted values only
pub enum RateLimitPer {
    Tunnel,
    ClientIp,
}

/// Bytes per second in each direction, shaped (delayed), never dropped.
#[derive(Deserialize, Serialize, ToSchema, Clone, Debug)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"bytes_per_second": 1048576}))]
pub struct BandwidthLimitBody {
    /// 1024-10000000000.
    #[schema(minimum = 1024, maximum = 10000000000_i64)]
    pub bytes_per_second: i64,
}

fn in_range(field: &str, v: i64, min: i64, max: i64) -> ApiResult<i64> {
    if (min..=max).contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::validation(
            field,
            format!("{field} must be {min}-{max}"),
        ))
    }
}

pub fn rate_limit(body: RateLimitBody) -> ApiResult<RateLimit> {
    let rps = in_range(
        "rate_limit.requests_per_second",
        body.requests_per_second,
        1,
        MAX_RPS,
    )?;
    let burst = in_range("rate_limit.burst", body.burst.unwrap_or(rps), 1, MAX_BURST)?;
    let per = match body.per.as_deref().unwrap_or("tunnel") {
        "tunnel" => RateLimitScope::Tunnel,
        "client_ip" => RateLimitScope::ClientIp,
        _ => {
            return Err(ApiError::validation(
                "rate_limit.per",
                "rate_limit.per must be tunnel or client_ip",
            ))
        }
    };
    // In range above, so the conversions cannot fail.
    Ok(RateLimit {
        requests_per_second: u32::try_from(rps).unwrap_or(u32::MAX),
        burst: u32::try_from(burst).unwrap_or(u32::MAX),
        per,
    })
}

pub fn bandwidth_limit(body: BandwidthLimitBody) -> ApiResult<BandwidthLimit> {
    let bps = in_range(
        "bandwidth_limit.bytes_per_second",
        body.bytes_per_second,
        MIN_BYTES_PER_SECOND,
        MAX_BYTES_PER_SECOND,
    )?;
    Ok(BandwidthLimit {
        bytes_per_second: u64::try_from(bps).unwrap_or(u64::MAX),
    })
}

pub fn max_connections_per_client(v: i64) -> ApiResult<u32> {
    let v = in_range(
        "max_connections_per_client",
        v,
        1,
        MAX_CONNECTIONS_PER_CLIENT,
    )?;
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

/// The limits as a create request gives them (absent: no limit).
pub fn on_create(
    rate: Option<RateLimitBody>,
    bandwidth: Option<BandwidthLimitBody>,
    conns: Option<i64>,
) -> ApiResult<TunnelLimits> {
    Ok(TunnelLimits {
        rate_limit: rate.map(rate_limit).transpose()?,
        bandwidth_limit: bandwidth.map(bandwidth_limit).transpose()?,
        max_connections_per_client: conns.map(max_connections_per_client).transpose()?,
    })
}

/// The limits after an update: an absent field keeps its value, `null` removes the limit.
/// `None` when the update names none of them.
pub fn on_update(
    current: &TunnelLimits,
    rate: Option<Option<RateLimitBody>>,
    bandwidth: Option<Option<BandwidthLimitBody>>,
    conns: Option<Option<i64>>,
) -> ApiResult<Option<TunnelLimits>> {
    if rate.is_none() && bandwidth.is_none() && conns.is_none() {
        return Ok(None);
    }
    let mut next = current.clone();
    if let Some(r) = rate {
        next.rate_limit = r.map(rate_limit).transpose()?;
    }
    if let Some(b) = bandwidth {
        next.bandwidth_limit = b.map(bandwidth_limit).transpose()?;
    }
    if let Some(c) = conns {
        next.max_connections_per_client = c.map(max_connections_per_client).transpose()?;
    }
    Ok(Some(next))
}

/// The limits as answered (the store's values, `per` spelled as in requests).
#[derive(Serialize, ToSchema, Clone, Debug, Default)]
pub struct LimitsView {
    pub rate_limit: Option<RateLimitBody>,
    pub bandwidth_limit: Option<BandwidthLimitBody>,
    pub max_connections_per_client: Option<i64>,
}

pub fn view(l: &TunnelLimits) -> LimitsView {
    LimitsView {
        rate_limit: l.rate_limit.map(|r| RateLimitBody {
            requests_per_second: i64::from(r.requests_per_second),
            burst: Some(i64::from(r.burst)),
            per: Some(
                match r.per {
                    RateLimitScope::Tunnel => "tunnel",
                    RateLimitScope::ClientIp => "client_ip",
                }
                .to_string(),
            ),
        }),
        bandwidth_limit: l.bandwidth_limit.map(|b| BandwidthLimitBody {
            bytes_per_second: i64::try_from(b.bytes_per_second).unwrap_or(i64::MAX),
        }),
        max_connections_per_client: l.max_connections_per_client.map(i64::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(rps: i64, burst: Option<i64>, per: Option<&str>) -> RateLimitBody {
        RateLimitBody {
            requests_per_second: rps,
            burst,
            per: per.map(str::to_string),
        }
    }

    #[test]
    fn bad_limits_are_422_naming_the_field() {
        for (body, field) in [
            (rate(0, None, None), "rate_limit.requests_per_second"),
            (rate(-5, None, None), "rate_limit.requests_per_second"),
            (
                rate(MAX_RPS + 1, None, None),
                "rate_limit.requests_per_second",
            ),
            (rate(10, Some(0), None), "rate_limit.burst"),
            (rate(10, None, Some("user")), "rate_limit.per"),
        ] {
            match rate_limit(body) {
                Err(ApiError::Validation { field: Some(f), .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        for bps in [0, -1, 1023, MAX_BYTES_PER_SECOND + 1] {
            assert!(bandwidth_limit(BandwidthLimitBody {
                bytes_per_second: bps
            })
            .is_err());
        }
        assert!(max_connections_per_client(0).is_err());
        let ok = rate_limit(rate(10, None, Some("client_ip"))).expect("valid");
        assert_eq!((ok.requests_per_second, ok.burst), (10, 10));
        assert_eq!(ok.per, RateLimitScope::ClientIp);
    }

    #[test]
    fn update_keeps_absent_and_clears_null() {
        let cur = on_create(Some(rate(5, None, None)), None, Some(3)).expect("create");
        let next = on_update(&cur, None, None, Some(None))
            .expect("ok")
            .expect("some");
        assert_eq!(next.rate_limit, cur.rate_limit);
        assert_eq!(next.max_connections_per_client, None);
        assert!(on_update(&cur, None, None, None).expect("ok").is_none());
    }
}
