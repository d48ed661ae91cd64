use clap::Parser;

use cutover::cli::{Cli, Command};
use cutover::commands;

fn main() {
    if let Err(e) = color_eyre::install() {
        eprintln!("cutover: cannot install the error reporter: {e}");
    }
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The cockpit owns the screen: its logs go to a file, never to it.
    let cockpit = match &cli.command {
        Command::Run(a) => !cutover::commands::run::headless(a.headless, a.json),
        Command::Demo(a) => !cutover::commands::run::headless(a.headless, a.json),
        _ => false,
    };
    let log_file = cockpit
        .then(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cutover::ui::log_path())
                .ok()
        })
        .flatten();
    match log_file {
        Some(file) => tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file))
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cutover: cannot start the async runtime: {e}");
            std::process::exit(cutover::exit::FAILED);
        }
    };
    let code = match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(report) => {
            eprintln!("Error: {report:?}");
            cutover::exit::FAILED
        }
    };
    // Drop the runtime (and with it any sandbox) before exiting.
    drop(runtime);
    std::process::exit(code);
}
