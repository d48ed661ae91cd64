//! One handler per subcommand; each returns the process exit code.

pub mod sandbox;

use crate::cli::{Cli, Command};
use crate::exit;

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> color_eyre::Result<i32> {
    match cli.command {
        Command::Sandbox(cmd) => sandbox::run(cmd, cli.database_url.as_deref()).await,
        other => Ok(not_available(&other)),
    }
}

fn not_available(cmd: &Command) -> i32 {
    let name = format!("{cmd:?}")
        .split(['(', ' '])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    eprintln!(
        "cutover {name}: not available yet in this version; \
         see README.md (\"Status\") for what works today"
    );
    exit::USAGE
}
