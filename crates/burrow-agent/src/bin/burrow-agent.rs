//! `burrow-agent`: the device side alone (`enroll`, `run`, `status`, `doctor`), the same commands as
//! `burrow agent ...` in a binary a fraction of the server's size.

use burrow_agent::cli::{execute, AgentAction};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "burrow-agent",
    version,
    about = "burrow's device agent: carries the device's reverse tunnels"
)]
struct Cli {
    #[command(subcommand)]
    action: AgentAction,
}

fn main() -> anyhow::Result<()> {
    let action = Cli::parse().action;
    burrow_agent::cli::runtime()?.block_on(execute(action))
}
