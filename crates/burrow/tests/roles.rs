//! The permission matrix of docs/accounts.md, cell by cell, through the REST API on SQLite and
//! PostgreSQL: each action tried by an owner, an admin, a member and a viewer of one project
//! (2xx when the role allows it, 403 when not) and by an outsider (404).

use burrow::testkit::{Backend, TestStack};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_on_sqlite() {
    matrix(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matrix_on_postgres() {
    if std::env::var("BURROW_SKIP_POSTGRES").as_deref() == Ok("1") {
        return;
    }
    matrix(Backend::Postgres).await
}

const ROLES: [&str; 4] = ["owner", "admin", "member", "viewer"];

fn rank(role: &str) -> usize {
    3 - ROLES.iter().position(|r| *r == role).expect("a role")
}

struct Member {
    role: &'static str,
    id: i64,
    token: String,
}

struct Matrix<'a> {
    s: &'a TestStack,
    cells: usize,
}

impl Matrix<'_> {
    /// One cell: `who` does `method path`; allowed when their role is at least `least`.
    async fn cell(
        &mut self,
        who: &Member,
        least: &str,
        what: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, answer) = self
            .s
            .call(method, path, &who.token, body.as_ref())
            .await
            .expect("request");
        if rank(who.role) >= rank(least) {
            assert!(
                status.is_success(),
                "{} may {what}: got {status} {answer}",
                who.role
            );
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{} may not {what}: {answer}",
                who.role
            );
            assert!(answer["detail"].as_str().is_some_and(|d| !d.is_empty()));
        }
        self.cells += 1;
        answer
    }
}

