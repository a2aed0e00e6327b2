//! A tunnel's traffic: analytics series from the rollups
//! (`GET .../reverse-tunnels/{id}/analytics?from=&to=&step=`) and the access log, filtered,
//! as JSON or CSV (`GET .../reverse-tunnels/{id}/access-log`).

use std::net::IpAddr;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use burrow_store::{
    AccessLogEntry, AccessLogFilter, LatencyHistogram, Timestamp, TrafficRollup, HOUR, MINUTE,
};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Action;
use crate::auth::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::reverse_tunnels::{tunnel_of, AccessLogItem, AccessLogList};
use crate::routes::visible_device;
use crate::AppState;

/// Most points one analytics answer may hold.
pub const MAX_POINTS: i64 = 10_000;

/// The longest step: 366 days (keeps every time computation in range).
const MAX_STEP: i64 = 366 * 24 * 3600;

/// Ranges longer than this with a whole-hour step are read from the hourly rollups.
const HOURLY_ABOVE: TimeDelta = TimeDelta::days(2);

/// Kept as text so that bad values are our JSON 422s.
#[derive(Deserialize)]
pub struct SeriesQuery {
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

#[derive(Serialize, ToSchema, Clone, Copy, Default)]
pub struct Percentiles {
    /// Milliseconds (upper bound of the histogram bucket); null without requests.
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

/// Where the milliseconds went: `edge` (routing, authentication, limits), `tunnel` (a
/// connection through the tunnel), `device` (request sent to response head).
#[derive(Serialize, ToSchema, Clone, Copy, Default)]
pub struct LatencyView {
    pub edge: Percentiles,
    pub tunnel: Percentiles,
    pub device: Percentiles,
}

#[derive(Serialize, ToSchema, Default)]
pub struct TrafficPoint {
    /// Start of the step.
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub t: DateTime<Utc>,
    pub requests: i64,
    pub status_1xx: i64,
    pub status_2xx: i64,
    pub status_3xx: i64,
    pub status_4xx: i64,
    pub status_5xx: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
    /// Distinct client addresses: the largest per-minute (or per-hour) count in the step.
    pub distinct_clients: i64,
    pub latency_ms: LatencyView,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"from": "2026-12-01T10:00:00Z", "to": "2026-12-01T11:00:00Z",
    "step": 60, "resolution": 60, "points": [], "totals": {}}))]
pub struct TrafficSeries {
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub to: DateTime<Utc>,
    /// Seconds per point.
    pub step: i64,
    /// The rollups read: 60 (minute) or 3600 (hour).
    pub resolution: i64,
    pub points: Vec<TrafficPoint>,
    /// The whole range (`t` = `from`).
    pub totals: TrafficPoint,
}

fn parse_time(field: &str, v: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::validation(field, format!("{field} must be an RFC 3339 time")))
    })
    .transpose()
}

fn point(t: DateTime<Utc>, rows: &[&TrafficRollup]) -> TrafficPoint {
    let mut sum = TrafficRollup::default();
    let mut peak_clients = 0;
    for r in rows {
        sum.merge(r);
        peak_clients = peak_clients.max(r.distinct_clients);
    }
    let p = |h: &LatencyHistogram| Percentiles {
        p50: h.quantile(0.50),
        p95: h.quantile(0.95),
        p99: h.quantile(0.99),
    };
    TrafficPoint {
        t,
        requests: sum.requests,
        status_1xx: sum.by_class[0],
        status_2xx: sum.by_class[1],
        status_3xx: sum.by_class[2],
        status_4xx: sum.by_class[3],
        status_5xx: sum.by_class[4],
        bytes_in: sum.bytes_in,
        bytes_out: sum.bytes_out,
        distinct_clients: peak_clients,
        latency_ms: LatencyView {
            edge: p(&sum.latency.edge),
            tunnel: p(&sum.latency.tunnel),
            device: p(&sum.latency.device),
        },
    }
}

