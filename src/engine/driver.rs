//! Spawning a run and driving it: phases, gates, steps, how it heals a
//! dropped connection, and how it stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::control::{AbortHandle, Command, Control, Stop};
use super::emitter::Emitter;
use super::error::{RunError, StepError};
use super::events::{Event, EventKind};
use super::identity::{self, PlannedStep};
use super::listener::spawn_listener;
use super::oversight::{Oversight, start_oversight};
use super::progress::{Progress, RunState};
use super::session::{JournalSlot, Session, open_session, reconnect};
use super::steps::{self, Ctx};
use crate::db::{Conn, DbError, RetryPolicy, Target, quote_literal};
use crate::journal::{self, RunRow, RunStatus, StepRow, StepStatus};
use crate::monitor::MonitorState;
use crate::plan::model::{GateMode, SqlStep, Step};
use crate::plan::{LoadedPlan, Plan};

/// How a run is started.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Release every gate automatically.
    pub yes: bool,
    /// Resume even though the plan file changed.
    pub force_changed_plan: bool,
}

/// How a run (or rollback) session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every step done.
    Finished,
    /// The plan's last run already finished; nothing to do.
    AlreadyFinished {
        /// That run.
        run_id: i64,
    },
    /// A step (or cutover) failed.
    Failed(String),
    /// Refused before anything changed; the journal is as it was.
    Refused(String),
    /// Aborted, with the reason.
    Aborted(String),
    /// Paused and let go; resumable.
    Detached,
    /// Rollback done.
    RolledBack,
}

impl Outcome {
    /// The process exit code for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Finished | Outcome::AlreadyFinished { .. } | Outcome::RolledBack => {
                crate::exit::OK
            }
            Outcome::Failed(_) | Outcome::Refused(_) => crate::exit::FAILED,
            Outcome::Aborted(_) => crate::exit::ABORTED,
            Outcome::Detached => crate::exit::DETACHED,
        }
    }
}

/// A frontend's handle on a running engine.
pub struct EngineHandle {
    /// Commands to the engine.
    pub commands: mpsc::Sender<Command>,
    /// Events from the engine; ends when the engine has stopped.
    pub events: mpsc::Receiver<Event>,
    /// The latest progress.
    pub progress: watch::Receiver<Progress>,
    /// Stops the engine at once.
    pub abort: AbortHandle,
    /// The latest monitor sample and its history.
    pub monitor: watch::Receiver<Arc<MonitorState>>,
    /// The engine task.
    pub task: JoinHandle<Outcome>,
}

type BoxedDriver =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, RunError>> + Send>>;

/// Everything a driver is handed by [`spawn_with`].
pub(crate) struct Wiring {
    pub control: Control,
    pub out: Emitter,
    pub journal: JournalSlot,
    pub remote: mpsc::Sender<Command>,
    pub monitor_tx: watch::Sender<Arc<MonitorState>>,
    pub monitor_rx: watch::Receiver<Arc<MonitorState>>,
}

