//! Spawning a run and driving it: phases, gates, steps, and how it stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OnceCell, mpsc, watch};
use tokio::task::JoinHandle;

use super::control::{AbortHandle, Command, Control, Counters, Stop};
use super::emitter::Emitter;
use super::events::{Event, EventKind};
use super::guard::Guard;
use super::progress::{Progress, RunState};
use super::steps::{self, Ctx, StepError};
use crate::db::{Conn, RetryPolicy, Target, quote_literal};
use crate::journal::{self, NewStep, RunRow, RunStatus, StepRow, StepStatus};
use crate::monitor::{self, Focus, MonitorHandle, MonitorState};
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
            Outcome::Failed(_) => crate::exit::FAILED,
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

/// What every session (run or rollback) starts with.
pub(crate) struct Session {
    pub main: Conn,
    pub side: Arc<Conn>,
    pub notifications: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
}

type BoxedDriver =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Outcome, String>> + Send>>;

/// Everything a driver is handed by [`spawn_with`].
pub(crate) struct Wiring {
    pub control: Control,
    pub out: Emitter,
    pub journal: Arc<OnceCell<Arc<Conn>>>,
    pub remote: mpsc::Sender<Command>,
    pub monitor_tx: watch::Sender<Arc<MonitorState>>,
    pub monitor_rx: watch::Receiver<Arc<MonitorState>>,
}

/// Spawns an engine task around `drive`, with its channels.
pub(crate) fn spawn_with(
    auto_advance: bool,
    drive: impl FnOnce(Wiring) -> BoxedDriver,
) -> EngineHandle {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(1024);
    let (prog_tx, prog_rx) = watch::channel(Progress::default());
    let (mon_tx, mon_rx) = watch::channel(Arc::new(MonitorState::default()));
    let abort = AbortHandle::default();
    let journal_conn = Arc::new(OnceCell::new());
    let (emitter, forwarder) = Emitter::new(ev_tx, prog_tx, journal_conn.clone());
    let control = Control::new(cmd_rx, abort.clone(), auto_advance);
    let out = emitter.clone();
    let fut = drive(Wiring {
        control,
        out: emitter,
        journal: journal_conn,
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

/// The monitor, guard and counters of one session.
pub(crate) struct Watch {
    pub focus: Arc<Mutex<Focus>>,
    pub monitor: watch::Receiver<Arc<MonitorState>>,
    pub counters: Arc<Counters>,
    pub started: Instant,
    _monitor: MonitorHandle,
    guard: tokio::task::JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.guard.abort();
    }
}

/// Starts the monitor on the session's backends, and the guard over it.
pub(crate) fn start_watch(
    plan: &Plan,
    target: &Target,
    session: &Session,
    wiring_tx: watch::Sender<Arc<MonitorState>>,
    monitor: watch::Receiver<Arc<MonitorState>>,
    abort: AbortHandle,
    out: &Emitter,
) -> Watch {
    let focus = Arc::new(Mutex::new(Focus {
        ours: vec![session.main.pid(), session.side.pid()],
        table: None,
        key: None,
    }));
    let handle = monitor::spawn(target.clone(), focus.clone(), wiring_tx);
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let guard = spawn_guard(
        Guard::new(plan.abort.clone()),
        monitor.clone(),
        counters.clone(),
        abort,
        out.clone(),
        started,
    );
    Watch {
        focus,
        monitor,
        counters,
        started,
        _monitor: handle,
        guard,
    }
}

/// Evaluates the abort criteria on every sample while steps run, and once a
/// second for staleness; on a trip, records it and aborts.
fn spawn_guard(
    mut guard: Guard,
    mut monitor: watch::Receiver<Arc<MonitorState>>,
    counters: Arc<Counters>,
    abort: AbortHandle,
    out: Emitter,
    started: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                changed = monitor.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
            if out.snapshot().state != RunState::Running {
                continue;
            }
            let state = monitor.borrow().clone();
            let silent = if state.sample.seq == 0 {
                started.elapsed()
            } else {
                state.sample.taken.elapsed()
            };
            let lock_timeouts = counters
                .lock_timeouts
                .load(std::sync::atomic::Ordering::Relaxed);
            let trip = guard
                .stale(silent)
                .or_else(|| guard.observe(&state.sample, lock_timeouts));
            if let Some(trip) = trip {
                out.emit(EventKind::CriterionTripped {
                    criterion: trip.criterion.to_string(),
                    value: trip.value.clone(),
                    limit: trip.limit.clone(),
                    detail: trip.detail.clone(),
                });
                abort.abort(trip.reason());
                return;
            }
        }
    })
}

/// Starts (or resumes) a run of a plan in a background task.
pub fn spawn_run(plan: LoadedPlan, target: Target, opts: RunOptions) -> EngineHandle {
    spawn_with(opts.yes, move |wiring| {
        Box::pin(async move { drive(&plan, &target, &opts, wiring).await })
    })
}

