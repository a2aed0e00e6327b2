//! `burrow devices ...`: register devices (with their one-time enrollment command), list,
//! show, revoke and delete them.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::json;

use super::api::Api;
use super::output::{self, Col};
use super::ApiArgs;
use crate::col;

#[derive(Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    action: DevicesAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand)]
enum DevicesAction {
    /// Your devices (of every project, or of `--project`).
    List {
        #[arg(long)]
        project: Option<i64>,
    },
    /// Register a device; prints its one-time enrollment command (shown only now).
    Create {
        #[arg(long)]
        project: i64,
        /// The device serial number: 1-64 letters, digits, `-` or `_`.
        #[arg(long)]
        dsn: String,
        #[arg(long)]
        name: String,
    },
    /// One device.
    Show { dsn: String },
    /// Rename a device (its DSN stays).
    Update {
        dsn: String,
        #[arg(long)]
        name: String,
    },
    /// Revoke the device's certificate: it can no longer connect until enrolled again.
    Revoke { dsn: String },
    /// Delete the device and its tunnels.
    Delete { dsn: String },
}

const DEVICE: [Col; 7] = [
    col!("DSN", "dsn"),
    col!("NAME", "name"),
    col!("PROJECT", "project_id"),
    col!("ONLINE", "online"),
    col!("ENROLLED", "enrolled"),
    col!("REVOKED", "revoked"),
    col!("LAST SEEN", "last_seen_at"),
];

pub async fn devices(args: DevicesArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let value = match &args.action {
        DevicesAction::List { project: None } => api.get("/api/v1/devices").await?,
        DevicesAction::List { project: Some(p) } => {
            api.get(&format!("/api/v1/projects/{p}/devices")).await?
        }
        DevicesAction::Create { project, dsn, name } => {
            let body = json!({ "dsn": dsn, "name": name });
            let path = format!("/api/v1/projects/{project}/devices");
            api.call(Method::POST, &path, Some(&body)).await?
        }
        DevicesAction::Show { dsn } => api.get(&format!("/api/v1/devices/{dsn}")).await?,
        DevicesAction::Update { dsn, name } => {
            let body = json!({ "name": name });
            let path = format!("/api/v1/devices/{dsn}");
            api.call(Method::PATCH, &path, Some(&body)).await?
        }
        DevicesAction::Revoke { dsn } => {
            let path = format!("/api/v1/devices/{dsn}/revoke");
            api.call(Method::POST, &path, None).await?
        }
        DevicesAction::Delete { dsn } => {
            api.call(Method::DELETE, &format!("/api/v1/devices/{dsn}"), None)
                .await?
        }
    };
    if args.api.json {
        output::json(&value);
        return Ok(());
    }
    match &args.action {
        DevicesAction::List { .. } => print!("{}", output::table(output::items(&value), &DEVICE)),
        DevicesAction::Delete { dsn } => println!("deleted device {dsn}"),
        DevicesAction::Create { .. } => {
            print!("{}", output::record(&value, &DEVICE));
            println!();
            println!("Enroll it (the token works once; it is not shown again):");
            println!("  {}", output::cell(&value["enrollment_command"]));
        }
        _ => print!("{}", output::record(&value, &DEVICE)),
    }
    Ok(())
}
