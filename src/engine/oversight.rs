//! Watching over a run: the monitor on its own connections, and the guard
//! that evaluates the abort criteria on every sample and aborts on a trip.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::control::{AbortHandle, Counters};
use super::emitter::Emitter;
use super::events::EventKind;
use super::guard::Guard;
use super::progress::RunState;
use super::session::Session;
use crate::db::Target;
use crate::monitor::{self, Focus, MonitorHandle, MonitorState};
use crate::plan::Plan;

/// The monitor, guard and counters of one run.
pub(crate) struct Oversight {
    pub focus: Arc<Mutex<Focus>>,
    pub monitor: watch::Receiver<Arc<MonitorState>>,
    pub counters: Arc<Counters>,
    pub started: Instant,
    _monitor: MonitorHandle,
    guard: tokio::task::JoinHandle<()>,
}

impl Drop for Oversight {
    fn drop(&mut self) {
        self.guard.abort();
    }
}

/// Starts the monitor on the session's backends, and the guard over it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_oversight(
    plan: &Plan,
    target: &Target,
    session: &Session,
    wiring_tx: watch::Sender<Arc<MonitorState>>,
    monitor: watch::Receiver<Arc<MonitorState>>,
    abort: AbortHandle,
    out: &Emitter,
    live: Option<super::live::Live>,
) -> Oversight {
    let focus = Arc::new(Mutex::new(Focus {
        ours: session.pids(),
        ..Focus::default()
    }));
    let handle = monitor::spawn(target.clone(), focus.clone(), wiring_tx);
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let guard = spawn_guard(
        Guard::new(plan.abort.clone()),
        (target.clone(), focus.clone()),
        live,
        monitor.clone(),
        counters.clone(),
        abort,
        out.clone(),
        started,
    );
    Oversight {
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
#[allow(clippy::too_many_arguments)]
fn spawn_guard(
    mut guard: Guard,
    (main, focus): (Target, Arc<Mutex<Focus>>),
    live: Option<super::live::Live>,
    mut monitor: watch::Receiver<Arc<MonitorState>>,
    counters: Arc<Counters>,
    abort: AbortHandle,
    out: Emitter,
    started: Instant,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen_version = 0;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                changed = monitor.changed() => if changed.is_err() { return },
                _ = tick.tick() => {}
            }
            // Only while steps run: not at a gate, paused, or reconnecting
            // (the monitor reconnects on its own; the run's reconnect has
            // its own bound).
            // The worst stall cutover caused so far: the longest wait of a
            // session queued behind one of its sessions, and, while a step
            // runs, the canary probe's slowest read-and-commit (the waits
            // pg_locks cannot show: a commit queued behind the WAL of
            // cutover's writes, a lock wait shorter than a sample).
            let running = out.snapshot().state == RunState::Running;
            let longest = {
                let m = monitor.borrow();
                let locks = m.sample.blocked_behind_us().map(|w| w.waited).max();
                let probe = m.sample.probe.as_ref().filter(|_| running).map(|p| p.max);
                locks.max(probe).unwrap_or_default()
            };
            out.progress_if(|p| {
                (longest > p.worst_stall)
                    .then(|| p.worst_stall = longest)
                    .is_some()
            });
            // At a gate or a pause only a move's slot works on: its limits
            // still hold.
            let at_rest = matches!(
                out.snapshot().state,
                RunState::WaitingGate | RunState::Paused
            );
            if out.snapshot().state != RunState::Running && !at_rest {
                continue;
            }
            // `cutover set` may have changed the limits.
            if let Some(l) = &live
                && let Ok(s) = l.read()
                && s.version != seen_version
            {
                seen_version = s.version;
                guard.set_limits(s.abort.clone());
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
            let trip = if at_rest {
                guard.observe_move(&state.sample)
            } else {
                guard
                    .stale(silent)
                    .or_else(|| guard.observe(&state.sample, lock_timeouts))
            };
            if let Some(trip) = trip {
                out.emit(EventKind::CriterionTripped {
                    criterion: trip.criterion.to_string(),
                    value: trip.value.clone(),
                    limit: trip.limit.clone(),
                    detail: trip.detail.clone(),
                });
                // No step runs to remove the slot that keeps the WAL: the
                // guard does, or the disk fills after the run has stopped.
                if at_rest && trip.criterion == "slot_retained_wal" {
                    release_slot(&main, &focus, &out).await;
                }
                abort.abort(trip.reason());
                return;
            }
        }
    })
}

/// Drops the watched move's subscription and slots (the publication and
/// the tables stay for `cutover rollback`), saying what happened.
async fn release_slot(main: &Target, focus: &Mutex<Focus>, out: &Emitter) {
    let Some(sub) = focus.lock().ok().and_then(|f| f.subscription.clone()) else {
        return;
    };
    let result = async {
        let source = crate::db::Conn::connect(main).await?;
        let other = crate::db::Conn::connect(&sub.target).await.ok();
        super::steps::detach::drop_subscription(&source, other.as_ref(), &sub.name).await
    }
    .await;
    let message = match result {
        Ok(()) => format!(
            "removed subscription and slot {} so that they stop keeping WAL on this server; \
             `cutover rollback` removes the rest of the move, then run the plan again",
            sub.name
        ),
        Err(e) => format!(
            "removing subscription and slot {} failed: {e}; drop the slot by hand \
             (pg_drop_replication_slot) before this server's disk fills",
            sub.name
        ),
    };
    out.emit(EventKind::Notice { message });
}

impl Oversight {
    /// Counts a reconnected session's backends as the migration's own.
    pub(crate) fn adopt(&self, session: &Session) {
        if let Ok(mut f) = self.focus.lock() {
            for pid in session.pids() {
                if !f.ours.contains(&pid) {
                    f.ours.push(pid);
                }
            }
        }
    }
}