/// Spawns an engine task around `drive`, with its channels.
pub(crate) fn spawn_with(
    auto_advance: bool,
    drive: impl FnOnce(Wiring) -> BoxedDriver,
) -> EngineHandle {
    let (cmd_tx, inbox) = mpsc::channel(64);
    let (engine_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let (prog_tx, prog_rx) = watch::channel(Progress::default());
    let (mon_tx, mon_rx) = watch::channel(Arc::new(MonitorState::default()));
    let abort = AbortHandle::default();
    let slot = JournalSlot::default();
    let (emitter, forwarder) = Emitter::new(ev_tx, prog_tx, slot.clone());
    let control = Control::new(cmd_rx, abort.clone(), auto_advance);
    let out = emitter.clone();
    tokio::spawn(super::signal::inbox(
        inbox,
        engine_tx,
        slot.clone(),
        emitter.clone(),
    ));
    let fut = drive(Wiring {
        control,
        out: emitter,
        journal: slot,
        remote: cmd_tx.clone(),
        monitor_tx: mon_tx,
        monitor_rx: mon_rx.clone(),
    });
    let task = tokio::spawn(async move {
        let outcome = finish(fut.await, &out);
        // Every event is delivered and journaled before the task ends (the
        // forwarder stops once the last emitter is gone).
        drop(out);
        let _ = forwarder.await;
        outcome
    });
    EngineHandle {
        commands: cmd_tx,
        events: ev_rx,
        progress: prog_rx,
        abort,
        monitor: mon_rx,
        task,
    }
}

/// Starts (or resumes) a run of a plan in a background task.
pub fn spawn_run(plan: LoadedPlan, target: Target, opts: RunOptions) -> EngineHandle {
    spawn_with(opts.yes, move |wiring| {
        Box::pin(async move { drive(&plan, &target, &opts, wiring).await })
    })
}

/// Turns a driver's result into the outcome, announcing a failure. A
/// refusal is announced without touching the journal.
fn finish(result: Result<Outcome, RunError>, out: &Emitter) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(RunError::Refused(reason)) => {
            out.progress(|p| {
                p.state = RunState::Failed;
                p.reason = Some(reason.clone());
            });
            out.emit(EventKind::Refused {
                reason: reason.clone(),
            });
            Outcome::Refused(reason)
        }
        Err(error) => {
            let error = error.to_string();
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

/// The retry policy of a plan's `[settings]`.
pub fn retry_policy(plan: &Plan) -> RetryPolicy {
    // A DDL waiting for its lock queues every later query on the table:
    // under `max_stall`, no attempt waits longer than the budget.
    let lock_timeout = match plan.settings.max_stall {
        Some(budget) => plan.settings.lock_timeout.0.min(budget.0),
        None => plan.settings.lock_timeout.0,
    };
    RetryPolicy {
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

/// The changed steps of a run, as one refusal.
fn changed_refusal(plan: &LoadedPlan, run: &RunRow, changed: &[identity::ChangedStep]) -> String {
    let list: Vec<String> = changed.iter().map(|c| format!("  - {c}")).collect();
    format!(
        "{} changed since run #{} started:\n{}\nReview the change; restore the plan file, or pass \
         --force-changed-plan to resume with the new file (changed batched steps start over; a \
         changed step that already ran stays done; a rollback runs the undo recorded in the \
         journal, never the file's new text)",
        plan.path.display(),
        run.id,
        list.join("\n")
    )
}

async fn find_or_create_run(
    plan: &LoadedPlan,
    opts: &RunOptions,
    journal_conn: &Conn,
    out: &Emitter,
) -> Result<Result<(RunRow, bool), Outcome>, RunError> {
    let name = &plan.plan.name;
    let client = &journal_conn.client;
    let planned = identity::planned(&plan.plan);
    if let Some(run) = journal::unfinished_run(client, name).await? {
        if run.plan_hash == plan.hash {
            return Ok(Ok((run, true)));
        }
        let rows = journal::steps(client, run.id).await?;
        let changed = identity::plan_changes(&planned, &rows);
        if changed.is_empty() {
            // Comments, layout, labels or tuning only.
            out.emit(EventKind::Notice {
                message: format!(
                    "{} changed since run #{} started, but no step changed what it does; resuming",
                    plan.path.display(),
                    run.id
                ),
            });
            journal::runs::set_plan_hash(client, run.id, &plan.hash).await?;
            return Ok(Ok((run, true)));
        }
        if !opts.force_changed_plan {
            return Err(RunError::Refused(changed_refusal(plan, &run, &changed)));
        }
        let layout = identity::realign(&planned, &rows).map_err(RunError::Refused)?;
        journal::steps::realign(client, run.id, &layout.steps).await?;
        journal::runs::set_plan_hash(client, run.id, &plan.hash).await?;
        for message in layout.notices {
            out.emit(EventKind::Notice { message });
        }
        return Ok(Ok((run, true)));
    }
    if let Some(last) = journal::latest_run(client, name).await?
        && last.status == RunStatus::Finished
        && last.plan_hash == plan.hash
    {
        return Ok(Err(Outcome::AlreadyFinished { run_id: last.id }));
    }
    let new_steps: Vec<_> = planned.iter().map(PlannedStep::new_step).collect();
    let run = journal::create_run(
        client,
        name,
        &plan.hash,
        &plan.path.display().to_string(),
        &new_steps,
    )
    .await?;
    Ok(Ok((run, false)))
}

async fn drive(
    loaded: &LoadedPlan,
    target: &Target,
    opts: &RunOptions,
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
    let started = Instant::now();
    let plan = &loaded.plan;
    let mut session = open_session(loaded, target, out, &slot, &[]).await?;
    let (run, mut resumed) = match find_or_create_run(loaded, opts, &session.journal, out).await? {
        Ok(found) => found,
        Err(outcome) => {
            if let Outcome::AlreadyFinished { run_id } = outcome {
                out.emit(EventKind::Notice {
                        message: format!(
                            "run #{run_id} of \"{}\" already finished with this plan file; nothing to do",
                            plan.name
                        ),
                    });
                out.progress(|p| p.state = RunState::Finished);
            }
            return Ok(outcome);
        }
    };
    out.set_run_id(run.id);
    let _beacon = super::beacon::start(run.id, out.subscribe(), slot.clone());
    let live = super::live::from_plan(&plan.throttle, &plan.abort);
    control.live = Some(live.clone());
    let oversight = start_oversight(
        plan,
        target,
        &session,
        monitor_tx,
        monitor_rx,
        control.abort.clone(),
        out,
        Some(live),
    );
    control.focus = Some(oversight.focus.clone());
    if let Some(resting) = resting_probe(plan, &session.work).await
        && let Ok(mut f) = oversight.focus.lock()
    {
        f.resting = Some(resting);
    }
    let mut own_pids = session.pids();
    loop {
        let notifications =
            std::mem::replace(&mut session.notifications, mpsc::unbounded_channel().1);
        let listener = spawn_listener(
            notifications,
            slot.clone(),
            run.id,
            remote.clone(),
            control.abort.clone(),
            out.clone(),
        );
        let result = drive_run(
            plan, control, out, &session, &run, resumed, started, &oversight,
        )
        .await;
        listener.abort();
        let error = match result {
            Err(e) if e.is_connection_lost() && !control.abort.is_aborted() => e,
            other => return other,
        };
        // Heal: connect again, take the plan's lock again, re-read the
        // journal and go on from the checkpoint.
        let at = out
            .snapshot()
            .position
            .map_or("the start".into(), |(p, s)| position_text(plan, p, s));
        let bound = plan.settings.reconnect_timeout.0;
        out.progress(|p| {
            p.state = RunState::Reconnecting;
            p.reason = Some(format!("connection lost: {error}"));
        });
        out.emit(EventKind::ConnectionLost {
            error: error.to_string(),
            at: at.clone(),
            bound_secs: bound.as_secs(),
        });
        let t0 = Instant::now();
        session = match reconnect(loaded, target, out, &slot, &own_pids, bound, &control.abort)
            .await
        {
            Ok(s) => s,
            Err(RunError::Refused(why)) => return Err(RunError::Refused(why)),
            Err(e) => {
                return Err(RunError::Failed(format!(
                    "{error} (at {at}); reconnecting for {} failed: {e}. The journal is consistent: \
                     once the database is reachable, `cutover run {}` resumes from the checkpoint",
                    crate::engine::events::short_duration(bound),
                    loaded.path.display()
                )));
            }
        };
        own_pids.extend(session.pids());
        oversight.adopt(&session);
        match journal::run_by_id(&session.journal.client, run.id).await? {
            Some(r) if matches!(r.status, RunStatus::Finished | RunStatus::RolledBack) => {
                return Err(RunError::Refused(format!(
                    "run #{} was {} by someone else while cutover reconnected; nothing more to do",
                    run.id,
                    r.status.as_str()
                )));
            }
            Some(_) => {}
            None => {
                return Err(RunError::Refused(format!(
                    "run #{} disappeared from the journal while cutover reconnected",
                    run.id
                )));
            }
        }
        out.emit(EventKind::Reconnected {
            after_ms: t0.elapsed().as_millis() as u64,
        });
        resumed = true;
    }
}

/// The plan's main table and a key to probe it by: a batched step's key on
/// it, else its single-column primary key.
async fn resting_probe(plan: &Plan, work: &Conn) -> Option<(String, String)> {
    let table = crate::plan::main_table(plan);
    let from_plan = plan
        .phases
        .iter()
        .flat_map(|p| p.steps.iter())
        .find_map(|s| match s.get_ref() {
            Step::Backfill(b) if b.table == table => Some(b.key.clone()),
            Step::CopyRows(c) if c.from == table => Some(c.key.clone()),
            _ => None,
        });
    if let Some(key) = from_plan {
        return Some((table, key));
    }
    let row = work
        .client
        .query_opt(
            "SELECT a.attname::text FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = to_regclass($1) AND i.indisprimary AND i.indnatts = 1",
            &[&crate::db::quote_qualified(&table)],
        )
        .await
        .ok()??;
    Some((table, row.get(0)))
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
async fn drive_run(
    plan: &Plan,
    control: &mut Control,
    out: &Emitter,
    session: &Session,
    run: &RunRow,
    resumed: bool,
    started: Instant,
    oversight: &Oversight,
) -> Result<Outcome, RunError> {
    let (work, journal_conn) = (&session.work, &*session.journal);
    let timeout = plan.settings.statement_timeout;
    work.client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            quote_literal(&format!("{}ms", timeout.as_millis()))
        ))
        .await
        .map_err(|e| DbError::sql("setting statement_timeout from [settings]", e))?;
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
        if table[pi].iter().all(|s| *s == StepStatus::Done) {
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
                policy: policy.clone(),
                control,
                out,
                name: name.clone(),
                monitor: &oversight.monitor,
                focus: &oversight.focus,
                counters: &oversight.counters,
                monitor_started: oversight.started,
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
                    clean_up_step(step, &created, work, out).await;
                    let status = match &err {
                        StepError::Stopped(_)
                            if step.kind() == "backfill" || step.kind() == "copy_rows" =>
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

/// How long a run waits for its own statements to reach the server again
/// after the connection dropped, unless `[settings] reconnect_timeout` says.
pub const RECONNECT_DEFAULT: Duration = Duration::from_secs(60);

/// Removes what an interrupted step left half-made (only objects this run
/// recorded creating), and says so. Tried again when a late cancel request
/// lands on it ([`crate::db::past_late_cancel`]).
pub(crate) async fn clean_up_step(
    step: &crate::plan::Step,
    created: &[journal::steps::Created],
    conn: &Conn,
    out: &Emitter,
) {
    let result = crate::db::past_late_cancel(|| steps::clean_up(step, created, conn)).await;
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
