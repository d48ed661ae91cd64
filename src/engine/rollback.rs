//! Rollback: undo completed steps in reverse order, phase by phase, with
//! each step's `rollback` SQL or its kind's built-in inverse. A completed
//! irreversible phase is never undone.

use super::control::Stop;
use super::driver::{EngineHandle, Outcome, Wiring, spawn_with};
use super::error::{RunError, StepError};
use super::events::EventKind;
use super::listener::spawn_listener;
use super::oversight::start_oversight;
use super::progress::RunState;
use super::session::open_session;
use super::steps::{self, needs_autocommit};
use super::undo::{self, Undo, UndoStep};
use super::walk::{clean_up_step, retry_policy, statuses};
use crate::db::{Conn, DbError, Target, execute_with_retry};
use crate::journal::{self, RunRow, RunStatus, StepStatus};
use crate::plan::{LoadedPlan, Plan};
use crate::statements::undo::{Inverse, RecordedUndo, inverse};

/// Starts a rollback of the plan's run, back to the start of phase `to`
/// (or everything).
pub fn spawn_rollback(plan: LoadedPlan, target: Target, to: Option<String>) -> EngineHandle {
    spawn_rollback_with(
        plan,
        target,
        RollbackOptions {
            to,
            ..RollbackOptions::default()
        },
    )
}

/// Starts a rollback with options.
pub fn spawn_rollback_with(
    plan: LoadedPlan,
    target: Target,
    opts: RollbackOptions,
) -> EngineHandle {
    spawn_with(false, move |wiring| {
        Box::pin(async move { rollback(&plan, &target, opts, wiring).await })
    })
}

/// One step to undo.
#[derive(Debug, Clone)]
pub struct UndoItem {
    /// Phase index.
    pub phase: usize,
    /// Step index.
    pub step: usize,
    /// Step name.
    pub name: String,
    /// How: its inverse, or only a clean-up of a half-done step.
    pub action: UndoAction,
}

/// What undoing a step means.
#[derive(Debug, Clone)]
pub enum UndoAction {
    /// A completed step: apply its inverse.
    Undo(Inverse),
    /// An interrupted step: remove half-made leftovers, mark it pending.
    CleanUp,
}

/// The steps a rollback to `to_phase` would undo by the plan file as it is,
/// last first; or why it is refused. Pure: the cockpit shows it before
/// asking for confirmation (the rollback itself runs the journal's record,
/// and refuses if the file no longer matches it).
pub fn undo_list(
    plan: &Plan,
    table: &[Vec<StepStatus>],
    to_phase: usize,
) -> Result<Vec<UndoItem>, String> {
    let mut items = Vec::new();
    let mut missing = Vec::new();
    for (pi, phase) in plan.phases.iter().enumerate().skip(to_phase).rev() {
        for (si, step) in phase.steps.iter().enumerate().rev() {
            let step = step.get_ref();
            let status = table
                .get(pi)
                .and_then(|p| p.get(si))
                .copied()
                .unwrap_or(StepStatus::Pending);
            match status {
                StepStatus::Done if phase.irreversible => {
                    return Err(format!(
                        "phase {} is irreversible and its step \"{}\" is done; it cannot be rolled back. \
                         Restore from a backup or write a new plan that moves forward",
                        phase.name(),
                        step.display_name()
                    ));
                }
                StepStatus::Done => match inverse(step, plan) {
                    Ok(inverse) => items.push(UndoItem {
                        phase: pi,
                        step: si,
                        name: step.display_name(),
                        action: UndoAction::Undo(inverse),
                    }),
                    Err(why) => missing.push(why),
                },
                StepStatus::Running | StepStatus::Failed => items.push(UndoItem {
                    phase: pi,
                    step: si,
                    name: step.display_name(),
                    action: UndoAction::CleanUp,
                }),
                StepStatus::Pending | StepStatus::RolledBack => {}
            }
        }
    }
    if !missing.is_empty() {
        return Err(format!("cannot roll back: {}", missing.join("; ")));
    }
    Ok(items)
}

/// Finds a phase by name, for `--to`.
pub fn phase_index(plan: &Plan, name: &str) -> Result<usize, String> {
    plan.phases
        .iter()
        .position(|p| p.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = plan.phases.iter().map(|p| p.name()).collect();
            format!(
                "--to {name}: the plan has no such phase (its phases: {})",
                names.join(", ")
            )
        })
}

async fn find_run(plan: &LoadedPlan, journal_conn: &Conn) -> Result<RunRow, RunError> {
    let name = &plan.plan.name;
    if let Some(run) = journal::unfinished_run(&journal_conn.client, name).await? {
        return Ok(run);
    }
    match journal::latest_run(&journal_conn.client, name).await? {
        Some(run) if run.status == RunStatus::Finished => Ok(run),
        _ => Err(RunError::Refused(format!(
            "plan \"{name}\" has no run to roll back in this database (see `cutover status`)"
        ))),
    }
}