/// The per-bucket distinct counts of several rows of one bucket add up (nodes); the point's
/// count is then the peak over its buckets.
fn by_bucket(rows: Vec<TrafficRollup>) -> Vec<TrafficRollup> {
    let mut out: Vec<TrafficRollup> = Vec::new();
    for r in rows {
        match out.last_mut() {
            Some(last) if last.bucket_start == r.bucket_start => last.merge(&r),
            _ => out.push(r),
        }
    }
    out
}

/// Requests, status classes, bytes, distinct clients and latency percentiles of the tunnel
/// per `step` seconds between `from` and `to` (default: the last hour, per minute). Points
/// without traffic are included (zeros), so charts need no gap handling.
#[utoipa::path(get,
    path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/analytics",
    operation_id = "get_reverse_tunnel_analytics", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1),
        ("from" = Option<DateTime<Utc>>, Query, description = "RFC 3339; default `to` minus 1 hour"),
        ("to" = Option<DateTime<Utc>>, Query, description = "RFC 3339; default now"),
        ("step" = Option<i64>, Query, minimum = 60, maximum = 31622400, multiple_of = 60.0,
            description = "Seconds per point, a multiple of 60 up to 366 days (default 60)")),
    responses((status = 200, description = "the series", body = TrafficSeries),
        (status = 422, description = "bad times, `from` after `to`, a step not a multiple of \
            60, or more than 10000 points")),
    security(("bearer" = [])))]
pub async fn analytics(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> ApiResult<Json<TrafficSeries>> {
    let device = visible_device(&state, &user, &dsn, Action::View).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let q = query
        .map_err(|_| ApiError::validation("from", "expected from=, to= and step= at most once"))?
        .0;
    let step = match q.step.as_deref() {
        None => MINUTE,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|v| (MINUTE..=MAX_STEP).contains(v) && v % MINUTE == 0)
            .ok_or_else(|| {
                ApiError::validation("step", "step must be a multiple of 60 up to 31622400")
            })?,
    };
    let to = parse_time("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = match parse_time("from", q.from.as_deref())? {
        Some(f) => f,
        None => to
            .checked_sub_signed(TimeDelta::hours(1))
            .ok_or_else(|| ApiError::validation("to", "to is outside the supported times"))?,
    };
    if from > to {
        return Err(ApiError::validation("from", "from must not be after to"));
    }
    // Points start on multiples of the step (since the epoch), so that charts line up.
    let first = from.timestamp().div_euclid(step) * step;
    let points = (to.timestamp() - first + step - 1).div_euclid(step).max(1);
    if points > MAX_POINTS {
        return Err(ApiError::validation(
            "step",
            format!("{points} points requested; at most {MAX_POINTS} (use a larger step)"),
        ));
    }
    let resolution = if step % HOUR == 0 && to - from > HOURLY_ABOVE {
        HOUR
    } else {
        MINUTE
    };
    let out_of_range = || ApiError::validation("to", "the range is outside the supported times");
    let start = DateTime::from_timestamp(first, 0).ok_or_else(out_of_range)?;
    let end = start
        .checked_add_signed(TimeDelta::seconds(points * step))
        .ok_or_else(out_of_range)?;
    let rows = by_bucket(
        state
            .store
            .list_traffic_rollups(t.id, resolution, start, end)
            .await?,
    );
    let mut series = Vec::with_capacity(usize::try_from(points).unwrap_or(0));
    let mut i = 0;
    for n in 0..points {
        let p_start = start + TimeDelta::seconds(n * step);
        let p_end = p_start + TimeDelta::seconds(step);
        let begin = i;
        while i < rows.len() && rows[i].bucket_start < p_end {
            i += 1;
        }
        let in_point: Vec<&TrafficRollup> = rows[begin..i].iter().collect();
        series.push(point(p_start, &in_point));
    }
    let all: Vec<&TrafficRollup> = rows.iter().collect();
    Ok(Json(TrafficSeries {
        from: start,
        to: end,
        step,
        resolution,
        points: series,
        totals: point(start, &all),
    }))
}

