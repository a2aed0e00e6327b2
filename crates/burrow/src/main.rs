use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use burrow::config::{Config, FlagOverrides};
use burrow::sharing_cli::{keys_request, links_request, KeysAction, LinksAction};
use burrow_agent::cli::{execute, init_tracing, secret_from, shutdown_signal, AgentAction};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "burrow",
    version,
    about = "Public URLs for the services of every device in a fleet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: API, web UI, broker, edge and scheduler in one process.
    Server(ServerArgs),
    /// The device side: enroll once, then run (carries the device's tunnels).
    Agent(AgentArgs),
    /// Raw TCP to a device's service through a tunnel, as its source (like `localproxy -s`).
    Connect(ConnectArgs),
    /// A reverse tunnel through the API: describe or rotate it, manage its API keys and
    /// share links.
    Tunnel(TunnelArgs),
}

#[derive(Args)]
struct AgentArgs {
    #[command(subcommand)]
    action: AgentAction,
}

#[derive(Args)]
struct ConnectArgs {
    /// The broker: ws://HOST:PORT (main port) or wss://HOST:PORT (device port).
    #[arg(long, default_value = "ws://localhost:8700")]
    server: String,
    /// File holding the source access token (never pass tokens in argv).
    /// Env: BURROW_CONNECT_TOKEN holds the token itself.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Local address to accept connections on.
    #[arg(long)]
    listen: SocketAddr,
    /// The tunnel's service to reach (optional for a one-service tunnel).
    #[arg(long)]
    service: Option<String>,
    /// CA certificate (PEM) to trust for wss://.
    #[arg(long)]
    ca: Option<PathBuf>,
}

#[derive(Args)]
struct TunnelArgs {
    #[command(subcommand)]
    action: TunnelAction,
    /// The server's base URL.
    #[arg(long, global = true, default_value = "http://localhost:8700")]
    server: String,
    /// File holding a user JWT (from /api/v1/auth/login). Env: BURROW_TOKEN.
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum TunnelAction {
    /// Status, connection states, expiry and the agent's last contact.
    Describe { dsn: String, id: i64 },
    /// Rotate now: a new broker tunnel and tokens; prints the new tunnel_id and expires_at.
    Rotate { dsn: String, id: i64 },
    /// The tunnel's API keys (machines send one as `Authorization: Bearer` or
    /// `X-Burrow-Key`).
    #[command(subcommand)]
    Keys(KeysAction),
    /// The tunnel's share links (a browser session for this tunnel only, until expiry).
    #[command(subcommand)]
    Links(LinksAction),
    /// Set or remove the tunnel's traffic limits (only the options given change).
    Limits(LimitsArgs),
}

#[derive(Args)]
struct LimitsArgs {
    dsn: String,
    id: i64,
    /// Requests per second admitted (over it: 429). 0 removes the rate limit.
    #[arg(long)]
    rate: Option<i64>,
    /// Requests allowed at once above the rate (default: the rate).
    #[arg(long, requires = "rate")]
    burst: Option<i64>,
    /// What one rate bucket counts: tunnel or client_ip.
    #[arg(long, requires = "rate")]
    per: Option<String>,
    /// Bytes per second each direction. 0 removes the bandwidth limit.
    #[arg(long)]
    bandwidth: Option<i64>,
    /// Requests one client address may have open at once. 0 removes the limit.
    #[arg(long)]
    max_connections: Option<i64>,
}

impl LimitsArgs {
    /// The update body: given options only; 0 is `null` (remove). The server validates.
    fn body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        if let Some(rate) = self.rate {
            let v = if rate == 0 {
                serde_json::Value::Null
            } else {
                let mut r = serde_json::json!({"requests_per_second": rate});
                if let Some(b) = self.burst {
                    r["burst"] = b.into();
                }
                if let Some(p) = &self.per {
                    r["per"] = p.clone().into();
                }
                r
            };
            body.insert("rate_limit".into(), v);
        }
        if let Some(bw) = self.bandwidth {
            let v = if bw == 0 {
                serde_json::Value::Null
            } else {
                serde_json::json!({"bytes_per_second": bw})
            };
            body.insert("bandwidth_limit".into(), v);
        }
        if let Some(n) = self.max_connections {
            let v = if n == 0 {
                serde_json::Value::Null
            } else {
                n.into()
            };
            body.insert("max_connections_per_client".into(), v);
        }
        serde_json::Value::Object(body)
    }
}