async fn add(s: &TestStack, admin: &str, pid: i64, user_id: i64, role: &str) {
    let (status, body) = s
        .call(
            Method::POST,
            &format!("/api/v1/projects/{pid}/members"),
            admin,
            Some(&json!({"user_id": user_id, "role": role})),
        )
        .await
        .expect("add member");
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn matrix(backend: Backend) {
    let s = TestStack::start(backend).await.expect("stack");
    let admin = s.admin_token().await.expect("admin");
    let mut people = Vec::new();
    for role in ROLES {
        let (id, token) = s.user(&format!("{role}@roles.test")).await.expect("user");
        people.push(Member { role, id, token });
    }
    let owner = &people[0];
    let (pid, _) = s
        .project_with_device(&owner.token, "ROLES1")
        .await
        .expect("project");
    for m in &people[1..] {
        add(&s, &admin, pid, m.id, m.role).await;
    }
    let (spare_id, _) = s.user("spare@roles.test").await.expect("user");
    add(&s, &admin, pid, spare_id, "member").await;
    let (_, outsider) = s.user("outsider@roles.test").await.expect("user");

    let rt = "/api/v1/reverse-tunnels/devices/ROLES1/reverse-tunnels".to_string();
    let (status, base) = s
        .call(
            Method::POST,
            &rt,
            &owner.token,
            Some(&json!({"name": "base", "local_port": 8080})),
        )
        .await
        .expect("tunnel");
    assert_eq!(status, StatusCode::CREATED, "{base}");
    let tid = base["id"].as_i64().expect("id");
    let t = format!("{rt}/{tid}");
    let p = format!("/api/v1/projects/{pid}");

    // Members' roles as the API shows them.
    let (_, members) = s
        .call(Method::GET, &format!("{p}/members"), &owner.token, None)
        .await
        .expect("members");
    for m in &people {
        assert!(
            members
                .as_array()
                .expect("list")
                .iter()
                .any(|x| x["user_id"] == m.id && x["role"] == m.role),
            "{} listed with its role: {members}",
            m.role
        );
        let (_, project) = s.call(Method::GET, &p, &m.token, None).await.expect("get");
        assert_eq!(
            project["role"], m.role,
            "GET project names the caller's role"
        );
    }

    let mut mx = Matrix { s: &s, cells: 0 };
    for m in &people {
        let r = m.role;
        // See.
        for path in [
            p.clone(),
            format!("{p}/devices"),
            format!("{p}/members"),
            format!("{p}/traffic"),
            rt.clone(),
            t.clone(),
            format!("{t}/describe"),
            format!("{t}/analytics"),
            format!("{t}/share-links"),
            format!("{t}/api-keys"),
        ] {
            mx.cell(
                m,
                "viewer",
                &format!("GET {path}"),
                Method::GET,
                &path,
                None,
            )
            .await;
        }
        // Read access logs.
        mx.cell(
            m,
            "member",
            "read the access log",
            Method::GET,
            &format!("{t}/access-log"),
            None,
        )
        .await;
        // Create, change, delete tunnels (default auth settings).
        let created = mx
            .cell(
                m,
                "member",
                "create a tunnel",
                Method::POST,
                &rt,
                Some(json!({"name": format!("t-{r}"), "local_port": 8081})),
            )
            .await;
        mx.cell(
            m,
            "member",
            "change a tunnel's description",
            Method::PUT,
            &t,
            Some(json!({"description": format!("by {r}")})),
        )
        .await;
        mx.cell(
            m,
            "member",
            "send a tunnel's unchanged auth settings",
            Method::PUT,
            &t,
            Some(json!({"require_auth": true})),
        )
        .await;
        let (_, victim) = s
            .call(
                Method::POST,
                &rt,
                &owner.token,
                Some(&json!({"name": format!("victim-{r}"), "local_port": 8082})),
            )
            .await
            .expect("victim tunnel");
        let victim = format!("{rt}/{}", victim["id"]);
        mx.cell(
            m,
            "member",
            "delete a tunnel",
            Method::DELETE,
            &victim,
            None,
        )
        .await;
        if let Some(id) = created["id"].as_i64() {
            s.call(Method::DELETE, &format!("{rt}/{id}"), &owner.token, None)
                .await
                .expect("cleanup");
        }
        // Auth settings.
        mx.cell(
            m,
            "admin",
            "change allowed_user_ids",
            Method::PUT,
            &t,
            Some(json!({"allowed_user_ids": [m.id]})),
        )
        .await;
        let public = mx
            .cell(
                m,
                "admin",
                "create a public tunnel",
                Method::POST,
                &rt,
                Some(json!({"name": format!("pub-{r}"), "require_auth": false})),
            )
            .await;
        if let Some(id) = public["id"].as_i64() {
            s.call(Method::DELETE, &format!("{rt}/{id}"), &owner.token, None)
                .await
                .expect("cleanup");
        }
        // Sharing, rotation, keys.
        mx.cell(
            m,
            "admin",
            "create a share link",
            Method::POST,
            &format!("{t}/share-links"),
            Some(json!({"expires_in_minutes": 60})),
        )
        .await;
        mx.cell(
            m,
            "admin",
            "read the sharing audit",
            Method::GET,
            &format!("{p}/sharing-audit"),
            None,
        )
        .await;
        mx.cell(
            m,
            "admin",
            "rotate",
            Method::POST,
            &format!("{t}/rotate"),
            None,
        )
        .await;
        mx.cell(
            m,
            "admin",
            "mint a tunnel API key",
            Method::POST,
            &format!("{t}/api-keys"),
            Some(json!({"name": format!("k-{r}")})),
        )
        .await;
        mx.cell(
            m,
            "admin",
            "mint an AWS key",
            Method::POST,
            &format!("{p}/aws-keys"),
            None,
        )
        .await;
        // Devices.
        mx.cell(
            m,
            "admin",
            "register a device",
            Method::POST,
            &format!("{p}/devices"),
            Some(json!({"dsn": format!("DEV-{}", r.to_uppercase()), "name": r})),
        )
        .await;
        mx.cell(
            m,
            "admin",
            "rename a device",
            Method::PATCH,
            "/api/v1/devices/ROLES1",
            Some(json!({"name": format!("renamed by {r}")})),
        )
        .await;
        mx.cell(
            m,
            "admin",
            "re-enroll a device",
            Method::POST,
            "/api/v1/devices/ROLES1/enrollment",
            None,
        )
        .await;
        // Members.
        mx.cell(
            m,
            "admin",
            "invite",
            Method::POST,
            &format!("{p}/invitations"),
            Some(json!({"email": format!("inv-{r}@roles.test"), "role": "viewer"})),
        )
        .await;
        mx.cell(
            m,
            "admin",
            "list invitations",
            Method::GET,
            &format!("{p}/invitations"),
            None,
        )
        .await;
        let role = if rank(r).is_multiple_of(2) { "viewer" } else { "member" };
        mx.cell(
            m,
            "admin",
            "change a member's role",
            Method::PATCH,
            &format!("{p}/members/{spare_id}"),
            Some(json!({"role": role})),
        )
        .await;
        // Owners only.
        mx.cell(
            m,
            "owner",
            "rename the project",
            Method::PATCH,
            &p,
            Some(json!({"name": format!("named by {r}")})),
        )
        .await;
        mx.cell(
            m,
            "owner",
            "invite an owner",
            Method::POST,
            &format!("{p}/invitations"),
            Some(json!({"email": format!("own-{r}@roles.test"), "role": "owner"})),
        )
        .await;
        mx.cell(
            m,
            "owner",
            "make an owner",
            Method::PATCH,
            &format!("{p}/members/{spare_id}"),
            Some(json!({"role": "owner"})),
        )
        .await;
        if r == "owner" {
            // Back to a plain member, for the next roles' attempts.
            s.call(
                Method::PATCH,
                &format!("{p}/members/{spare_id}"),
                &owner.token,
                Some(&json!({"role": "member"})),
            )
            .await
            .expect("demote");
        }
    }
    assert!(
        mx.cells >= 4 * 30,
        "every row tried by every role ({} cells)",
        mx.cells
    );

    // Deleting the project: owners only; tried on a second project with the same members.
    let (pid2, _) = s
        .project_with_device(&owner.token, "ROLES2")
        .await
        .expect("project 2");
    for m in &people[1..] {
        add(&s, &admin, pid2, m.id, m.role).await;
    }
    for m in people.iter().rev() {
        mx.cell(
            m,
            "owner",
            "delete the project",
            Method::DELETE,
            &format!("/api/v1/projects/{pid2}"),
            None,
        )
        .await;
    }

    // An admin cannot remove an owner; anyone may leave; the last owner may not.
    let admin_member = &people[1];
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("{p}/members/{}", owner.id),
            &admin_member.token,
            None,
        )
        .await
        .expect("remove owner");
    assert_eq!(status, StatusCode::FORBIDDEN);
    let viewer = &people[3];
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("{p}/members/{}", viewer.id),
            &viewer.token,
            None,
        )
        .await
        .expect("leave");
    assert_eq!(status, StatusCode::OK, "a viewer may leave");
    let (status, _) = s
        .call(
            Method::DELETE,
            &format!("{p}/members/{}", owner.id),
            &owner.token,
            None,
        )
        .await
        .expect("last owner");
    assert_eq!(status, StatusCode::CONFLICT, "the last owner stays");

    // An outsider sees nothing: 404, never 403.
    for (method, path) in [
        (Method::GET, p.clone()),
        (Method::GET, rt.clone()),
        (Method::GET, format!("{t}/access-log")),
        (Method::POST, format!("{p}/invitations")),
        (Method::DELETE, p.clone()),
    ] {
        let body = json!({"email": "x@roles.test", "role": "viewer"});
        let (status, _) = s
            .call(method.clone(), &path, &outsider, Some(&body))
            .await
            .expect("outsider");
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{method} {path} as an outsider"
        );
    }

    // Adding by user id is for server administrators only (no email oracle for others).
    let (status, body) = s
        .call(
            Method::POST,
            &format!("{p}/members"),
            &owner.token,
            Some(&json!({"user_id": spare_id + 1000})),
        )
        .await
        .expect("add by id");
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(!body.to_string().contains("no such user"));
}