/// Kept as text so that bad values are our JSON 422s.
#[derive(Deserialize)]
pub struct LogQuery {
    limit: Option<String>,
    from: Option<String>,
    to: Option<String>,
    status: Option<String>,
    client_ip: Option<String>,
    format: Option<String>,
}

/// `404` → 404-404; `4xx` → 400-499.
fn status_range(v: &str) -> ApiResult<(i64, i64)> {
    let bad = || ApiError::validation("status", "status must be a code (404) or a class (5xx)");
    if let Some(class) = v.strip_suffix("xx") {
        let c: i64 = class.parse().map_err(|_| bad())?;
        if !(1..=5).contains(&c) {
            return Err(bad());
        }
        return Ok((c * 100, c * 100 + 99));
    }
    let code: i64 = v.parse().map_err(|_| bad())?;
    if !(100..=599).contains(&code) {
        return Err(bad());
    }
    Ok((code, code))
}

/// A CSV field: quoted, quotes doubled, and a leading `= + - @` defused so that a
/// spreadsheet never runs a client-chosen path or user agent as a formula.
fn csv_field(out: &mut String, v: &str) {
    out.push('"');
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        out.push('\'');
    }
    out.push_str(&v.replace('"', "\"\""));
    out.push('"');
}

fn csv(entries: &[AccessLogEntry]) -> String {
    let mut out = String::from(
        "at,client_ip,user_agent,user_id,method,path,status,bytes_in,bytes_out,duration_ms\n",
    );
    for e in entries {
        out.push_str(&crate::time::rfc3339(&e.at));
        out.push(',');
        csv_field(&mut out, e.client_ip.as_deref().unwrap_or(""));
        out.push(',');
        csv_field(&mut out, e.user_agent.as_deref().unwrap_or(""));
        out.push_str(&format!(
            ",{},{},",
            e.user_id.map(|u| u.to_string()).unwrap_or_default(),
            e.method
        ));
        csv_field(&mut out, &e.path);
        out.push_str(&format!(
            ",{},{},{},{}\n",
            e.status, e.bytes_in, e.bytes_out, e.duration_ms
        ));
    }
    out
}

/// The edge's access log of a tunnel, newest first, filtered by time, status and client
/// address; `format=csv` answers it as a CSV file.
#[utoipa::path(get, path = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/access-log",
    operation_id = "get_reverse_tunnel_access_log", tag = "reverse-tunnels",
    params(("dsn" = String, Path, description = "The device serial number", example = "ABC123"),
        ("id" = i64, Path, description = "The reverse tunnel's id", example = 1),
        ("limit" = Option<i64>, Query,
            description = "How many entries (default 100; clamped to 1-1000; CSV up to 10000)"),
        ("from" = Option<DateTime<Utc>>, Query, description = "RFC 3339: entries at or after"),
        ("to" = Option<DateTime<Utc>>, Query, description = "RFC 3339: entries before"),
        ("status" = Option<String>, Query, pattern = "^[1-5]([0-9][0-9]|xx)$",
            description = "A status (`404`) or class (`5xx`)"),
        ("client_ip" = Option<String>, Query, pattern = r"^(([0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$",
            description = "Only this client address (IPv4 or IPv6)"),
        ("format" = Option<String>, Query, pattern = "^(json|csv)$",
            description = "`json` (default) or `csv`")),
    responses((status = 200, description = "the newest entries first", content(
            (AccessLogList = "application/json"),
            (String = "text/csv"))),
        (status = 422, description = "a parameter is not valid")),
    security(("bearer" = [])))]
