//! `cutover status [PLAN | --run N] [--json] [--watch]`: where each run
//! stands, read from the journal — its steps by name, what it is doing or
//! waiting for in words, progress with % and ETA from the driver's latest
//! snapshot, who drives it and whether that driver is alive, and what to do
//! next.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use super::remote::{connect, has_journal};
use super::run::load_plan;
use crate::cli::StatusArgs;
use crate::db::Conn;
use crate::engine::events::short_duration;
use crate::exit;
use crate::journal::{self, RunRow, RunStatus, StepStatus};

/// One step, as the journal has it.
#[derive(Debug, Serialize)]
pub struct StepView {
    /// Phase name.
    pub phase: String,
    /// Step name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// Status.
    pub status: StepStatus,
    /// Keys walked (batched steps).
    pub rows_done: i64,
    /// Rows changed (batched steps).
    pub rows_updated: i64,
}

/// A run, for people and programs.
#[derive(Debug, Serialize)]
pub struct RunView {
    /// Journal id.
    pub run_id: i64,
    /// The plan's name.
    pub plan: String,
    /// The plan file when it started.
    pub plan_path: String,
    /// Status as recorded.
    pub status: RunStatus,
    /// Whether a cutover holds the plan's lock now.
    pub driver_alive: bool,
    /// The driver's host and process id.
    pub driver: String,
    /// Seconds since the run row changed.
    pub updated_secs_ago: f64,
    /// Where it stands: "phase X, step N \"name\"".
    pub at: String,
    /// Why it stopped or waits, as recorded.
    pub reason: Option<String>,
    /// What it is doing or waiting for, in words.
    pub doing: String,
    /// The message of the gate it waits at, while it does.
    pub gate_message: Option<String>,
    /// Why batches are held or paced now, while they are.
    pub throttle: Option<String>,
    /// Batched progress.
    pub progress: Option<ProgressView>,
    /// Steps done / all.
    pub steps_done: usize,
    /// Every step.
    pub steps: Vec<StepView>,
    /// What to do next.
    pub next: String,
}

/// A batched step's numbers from the driver's snapshot.
#[derive(Debug, Serialize)]
pub struct ProgressView {
    /// The table.
    pub table: String,
    /// Keys walked.
    pub rows_done: i64,
    /// Estimated rows.
    pub rows_total: Option<i64>,
    /// Percent done.
    pub percent: Option<f64>,
    /// Keys per second.
    pub rows_per_sec: f64,
    /// Seconds left.
    pub eta_secs: Option<f64>,
    /// Seconds since the driver wrote this.
    pub age_secs: f64,
}

fn secs_of(v: &serde_json::Value) -> Option<f64> {
    Some(v.get("secs")?.as_f64()? + v.get("nanos")?.as_f64()? / 1e9)
}

