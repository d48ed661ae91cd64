//! One handler per subcommand; each returns the process exit code.

pub mod check;
pub mod demo;
pub mod history;
pub mod lint;
pub mod migrate;
pub mod remote;
pub mod rollback;
pub mod run;
pub mod sandbox;
pub mod status;

use crate::cli::{Cli, Command};
use crate::journal::RemoteCommand;

/// Prints to stdout; a closed pipe (`cutover plan … | head`) is not an
/// error worth a crash.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> color_eyre::Result<i32> {
    let url = cli.database_url.as_deref();
    let dbs = cli.databases.as_slice();
    Ok(match cli.command {
        Command::Run(args) => run::run(args, url, dbs).await,
        Command::Rollback(args) => rollback::rollback(args, url, dbs).await,
        Command::Status(args) => status::status(args, url).await,
        Command::Advance(a) => {
            remote::advance(a.plan.as_deref(), a.run, a.confirm.as_deref(), url).await
        }
        Command::Set(a) => remote::set(a, url).await,
        Command::ReleaseReplica(a) => remote::release_replica(a, url).await,
        Command::Pause(a) => {
            remote::send(RemoteCommand::Pause, a.plan.as_deref(), a.run, url).await
        }
        Command::Resume(a) => {
            remote::send(RemoteCommand::Resume, a.plan.as_deref(), a.run, url).await
        }
        Command::Abort(a) => {
            remote::send(RemoteCommand::Abort, a.plan.as_deref(), a.run, url).await
        }
        Command::Sandbox(cmd) => return sandbox::run(cmd, url).await,
        Command::Demo(args) => return demo::run(args).await,
        Command::Check(args) => check::run(args, url, dbs).await,
        Command::Lint(args) => lint::lint(args),
        Command::Plan(args) => lint::plan(args),
        Command::Migrate(args) => migrate::migrate(args, url, dbs).await,
        Command::History(args) => history::history(args, url).await,
        Command::Baseline(args) => history::baseline(args, url).await,
    })
}
