//! Walking a plan: phases and their gates, each step recorded as it starts
//! (its identity and undo) and as it ends, clean-up after an interruption,
//! and how a run that stops is announced.

use std::time::Instant;

use super::control::{Control, Stop};
use super::emitter::Emitter;
use super::error::{RunError, StepError};
use super::events::EventKind;
use super::oversight::Oversight;
use super::progress::RunState;
use super::run::Outcome;
use super::session::Session;
use super::steps::{self, Ctx};
use super::versions::{Hook, on_phase_done};
use crate::db::{Conn, RetryPolicy};
use crate::journal::{self, RunRow, StepRow, StepStatus};
use crate::plan::Plan;
use crate::plan::model::{GateMode, SqlStep, Step};

/// The retry policy of a plan's `[settings]`.
pub fn retry_policy(plan: &Plan) -> RetryPolicy {
    // A DDL waiting for its lock queues every later query on the table:
    // under `max_stall`, no attempt waits longer than the budget.
    let lock_timeout = match plan.settings.max_stall {
        Some(budget) => plan.settings.lock_timeout.0.min(budget.0),
        None => plan.settings.lock_timeout.0,
    };
    RetryPolicy {
        gap: None,
        hold: None,
        lock_timeout,
        retries: plan.settings.lock_retries,
        backoff_min: plan.settings.retry_backoff.min,
        backoff_max: plan.settings.retry_backoff.max,
    }
}

/// Where a run stands, as "phase X, step Y (name)".
pub fn position_text(plan: &Plan, phase: usize, step: usize) -> String {
    match plan.phases.get(phase) {
        Some(p) => match p.steps.get(step) {
            Some(s) => format!(
                "phase {}, step {} \"{}\"",
                p.name(),
                step + 1,
                s.get_ref().display_name()
            ),
            None => format!("phase {}", p.name()),
        },
        None => "the end".into(),
    }
}

/// Builds the per-phase status table from the journal rows.
pub(crate) fn statuses(plan: &Plan, rows: &[StepRow]) -> Vec<Vec<StepStatus>> {
    plan.phases
        .iter()
        .enumerate()
        .map(|(pi, phase)| {
            (0..phase.steps.len())
                .map(|si| {
                    rows.iter()
                        .find(|r| r.phase == pi as i32 && r.step == si as i32)
                        .map_or(StepStatus::Pending, |r| r.status)
                })
                .collect()
        })
        .collect()
}