#[derive(Args)]
struct ServerArgs {
    /// Config file (TOML); default ./burrow.toml when present. Env: BURROW_CONFIG.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address of the HTTP listener. Env: BURROW_LISTEN.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Data directory (SQLite database, keys). Env: BURROW_DATA_DIR.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Domain below which tunnels get their names. Env: BURROW_BASE_DOMAIN.
    #[arg(long)]
    base_domain: Option<String>,
    /// Address of the devices' mutual-TLS listener. Env: BURROW_DEVICE_LISTEN.
    #[arg(long)]
    device_listen: Option<SocketAddr>,
    /// What enrolled devices dial for the device listener: https://HOST[:PORT], several
    /// comma-separated. Env: BURROW_DEVICE_URL.
    #[arg(long)]
    device_url: Option<String>,
    /// Address of a listener for /metrics, /healthz and /readyz only. Env:
    /// BURROW_METRICS_LISTEN.
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Validate the configuration, print it (secrets masked) and exit.
    #[arg(long)]
    check_config: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server(args).await,
        Command::Agent(args) => execute(args.action).await,
        Command::Connect(args) => connect(args).await,
        Command::Tunnel(args) => tunnel(args).await,
    }
}

async fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    init_tracing("info");
    let token = secret_from(args.token_file.as_deref(), "BURROW_CONNECT_TOKEN")?;
    let reason = burrow_client::run_connect(
        &args.server,
        burrow_client::Secret::new(token),
        args.listen,
        args.service,
        args.ca,
    )
    .await?;
    tracing::info!(?reason, "tunnel closed");
    Ok(())
}

async fn tunnel(args: TunnelArgs) -> anyhow::Result<()> {
    let token = secret_from(args.token_file.as_deref(), "BURROW_TOKEN")?;
    let base = args.server.trim_end_matches('/');
    let http = reqwest::Client::new();
    let req = match &args.action {
        TunnelAction::Describe { dsn, id } => http.get(format!(
            "{base}/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/describe"
        )),
        TunnelAction::Rotate { dsn, id } => http.post(format!(
            "{base}/api/v1/reverse-tunnels/devices/{dsn}/reverse-tunnels/{id}/rotate"
        )),
        TunnelAction::Keys(action) => sharing(&http, base, keys_request(action)),
        TunnelAction::Links(action) => sharing(&http, base, links_request(action)),
        TunnelAction::Limits(l) => http
            .put(format!(
                "{base}/api/v1/reverse-tunnels/devices/{}/reverse-tunnels/{}",
                l.dsn, l.id
            ))
            .json(&l.body()),
    };
    let resp = req.bearer_auth(token).send().await?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    println!("{}", serde_json::to_string_pretty(&body)?);
    anyhow::ensure!(status.is_success(), "server answered {status}");
    Ok(())
}

fn sharing(
    http: &reqwest::Client,
    base: &str,
    (method, path, body): (reqwest::Method, String, Option<serde_json::Value>),
) -> reqwest::RequestBuilder {
    let req = http.request(method, format!("{base}{path}"));
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let flags = FlagOverrides {
        listen: args.listen,
        data_dir: args.data_dir,
        base_domain: args.base_domain,
        device_listen: args.device_listen,
        device_url: args.device_url,
        metrics_listen: args.metrics_listen,
    };
    let config = Config::load(args.config.as_deref(), flags)?;
    if args.check_config {
        print!("{}", config.describe());
        println!("configuration OK");
        return Ok(());
    }
    init_tracing(&config.log);
    let running = burrow::server::start(config.clone())
        .await
        .context("starting burrow server")?;
    let port = running.addr.port();
    let scheme = if config.tls().is_some() {
        "https"
    } else {
        "http"
    };
    let origin = config.api_origin(port);
    println!("burrow server listening on {scheme}://{}", running.addr);
    println!("  web UI:  {origin}/");
    println!("  API:     {origin}/api/v1  (OpenAPI: /api/v1/openapi.json)");
    println!("  tunnels: {scheme}://<name>.{}:{port}", config.base_domain);
    println!(
        "  devices: {} (what devices dial: config endpoint over mTLS, broker over TLS; \
         listening on {})",
        running.device_urls, running.device_addr
    );
    if let Some(admin) = &running.admin {
        println!();
        println!("First start: created administrator");
        println!("  email:    {}", admin.email);
        if let Some(file) = &admin.password_file {
            // The password itself stays off stdout (service managers keep stdout in logs).
            println!("  password file: {}", file.display());
            println!("  (readable by you only; store the password safely, then delete the file)");
        } else {
            println!("  password: (from BURROW_ADMIN_PASSWORD)");
        }
        println!();
    }
    // Last line of the banner (scripts wait for it).
    println!("  data:    {}", config.data_dir.display());
    running.run_until(shutdown_signal()).await
}
