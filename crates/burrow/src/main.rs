use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use burrow::config::{Config, FlagOverrides};
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

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
    /// Validate the configuration, print it (secrets masked) and exit.
    #[arg(long)]
    check_config: bool,
}

fn init_tracing(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server(args).await,
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let flags = FlagOverrides {
        listen: args.listen,
        data_dir: args.data_dir,
        base_domain: args.base_domain,
        device_listen: args.device_listen,
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
    println!("burrow server listening on http://{}", running.addr);
    println!("  API:     http://localhost:{port}/api/v1  (OpenAPI: /api/v1/openapi.json)");
    println!("  tunnels: http://<name>.{}:{port}", config.base_domain);
    println!(
        "  devices: https://localhost:{} (config endpoint over mTLS, broker over TLS)",
        running.device_addr.port()
    );
    if let Some(admin) = &running.admin {
        println!();
        println!("First start: created administrator");
        println!("  email:    {}", admin.email);
        if admin.generated {
            // Printed once, to the terminal only; the database keeps an argon2 hash.
            println!("  password: {}", admin.password.expose());
            println!("  (shown only now; keep it somewhere safe)");
        } else {
            println!("  password: (from BURROW_ADMIN_PASSWORD)");
        }
        println!();
    }
    // Last line of the banner (scripts wait for it).
    println!("  data:    {}", config.data_dir.display());
    running.run_until(shutdown_signal()).await
}

/// Ctrl-C or SIGTERM (systemd's stop).
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
