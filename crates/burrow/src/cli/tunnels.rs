//! `burrow tunnels ...`: a device's reverse tunnels — list, show, create, update, delete.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value};

use super::api::Api;
use super::output::{self, Col};
use super::ApiArgs;
use crate::col;

#[derive(Args)]
pub struct TunnelsArgs {
    #[command(subcommand)]
    action: TunnelsAction,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Subcommand)]
enum TunnelsAction {
    /// The device's tunnels.
    List { dsn: String },
    /// One tunnel.
    Show { dsn: String, id: i64 },
    /// A new tunnel to a service on the device.
    Create {
        dsn: String,
        #[arg(long)]
        name: String,
        /// The service's port on the device.
        #[arg(long)]
        local_port: i64,
        #[command(flatten)]
        fields: Fields,
        /// The tunnel's host name under the base domain (default: chosen by the server).
        #[arg(long)]
        subdomain: Option<String>,
    },
    /// Change a tunnel (only the options given change).
    Update {
        dsn: String,
        id: i64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        local_port: Option<i64>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Delete a tunnel.
    Delete { dsn: String, id: i64 },
}

/// What create and update share.
#[derive(Args)]
struct Fields {
    /// http (default), https, ws or wss.
    #[arg(long)]
    protocol: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// Anyone with the URL may use it (no burrow login in front).
    #[arg(long, conflicts_with = "private")]
    public: bool,
    /// Visitors must log in to burrow (the default for new tunnels).
    #[arg(long)]
    private: bool,
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Keep the tunnel but stop carrying it.
    #[arg(long)]
    disable: bool,
}

impl Fields {
    fn into_body(self, body: &mut Map<String, Value>) {
        let toggle = |on: bool, off: bool| (on || off).then_some(on);
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                body.insert(k.into(), v);
            }
        };
        set("protocol", self.protocol.map(Value::from));
        set("description", self.description.map(Value::from));
        set(
            "require_auth",
            toggle(self.private, self.public).map(Value::from),
        );
        set(
            "is_enabled",
            toggle(self.enable, self.disable).map(Value::from),
        );
    }
}

const TUNNEL: [Col; 9] = [
    col!("ID", "id"),
    col!("NAME", "name"),
    col!("PORT", "local_port"),
    col!("PROTOCOL", "protocol"),
    col!("ENABLED", "is_enabled"),
    col!("LOGIN", "require_auth"),
    col!("AGENT", "agent_connected"),
    col!("STATUS", "status"),
    col!("URL", "public_url"),
];

fn path(dsn: &str) -> String {
    format!("/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels")
}

pub async fn tunnels(args: TunnelsArgs) -> anyhow::Result<()> {
    let api = Api::new(&args.api)?;
    let json = args.api.json;
    let (value, list) = match args.action {
        TunnelsAction::List { dsn } => (api.get(&path(&dsn)).await?, true),
        TunnelsAction::Show { dsn, id } => (api.get(&format!("{}/{id}", path(&dsn))).await?, false),
        TunnelsAction::Create {
            dsn,
            name,
            local_port,
            fields,
            subdomain,
        } => {
            let mut body = Map::new();
            body.insert("name".into(), name.into());
            body.insert("local_port".into(), local_port.into());
            if let Some(s) = subdomain {
                body.insert("subdomain".into(), s.into());
            }
            fields.into_body(&mut body);
            let body = Value::Object(body);
            (
                api.call(Method::POST, &path(&dsn), Some(&body)).await?,
                false,
            )
        }
        TunnelsAction::Update {
            dsn,
            id,
            name,
            local_port,
            fields,
        } => {
            let mut body = Map::new();
            if let Some(n) = name {
                body.insert("name".into(), n.into());
            }
            if let Some(p) = local_port {
                body.insert("local_port".into(), p.into());
            }
            fields.into_body(&mut body);
            let body = Value::Object(body);
            let p = format!("{}/{id}", path(&dsn));
            (api.call(Method::PUT, &p, Some(&body)).await?, false)
        }
        TunnelsAction::Delete { dsn, id } => {
            let p = format!("{}/{id}", path(&dsn));
            let v = api.call(Method::DELETE, &p, None).await?;
            if !json {
                println!("deleted tunnel {id} of device {dsn}");
                return Ok(());
            }
            (v, false)
        }
    };
    if json {
        output::json(&value);
    } else if list {
        print!("{}", output::table(output::items(&value), &TUNNEL));
    } else {
        print!("{}", output::record(&value, &TUNNEL));
    }
    Ok(())
}
