//! The whole OpenAPI document, served at `/api/v1/openapi.json`: each crate's part (generated
//! from its handlers' annotations), merged, with what is true of every operation added in
//! one place ([`responses`]) and the links from each create operation to the operations that
//! take its id ([`links`]). See docs/api.md.

mod links;
mod responses;

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use utoipa::OpenApi;

/// Where the device config endpoint lives (the device listener, not the API port).
const CONFIG_PATH: &str = "/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels-config";

#[derive(OpenApi)]
#[openapi(paths(serve))]
struct DocumentDoc;

/// The whole document; `device_url` is the device listener's base URL (mTLS).
pub fn document(device_url: &str) -> Value {
    let mut doc = burrow_api::openapi();
    doc.merge(burrow_aws::openapi::openapi());
    doc.merge(burrow_device::openapi::openapi());
    doc.merge(burrow_edge::openapi::openapi());
    doc.merge(crate::sso::SsoDoc::openapi());
    doc.merge(DocumentDoc::openapi());
    doc.merge(crate::ops::OpsDoc::openapi());
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut doc = serde_json::to_value(doc).unwrap_or_default();
    if let Some(item) = doc.pointer_mut(&format!("/paths/{}", escape(CONFIG_PATH))) {
        item["servers"] = json!([{"url": device_url, "description": "the device listener (mTLS)"}]);
    }
    responses::complete(&mut doc);
    links::add(&mut doc);
    doc
}

/// `GET /api/v1/openapi.json`.
pub fn router(device_url: &str) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(serve))
        .with_state(Arc::new(document(device_url)))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "get_openapi", tag = "meta",
    responses((status = 200, description = "the OpenAPI document", body = Object)))]
async fn serve(State(doc): State<Arc<Value>>) -> Json<Value> {
    Json(doc.as_ref().clone())
}

/// A path as one JSON Pointer token (RFC 6901).
fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

/// Every operation of the document: (path, method, operation).
fn operations(doc: &mut Value) -> impl Iterator<Item = (String, String, &mut Value)> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            let path = path.clone();
            item.as_object_mut()
                .into_iter()
                .flat_map(|m| m.iter_mut())
                .filter(|(method, _)| {
                    ["get", "put", "post", "delete", "patch"].contains(&method.as_str())
                })
                .map(move |(method, op)| (path.clone(), method.clone(), op))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_once_and_links_name_operations() {
        let mut doc = document("https://localhost:8443");
        let ids: Vec<String> = operations(&mut doc)
            .map(|(path, method, op)| {
                op["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{method} {path} has no operationId"))
                    .to_string()
            })
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "duplicate operationIds in {ids:?}");
        for (from, status, to, _, _) in links::table() {
            assert!(ids.iter().any(|i| i == from), "link from unknown {from}");
            assert!(ids.iter().any(|i| i == to), "link to unknown {to}");
            let linked = operations(&mut doc)
                .any(|(_, _, op)| op["operationId"] == from && op["responses"][status].is_object());
            assert!(linked, "{from} has no {status} answer to link from");
        }
    }

    #[test]
    fn every_error_answer_has_a_body_and_the_config_endpoint_its_server() {
        let mut doc = document("https://localhost:8443");
        for (path, method, op) in operations(&mut doc) {
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('2') || s.starts_with('3')),
                "{method} {path} has no success answer"
            );
            for (status, response) in responses {
                if status.starts_with('4') {
                    assert!(response["content"].is_object(), "{method} {path} {status}");
                }
            }
        }
        let servers = &doc["paths"][CONFIG_PATH]["servers"];
        assert_eq!(servers[0]["url"], "https://localhost:8443", "{servers}");
    }
}
