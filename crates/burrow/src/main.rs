use std::net::SocketAddr;
use std::path::PathBuf;

use std::process::ExitCode;

use anyhow::Context;
use burrow::cli::config_args::ConfigArgs;
use burrow::cli::{devices, doctor, exit_code, login, projects, sharing, tunnel, tunnels};
use burrow_agent::cli::{execute, init_tracing, secret_from, shutdown_signal, AgentAction};
use clap::{Args, CommandFactory, Parser, Subcommand};

// jemalloc, not glibc's malloc: the server allocates on one worker thread and frees on
// another (a request's buffers cross tasks), and glibc's arenas then contend on their locks.
// Measured in docs/benchmarks.md (issue 18, fifth pass): about a fifth less server CPU per
// request, a quarter fewer context switches. The standalone `burrow-agent` keeps glibc's,
// which holds its idle memory lower.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// One reverse tunnel: describe or rotate it, its API keys, share links and limits
    /// (JSON), its custom domains, its access log (`logs [--follow]`), `open` its URL.
    Tunnel(tunnel::TunnelArgs),
    /// A device's reverse tunnels: list, show, create, update, delete.
    Tunnels(tunnels::TunnelsArgs),
    /// Projects: list, show, create.
    Projects(projects::ProjectsArgs),
    /// A project's members: list, create (add a user).
    Members(projects::MembersArgs),
    /// Devices: list, show, create (prints the enrollment command), revoke, delete.
    Devices(devices::DevicesArgs),
    /// A tunnel's API keys: list, create (the key is shown once), delete.
    Keys(sharing::KeysArgs),
    /// A tunnel's share links: list, create (the URL is shown once), delete.
    Links(sharing::LinksArgs),
    /// Sign in and store a personal access token (~/.config/burrow/token, mode 0600).
    Login(login::LoginArgs),
    /// Revoke the stored personal access token and forget it.
    Logout {
        /// The server's base URL (default: the one `burrow login` stored). Env: BURROW_SERVER.
        #[arg(long, env = "BURROW_SERVER")]
        server: Option<String>,
    },
    /// Check the server's configuration, certificates, device URLs and database.
    Doctor(doctor::DoctorArgs),
    /// Print a shell completion script: `burrow completions bash > /etc/bash_completion.d/burrow`.
    Completions { shell: clap_complete::Shell },
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
struct ServerArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Validate the configuration, print it (secrets masked) and exit.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The agent runs on one thread, as the standalone `burrow-agent` does; everything else
    // (the server above all) on a worker per core.
    let runtime = match cli.command {
        Command::Agent(_) => burrow_agent::cli::runtime(),
        _ => tokio::runtime::Runtime::new(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Server(args) => server(args).await,
        Command::Agent(args) => execute(args.action).await,
        Command::Connect(args) => connect(args).await,
        Command::Tunnel(args) => tunnel::tunnel(args).await,
        Command::Tunnels(args) => tunnels::tunnels(args).await,
        Command::Projects(args) => projects::projects(args).await,
        Command::Members(args) => projects::members(args).await,
        Command::Devices(args) => devices::devices(args).await,
        Command::Keys(args) => sharing::keys(args).await,
        Command::Links(args) => sharing::links(args).await,
        Command::Login(args) => login::login(args).await,
        Command::Logout { server } => login::logout(server).await,
        Command::Doctor(args) => doctor::doctor(args).await,
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "burrow", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
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

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let config = args.config.load()?;
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
    let scheme = if config.serves_tls() { "https" } else { "http" };
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
