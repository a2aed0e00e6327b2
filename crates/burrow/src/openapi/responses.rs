//! Answers every operation of a kind can give, added to each such operation so that the
//! handlers' annotations need only name their own: the bearer API's 401 (no or a bad token),
//! 404 (a path id the caller cannot see: missing and foreign look the same); for JSON bodies
//! read by the API's extractor 400 (unreadable, e.g. over 2 MB), 415 (not `application/json`)
//! and 422 (invalid, with `field` when known). Every error answer without a body of its own
//! gets the `Error` schema.

use serde_json::{json, Value};

use super::operations;

const ERROR: &str = "#/components/schemas/Error";

pub(super) fn complete(doc: &mut Value) {
    for (_path, _method, op) in operations(doc) {
        let bearer = op["security"]
            .as_array()
            .is_some_and(|reqs| reqs.iter().any(|r| r.get("bearer").is_some()));
        let path_params = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path"));
        let json_body = op
            .pointer("/requestBody/content/application~1json")
            .is_some();
        let responses = op["responses"].as_object_mut();
        let Some(responses) = responses else { continue };
        let own_400 = responses.contains_key("400");
        let mut add = |status: &str, description: &str| {
            responses
                .entry(status)
                .or_insert_with(|| json!({"description": description}));
        };
        if bearer {
            add("401", "no bearer token, or an invalid or expired one");
            if path_params {
                add("404", "nothing with this id that the caller may see");
            }
        }
        // An operation that names its own 400 reads its body its own way (enrollment).
        if json_body && !own_400 {
            add("400", "the body could not be read (e.g. larger than 2 MB)");
            add("415", "the body is not `application/json`");
            add(
                "422",
                "the body is not valid: `field` names the culprit when known",
            );
        }
        for (status, response) in responses.iter_mut() {
            let is_error = status.starts_with('4') || status.starts_with('5');
            if is_error && response.get("content").is_none() {
                response["content"] = json!({"application/json": {"schema": {"$ref": ERROR}}});
            }
        }
    }
}
