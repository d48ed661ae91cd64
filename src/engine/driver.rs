//! Spawning a run and driving it: its session, the walk through the plan
//! ([`super::walk`]), and how it heals a dropped connection.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::control::{AbortHandle, Command, Control};
use super::emitter::Emitter;
use super::error::RunError;
use super::events::{Event, EventKind};
use super::listener::spawn_listener;
use super::oversight::start_oversight;
use super::progress::{Progress, RunState};
use super::resume::find_or_create_run;
use super::session::{JournalSlot, open_session, reconnect};
use super::walk::{drive_run, position_text};
use crate::db::{Conn, Target};
use crate::journal::{self, RunStatus};
use crate::monitor::MonitorState;
use crate::plan::model::Step;
use crate::plan::{LoadedPlan, Plan};

pub use super::run::{Outcome, RunOptions};

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
    out.progress(|p| p.stall_budget = plan.settings.max_stall.map(|b| b.0));
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
    if let Some(moving) = attached_move(plan, &session.work, run.id, &opts.databases).await
        && let Ok(mut f) = oversight.focus.lock()
    {
        // A resumed run may wait at a gate before any move step runs
        // again: its slot is watched (and its limits held) from the start.
        f.subscription = Some(moving);
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
            plan,
            control,
            out,
            &session,
            &run,
            resumed,
            started,
            &oversight,
            &opts.databases,
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

/// The run's move whose publication exists (its replication attached), for
/// the monitor to watch.
async fn attached_move(
    plan: &Plan,
    work: &Conn,
    run_id: i64,
    databases: &crate::db::databases::Databases,
) -> Option<crate::monitor::subscription::SubscriptionFocus> {
    use crate::statements::replication as sql;
    let oid: u32 = work
        .client
        .query_one(sql::DATABASE_OID, &[])
        .await
        .ok()?
        .get(0);
    for step in plan.phases.iter().flat_map(|p| p.steps.iter()) {
        let Step::Replicate(r) = step.get_ref() else {
            continue;
        };
        let name = sql::move_name(oid, run_id, &r.to);
        let attached = work
            .client
            .query_one(sql::PUBLICATION_EXISTS, &[&name])
            .await;
        if attached.is_ok_and(|row| row.get::<_, bool>(0))
            && let Some(target) = databases.get(&r.to)
        {
            return Some(crate::monitor::subscription::SubscriptionFocus {
                database: r.to.clone(),
                target: target.clone(),
                name,
                copy_total_bytes: None,
            });
        }
    }
    None
}
