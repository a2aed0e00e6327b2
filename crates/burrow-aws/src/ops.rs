//! Dispatch of the IoTSecuredTunneling operations onto the broker, scoped to the key's
//! project: another project's tunnel answers ResourceNotFoundException, as a missing one does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use burrow_broker::{BrokerTunnelFilter, OpenRequest, RotateMode, Tag, TunnelInfo};
use burrow_store::{ApiKey, Timestamp};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::errors::AwsError;
use crate::shapes::*;
use crate::AwsState;

const MAX_TAGS: usize = 200;

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| AwsError::serialization(e.to_string()))
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| json!({}))
}

pub(crate) async fn dispatch(
    state: &AwsState,
    key: &ApiKey,
    op: &str,
    body: &[u8],
) -> Result<Value, AwsError> {
    let ctx = Ctx { state, key };
    match op {
        "OpenTunnel" => ctx.open(parse(body)?).await,
        "CloseTunnel" => ctx.close(parse(body)?).await,
        "DescribeTunnel" => ctx.describe(parse(body)?).await,
        "ListTunnels" => ctx.list(parse(body)?).await,
        "RotateTunnelAccessToken" => ctx.rotate(parse(body)?).await,
        "TagResource" => ctx.tag(parse(body)?).await,
        "UntagResource" => ctx.untag(parse(body)?).await,
        "ListTagsForResource" => ctx.list_tags(parse(body)?).await,
        _ => Err(AwsError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("unknown operation {op}"),
        )),
    }
}

/// The opaque `nextToken`: base64url of the cursor (created_at, tunnel_id).
fn encode_cursor(t: &TunnelInfo) -> String {
    let raw = format!(
        "{}\n{}",
        t.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        t.tunnel_id
    );
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(token: &str) -> Option<(Timestamp, String)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let (at, id) = raw.split_once('\n')?;
    let at = chrono::DateTime::parse_from_rfc3339(at).ok()?.to_utc();
    Some((at, id.to_string()))
}

fn check_tags(tags: &[TagShape]) -> Result<(), AwsError> {
    for t in tags {
        let k = t.key.chars().count();
        if k == 0 || k > 128 || t.value.chars().count() > 256 {
            return Err(AwsError::validation(
                "tag keys must be 1-128 characters and values at most 256",
            ));
        }
    }
    Ok(())
}

struct Ctx<'a> {
    state: &'a AwsState,
    key: &'a ApiKey,
}

