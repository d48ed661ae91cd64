//! One handler per subcommand; each returns the process exit code.

pub mod demo;
pub mod remote;
pub mod run;
pub mod sandbox;

use crate::cli::{Cli, Command};
use crate::exit;
use crate::journal::RemoteCommand;

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> color_eyre::Result<i32> {
    let url = cli.database_url.as_deref();
    Ok(match cli.command {
        Command::Run(args) => run::run(args, url).await,
        Command::Rollback(args) => run::rollback(args, url).await,
        Command::Status(args) => remote::status(args.plan.as_deref(), url).await,
        Command::Advance(a) => remote::send(RemoteCommand::Advance, &a.plan, url).await,
        Command::Pause(a) => remote::send(RemoteCommand::Pause, &a.plan, url).await,
        Command::Resume(a) => remote::send(RemoteCommand::Resume, &a.plan, url).await,
        Command::Abort(a) => remote::send(RemoteCommand::Abort, &a.plan, url).await,
        Command::Sandbox(cmd) => return sandbox::run(cmd, url).await,
        Command::Demo(args) => return demo::run(args).await,
        other => not_available(&other),
    })
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