/// Turns a driver's result into the outcome, announcing a setup failure.
fn finish(result: Result<Outcome, String>, out: &Emitter) -> Outcome {
    match result {
        Ok(outcome) => outcome,
        Err(error) => {
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

/// Connects both connections, prepares the journal, and takes the plan's
/// lock (refusing, with the holder named, if another cutover has it).
pub(crate) async fn open_session(
    plan: &LoadedPlan,
    target: &Target,
    out: &Emitter,
    cell: &OnceCell<Arc<Conn>>,
) -> Result<Session, String> {
    let (side, notifications) = Conn::connect_listening(target)
        .await
        .map_err(|e| e.to_string())?;
    let side = Arc::new(side);
    let _ = cell.set(side.clone());
    let main = Conn::connect(target).await.map_err(|e| e.to_string())?;
    let version: String = main
        .client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| e.to_string())?
        .get(0);
    out.emit(EventKind::Connected {
        target: target.display(),
        server_version: version,
    });
    journal::schema::ensure(&side.client)
        .await
        .map_err(|e| e.to_string())?;
    let name = &plan.plan.name;
    if let Some(holder) = journal::try_lock_plan(&side.client, name)
        .await
        .map_err(|e| e.to_string())?
    {
        let driver = journal::unfinished_run(&side.client, name)
            .await
            .ok()
            .flatten()
            .map(|r| {
                format!(
                    " (run #{} driven by cutover pid {} on {})",
                    r.id, r.os_pid, r.host
                )
            })
            .unwrap_or_default();
        return Err(format!(
            "plan \"{name}\" is already being run by another cutover{driver}, database session pid {}{}; \
             only one cutover may drive a plan. Watch it with `cutover status {}`, or stop it with `cutover abort {}`",
            holder.backend_pid,
            holder
                .client_addr
                .map(|a| format!(" from {a}"))
                .unwrap_or_default(),
            plan.path.display(),
            plan.path.display(),
        ));
    }
    side.client
        .batch_execute(&format!("LISTEN {}", journal::CONTROL_CHANNEL))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Session {
        main,
        side,
        notifications,
    })
}

/// Forwards `cutover advance|pause|resume|abort` from other terminals.
pub(crate) fn spawn_listener(
    mut notifications: mpsc::UnboundedReceiver<tokio_postgres::Notification>,
    run_id: i64,
    commands: mpsc::Sender<Command>,
    abort: AbortHandle,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(n) = notifications.recv().await {
            let Some((id, cmd)) = journal::RemoteCommand::parse_payload(n.payload()) else {
                continue;
            };
            if id != run_id {
                continue;
            }
            let by = "cutover ".to_string() + cmd.as_str();
            let command = match cmd {
                journal::RemoteCommand::Abort => {
                    abort.abort("aborted from another terminal (cutover abort)");
                    continue;
                }
                journal::RemoteCommand::Advance => Command::Advance { by },
                journal::RemoteCommand::Pause => Command::Pause { by },
                journal::RemoteCommand::Resume => Command::Resume { by },
            };
            if commands.send(command).await.is_err() {
                return;
            }
        }
        // The listening connection lives as long as the run (this task is
        // aborted when the run ends): its end means the database is gone,
        // and a run waiting at a gate or a pause must not wait forever.
        abort.abort("lost the connection to the database; `cutover run` resumes once it is back");
    })
}