pub async fn access_log(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path((dsn, id)): Path<(String, String)>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let device = visible_device(&state, &user, &dsn, Action::ReadLogs).await?;
    let t = tunnel_of(&state, &device, &id).await?;
    let q = query
        .map_err(|_| ApiError::validation("limit", "expected each parameter at most once"))?
        .0;
    let as_csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::validation("format", "format must be json or csv")),
    };
    let max = if as_csv { 10_000 } else { 1000 };
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| ApiError::validation("limit", "limit must be a whole number"))?
            .clamp(1, max),
    };
    let (status_min, status_max) = match q.status.as_deref() {
        None => (None, None),
        Some(s) => {
            let (a, b) = status_range(s)?;
            (Some(a), Some(b))
        }
    };
    let client_ip = q
        .client_ip
        .as_deref()
        .map(|s| {
            s.parse::<IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| ApiError::validation("client_ip", "client_ip must be an IP address"))
        })
        .transpose()?;
    let from: Option<Timestamp> = parse_time("from", q.from.as_deref())?;
    let to: Option<Timestamp> = parse_time("to", q.to.as_deref())?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::validation("from", "from must not be after to"));
        }
    }
    let entries = state
        .store
        .list_access_log_filtered(&AccessLogFilter {
            reverse_tunnel_id: t.id,
            limit,
            from,
            to,
            status_min,
            status_max,
            client_ip,
        })
        .await?;
    if as_csv {
        let name = format!("attachment; filename=\"access-log-{}.csv\"", t.id);
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, name),
            ],
            csv(&entries),
        )
            .into_response());
    }
    let items: Vec<AccessLogItem> = entries
        .into_iter()
        .map(|e| AccessLogItem {
            at: e.at,
            user_id: e.user_id,
            method: e.method,
            path: e.path,
            status: e.status,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            duration_ms: e.duration_ms,
            client_ip: e.client_ip,
            user_agent: e.user_agent,
        })
        .collect();
    let total = items.len();
    Ok(Json(AccessLogList { items, total }).into_response())
}

