//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Zero-downtime PostgreSQL schema migrations, driven from a terminal cockpit.
///
/// A plan (TOML) lists phases — expand, migrate, contract — and their steps.
/// cutover runs them against a live database with lock timeouts and retries,
/// batched and throttled backfills, live lock-wait and replication-lag
/// monitoring, and a checkpoint in the database so any interruption resumes.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, propagate_version = true)]
#[command(after_help = "\
Connection: --database-url, else DATABASE_URL, else libpq's PGHOST, PGPORT, PGUSER,
PGDATABASE, PGPASSWORD (and ~/.pgpass); sslmode=require|verify-ca|verify-full use TLS.
A plan's other databases: --database NAME=URL, else CUTOVER_DATABASE_<NAME>.

Try it without a database:   cutover demo
Before a run: cutover lint PLAN, cutover plan PLAN, cutover check PLAN.
Exit codes: 0 done, 1 failed (or lint/check found something), 2 usage error or
refused by the check, 3 aborted.")]
pub struct Cli {
    /// Database to migrate (postgres://user@host:port/db?sslmode=require).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    /// Another database a plan names (repeatable), e.g. `--database
    /// target=postgres://host/db`; else CUTOVER_DATABASE_<NAME>.
    #[arg(long = "database", global = true, value_name = "NAME=URL")]
    pub databases: Vec<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line. `--database-url` is global (before or after
    /// the subcommand) but hidden from the help of the commands that never
    /// connect (`lint`, `plan`).
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let mut command = Cli::command();
        // Propagates the global flag into the subcommands first.
        command.build();
        for offline in ["lint", "plan"] {
            command = command.mut_subcommand(offline, |c| {
                c.mut_arg("database_url", |a| a.hide(true))
                    .mut_arg("databases", |a| a.hide(true))
            });
        }
        let matches = command.get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a plan: the cockpit on a terminal, one line per event otherwise.
    Run(RunArgs),
    /// Lint a plan and run read-only preflight checks against the database.
    ///
    /// Lints with the server's version and catalog (current column types,
    /// validated checks), then checks: the tables and columns steps name
    /// exist (or an earlier step makes them), backfill keys are unique and
    /// indexed, replicas are visible, no other run of the plan is live, no
    /// long transaction would stall a concurrent index build, and estimates
    /// rows per table. `cutover run` does the same first and refuses to start
    /// on an error. Exit 0 ready, 1 not ready.
    Check(CheckArgs),
    /// Lint SQL files or plans offline: unsafe DDL, with the safe alternative.
    ///
    /// Every statement is parsed with PostgreSQL's grammar; a statement that
    /// cannot be parsed is unsafe. Findings print like a compiler's
    /// (file:line:col, rule, message, help). A plan's `sql` step may carry
    /// `allow_unsafe = "reason"` to run a flagged statement. Exit 0 clean,
    /// 1 when anything unsafe is not allowed, 2 when a file cannot be read.
    Lint(LintArgs),
    /// The dry run: every statement a plan will run, its locks, and findings.
    ///
    /// For each phase and step: the exact SQL (backfill batch statements with
    /// their placeholders), the lock each statement takes and on what, whether
    /// it scans or rewrites the table and what it blocks, whether the step can
    /// be rolled back, and lint findings inline. Offline: nothing is executed.
    Plan(PlanViewArgs),
    /// Show the runs recorded in the database and where each stands.
    Status(StatusArgs),
    /// Release the gate a run is waiting at (from another terminal).
    ///
    /// The gate of an irreversible phase needs `--confirm NAME`: the same
    /// name the cockpit asks for (the first table the phase changes, or the
    /// phase's name), typed at a prompt on a terminal.
    Advance(AdvanceArgs),
    /// Pause a run at its next safe point (between batches or steps).
    Pause(PlanArg),
    /// Resume a paused run.
    Resume(PlanArg),
    /// Stop a run now: cancel its statement, clean up the step; resumable.
    Abort(PlanArg),
    /// Change a running plan's pace and limits, live, from any terminal.
    ///
    /// KEY=VALUE pairs, validated like the plan file, applied within a
    /// second, journalled with the old and new value and the role:
    /// max_rows_per_second (N or off), batch_size (N or auto),
    /// target_batch_time, probe_latency (or off), max_batch_size,
    /// min_batch_size, throttle.replication_lag[_bytes],
    /// abort.replication_lag[_bytes], lock_wait, blocked_sessions,
    /// lock_timeouts, rollback_rate, stale_monitor, slot_retained_wal,
    /// throttle.apply_lag_bytes, abort.apply_lag_bytes (limits take `off`),
    /// release_replica=NAME.
    Set(SetArgs),
    /// Stop holding batches for a replica the run lost.
    ///
    /// A replica the run saw that left pg_stat_replication cannot be
    /// measured, so every replication limit holds the batches until you
    /// release it (or it returns). The release is journalled.
    ReleaseReplica(ReleaseReplicaArgs),
    /// Undo a run's completed steps in reverse order.
    ///
    /// Shows each step's undo (the SQL the journal recorded when the step
    /// ran, and the locks it takes) and asks on a terminal; without one it
    /// needs --yes. --dry-run shows and changes nothing.
    Rollback(RollbackArgs),
    /// Try it: a throwaway Postgres + replica, 1M rows, live traffic, the cockpit.
    Demo(DemoArgs),
    /// A scratch Postgres primary + streaming replica for trying plans.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Apply a directory of plans in file-name order, skipping applied ones.
    ///
    /// Each plan (*.toml) not yet applied (no finished run of it, no
    /// baseline) runs as `cutover run` would: preflight, gates, journal. It
    /// stops at the first plan that fails or is aborted; running it again
    /// resumes that plan. A plan applied and edited since is refused unless
    /// --force-changed-plan.
    Migrate(MigrateArgs),
    /// List the plans applied to the database: finished runs and baselines.
    History(HistoryArgs),
    /// Mark the database as already at PLAN of DIR (it and every plan before
    /// it count as applied, without running).
    Baseline(BaselineArgs),
}

/// `cutover migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The directory of plans (*.toml, hidden files skipped), applied in
    /// file-name order.
    pub dir: PathBuf,
    /// Release every gate automatically (irreversible phases included).
    #[arg(long)]
    pub yes: bool,
    /// Print one line per event instead of opening the cockpit.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Count applied plans whose file changed since as applied; resume an
    /// unfinished run whose plan file changed.
    #[arg(long)]
    pub force_changed_plan: bool,
}