/// How a rollback is asked for.
#[derive(Debug, Clone, Default)]
pub struct RollbackOptions {
    /// Back to the start of this phase (default: everything).
    pub to: Option<String>,
    /// Run the journal's recorded undo even though the plan file changed.
    pub force_changed_plan: bool,
    /// The plan's other databases (`--database NAME=URL`).
    pub databases: crate::db::databases::Databases,
}

/// What a rollback of the plan's run would do, read from the journal
/// without changing anything (for a preview and a confirmation).
pub async fn preview(
    loaded: &LoadedPlan,
    target: &Target,
    opts: &RollbackOptions,
) -> Result<(RunRow, Vec<Undo>), RunError> {
    let conn = Conn::connect(target).await?;
    crate::journal::schema::ensure(&conn.client).await?;
    let run = find_run(loaded, &conn).await?;
    let rows = journal::steps(&conn.client, run.id).await?;
    let to_phase =
        undo::to_phase(&rows, &loaded.plan, opts.to.as_deref()).map_err(RunError::Refused)?;
    let items = undo::from_journal(&loaded.plan, &rows, to_phase, opts.force_changed_plan)
        .map_err(RunError::Refused)?;
    Ok((run, items))
}

async fn rollback(
    loaded: &LoadedPlan,
    target: &Target,
    opts: RollbackOptions,
    wiring: Wiring,
) -> Result<Outcome, RunError> {
    let Wiring {
        mut control,
        out,
        journal: slot,
        remote,
        monitor_tx,
        monitor_rx,
    } = wiring;
    let (control, out) = (&mut control, &out);
    let plan = &loaded.plan;
    let mut session = open_session(loaded, target, out, &slot, &[]).await?;
    let run = find_run(loaded, &session.journal).await?;
    let rows = journal::steps(&session.journal.client, run.id).await?;
    // Refusals come before the run id is set: a refused rollback leaves
    // the journal exactly as it was (no event, no status change).
    let to_phase = undo::to_phase(&rows, plan, opts.to.as_deref()).map_err(RunError::Refused)?;
    let items = undo::from_journal(plan, &rows, to_phase, opts.force_changed_plan)
        .map_err(RunError::Refused)?;
    out.set_run_id(run.id);
    let mut table = statuses(plan, &rows);
    let oversight = start_oversight(
        plan,
        target,
        &session,
        monitor_tx,
        monitor_rx,
        control.abort.clone(),
        out,
        None,
    );
    control.focus = Some(oversight.focus.clone());
    let notifications = std::mem::replace(
        &mut session.notifications,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let listener = spawn_listener(
        notifications,
        slot.clone(),
        run.id,
        remote,
        control.abort.clone(),
        out.clone(),
    );
    out.progress(|p| {
        p.state = RunState::RollingBack;
        p.statuses = table.clone();
    });
    out.emit(EventKind::RollbackStarted {
        steps: items.iter().map(|i| i.name.clone()).collect(),
    });
    let policy = retry_policy(plan);
    let work = &session.work;
    let journal_client = &session.journal.client;
    let result = async {
        for item in &items {
            control
                .safe_point(out)
                .await
                .map_err(|stop| (StepError::Stopped(stop), (item.phase, item.step)))?;
            out.progress(|p| p.position = Some((item.phase, item.step)));
            let cancel = control.abort.token().clone();
            let (status, detail) = match &item.action {
                UndoStep::CleanUp { step, created } => {
                    clean_up_step(step, created, work, &opts.databases, out).await;
                    (StepStatus::Pending, "cleaned up the interrupted step".to_string())
                }
                UndoStep::DropCreated { step, created } => {
                    let removed = crate::db::past_late_cancel(|| {
                        steps::clean_up(step, created, work, &opts.databases)
                    })
                    .await
                    .map_err(|e| {
                        (
                            StepError::Failed(format!(
                                "undoing \"{}\" failed: {e}; the steps before it are still in \
                                 place. Fix the cause and run `cutover rollback` again",
                                item.name
                            )),
                            (item.phase, item.step),
                        )
                    })?;
                    (
                        StepStatus::RolledBack,
                        removed.unwrap_or_else(|| "nothing left to remove".into()),
                    )
                }
                UndoStep::Undo(RecordedUndo::Sql { sql }) => {
                    let body = sql.trim().trim_end_matches(';');
                    let mark =
                        steps::mark_sql(run.id, item.phase, item.step, StepStatus::RolledBack);
                    let statement = if needs_autocommit(body) {
                        body.to_string()
                    } else {
                        format!("{body};\n{mark}")
                    };
                    let out2 = out.clone();
                    let name = item.name.clone();
                    execute_with_retry(work, &statement, &policy, &cancel, &mut |n| {
                        out2.emit(EventKind::Retry {
                            name: name.clone(),
                            retry: n.retry,
                            of: n.of,
                            wait_ms: n.wait.as_millis() as u64,
                            reason: n.reason.clone(),
                        })
                    })
                    .await
                    .map_err(|e| match e {
                        DbError::Cancelled => (
                            StepError::Stopped(Stop::Aborted(control.abort.reason())),
                            (item.phase, item.step),
                        ),
                        e => (
                            StepError::Failed(format!(
                                "undoing \"{}\" failed: {e}; the steps before it are still in place. \
                                 Fix the cause and run `cutover rollback` again",
                                item.name
                            )),
                            (item.phase, item.step),
                        ),
                    })?;
                    (StepStatus::RolledBack, format!("ran `{body}`"))
                }
                UndoStep::Undo(RecordedUndo::Nothing { why }) => {
                    (StepStatus::RolledBack, why.clone())
                }
                UndoStep::Undo(RecordedUndo::Missing { why }) => {
                    // from_journal refuses these; never reached.
                    return Err((StepError::Failed(why.clone()), (item.phase, item.step)));
                }
                UndoStep::Undo(RecordedUndo::DropCreated { database }) => {
                    // from_journal pairs these with the step as it ran.
                    return Err((
                        StepError::Failed(format!(
                            "the journal kept no record of step \"{}\"; remove its replication \
                             and tables on {database} by hand",
                            item.name
                        )),
                        (item.phase, item.step),
                    ));
                }
            };
            journal::set_step_status(
                journal_client,
                run.id,
                item.phase,
                item.step,
                status,
                Some(&detail),
            )
            .await
            .map_err(|e| (StepError::Db(e), (item.phase, item.step)))?;
            if let Some(row) = table.get_mut(item.phase).and_then(|p| p.get_mut(item.step)) {
                *row = status;
            }
            let snapshot = table.clone();
            out.progress(|p| p.statuses = snapshot);
            out.emit(EventKind::StepRolledBack {
                phase: item.phase,
                step: item.step,
                name: item.name.clone(),
                detail,
            });
        }
        Ok(())
    }
    .await;
    listener.abort();
    if let Err((err, at)) = result {
        return Ok(super::walk::stopped(err, plan, out, at));
    }
    out.progress(|p| {
        p.state = RunState::RolledBack;
        p.position = None;
    });
    out.emit(EventKind::RolledBack {
        to: if to_phase == 0 { None } else { opts.to },
        phase: to_phase,
    });
    Ok(Outcome::RolledBack)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const PLAN: &str = r#"
name = "p"
[[phases]]
name = "expand"
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE t ADD COLUMN c int"
rollback = "ALTER TABLE t DROP COLUMN c"
[[phases.steps]]
kind = "create_index"
name = "t_c_idx"
table = "t"
columns = ["c"]
[[phases]]
name = "migrate"
[[phases.steps]]
kind = "backfill"
table = "t"
key = "id"
set = "c = 1"
[[phases.steps]]
kind = "sql"
sql = "SELECT 1"
[[phases]]
name = "contract"
irreversible = true
[[phases.steps]]
kind = "sql"
sql = "ALTER TABLE t DROP COLUMN old"
"#;

    fn plan() -> Plan {
        crate::plan::parse(Path::new("p.toml"), PLAN).unwrap()
    }

    use StepStatus::*;

    #[test]
    fn undoes_done_steps_last_first() {
        let table = vec![vec![Done, Done], vec![Running, Pending], vec![Pending]];
        let items = undo_list(&plan(), &table, 0).unwrap();
        let order: Vec<(usize, usize)> = items.iter().map(|i| (i.phase, i.step)).collect();
        assert_eq!(order, [(1, 0), (0, 1), (0, 0)]);
        assert!(matches!(items[0].action, UndoAction::CleanUp));
        assert!(matches!(
            items[1].action,
            UndoAction::Undo(Inverse::DropIndex(_))
        ));
        assert!(matches!(items[2].action, UndoAction::Undo(Inverse::Sql(_))));
    }

    #[test]
    fn to_phase_stops_at_that_phase() {
        let table = vec![vec![Done, Done], vec![Done, Pending], vec![Pending]];
        let items = undo_list(&plan(), &table, 1).unwrap();
        let order: Vec<(usize, usize)> = items.iter().map(|i| (i.phase, i.step)).collect();
        assert_eq!(order, [(1, 0)], "expand is left alone");
        assert!(matches!(
            items[0].action,
            UndoAction::Undo(Inverse::Nothing(_))
        ));
    }

    #[test]
    fn a_completed_irreversible_phase_is_refused() {
        let table = vec![vec![Done, Done], vec![Done, Done], vec![Done]];
        let err = undo_list(&plan(), &table, 0).unwrap_err();
        assert!(err.contains("contract is irreversible"), "{err}");
    }

    #[test]
    fn a_step_without_rollback_is_named() {
        let table = vec![vec![Done, Done], vec![Done, Done], vec![Pending]];
        let err = undo_list(&plan(), &table, 0).unwrap_err();
        assert!(err.contains("\"SELECT 1\" has no `rollback`"), "{err}");
    }

    #[test]
    fn unknown_phase_lists_the_phases() {
        let err = phase_index(&plan(), "nope").unwrap_err();
        assert!(err.contains("expand, migrate, contract"), "{err}");
    }
}