/// Kept as text so that bad values are our JSON 422s.
#[derive(Deserialize)]
pub struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TunnelTraffic {
    pub id: i64,
    /// The tunnel's name.
    pub name: String,
    pub device_id: i64,
    /// The device's DSN.
    pub dsn: String,
    pub requests: i64,
    /// 4xx and 5xx responses.
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DeviceTraffic {
    pub device_id: i64,
    /// The device's DSN.
    pub dsn: String,
    pub requests: i64,
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

#[derive(Serialize, ToSchema)]
pub struct ProjectTraffic {
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub from: DateTime<Utc>,
    #[serde(serialize_with = "crate::time::ser")]
    #[schema(value_type = String, format = DateTime)]
    pub to: DateTime<Utc>,
    /// The busiest tunnels first (at most 10).
    pub tunnels: Vec<TunnelTraffic>,
    /// The busiest devices first (at most 10).
    pub devices: Vec<DeviceTraffic>,
    /// Usage per user × device: who used which device, most requests first (at most 50).
    /// Hourly data: the hours starting in [`from` rounded down to the hour, `to`).
    pub users: Vec<UserDeviceTraffic>,
}

/// One principal's use of one device over the range.
#[derive(Serialize, ToSchema)]
pub struct UserDeviceTraffic {
    pub device_id: i64,
    /// `user` (signed in), `key` (a tunnel API key), `share` (a share link's visitor) or
    /// `anonymous` (a public tunnel, or a request refused before it said who it was).
    #[schema(example = "user")]
    pub principal: String,
    /// The user's, key's or share link's id; 0 when anonymous.
    pub principal_id: i64,
    /// The user's email, the key's name or the link's prefix; null when anonymous or deleted.
    pub name: Option<String>,
    pub requests: i64,
    /// 4xx and 5xx responses.
    pub errors: i64,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

/// Rows read to rank the devices (their tunnels added up).
const OVERVIEW_ROWS: i64 = 1000;
const OVERVIEW_TOP: usize = 10;
/// Rows of the usage per user × device answered.
const OVERVIEW_USERS: i64 = 50;

/// The project's busiest tunnels and devices between `from` and `to` (default: the last 24
/// hours), from the minute rollups, and who used which device (per user × device, from the
/// hourly usage per principal).
#[utoipa::path(get, path = "/api/v1/projects/{id}/traffic",
    operation_id = "get_project_traffic", tag = "projects",
    params(("id" = i64, Path, description = "The project's id", example = 1),
        ("from" = Option<DateTime<Utc>>, Query, description = "RFC 3339; default `to` minus 24 hours"),
        ("to" = Option<DateTime<Utc>>, Query, description = "RFC 3339; default now")),
    responses((status = 200, description = "the busiest tunnels and devices, usage per user × device", body = ProjectTraffic),
        (status = 422, description = "bad times, or `from` after `to`")),
    security(("bearer" = [])))]
pub async fn project_traffic(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    Path(id): Path<String>,
    query: Result<Query<RangeQuery>, QueryRejection>,
) -> ApiResult<Json<ProjectTraffic>> {
    let project = crate::routes::visible_project(
        &state,
        &user,
        crate::routes::projects::parse_id(&id)?,
        Action::View,
    )
    .await?;
    let q = query
        .map_err(|_| ApiError::validation("from", "expected from= and to= at most once"))?
        .0;
    let to = parse_time("to", q.to.as_deref())?.unwrap_or_else(Utc::now);
    let from = match parse_time("from", q.from.as_deref())? {
        Some(f) => f,
        None => to
            .checked_sub_signed(TimeDelta::hours(24))
            .ok_or_else(|| ApiError::validation("to", "to is outside the supported times"))?,
    };
    if from > to {
        return Err(ApiError::validation("from", "from must not be after to"));
    }
    let rows = state
        .store
        .project_tunnel_usage(project.id, from, to, OVERVIEW_ROWS)
        .await?;
    let mut devices: Vec<DeviceTraffic> = Vec::new();
    for r in &rows {
        match devices.iter_mut().find(|d| d.device_id == r.device_id) {
            Some(d) => {
                d.requests += r.requests;
                d.errors += r.errors;
                d.bytes_in += r.bytes_in;
                d.bytes_out += r.bytes_out;
            }
            None => devices.push(DeviceTraffic {
                device_id: r.device_id,
                dsn: r.dsn.clone(),
                requests: r.requests,
                errors: r.errors,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            }),
        }
    }
    devices.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then(a.device_id.cmp(&b.device_id))
    });
    devices.truncate(OVERVIEW_TOP);
    let tunnels = rows
        .into_iter()
        .take(OVERVIEW_TOP)
        .map(|r| TunnelTraffic {
            id: r.reverse_tunnel_id,
            name: r.tunnel_name,
            device_id: r.device_id,
            dsn: r.dsn,
            requests: r.requests,
            errors: r.errors,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
        })
        .collect();
    // Hourly rows: the hour `from` falls in is included whole.
    let from_hour = from.duration_trunc(TimeDelta::hours(1)).unwrap_or(from);
    let users = state
        .store
        .project_principal_usage(project.id, from_hour, to, OVERVIEW_USERS)
        .await?
        .into_iter()
        .map(|u| UserDeviceTraffic {
            device_id: u.device_id,
            principal: u.principal_kind,
            principal_id: u.principal_id,
            name: u.label,
            requests: u.requests,
            errors: u.errors,
            bytes_in: u.bytes_in,
            bytes_out: u.bytes_out,
        })
        .collect();
    Ok(Json(ProjectTraffic {
        from,
        to,
        tunnels,
        devices,
        users,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_and_csv_escaping() {
        assert_eq!(status_range("5xx").expect("class"), (500, 599));
        assert_eq!(status_range("404").expect("code"), (404, 404));
        for bad in ["6xx", "0xx", "99", "abc", "600"] {
            assert!(status_range(bad).is_err(), "{bad}");
        }
        let mut s = String::new();
        csv_field(&mut s, "=HYPERLINK(\"x\")");
        assert_eq!(s, "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
