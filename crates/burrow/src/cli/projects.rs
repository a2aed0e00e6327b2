//! `burrow projects ...` and `burrow members ...`: projects and who is in them.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::api::Api;
use super::output::{self, Col};
use super::ApiArgs;
use crate::col;

#[derive(Args)]
pub struct ProjectsArgs {
    #[command(subcommand)]
    action: ProjectsAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand)]
enum ProjectsAction {
    /// The projects you are a member of.
    List,
    /// A new project; you become its owner.
    Create {
        #[arg(long)]
        name: String,
    },
    /// One project.
    Show { id: i64 },
    /// Rename a project (its owners).
    Update {
        id: i64,
        #[arg(long)]
        name: String,
    },
    /// Delete a project: its devices are revoked, their tunnels closed (its owners).
    Delete { id: i64 },
}

const PROJECT: [Col; 4] = [
    col!("ID", "id"),
    col!("NAME", "name"),
    col!("ROLE", "role"),
    col!("CREATED", "created_at"),
];

pub async fn projects(args: ProjectsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let value = match &args.action {
        ProjectsAction::List => api.get("/api/v1/projects").await?,
        ProjectsAction::Create { name } => {
            let body = json!({ "name": name });
            api.call(Method::POST, "/api/v1/projects", Some(&body))
                .await?
        }
        ProjectsAction::Show { id } => api.get(&format!("/api/v1/projects/{id}")).await?,
        ProjectsAction::Update { id, name } => {
            let body = json!({ "name": name });
            let path = format!("/api/v1/projects/{id}");
            api.call(Method::PATCH, &path, Some(&body)).await?
        }
        ProjectsAction::Delete { id } => {
            let path = format!("/api/v1/projects/{id}");
            api.call(Method::DELETE, &path, None).await?
        }
    };
    if args.api.json {
        output::json(&value);
    } else if let ProjectsAction::Delete { id } = &args.action {
        println!("deleted project {id}");
    } else if matches!(args.action, ProjectsAction::List) {
        print!("{}", output::table(output::items(&value), &PROJECT));
    } else {
        print!("{}", output::record(&value, &PROJECT));
    }
    Ok(())
}

#[derive(Args)]
pub struct MembersArgs {
    #[command(subcommand)]
    action: MembersAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand)]
enum MembersAction {
    /// The project's members and their roles.
    List {
        #[arg(long)]
        project: i64,
    },
    /// Invite an email with a role (owners and admins): prints the link to pass on, once.
    Invite {
        #[arg(long)]
        project: i64,
        #[arg(long)]
        email: String,
        /// owner, admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Add an existing user directly (server administrators only; others invite).
    Create {
        #[arg(long)]
        project: i64,
        /// The user's id (administrators see them in the web UI's Users page).
        #[arg(long)]
        user_id: i64,
        /// owner, admin, member (default) or viewer.
        #[arg(long)]
        role: Option<String>,
    },
    /// Change a member's role (never the last owner's).
    Update {
        #[arg(long)]
        project: i64,
        #[arg(long)]
        user_id: i64,
        /// owner, admin, member or viewer.
        #[arg(long)]
        role: String,
    },
    /// Remove a member, or leave the project with your own id (never the last owner).
    Delete {
        #[arg(long)]
        project: i64,
        #[arg(long)]
        user_id: i64,
    },
}

const MEMBER: [Col; 3] = [
    col!("USER", "user_id"),
    col!("EMAIL", "email"),
    col!("ROLE", "role"),
];

pub async fn members(args: MembersArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let (value, list) = match &args.action {
        MembersAction::List { project } => (
            api.get(&format!("/api/v1/projects/{project}/members"))
                .await?,
            true,
        ),
        MembersAction::Invite {
            project,
            email,
            role,
        } => {
            let body = json!({ "email": email, "role": role });
            let path = format!("/api/v1/projects/{project}/invitations");
            (api.call(Method::POST, &path, Some(&body)).await?, false)
        }
        MembersAction::Create {
            project,
            user_id,
            role,
        } => {
            let body = json!({ "user_id": user_id, "role": role });
            let path = format!("/api/v1/projects/{project}/members");
            (api.call(Method::POST, &path, Some(&body)).await?, false)
        }
        MembersAction::Update {
            project,
            user_id,
            role,
        } => {
            let body = json!({ "role": role });
            let path = format!("/api/v1/projects/{project}/members/{user_id}");
            (api.call(Method::PATCH, &path, Some(&body)).await?, false)
        }
        MembersAction::Delete { project, user_id } => {
            let path = format!("/api/v1/projects/{project}/members/{user_id}");
            (api.call(Method::DELETE, &path, None).await?, false)
        }
    };
    if args.api.json {
        output::json(&value);
    } else if let MembersAction::Delete { project, user_id } = &args.action {
        println!("removed user {user_id} from project {project}");
    } else if let MembersAction::Invite { email, role, .. } = &args.action {
        println!(
            "invited {email} as {role}; pass on this link (shown once, valid until {}):\n{}",
            value["expires_at"].as_str().unwrap_or("?"),
            value["accept_url"].as_str().unwrap_or("?")
        );
    } else if list {
        print!("{}", output::table(output::items(&value), &MEMBER));
    } else {
        print!("{}", output::record(&value, &MEMBER));
    }
    Ok(())
}
