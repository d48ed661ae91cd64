//! `cutover sandbox start|seed`.

use std::io::Write;

use color_eyre::eyre::WrapErr;

use crate::cli::{SandboxCommand, SandboxSeedArgs, SandboxStartArgs};
use crate::db::{Conn, Target};
use crate::exit;
use crate::sandbox::{Sandbox, SandboxOptions, seed};

/// Runs a sandbox subcommand.
pub async fn run(cmd: SandboxCommand, database_url: Option<&str>) -> color_eyre::Result<i32> {
    match cmd {
        SandboxCommand::Start(args) => start(args).await,
        SandboxCommand::Seed(args) => seed_target(args, database_url).await,
    }
}

async fn start(args: SandboxStartArgs) -> color_eyre::Result<i32> {
    let signals = StopSignals::register()?;
    let opts = SandboxOptions {
        replica: !args.no_replica,
        durable: args.durable,
        tls: false,
        target: args.target,
    };
    eprintln!(
        "starting a scratch PostgreSQL primary{}{}…",
        if opts.replica {
            " and a streaming replica"
        } else {
            ""
        },
        if opts.target {
            ", and a target cluster to move tables to (the primary with wal_level = logical)"
        } else {
            ""
        }
    );
    let started = std::time::Instant::now();
    let sandbox = tokio::task::spawn_blocking(move || Sandbox::start(&opts))
        .await
        .wrap_err("sandbox start-up task failed")??;
    let elapsed = started.elapsed();
    if let Some(rows) = args.rows {
        let target = Target::parse(&sandbox.primary_url(), crate::db::Source::Flag)?;
        let conn = Conn::connect(&target).await?;
        seed_with_progress(&conn, rows, false).await?;
    }
    // The banner goes out whole; a reader that stops listening (`| head`)
    // must not stop the servers it was told about.
    let mut banner = format!(
        "sandbox up in {:.1}s\n  primary  {}\n",
        elapsed.as_secs_f64(),
        sandbox.primary_url()
    );
    if let Some(url) = sandbox.replica_url() {
        banner += &format!("  replica  {url}\n");
    }
    let target = sandbox.target_url_for("postgres");
    if let Some(url) = &target {
        banner += &format!("  target   {url}\n");
    }
    banner += &format!(
        "  data     {} (removed when the sandbox stops)\n\n  export DATABASE_URL='{}'\n",
        sandbox.dir().display(),
        sandbox.primary_url()
    );
    if let Some(url) = &target {
        banner += &format!(
            "  export CUTOVER_DATABASE_TARGET='{url}'\n  \
             (or pass: --database target={url})\n"
        );
    }
    banner += "\nPress Ctrl-C to stop the servers and remove the data.\n";
    super::emit(&banner);
    signals.recv().await;
    eprintln!("stopping the sandbox…");
    tokio::task::spawn_blocking(move || sandbox.stop())
        .await
        .wrap_err("sandbox shutdown task failed")?;
    eprintln!("sandbox stopped and removed");
    Ok(exit::OK)
}

/// Ctrl-C, SIGTERM or SIGHUP: registered *before* the URLs are printed, so
/// a signal sent as soon as they appear is never lost.
struct StopSignals(Vec<tokio::signal::unix::Signal>);

impl StopSignals {
    fn register() -> std::io::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignals(vec![
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ]))
    }

    async fn recv(mut self) {
        let waits = self
            .0
            .iter_mut()
            .map(|s| Box::pin(async move { s.recv().await }));
        futures_util::future::select_all(waits).await;
    }
}

async fn seed_target(args: SandboxSeedArgs, database_url: Option<&str>) -> color_eyre::Result<i32> {
    let target = Target::resolve(database_url)?;
    let conn = Conn::connect(&target).await?;
    eprintln!("seeding users in {}", target.display());
    seed_with_progress(&conn, args.rows, args.replace).await?;
    Ok(exit::OK)
}

/// Seeds `users`, showing progress on stderr.
pub async fn seed_with_progress(conn: &Conn, rows: i64, replace: bool) -> color_eyre::Result<()> {
    if rows < 1 {
        color_eyre::eyre::bail!("--rows must be at least 1 (got {rows})");
    }
    let mut report = |done: i64| {
        eprint!("\r  users: {done}/{rows} rows");
        let _ = std::io::stderr().flush();
    };
    let took = seed::seed_users(&conn.client, rows, replace, &mut report).await?;
    eprintln!(
        "\r  users: {rows} rows seeded in {:.1}s",
        took.as_secs_f64()
    );
    Ok(())
}