async fn view(conn: &Conn, run: &RunRow) -> RunView {
    let alive = journal::lock_holder(&conn.client, &run.plan_name)
        .await
        .ok()
        .flatten()
        .is_some()
        && !matches!(run.status, RunStatus::Finished | RunStatus::RolledBack);
    let steps: Vec<StepView> = journal::steps(&conn.client, run.id)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|s| StepView {
            phase: s.phase_name,
            name: s.name,
            kind: s.kind,
            status: s.status,
            rows_done: s.rows_done,
            rows_updated: s.rows_updated,
        })
        .collect();
    let steps_done = steps
        .iter()
        .filter(|s| s.status == StepStatus::Done)
        .count();
    let current = steps
        .iter()
        .position(|s| s.status != StepStatus::Done)
        .map(|i| &steps[i]);
    let at = current.map_or("the end".to_string(), |s| {
        format!("phase {}, step \"{}\" ({})", s.phase, s.name, s.kind)
    });
    let snapshot = journal::runs::snapshot(&conn.client, run.id)
        .await
        .ok()
        .flatten();
    let live = snapshot.as_ref().filter(|_| alive);
    let progress = live.and_then(|(snap, age)| {
        let b = snap.get("batch")?;
        if b.is_null() {
            return None;
        }
        let rows_done = b.get("rows_done")?.as_i64()?;
        let rows_total = b.get("rows_total").and_then(|v| v.as_i64());
        Some(ProgressView {
            table: b.get("table")?.as_str()?.to_string(),
            rows_done,
            rows_total,
            percent: rows_total
                .filter(|t| *t > 0)
                .map(|t| (rows_done as f64 / t as f64 * 100.0).min(100.0)),
            rows_per_sec: b
                .get("rows_per_sec")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0),
            eta_secs: b.get("eta").and_then(secs_of),
            age_secs: *age,
        })
    });
    let text = |key: &str| {
        live.and_then(|(snap, _)| snap.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let lock_wait = live.and_then(|(snap, _)| {
        let w = snap.get("lock_wait")?;
        Some(format!(
            "WAITING FOR LOCK: step \"{}\" retry {}/{} ({})",
            w.get("step")?.as_str()?,
            w.get("retry")?.as_u64()?,
            w.get("of")?.as_u64()?,
            w.get("reason")?.as_str()?
        ))
    });
    let gate = live.and_then(|(snap, _)| {
        let g = snap.get("gate")?;
        let name = g.get("name")?.as_str()?;
        let message = g.get("message").and_then(|m| m.as_str()).unwrap_or("");
        let irreversible = g.get("irreversible").and_then(|v| v.as_bool()) == Some(true);
        Some((name.to_string(), message.to_string(), irreversible))
    });
    let gate_message = match (run.status, &gate) {
        (RunStatus::Waiting, Some((_, message, _))) => Some(message.clone()),
        _ => None,
    };
    let throttle = text("throttle");
    let plan_arg = if run.plan_path.is_empty() {
        format!("--run {}", run.id)
    } else {
        run.plan_path.clone()
    };
    let (doing, next) = match (run.status, alive) {
        (RunStatus::Finished, _) => (
            "finished".to_string(),
            "nothing: every step is done".to_string(),
        ),
        (RunStatus::RolledBack, _) => (
            "rolled back".to_string(),
            format!("`cutover run {plan_arg}` starts it again"),
        ),
        (_, false) => (
            format!(
                "nothing: no cutover drives it ({})",
                run.reason.as_deref().unwrap_or(run.status.as_str())
            ),
            format!(
                "`cutover run {}` resumes it; `cutover rollback {}` undoes it",
                plan_file(run),
                plan_file(run)
            ),
        ),
        (RunStatus::Waiting, true) => match &gate {
            Some((name, message, irreversible)) => (
                format!(
                    "waiting at the gate of {name}{}{}",
                    if *irreversible {
                        " (next phase IRREVERSIBLE)"
                    } else {
                        ""
                    },
                    if message.is_empty() {
                        String::new()
                    } else {
                        format!(": {message}")
                    }
                ),
                if *irreversible {
                    format!("`cutover advance {plan_arg} --confirm NAME` when ready")
                } else {
                    format!("`cutover advance {plan_arg}` when ready")
                },
            ),
            None => (
                "waiting at a gate".to_string(),
                format!("`cutover advance {plan_arg}` when ready"),
            ),
        },
        (RunStatus::Paused, true) => (
            format!(
                "paused ({})",
                run.reason.as_deref().unwrap_or("by the operator")
            ),
            format!("`cutover resume {plan_arg}`"),
        ),
        (_, true) => {
            let doing = lock_wait
                .or_else(|| text("throttle"))
                .unwrap_or_else(|| format!("running {at}"));
            (
                doing,
                format!(
                    "watch it; `cutover pause {plan_arg}` holds it, `cutover abort {plan_arg}` stops it"
                ),
            )
        }
    };
    RunView {
        run_id: run.id,
        plan: run.plan_name.clone(),
        plan_path: run.plan_path.clone(),
        status: run.status,
        driver_alive: alive,
        driver: format!("cutover pid {} on {}", run.os_pid, run.host),
        updated_secs_ago: run
            .updated_at
            .elapsed()
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0),
        at,
        reason: run.reason.clone(),
        doing,
        gate_message,
        throttle,
        progress,
        steps_done,
        steps,
        next,
    }
}

/// The plan file a resume or rollback needs (they read the plan; a run
/// id is not enough).
fn plan_file(run: &RunRow) -> &str {
    if run.plan_path.is_empty() {
        "PLAN"
    } else {
        &run.plan_path
    }
}

