//! `burrow keys ...` and `burrow links ...`: a tunnel's API keys and share links, as tables
//! (the same calls as `burrow tunnel keys|links ...`, which print JSON). A key or a link's
//! URL is shown once, at creation.

use clap::Args;
use serde_json::Value;

use super::api::Api;
use super::output::{self, Col};
use super::sharing_actions::{keys_request, links_request, KeysAction, LinksAction};
use super::ApiArgs;
use crate::col;

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    action: KeysAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Args)]
pub struct LinksArgs {
    #[command(subcommand)]
    action: LinksAction,
    #[command(flatten)]
    api: ApiArgs,
}

const KEY: [Col; 7] = [
    col!("ID", "id"),
    col!("NAME", "name"),
    col!("PREFIX", "prefix"),
    col!("METHODS", "methods"),
    col!("EXPIRES", "expires_at"),
    col!("LAST USED", "last_used_at"),
    col!("REVOKED", "revoked_at"),
];

const LINK: [Col; 7] = [
    col!("ID", "id"),
    col!("PREFIX", "prefix"),
    col!("NOTE", "note"),
    col!("USES", |l: &Value| match l["max_uses"].as_i64() {
        Some(max) => format!("{}/{max}", output::cell(&l["uses"])),
        None => output::cell(&l["uses"]),
    }),
    col!("METHODS", "methods"),
    col!("EXPIRES", "expires_at"),
    col!("REVOKED", "revoked_at"),
];

async fn run(
    api_args: &ApiArgs,
    (method, path, body): (reqwest::Method, String, Option<Value>),
) -> anyhow::Result<Value> {
    let api = Api::new(api_args)?;
    api.call(method, &path, body.as_ref()).await
}

pub async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let value = run(&args.api, keys_request(&args.action)).await?;
    if args.api.json {
        output::json(&value);
        return Ok(());
    }
    match args.action {
        KeysAction::List { .. } => print!("{}", output::table(output::items(&value), &KEY)),
        KeysAction::Create { .. } => {
            print!("{}", output::record(&value, &KEY[..5]));
            println!("key:     {}", output::cell(&value["key"]));
            println!("(the key is shown only now: store it safely)");
        }
        KeysAction::Revoke { key_id, .. } => println!("revoked key {key_id}"),
    }
    Ok(())
}

pub async fn links(args: LinksArgs) -> anyhow::Result<()> {
    let value = run(&args.api, links_request(&args.action)).await?;
    if args.api.json {
        output::json(&value);
        return Ok(());
    }
    match args.action {
        LinksAction::List { .. } => print!("{}", output::table(output::items(&value), &LINK)),
        LinksAction::Create { .. } => {
            print!("{}", output::record(&value, &LINK[..6]));
            println!("url:     {}", output::cell(&value["url"]));
            println!("(the URL is shown only now)");
        }
        LinksAction::Revoke { link_id, .. } => println!("revoked link {link_id}"),
    }
    Ok(())
}
