//! `cutover demo`: no database needed. A throwaway primary + replica, the
//! demo table, steady application traffic, and the cockpit on a plan.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use color_eyre::eyre::WrapErr;
use rand::RngExt;

use super::run::headless;
use crate::cli::DemoArgs;
use crate::db::{Conn, Source, Target};
use crate::engine::driver::{RunOptions, spawn_run};
use crate::plan::{self, LoadedPlan};
use crate::report::{self, HeadlessOptions};
use crate::sandbox::{Sandbox, SandboxOptions};

/// The plan the demo runs unless `--plan` says otherwise.
const DEFAULT_PLAN: &str = include_str!("../../plans/rename_column_with_trigger.toml");

/// Runs the demo; returns the exit code.
pub async fn run(args: DemoArgs) -> color_eyre::Result<i32> {
    let loaded: LoadedPlan = match &args.plan {
        Some(path) => match plan::load(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(crate::exit::USAGE);
            }
        },
        None => plan::from_text(
            Path::new("plans/rename_column_with_trigger.toml (built in)"),
            DEFAULT_PLAN,
        )
        .map_err(|e| color_eyre::eyre::eyre!("{e}"))?,
    };
    if args.rows < 1 {
        eprintln!("error: --rows must be at least 1");
        return Ok(crate::exit::USAGE);
    }
    // A plan that moves tables gets a target cluster (`--database target=…`).
    let moves = !loaded.plan.databases.is_empty();
    eprintln!(
        "demo: starting a scratch PostgreSQL primary and streaming replica{}…",
        if moves { ", and a target cluster" } else { "" }
    );
    let opts = SandboxOptions {
        target: moves,
        ..SandboxOptions::default()
    };
    let sandbox = tokio::task::spawn_blocking(move || Sandbox::start(&opts))
        .await
        .wrap_err("sandbox start-up task failed")??;
    let target = Target::parse(&sandbox.primary_url(), Source::Flag)?;
    let flags: Vec<String> = loaded
        .plan
        .databases
        .iter()
        .filter_map(|name| {
            // Every other database of the plan: one per name on the target cluster.
            let url = sandbox.target_url_for("postgres")?;
            Some(format!("{name}={url}"))
        })
        .collect();
    let databases = crate::db::databases::Databases::resolve(
        &loaded.path,
        &crate::plan::databases::declared(&loaded.plan),
        &flags,
    )
    .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let setup = Conn::connect(&target).await?;
    super::sandbox::seed_with_progress(&setup, args.rows, false).await?;
    let rows = args.rows;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = spawn_traffic(&target, rows, args.rate, stop.clone());
    eprintln!(
        "demo: application traffic at {}/s (point reads and updates); running {}",
        args.rate,
        loaded.path.display()
    );
    let opts = RunOptions {
        yes: args.yes,
        force_changed_plan: false,
        databases,
    };
    let taps = crate::report::taps::Taps::open(
        &loaded.plan,
        args.metrics.as_deref(),
        args.events.as_deref(),
    )
    .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let code = if headless(args.headless, args.json) {
        let plan_path = loaded.path.display().to_string();
        let handle = taps.attach(spawn_run(loaded, target, opts));
        report::run(
            handle,
            HeadlessOptions {
                json: args.json,
                plan_path,
                yes: args.yes,
            },
        )
        .await
    } else {
        crate::ui::run_cockpit(loaded, target, opts, taps).await?
    };
    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        let _ = t.await;
    }
    eprintln!("demo: stopping the sandbox…");
    tokio::task::spawn_blocking(move || sandbox.stop())
        .await
        .wrap_err("sandbox shutdown task failed")?;
    Ok(code)
}

/// Point reads and updates by random id at `rate` statements a second,
/// over two connections, until `stop`; errors (a column a contract phase
/// dropped) are counted, not fatal.
fn spawn_traffic(
    target: &Target,
    rows: i64,
    rate: u32,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let per_conn = (rate.max(2) / 2) as u64;
    let period = Duration::from_micros(1_000_000 / per_conn.max(1));
    (0..2)
        .map(|i| {
            let target = target.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let Ok(c) = Conn::connect(&target).await else {
                    return;
                };
                let mut tick = tokio::time::interval(period);
                let mut errors = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let id = rand::rng().random_range(1..=rows);
                    let sql = if i == 0 {
                        format!("SELECT email FROM users WHERE id = {id}")
                    } else {
                        format!("UPDATE users SET age = {}, email = 'user{id}@example.org' WHERE id = {id}", id % 90)
                    };
                    if c.client.simple_query(&sql).await.is_err() {
                        errors += 1;
                    }
                }
                if errors > 0 {
                    tracing::info!("demo traffic: {errors} statements failed");
                }
            })
        })
        .collect()
}