/// `cutover history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// A JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `cutover baseline`.
#[derive(Debug, Args)]
pub struct BaselineArgs {
    /// The directory of plans.
    pub dir: PathBuf,
    /// The plan (a file of DIR) the database is already at.
    pub plan: PathBuf,
}

/// Which run a remote command steers: the plan file's, or `--run N`.
#[derive(Debug, Args)]
pub struct PlanArg {
    /// The plan file (TOML); or give --run.
    #[arg(required_unless_present = "run")]
    pub plan: Option<PathBuf>,
    /// The run, by id (no plan file needed: `cutover status` lists them).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
}

/// `cutover run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// Release every gate automatically (irreversible phases included).
    #[arg(long)]
    pub yes: bool,
    /// Print one line per event instead of opening the cockpit.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Also write every event as a JSON line to FILE (next to the cockpit or
    /// the headless output).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Resume a run even though the plan file changed since it started.
    #[arg(long)]
    pub force_changed_plan: bool,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// `cutover lint`.
#[derive(Debug, Args)]
pub struct LintArgs {
    /// `.sql` files or plans (`.toml`) to lint.
    #[arg(required_unless_present = "rules")]
    pub files: Vec<PathBuf>,
    /// Print every rule: what it flags and the safe way (no files needed).
    #[arg(long)]
    pub rules: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The PostgreSQL major version the rules assume (e.g. 11: non-volatile
    /// defaults add without a rewrite from 11 on).
    #[arg(long, value_name = "MAJOR", default_value_t = crate::lint::DEFAULT_PG_MAJOR)]
    pub pg_version: u32,
}

/// `cutover plan`.
#[derive(Debug, Args)]
pub struct PlanViewArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// The PostgreSQL major version the rules assume.
    #[arg(long, value_name = "MAJOR", default_value_t = crate::lint::DEFAULT_PG_MAJOR)]
    pub pg_version: u32,
}

