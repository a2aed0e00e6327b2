//! OpenAPI links: from each operation that creates something to the operations that take its
//! id, and from each delete to the read it must make fail (404), so that a client — or a
//! stateful fuzzer — can walk the whole API from a login.

use serde_json::{json, Map, Value};

use super::operations;

/// (from operation, its status, to operation, parameters, request body).
type Link = (
    &'static str,
    &'static str,
    &'static str,
    Value,
    Option<Value>,
);

pub(super) fn table() -> Vec<Link> {
    let project = || json!({"id": "$response.body#/id"});
    let device = || json!({"dsn": "$response.body#/dsn"});
    let enroll = || {
        let csr = burrow_device::enrollment::EXAMPLE_CSR;
        json!({"token": "$response.body#/enrollment_token", "csr": csr})
    };
    let tunnel = || json!({"dsn": "$request.path.dsn", "id": "$response.body#/id"});
    let host = || json!({"host": "$response.body#/public_url"});
    let mut links: Vec<Link> = Vec::new();
    for to in [
        "get_project",
        "add_project_member",
        "list_project_members",
        "register_device",
        "list_project_devices",
        "create_aws_key",
        "list_aws_keys",
        "list_sharing_audit",
        "create_invitation",
        "list_invitations",
    ] {
        links.push(("create_project", "201", to, project(), None));
    }
    // An invitation's token reaches its holder out of band; a client that created it can
    // look it up, withdraw it, or (for an email without an account) sign up with it.
    let invitation = || json!({"token": "$response.body#/token"});
    links.push((
        "create_invitation",
        "201",
        "lookup_invitation",
        json!({}),
        Some(invitation()),
    ));
    links.push((
        "create_invitation",
        "201",
        "accept_invitation",
        json!({}),
        Some(invitation()),
    ));
    links.push((
        "create_invitation",
        "201",
        "sign_up_by_invitation",
        json!({}),
        Some(json!({"token": "$response.body#/token", "password": "a-long-password"})),
    ));
    links.push((
        "create_invitation",
        "201",
        "delete_invitation",
        json!({"id": "$request.path.id", "invitation_id": "$response.body#/id"}),
        None,
    ));
    links.push((
        "create_personal_token",
        "201",
        "revoke_personal_token",
        json!({"id": "$response.body#/id"}),
        None,
    ));
    for to in [
        "get_device",
        "delete_device",
        "reenroll_device",
        "revoke_device",
        "list_reverse_tunnels",
        "create_reverse_tunnel",
    ] {
        links.push(("register_device", "201", to, device(), None));
    }
    links.push((
        "register_device",
        "201",
        "enroll_device",
        json!({}),
        Some(enroll()),
    ));
    links.push((
        "reenroll_device",
        "201",
        "enroll_device",
        json!({}),
        Some(enroll()),
    ));
    for to in [
        "get_reverse_tunnel",
        "update_reverse_tunnel",
        "delete_reverse_tunnel",
        "rotate_reverse_tunnel",
        "get_reverse_tunnel_access_log",
        "describe_reverse_tunnel",
        "create_tunnel_api_key",
        "list_tunnel_api_keys",
        "create_share_link",
        "list_share_links",
        "add_custom_domain",
        "list_custom_domains",
    ] {
        links.push(("create_reverse_tunnel", "201", to, tunnel(), None));
    }
    for to in [
        "get_custom_domain",
        "check_custom_domain",
        "delete_custom_domain",
    ] {
        links.push((
            "add_custom_domain",
            "201",
            to,
            json!({"dsn": "$request.path.dsn", "id": "$request.path.id",
                   "domain_id": "$response.body#/id"}),
            None,
        ));
    }
    links.push((
        "create_tunnel_api_key",
        "201",
        "revoke_tunnel_api_key",
        json!({"dsn": "$request.path.dsn", "id": "$request.path.id",
               "key_id": "$response.body#/id"}),
        None,
    ));
    links.push((
        "create_share_link",
        "201",
        "revoke_share_link",
        json!({"dsn": "$request.path.dsn", "id": "$request.path.id",
               "link_id": "$response.body#/id"}),
        None,
    ));
    links.push((
        "create_reverse_tunnel",
        "201",
        "edge_authorize_redirect",
        host(),
        None,
    ));
    links.push((
        "create_reverse_tunnel",
        "201",
        "edge_authorize",
        host(),
        None,
    ));
    links.push((
        "create_aws_key",
        "201",
        "revoke_aws_key",
        json!({"access_key_id": "$response.body#/access_key_id"}),
        None,
    ));
    // After a delete, the same id must be gone.
    let same_tunnel = json!({"dsn": "$request.path.dsn", "id": "$request.path.id"});
    links.push((
        "delete_reverse_tunnel",
        "200",
        "get_reverse_tunnel",
        same_tunnel,
        None,
    ));
    let same_device = || json!({"dsn": "$request.path.dsn"});
    links.push(("delete_device", "200", "get_device", same_device(), None));
    links.push((
        "delete_device",
        "200",
        "list_reverse_tunnels",
        same_device(),
        None,
    ));
    links
}

pub(super) fn add(doc: &mut Value) {
    for (from, status, to, parameters, body) in table() {
        let Some(op) = operations(doc)
            .map(|(_, _, op)| op)
            .find(|op| op["operationId"] == from)
        else {
            continue;
        };
        let mut link = Map::new();
        link.insert("operationId".into(), json!(to));
        if parameters.as_object().is_some_and(|p| !p.is_empty()) {
            link.insert("parameters".into(), parameters);
        }
        if let Some(body) = body {
            link.insert("requestBody".into(), body);
        }
        let name = to.to_string();
        let links = &mut op["responses"][status]["links"];
        if !links.is_object() {
            *links = json!({});
        }
        links[name] = Value::Object(link);
    }
}
