//! Preflight: everything `cutover check` verifies before a plan runs, and
//! the same check `cutover run` performs first. Catalog reads
//! ([`catalog`]), the journal's view of earlier runs ([`runs`]), per-step
//! existence checks ([`steps`]), views an irreversible completion would
//! break ([`versions`]), every statement checked by the server
//! against empty copies of the plan's tables ([`shadow`]), the live risks on the server ([`live`]),
//! and the report ([`render`]). Nothing here executes a statement of the
//! plan or takes a lock stronger than a `SELECT`'s.

mod catalog;
mod live;
pub mod moving;
mod render;
mod runs;
mod shadow;
mod steps;
mod versions;

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::db::{Conn, DbError, Target};
use crate::lint::Schema;
use crate::lint::locks::LockMode;
use crate::lint::plan::{Finding, PlanReport, analyze};
use crate::plan::LoadedPlan;

pub use render::text;

/// How serious a preflight item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The run would fail or do harm: `check` exits 1, `run` refuses.
    Error,
    /// Worth knowing before starting.
    Warning,
    /// What was found.
    Info,
}

/// One preflight result.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// How serious.
    pub level: Level,
    /// The step, setting or server property it is about.
    pub subject: String,
    /// What was found and what to do.
    pub message: String,
}

/// Everything `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    /// The server's major version (the rules used it).
    pub pg_major: u32,
    /// Preflight results.
    pub items: Vec<Item>,
    /// Lint findings (with the server's version and catalog).
    pub findings: Vec<Finding>,
}

impl Preflight {
    /// Errors: preflight errors plus lint findings no `allow_unsafe` covers.
    pub fn errors(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.level == Level::Error)
            .count()
            + self.findings.iter().filter(|f| f.is_error()).count()
    }

    fn push(&mut self, level: Level, subject: impl Into<String>, message: impl Into<String>) {
        self.items.push(Item {
            level,
            subject: subject.into(),
            message: message.into(),
        });
    }
}

/// Connects, checks, and closes.
pub async fn connect_and_check(
    loaded: &LoadedPlan,
    target: &Target,
    for_run: bool,
    long_transaction: Duration,
) -> Result<Preflight, DbError> {
    let conn = Conn::connect(target).await?;
    // Read-only and never in the application's way: catalog reads only, and
    // bounded in case a lock is held on something it touches.
    conn.client
        .batch_execute("SET lock_timeout = '2s'; SET statement_timeout = '60s'")
        .await
        .map_err(|e| DbError::sql("setting the check's timeouts", e))?;
    preflight(loaded, &conn, for_run, long_transaction).await
}

/// The default `--long-transaction`.
pub const LONG_TRANSACTION: Duration = Duration::from_secs(60);

/// Lint plus preflight. `for_run` leaves out what the engine checks itself
/// (another live run of the plan).
pub async fn preflight(
    loaded: &LoadedPlan,
    conn: &Conn,
    for_run: bool,
    long_transaction: Duration,
) -> Result<Preflight, DbError> {
    let pg_major = match conn.server_version_num() {
        0 => crate::lint::DEFAULT_PG_MAJOR,
        v => v / 10000,
    };
    let mut p = Preflight {
        pg_major,
        items: Vec::new(),
        findings: Vec::new(),
    };
    p.push(
        if pg_major >= 12 { Level::Info } else { Level::Warning },
        "server",
        if pg_major >= 12 {
            format!("PostgreSQL {pg_major} (rules use this version)")
        } else {
            format!(
                "PostgreSQL {pg_major}: not_null steps still scan under ACCESS EXCLUSIVE before 12, \
                 and REINDEX CONCURRENTLY needs 12"
            )
        },
    );
    let mut schema = Schema::new(pg_major);
    let mut catalog = catalog::read(loaded, conn, &mut schema).await?;
    let report = analyze(loaded, &mut schema);
    let done = runs::check(&mut p, loaded, conn, for_run).await?;
    steps::check(&mut p, loaded, conn, &mut catalog, &done).await;
    versions::check(&mut p, loaded, conn, &done).await;
    // Steps that already failed a check are not sent to the server again.
    let failed: HashSet<String> = p
        .items
        .iter()
        .filter(|i| i.level == Level::Error)
        .map(|i| i.subject.clone())
        .collect();
    shadow::check(&mut p, loaded, conn, &catalog.named, &done, &failed).await?;
    p.findings = report.findings.clone();
    // Under a stall budget: each statement that cannot meet it.
    if let Some(budget) = report.max_stall {
        for step in &report.steps {
            for st in step.statements.iter().filter(|st| st.label != "rollback") {
                if let Err(why) = crate::lint::plan::stall::verdict(st, budget) {
                    p.push(
                        Level::Warning,
                        format!("step `{}` ({})", step.name, step.phase),
                        why,
                    );
                }
            }
        }
    }
    let needed = needed_locks(loaded, &report, &done);
    live::sessions(&mut p, conn, &needed).await?;
    live::limits(&mut p, &loaded.plan);
    live::replicas(&mut p, &loaded.plan, conn).await?;
    live::long_transactions(&mut p, conn, long_transaction).await?;
    live::table_sizes(&mut p, conn, &catalog.named).await?;
    Ok(p)
}

/// The strongest lock each table gets from the steps still to run (their
/// rollback statements left out), in plan order.
fn needed_locks(
    loaded: &LoadedPlan,
    report: &PlanReport,
    done: &HashSet<(usize, usize)>,
) -> Vec<live::NeededLock> {
    let positions: Vec<(usize, usize)> = loaded
        .plan
        .phases
        .iter()
        .enumerate()
        .flat_map(|(pi, ph)| (0..ph.steps.len()).map(move |si| (pi, si)))
        .collect();
    let aligned = positions.len() == report.steps.len();
    let mut needed: Vec<live::NeededLock> = Vec::new();
    for (i, step) in report.steps.iter().enumerate() {
        if aligned && done.contains(&positions[i]) {
            continue;
        }
        for planned in step.statements.iter().filter(|s| s.label != "rollback") {
            for effect in planned.locks.iter().flatten() {
                match needed.iter_mut().find(|n| n.relation == effect.relation) {
                    Some(n) if n.mode < effect.mode => {
                        n.mode = effect.mode;
                        n.step = step.name.clone();
                    }
                    Some(_) => {}
                    None => needed.push(live::NeededLock {
                        relation: effect.relation.clone(),
                        mode: effect.mode,
                        step: step.name.clone(),
                    }),
                }
            }
        }
    }
    needed.retain(|n| n.mode > LockMode::AccessShare);
    needed
}
