use tracing_subscriber::Layer;

use cutover::cli::{Cli, Command};
use cutover::commands;

fn main() {
    if let Err(e) = color_eyre::install() {
        eprintln!("cutover: cannot install the error reporter: {e}");
    }
    // `cutover status | head -1`: a closed pipe ends the process quietly,
    // as it does for any Unix tool, instead of a panic on the next print.
    // SAFETY: setting a signal disposition to its default before any thread
    // starts.
    unsafe {
        let _ = nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        );
    }
    let cli = Cli::parse_args();
    init_tracing(&cli);
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

/// Logs go to a file for a run (the cockpit owns the screen, and headless
/// output is for programs and people: one line per event, nothing else);
/// other commands log warnings to stderr, coloured only on a terminal.
/// The error layer lets a report show the spans it passed through.
fn init_tracing(cli: &Cli) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let env = |default: &str| {
        tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
    };
    let to_file = matches!(
        &cli.command,
        Command::Run(_) | Command::Demo(_) | Command::Rollback(_) | Command::Migrate(_)
    );
    let log_file = to_file
        .then(|| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(cutover::report::log_file::path())
                .ok()
        })
        .flatten();
    let registry = tracing_subscriber::registry().with(tracing_error::ErrorLayer::default());
    match log_file {
        Some(file) => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(std::sync::Mutex::new(file))
                    .with_filter(env("info")),
            )
            .init(),
        None => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr)
                    .with_filter(env("warn")),
            )
            .init(),
    }
}