fn glyph(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Done => "✓",
        StepStatus::Running => "▶",
        StepStatus::Failed => "✗",
        StepStatus::RolledBack => "↶",
        StepStatus::Pending => "·",
    }
}

/// The text form of a run.
pub fn text(v: &RunView) -> String {
    let mut out = format!(
        "run #{} \"{}\": {}, {} ({}; updated {} ago)\n",
        v.run_id,
        v.plan,
        v.status.as_str(),
        if v.driver_alive {
            "driven now"
        } else {
            "no driver"
        },
        v.driver,
        short_duration(Duration::from_secs_f64(v.updated_secs_ago.max(0.0)))
    );
    out.push_str(&format!("  at:    {}\n", v.at));
    out.push_str(&format!("  doing: {}\n", v.doing));
    if let Some(p) = &v.progress {
        out.push_str(&format!(
            "  rows:  {} {}{} keys{}, {:.0} keys/s, ETA {}\n",
            p.table,
            p.rows_done,
            p.rows_total.map(|t| format!(" / {t}")).unwrap_or_default(),
            p.percent.map(|x| format!(" ({x:.1}%)")).unwrap_or_default(),
            p.rows_per_sec,
            p.eta_secs
                .map(|s| short_duration(Duration::from_secs_f64(s.max(0.0))))
                .unwrap_or_else(|| "—".into())
        ));
    }
    if let Some(reason) = &v.reason {
        out.push_str(&format!("  reason: {reason}\n"));
    }
    out.push_str(&format!(
        "  steps: {}/{} done\n",
        v.steps_done,
        v.steps.len()
    ));
    for s in &v.steps {
        let rows = if s.rows_done > 0 {
            format!(" — {} keys, {} rows", s.rows_done, s.rows_updated)
        } else {
            String::new()
        };
        out.push_str(&format!(
            "    {} {} / {} ({}){rows}\n",
            glyph(s.status),
            s.phase,
            s.name,
            s.kind
        ));
    }
    out.push_str(&format!("  next:  {}\n", v.next));
    out
}

async fn runs(conn: &Conn, args: &StatusArgs) -> Result<Vec<RunRow>, String> {
    if let Some(id) = args.run {
        return journal::run_by_id(&conn.client, id)
            .await
            .map_err(|e| e.to_string())?
            .map(|r| vec![r])
            .ok_or_else(|| format!("no run #{id} in this database"));
    }
    let name = match &args.plan {
        Some(path) => Some(
            load_plan(path)
                .map_err(|_| "the plan file".to_string())?
                .plan
                .name,
        ),
        None => None,
    };
    journal::list_runs(&conn.client, name.as_deref())
        .await
        .map_err(|e| e.to_string())
}

/// `cutover status`.
pub async fn status(args: StatusArgs, database_url: Option<&str>) -> i32 {
    let conn = match connect(database_url).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    loop {
        let views = if has_journal(&conn).await {
            match runs(&conn, &args).await {
                Ok(runs) => {
                    let mut views = Vec::new();
                    for r in &runs {
                        views.push(view(&conn, r).await);
                    }
                    views
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::FAILED;
                }
            }
        } else if let Some(id) = args.run {
            eprintln!(
                "error: no run #{id} in {}: cutover has not run a plan in this database \
                 (or this role may not read schema cutover)",
                conn.target().display()
            );
            return exit::FAILED;
        } else {
            Vec::new()
        };
        let mut out = String::new();
        if args.json {
            // One object: the run asked for, else every run.
            let value = if args.run.is_some() {
                views
                    .first()
                    .map(|v| serde_json::to_value(v).unwrap_or_default())
                    .unwrap_or_default()
            } else {
                serde_json::json!({ "runs": views })
            };
            out.push_str(&value.to_string());
            out.push('\n');
        } else {
            if args.watch {
                // Redraw in place, like `watch`.
                out.push_str("\x1b[H\x1b[2J");
            }
            if views.is_empty() {
                out.push_str(&format!(
                    "no runs in {} yet (or this role may not read schema cutover)\n",
                    conn.target().display()
                ));
            }
            for v in &views {
                out.push_str(&text(v));
            }
        }
        let written = {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
        };
        if !args.watch {
            return exit::OK;
        }
        if written.is_err() {
            // Whoever read --watch went away (`| head`, a closed pipe).
            return exit::OK;
        }
        tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
    }
}