/// The retry policy of a plan's `[settings]`.
pub fn retry_policy(plan: &Plan) -> RetryPolicy {
    RetryPolicy {
        lock_timeout: plan.settings.lock_timeout.0,
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

async fn find_or_create_run(
    plan: &LoadedPlan,
    opts: &RunOptions,
    side: &Conn,
) -> Result<Result<(RunRow, bool), Outcome>, String> {
    let name = &plan.plan.name;
    if let Some(run) = journal::unfinished_run(&side.client, name)
        .await
        .map_err(|e| e.to_string())?
    {
        if run.plan_hash != plan.hash && !opts.force_changed_plan {
            return Err(format!(
                "{} changed since run #{} of this plan started (status {}); review the change, then \
                 pass --force-changed-plan to resume with the new file, or `cutover rollback {}` first",
                plan.path.display(),
                run.id,
                run.status.as_str(),
                plan.path.display()
            ));
        }
        let shape_ok = journal::steps(&side.client, run.id)
            .await
            .map_err(|e| e.to_string())?
            .len()
            == plan
                .plan
                .phases
                .iter()
                .map(|p| p.steps.len())
                .sum::<usize>();
        if !shape_ok {
            return Err(format!(
                "{} has a different number of steps than run #{} recorded; resuming cannot line \
                 the steps up. Roll the run back (`cutover rollback {}`) or restore the plan file",
                plan.path.display(),
                run.id,
                plan.path.display()
            ));
        }
        return Ok(Ok((run, true)));
    }
    if let Some(last) = journal::latest_run(&side.client, name)
        .await
        .map_err(|e| e.to_string())?
        && last.status == RunStatus::Finished
        && last.plan_hash == plan.hash
    {
        return Ok(Err(Outcome::AlreadyFinished { run_id: last.id }));
    }
    let names: Vec<(String, String, &str)> = plan
        .plan
        .phases
        .iter()
        .flat_map(|p| {
            p.steps.iter().map(move |s| {
                (
                    p.name().to_string(),
                    s.get_ref().display_name(),
                    s.get_ref().kind(),
                )
            })
        })
        .collect();
    let mut new_steps = Vec::new();
    let mut i = 0;
    for (pi, phase) in plan.plan.phases.iter().enumerate() {
        for si in 0..phase.steps.len() {
            let (phase_name, step_name, kind) = &names[i];
            new_steps.push(NewStep {
                phase: pi as i32,
                step: si as i32,
                phase_name,
                name: step_name,
                kind,
            });
            i += 1;
        }
    }
    let run = journal::create_run(
        &side.client,
        name,
        &plan.hash,
        &plan.path.display().to_string(),
        &new_steps,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(Ok((run, false)))
}

async fn drive(
    loaded: &LoadedPlan,
    target: &Target,
    opts: &RunOptions,
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
    let started = Instant::now();
    let plan = &loaded.plan;
    let session = open_session(loaded, target, out, &cell).await?;
    let (run, resumed) = match find_or_create_run(loaded, opts, &session.side).await? {
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
    let watch = start_watch(
        plan,
        target,
        &session,
        monitor_tx,
        monitor_rx,
        control.abort.clone(),
        out,
    );
    let Session {
        main,
        side,
        notifications,
    } = session;
    let listener = spawn_listener(notifications, run.id, remote, control.abort.clone());
    let result = drive_run(
        plan, opts, control, out, &main, &side, &run, resumed, started, &watch,
    )
    .await;
    listener.abort();
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive_run(
    plan: &Plan,
    _opts: &RunOptions,
    control: &mut Control,
    out: &Emitter,
    main: &Conn,
    side: &Conn,
    run: &RunRow,
    resumed: bool,
    started: Instant,
    watch: &Watch,
) -> Result<Outcome, String> {
    let timeout = plan.settings.statement_timeout;
    main.client
        .batch_execute(&format!(
            "SET statement_timeout = {}",
            quote_literal(&format!("{}ms", timeout.as_millis()))
        ))
        .await
        .map_err(|e| format!("setting statement_timeout from [settings]: {e}"))?;
    let rows = journal::steps(&side.client, run.id)
        .await
        .map_err(|e| e.to_string())?;
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
            let message = if phase.irreversible {
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
            };
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
            journal::set_step_status(&side.client, run.id, pi, si, StepStatus::Running, None)
                .await
                .map_err(|e| e.to_string())?;
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
            let journal_row = rows
                .iter()
                .find(|r| r.phase == pi as i32 && r.step == si as i32);
            let mut ctx = Ctx {
                conn: main,
                plan,
                run_id: run.id,
                phase: pi,
                step: si,
                journal: journal_row,
                policy: policy.clone(),
                control,
                out,
                name: name.clone(),
                monitor: &watch.monitor,
                focus: &watch.focus,
                counters: &watch.counters,
                monitor_started: watch.started,
            };
            let result = steps::run(step, &mut ctx).await;
            match result {
                Ok(detail) => {
                    journal::set_step_status(
                        &side.client,
                        run.id,
                        pi,
                        si,
                        StepStatus::Done,
                        Some(&detail),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
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
                Err(err) => {
                    clean_up_step(step, main, out).await;
                    let status = match &err {
                        StepError::Failed(_) => StepStatus::Failed,
                        // A backfill keeps its checkpoint and stays
                        // "running"; others start over.
                        StepError::Stopped(_) if step.kind() == "backfill" => StepStatus::Running,
                        StepError::Stopped(_) => StepStatus::Pending,
                    };
                    let detail = match &err {
                        StepError::Failed(m) => Some(m.as_str()),
                        StepError::Stopped(_) => None,
                    };
                    journal::set_step_status(&side.client, run.id, pi, si, status, detail)
                        .await
                        .map_err(|e| e.to_string())?;
                    table[pi][si] = status;
                    let snapshot = table.clone();
                    out.progress(|p| p.statuses = snapshot);
                    if let StepError::Failed(error) = &err {
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

/// Removes what an interrupted step left half-made, and says so. Tried
/// again when a late cancel request lands on it
/// ([`crate::db::past_late_cancel`]).
pub(crate) async fn clean_up_step(step: &crate::plan::Step, conn: &Conn, out: &Emitter) {
    let result = crate::db::past_late_cancel(|| steps::clean_up(step, conn)).await;
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
        StepError::Failed(error) => {
            let error = format!("{error} (at {where_}; fix the cause, then `cutover run` resumes)");
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
