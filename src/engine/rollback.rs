//! Rollback: undo completed steps in reverse order, phase by phase, with
//! each step's `rollback` SQL or its kind's built-in inverse. A completed
//! irreversible phase is never undone.

use super::driver::{
    EngineHandle, Outcome, Wiring, clean_up_step, open_session, retry_policy, spawn_listener,
    spawn_with, start_watch, statuses,
};
use super::events::EventKind;
use super::progress::RunState;
use super::steps::{self, Inverse, StepError, needs_autocommit};
use crate::db::{Conn, Target, execute_with_retry};
use crate::journal::{self, RunRow, RunStatus, StepStatus};
use crate::plan::{LoadedPlan, Plan};

/// Starts a rollback of the plan's run, back to the start of phase `to`
/// (or everything).
pub fn spawn_rollback(plan: LoadedPlan, target: Target, to: Option<String>) -> EngineHandle {
    spawn_with(false, move |wiring| {
        Box::pin(async move { rollback(&plan, &target, to, wiring).await })
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

/// The steps a rollback to `to_phase` undoes, last first; or why it is
/// refused. Pure: the frontends show it before asking for confirmation.
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
                StepStatus::Done => match steps::inverse(step, plan) {
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

async fn find_run(plan: &LoadedPlan, side: &Conn) -> Result<RunRow, String> {
    let name = &plan.plan.name;
    if let Some(run) = journal::unfinished_run(&side.client, name)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(run);
    }
    match journal::latest_run(&side.client, name)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(run) if run.status == RunStatus::Finished => Ok(run),
        _ => Err(format!(
            "plan \"{name}\" has no run to roll back in this database (see `cutover status`)"
        )),
    }
}

async fn rollback(
    loaded: &LoadedPlan,
    target: &Target,
    to: Option<String>,
    wiring: Wiring,
) -> Result<Outcome, String> {
    let Wiring {
        mut control,
        out,
        journal: cell,
        remote,
        monitor_tx,
        monitor_rx,
    } = wiring;
    let (control, out) = (&mut control, &out);
    let plan = &loaded.plan;
    let to_phase = match &to {
        Some(name) => phase_index(plan, name)?,
        None => 0,
    };
    let mut session = open_session(loaded, target, out, &cell).await?;
    let run = find_run(loaded, &session.side).await?;
    out.set_run_id(run.id);
    let rows = journal::steps(&session.side.client, run.id)
        .await
        .map_err(|e| e.to_string())?;
    let mut table = statuses(plan, &rows);
    let items = undo_list(plan, &table, to_phase)?;
    let _watch = start_watch(
        plan,
        target,
        &session,
        monitor_tx,
        monitor_rx,
        control.abort.clone(),
        out,
    );
    let notifications = std::mem::replace(
        &mut session.notifications,
        tokio::sync::mpsc::unbounded_channel().1,
    );
    let listener = spawn_listener(notifications, run.id, remote, control.abort.clone());
    out.progress(|p| {
        p.state = RunState::RollingBack;
        p.statuses = table.clone();
    });
    out.emit(EventKind::RollbackStarted {
        steps: items.iter().map(|i| i.name.clone()).collect(),
    });
    let policy = retry_policy(plan);
    let main = &session.main;
    for item in &items {
        if let Err(stop) = control.safe_point(out).await {
            listener.abort();
            return Ok(super::driver::stopped(
                StepError::Stopped(stop),
                plan,
                out,
                (item.phase, item.step),
            ));
        }
        let step = plan.phases[item.phase].steps[item.step].get_ref();
        out.progress(|p| p.position = Some((item.phase, item.step)));
        let mark = steps::mark_sql(run.id, item.phase, item.step, StepStatus::RolledBack);
        let cancel = control.abort.token().clone();
        let detail = match &item.action {
            UndoAction::CleanUp => {
                clean_up_step(step, main, out).await;
                journal::set_step_status(
                    &session.side.client,
                    run.id,
                    item.phase,
                    item.step,
                    StepStatus::Pending,
                    None,
                )
                .await
                .map_err(|e| e.to_string())?;
                table[item.phase][item.step] = StepStatus::Pending;
                "cleaned up the interrupted step".to_string()
            }
            UndoAction::Undo(inverse) => {
                let result = match inverse {
                    Inverse::Sql(sql) => {
                        let body = sql.trim().trim_end_matches(';');
                        let statement = if needs_autocommit(body) {
                            body.to_string()
                        } else {
                            format!("{body};\n{mark}")
                        };
                        let out2 = out.clone();
                        let name = item.name.clone();
                        execute_with_retry(main, &statement, &policy, &cancel, &mut |n| {
                            out2.emit(EventKind::Retry {
                                name: name.clone(),
                                retry: n.retry,
                                of: n.of,
                                wait_ms: n.wait.as_millis() as u64,
                                reason: n.reason.clone(),
                            })
                        })
                        .await
                        .map(|_| format!("ran `{body}`"))
                    }
                    Inverse::DropIndex(spec) => {
                        steps::create_index::undo(spec, main, &policy, &cancel).await
                    }
                    Inverse::Nothing(why) => Ok(why.to_string()),
                };
                match result {
                    Ok(detail) => {
                        journal::set_step_status(
                            &session.side.client,
                            run.id,
                            item.phase,
                            item.step,
                            StepStatus::RolledBack,
                            Some(&detail),
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        table[item.phase][item.step] = StepStatus::RolledBack;
                        detail
                    }
                    Err(crate::db::DbError::Cancelled) => {
                        listener.abort();
                        return Ok(super::driver::stopped(
                            StepError::Stopped(super::control::Stop::Aborted(
                                control.abort.reason(),
                            )),
                            plan,
                            out,
                            (item.phase, item.step),
                        ));
                    }
                    Err(e) => {
                        listener.abort();
                        return Err(format!(
                            "undoing \"{}\" failed: {e}; the steps before it are still in place. \
                             Fix the cause and run `cutover rollback` again",
                            item.name
                        ));
                    }
                }
            }
        };
        let snapshot = table.clone();
        out.progress(|p| p.statuses = snapshot);
        out.emit(EventKind::StepRolledBack {
            phase: item.phase,
            step: item.step,
            name: item.name.clone(),
            detail,
        });
    }
    listener.abort();
    out.progress(|p| {
        p.state = RunState::RolledBack;
        p.position = None;
    });
    out.emit(EventKind::RolledBack {
        to: if to_phase == 0 { None } else { to },
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