/// The gate message of a phase.
fn gate_message(phase: &crate::plan::Phase) -> String {
    if phase.irreversible {
        format!(
            "advancing starts {}, which cannot be rolled back{}",
            phase.name(),
            if phase.description.is_empty() {
                String::new()
            } else {
                format!(" ({})", phase.description)
            }
        )
    } else {
        phase.description.clone()
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive_run(
    plan: &Plan,
    control: &mut Control,
    out: &Emitter,
    session: &Session,
    run: &RunRow,
    resumed: bool,
    started: Instant,
    oversight: &Oversight,
    databases: &crate::db::databases::Databases,
) -> Result<Outcome, RunError> {
    let (work, journal_conn) = (&session.work, &*session.journal);
    crate::db::retry::set_statement_timeout(work, plan.settings.statement_timeout.0).await?;
    let rows = journal::steps(&journal_conn.client, run.id).await?;
    let mut table = statuses(plan, &rows);
    let first_open = table
        .iter()
        .enumerate()
        .flat_map(|(pi, ss)| ss.iter().enumerate().map(move |(si, s)| (pi, si, *s)))
        .find(|(_, _, s)| *s != StepStatus::Done)
        .map(|(pi, si, _)| (pi, si));
    out.progress(|p| {
        p.statuses = table.clone();
        p.state = RunState::Running;
        p.position = first_open;
        p.reason = None;
    });
    out.emit(EventKind::RunStarted {
        run_id: run.id,
        plan: plan.name.clone(),
        resumed,
        from: first_open.map_or("the end".into(), |(pi, si)| position_text(plan, pi, si)),
    });
    let policy = retry_policy(plan);

    for (pi, phase) in plan.phases.iter().enumerate() {
        // The irreversible phase done: the version schema's shape becomes
        // physical (again here on a resume that finds the phase done).
        let hook = Hook {
            conn: work,
            journal_conn,
            run_id: run.id,
            phase: pi,
            policy: policy.clone(),
            databases,
        };
        if table[pi].iter().all(|s| *s == StepStatus::Done) {
            if let Err(e) = on_phase_done(plan, hook, control, out, oversight).await {
                return phase_done_failed(e, plan, out, pi);
            }
            continue;
        }
        let fresh = table[pi]
            .iter()
            .all(|s| matches!(s, StepStatus::Pending | StepStatus::RolledBack));
        if fresh && phase.gate == GateMode::Manual {
            let message = gate_message(phase);
            if let Err(e) =
                steps::gate::wait(control, out, pi, phase.name(), &message, phase.irreversible)
                    .await
            {
                return Ok(stopped(e, plan, out, (pi, 0)));
            }
        }
        out.emit(EventKind::PhaseStarted {
            phase: pi,
            name: phase.name().to_string(),
            irreversible: phase.irreversible,
        });
        for (si, step) in phase.steps.iter().enumerate() {
            let step = step.get_ref();
            let name = step.display_name();
            if table[pi][si] == StepStatus::Done {
                out.emit(EventKind::StepSkipped {
                    phase: pi,
                    step: si,
                    name,
                });
                continue;
            }
            if let Err(stop) = control.safe_point(out).await {
                return Ok(stopped(StepError::Stopped(stop), plan, out, (pi, si)));
            }
            let journal_row = rows
                .iter()
                .find(|r| r.phase == pi as i32 && r.step == si as i32);
            // What the step is and how it is undone, recorded as it starts:
            // a rollback runs exactly this, whatever the file says later.
            let undo = crate::statements::undo::recorded_undo(step, plan);
            journal::steps::record_identity(
                &journal_conn.client,
                run.id,
                pi,
                si,
                &crate::plan::identity::fingerprint(step),
                &crate::plan::identity::spec(step),
                &serde_json::to_value(&undo).unwrap_or_default(),
            )
            .await?;
            journal::set_step_status(
                &journal_conn.client,
                run.id,
                pi,
                si,
                StepStatus::Running,
                None,
            )
            .await?;
            table[pi][si] = StepStatus::Running;
            let snapshot = table.clone();
            out.progress(|p| {
                p.position = Some((pi, si));
                p.statuses = snapshot;
                p.state = RunState::Running;
            });
            out.emit(EventKind::StepStarted {
                phase: pi,
                step: si,
                name: name.clone(),
                kind: step.kind().into(),
            });
            if let Step::Sql(SqlStep {
                allow_unsafe: Some(reason),
                ..
            }) = step
            {
                out.emit(EventKind::Notice {
                    message: format!(
                        "step \"{name}\" runs a statement the linter flags; allowed because: {reason}"
                    ),
                });
            }
            let t0 = Instant::now();
            let mut ctx = Ctx {
                conn: work,
                journal_conn,
                plan,
                run_id: run.id,
                phase: pi,
                step: si,
                journal: journal_row,
                policy: super::stall::policy_for(&policy, step, plan),
                control,
                out,
                name: name.clone(),
                monitor: &oversight.monitor,
                focus: &oversight.focus,
                counters: &oversight.counters,
                monitor_started: oversight.started,
                databases,
            };
            let result = steps::run(step, &mut ctx).await;
            match result {
                Ok(detail) => {
                    journal::set_step_status(
                        &journal_conn.client,
                        run.id,
                        pi,
                        si,
                        StepStatus::Done,
                        Some(&detail),
                    )
                    .await?;
                    table[pi][si] = StepStatus::Done;
                    let snapshot = table.clone();
                    out.progress(|p| p.statuses = snapshot);
                    out.emit(EventKind::StepFinished {
                        phase: pi,
                        step: si,
                        name,
                        elapsed_ms: t0.elapsed().as_millis() as u64,
                        detail,
                    });
                }
                Err(StepError::Lost(e)) => {
                    // The step's own error; the run reconnects and the
                    // journal (not this session) says where it stands.
                    return Err(RunError::Lost(e));
                }
                Err(err) => {
                    let created = journal::steps(&journal_conn.client, run.id)
                        .await
                        .map(|rows| {
                            rows.into_iter()
                                .find(|r| r.phase == pi as i32 && r.step == si as i32)
                                .map(|r| r.created)
                                .unwrap_or_default()
                        })
                        .unwrap_or_default();
                    clean_up_step(step, &created, work, databases, out).await;
                    let status = match &err {
                        StepError::Stopped(_)
                            if step.kind() == "backfill"
                                || step.kind() == "copy_rows"
                                || step.is_versioned() =>
                        {
                            // A batched step keeps its checkpoint and stays
                            // "running"; others start over.
                            StepStatus::Running
                        }
                        StepError::Stopped(_) => StepStatus::Pending,
                        _ => StepStatus::Failed,
                    };
                    let detail = err.failure();
                    journal::set_step_status(
                        &journal_conn.client,
                        run.id,
                        pi,
                        si,
                        status,
                        detail.as_deref(),
                    )
                    .await?;
                    table[pi][si] = status;
                    let snapshot = table.clone();
                    out.progress(|p| p.statuses = snapshot);
                    if let Some(error) = &detail {
                        out.emit(EventKind::StepFailed {
                            phase: pi,
                            step: si,
                            name: name.clone(),
                            error: error.clone(),
                        });
                    }
                    return Ok(stopped(err, plan, out, (pi, si)));
                }
            }
        }
        if let Err(e) = on_phase_done(plan, hook, control, out, oversight).await {
            return phase_done_failed(e, plan, out, pi);
        }
    }
    out.progress(|p| {
        p.state = RunState::Finished;
        p.position = None;
    });
    out.emit(EventKind::Finished {
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    Ok(Outcome::Finished)
}

/// Removes what an interrupted step left half-made (only objects this run
/// recorded creating), and says so. Tried again when a late cancel request
/// lands on it ([`crate::db::past_late_cancel`]).
pub(crate) async fn clean_up_step(
    step: &crate::plan::Step,
    created: &[journal::steps::Created],
    conn: &Conn,
    databases: &crate::db::databases::Databases,
    out: &Emitter,
) {
    let result =
        crate::db::past_late_cancel(|| steps::clean_up(step, created, conn, databases)).await;
    match result {
        Ok(Some(message)) => out.emit(EventKind::Notice { message }),
        Ok(None) => {}
        Err(e) => out.emit(EventKind::Notice {
            message: format!(
                "could not clean up after \"{}\": {e}; check for leftovers by hand",
                step.display_name()
            ),
        }),
    }
}

/// Announces how the run stopped and returns the outcome.
/// How the run stops when the work at the end of phase `pi` fails: at the
/// phase's last step (a lost connection reconnects).
fn phase_done_failed(
    e: StepError,
    plan: &Plan,
    out: &Emitter,
    pi: usize,
) -> Result<Outcome, RunError> {
    match e {
        StepError::Lost(e) => Err(RunError::Lost(e)),
        e => {
            let last = plan.phases[pi].steps.len().saturating_sub(1);
            Ok(stopped(e, plan, out, (pi, last)))
        }
    }
}

pub(crate) fn stopped(err: StepError, plan: &Plan, out: &Emitter, at: (usize, usize)) -> Outcome {
    let where_ = position_text(plan, at.0, at.1);
    match err {
        StepError::Stopped(Stop::Aborted(reason)) => {
            out.progress(|p| {
                p.state = RunState::Aborted;
                p.reason = Some(reason.clone());
                p.batch = None;
            });
            out.emit(EventKind::Aborted {
                reason: reason.clone(),
                at: where_,
            });
            Outcome::Aborted(reason)
        }
        StepError::Stopped(Stop::Detached) => {
            out.progress(|p| {
                p.state = RunState::Detached;
                p.batch = None;
            });
            out.emit(EventKind::Detached { at: where_ });
            Outcome::Detached
        }
        other => {
            let error = format!(
                "{} (at {where_}; fix the cause, then `cutover run` resumes)",
                other.failure().unwrap_or_default()
            );
            out.progress(|p| {
                p.state = RunState::Failed;
                p.reason = Some(error.clone());
            });
            out.emit(EventKind::Failed {
                error: error.clone(),
            });
            Outcome::Failed(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_stall_budget_caps_each_lock_attempt() {
        let text = "name = \"p\"\n[settings]\nlock_timeout = \"2s\"\nmax_stall = \"150ms\"\n[[phases]]\nname = \"a\"\n[[phases.steps]]\nkind = \"gate\"\nmessage = \"m\"\n";
        let plan = crate::plan::parse(std::path::Path::new("p.toml"), text).expect("plan");
        assert_eq!(retry_policy(&plan).lock_timeout, Duration::from_millis(150));
        let plain = crate::plan::parse(
            std::path::Path::new("p.toml"),
            &text.replace("max_stall = \"150ms\"\n", ""),
        )
        .expect("plan");
        assert_eq!(retry_policy(&plain).lock_timeout, Duration::from_secs(2));
    }
}