/// `cutover check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// Warn about transactions open longer than this (they stall concurrent
    /// index builds and validations).
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = humantime::parse_duration)]
    pub long_transaction: std::time::Duration,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// `cutover status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this plan's runs.
    pub plan: Option<PathBuf>,
    /// Only this run (by id; no plan file needed).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
    /// One JSON object (one per line with --watch).
    #[arg(long)]
    pub json: bool,
    /// Redraw every few seconds, like `watch` (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
    /// Seconds between redraws with --watch.
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub interval: u64,
}

/// `cutover rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The plan file (TOML).
    pub plan: PathBuf,
    /// Undo back to the start of this phase (default: everything).
    #[arg(long, value_name = "PHASE")]
    pub to: Option<String>,
    /// Undo without asking (required without a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Show what would be undone and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run the undo the journal recorded even though the plan file no
    /// longer matches what ran (never the file's new text).
    #[arg(long)]
    pub force_changed_plan: bool,
}

/// `cutover advance`.
#[derive(Debug, Args)]
pub struct AdvanceArgs {
    /// The plan file (TOML); or give --run.
    #[arg(required_unless_present = "run")]
    pub plan: Option<PathBuf>,
    /// The run, by id (no plan file needed).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
    /// For the gate of an irreversible phase: the name the cockpit asks for.
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
}

/// `cutover set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The plan file, then KEY=VALUE pairs (with --run: only the pairs).
    #[arg(required = true, value_name = "PLAN KEY=VALUE")]
    pub args: Vec<String>,
    /// The run, by id (no plan file needed).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
}

/// `cutover release-replica`.
#[derive(Debug, Args)]
pub struct ReleaseReplicaArgs {
    /// The plan file, then the replica's name (application_name in
    /// pg_stat_replication); with --run only the name.
    #[arg(required = true, num_args = 1..=2, value_name = "PLAN REPLICA")]
    pub args: Vec<String>,
    /// The run, by id (no plan file needed).
    #[arg(long, value_name = "N")]
    pub run: Option<i64>,
}

/// `cutover demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Rows in the demo table.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: i64,
    /// The plan to run (default: the built-in rename_column_with_trigger.toml).
    #[arg(long)]
    pub plan: Option<PathBuf>,
    /// Release every gate automatically.
    #[arg(long)]
    pub yes: bool,
    /// Print one line per event instead of opening the cockpit.
    #[arg(long)]
    pub headless: bool,
    /// With --headless: print events as JSON lines.
    #[arg(long)]
    pub json: bool,
    /// Application traffic on the demo table, in statements per second.
    #[arg(long, default_value_t = 200)]
    pub rate: u32,
    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9187).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Also write every event as a JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
}

/// `cutover sandbox …`.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Start a primary and a streaming replica; print their URLs; stop on Ctrl-C.
    Start(SandboxStartArgs),
    /// Create the demo `users` table with N rows in the target database.
    Seed(SandboxSeedArgs),
}

/// `cutover sandbox start`.
#[derive(Debug, Args)]
pub struct SandboxStartArgs {
    /// Seed the demo `users` table with this many rows.
    #[arg(long, value_name = "N")]
    pub rows: Option<i64>,
    /// Start the primary only.
    #[arg(long)]
    pub no_replica: bool,
    /// Also start a second cluster to move tables to (the primary then
    /// runs with wal_level = logical); prints its `--database target=URL`.
    #[arg(long)]
    pub target: bool,
    /// Keep fsync on (slower; closer to a real server).
    #[arg(long)]
    pub durable: bool,
}

/// `cutover sandbox seed`.
#[derive(Debug, Args)]
pub struct SandboxSeedArgs {
    /// Rows to create.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub rows: i64,
    /// Drop and re-create `users` if it exists.
    #[arg(long)]
    pub replace: bool,
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