impl Ctx<'_> {
    fn broker(&self) -> &burrow_broker::Broker {
        &self.state.inner.broker
    }

    /// The tunnel if it belongs to the key's project.
    async fn owned(&self, tunnel_id: &str) -> Result<TunnelInfo, AwsError> {
        let info = self.broker().describe(tunnel_id).await?;
        if info.project_id != Some(self.key.project_id) {
            return Err(AwsError::not_found());
        }
        Ok(info)
    }

    async fn by_arn(&self, arn: &str) -> Result<TunnelInfo, AwsError> {
        let (_, id) = arn
            .rsplit_once(":tunnel/")
            .ok_or_else(AwsError::not_found)?;
        let info = self.owned(id).await?;
        if info.tunnel_arn != arn {
            return Err(AwsError::not_found());
        }
        Ok(info)
    }

    async fn open(&self, req: OpenTunnelRequest) -> Result<Value, AwsError> {
        let dest = req.destination_config.unwrap_or_default();
        if dest.services.is_empty() && dest.thing_name.is_some() {
            return Err(AwsError::validation(
                "destinationConfig.services must have at least 1 item",
            ));
        }
        let tags = req.tags.unwrap_or_default();
        check_tags(&tags)?;
        let opened = self
            .broker()
            .open(OpenRequest {
                project_id: Some(self.key.project_id),
                description: req.description,
                thing_name: dest.thing_name,
                services: dest.services,
                lifetime_minutes: req
                    .timeout_config
                    .and_then(|t| t.max_lifetime_timeout_minutes),
                tags: tags.into_iter().map(Tag::from).collect(),
            })
            .await?;
        tracing::info!(tunnel = %opened.tunnel.tunnel_id, access_key_id = %self.key.access_key_id,
            "aws api: tunnel opened");
        Ok(to_value(&OpenTunnelResponse {
            tunnel_id: opened.tunnel.tunnel_id,
            tunnel_arn: opened.tunnel.tunnel_arn,
            source_access_token: opened.source_token.into_exposed(),
            destination_access_token: opened.destination_token.into_exposed(),
        }))
    }

    async fn close(&self, req: CloseTunnelRequest) -> Result<Value, AwsError> {
        self.owned(&req.tunnel_id).await?;
        self.broker().close(&req.tunnel_id, req.delete).await?;
        Ok(json!({}))
    }

    async fn describe(&self, req: DescribeTunnelRequest) -> Result<Value, AwsError> {
        let info = self.owned(&req.tunnel_id).await?;
        Ok(json!({ "tunnel": to_value(&TunnelShape::from(&info)) }))
    }

    async fn list(&self, req: ListTunnelsRequest) -> Result<Value, AwsError> {
        let max = req.max_results.unwrap_or(100);
        if !(1..=100).contains(&max) {
            return Err(AwsError::validation("maxResults must be 1..=100"));
        }
        let before = match req.next_token.as_deref() {
            None => None,
            Some(t) => {
                Some(decode_cursor(t).ok_or_else(|| AwsError::validation("invalid nextToken"))?)
            }
        };
        let mut tunnels = self
            .broker()
            .list(BrokerTunnelFilter {
                project_id: Some(self.key.project_id),
                thing_name: req.thing_name,
                before,
                limit: max + 1,
            })
            .await?;
        let more = tunnels.len() as i64 > max;
        tunnels.truncate(max as usize);
        let summaries: Vec<TunnelSummary> = tunnels.iter().map(TunnelSummary::from).collect();
        let mut out = json!({ "tunnelSummaries": to_value(&summaries) });
        if more {
            if let Some(last) = tunnels.last() {
                out["nextToken"] = json!(encode_cursor(last));
            }
        }
        Ok(out)
    }

    async fn rotate(&self, req: RotateRequest) -> Result<Value, AwsError> {
        let mode = RotateMode::parse(&req.client_mode).ok_or_else(|| {
            AwsError::validation("clientMode must be one of SOURCE, DESTINATION, ALL")
        })?;
        self.owned(&req.tunnel_id).await?;
        let (services, thing_name) = match req.destination_config {
            Some(d) => {
                if d.services.is_empty() {
                    return Err(AwsError::validation(
                        "destinationConfig.services must have at least 1 item",
                    ));
                }
                (Some(d.services), d.thing_name)
            }
            None => (None, None),
        };
        let rotated = self
            .broker()
            .rotate(&req.tunnel_id, mode, services, thing_name)
            .await?;
        Ok(to_value(&RotateResponse {
            tunnel_arn: rotated.tunnel.tunnel_arn,
            source_access_token: rotated.source_token.map(|t| t.into_exposed()),
            destination_access_token: rotated.destination_token.map(|t| t.into_exposed()),
        }))
    }

    /// Replaces the tags of the tunnel in the store (the broker keeps them as data only).
    async fn set_tags(
        &self,
        tunnel_id: &str,
        edit: impl FnOnce(&mut Vec<Tag>),
    ) -> Result<(), AwsError> {
        self.state
            .inner
            .broker
            .update_tags(tunnel_id, |tags| {
                edit(tags);
                if tags.len() > MAX_TAGS {
                    return Err(burrow_broker::BrokerError::Invalid(format!(
                        "at most {MAX_TAGS} tags"
                    )));
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    async fn tag(&self, req: TagResourceRequest) -> Result<Value, AwsError> {
        if req.tags.is_empty() {
            return Err(AwsError::validation("tags must have at least 1 item"));
        }
        check_tags(&req.tags)?;
        let info = self.by_arn(&req.resource_arn).await?;
        self.set_tags(&info.tunnel_id, |tags| {
            for new in req.tags {
                match tags.iter_mut().find(|t| t.key == new.key) {
                    Some(t) => t.value = new.value,
                    None => tags.push(new.into()),
                }
            }
        })
        .await?;
        Ok(json!({}))
    }

    async fn untag(&self, req: UntagResourceRequest) -> Result<Value, AwsError> {
        let info = self.by_arn(&req.resource_arn).await?;
        self.set_tags(&info.tunnel_id, |tags| {
            tags.retain(|t| !req.tag_keys.contains(&t.key))
        })
        .await?;
        Ok(json!({}))
    }

    async fn list_tags(&self, req: ResourceRequest) -> Result<Value, AwsError> {
        let info = self.by_arn(&req.resource_arn).await?;
        let tags: Vec<TagShape> = info.tags.iter().map(TagShape::from).collect();
        Ok(json!({ "tags": to_value(&tags) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let at = chrono::Utc::now();
        let raw = URL_SAFE_NO_PAD.encode(format!(
            "{}\nabc-1",
            at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ));
        assert_eq!(decode_cursor(&raw), Some((at, "abc-1".to_string())));
        assert!(decode_cursor("!!").is_none());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode("no newline")).is_none());
    }
}
