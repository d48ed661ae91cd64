//! How the engine publishes: events go through an unbounded hand-off to a
//! forwarder that records each in the journal and delivers it to the
//! frontend's bounded channel (waiting, never dropping), so a slow screen
//! never stalls a batch; progress goes to a `watch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::SystemTime;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::events::{Event, EventKind};
use super::progress::Progress;
use crate::journal::{self, RunStatus};

/// The engine's side of the event and progress channels.
#[derive(Clone)]
pub struct Emitter {
    tx: mpsc::UnboundedSender<Event>,
    progress: Arc<watch::Sender<Progress>>,
    run_id: Arc<AtomicI64>,
}

impl Emitter {
    /// Creates the emitter and its forwarder task. Events are journaled on
    /// `journal_conn` once the run id is known.
    pub fn new(
        frontend: mpsc::Sender<Event>,
        progress: watch::Sender<Progress>,
        journal_conn: crate::journal::JournalSlot,
    ) -> (Emitter, JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let run_id = Arc::new(AtomicI64::new(0));
        let id = run_id.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let run = id.load(Ordering::SeqCst);
                let conn = journal_conn.lock().ok().and_then(|c| c.clone());
                if run > 0
                    && let Some(conn) = conn
                {
                    if let Some((status, position, reason)) = run_status_change(&event.kind)
                        && let Err(e) = journal::set_run_status(
                            &conn.client,
                            run,
                            status,
                            position,
                            reason.as_deref(),
                        )
                        .await
                    {
                        tracing::warn!("could not journal the run's status: {e}");
                    }
                    let data = serde_json::to_value(&event).unwrap_or_default();
                    if let Err(e) = journal::record_event(
                        &conn.client,
                        run,
                        event.level.as_str(),
                        &event.kind.message(),
                        &data,
                    )
                    .await
                    {
                        tracing::warn!("could not journal an event: {e}");
                    }
                }
                // A frontend that went away is not an error for the engine.
                let _ = frontend.send(event).await;
            }
        });
        (
            Emitter {
                tx,
                progress: Arc::new(progress),
                run_id,
            },
            forwarder,
        )
    }

    /// Publishes an event.
    pub fn emit(&self, kind: EventKind) {
        self.progress
            .send_if_modified(|p| track_lock_wait(p, &kind));
        let event = Event {
            at: SystemTime::now(),
            level: kind.level(),
            kind,
        };
        tracing::info!("{}", event.kind.message());
        let _ = self.tx.send(event);
    }

    /// Sets the run id (events from now on are journaled).
    pub fn set_run_id(&self, id: i64) {
        self.run_id.store(id, Ordering::SeqCst);
        self.progress.send_modify(|p| p.run_id = Some(id));
    }

    /// Changes the published progress.
    pub fn progress(&self, f: impl FnOnce(&mut Progress)) {
        self.progress.send_modify(f);
    }

    /// Changes the published progress when `f` says it changed something.
    pub fn progress_if(&self, f: impl FnOnce(&mut Progress) -> bool) {
        self.progress.send_if_modified(f);
    }

    /// A receiver of the progress (for the journal's snapshot).
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// The current progress.
    pub fn snapshot(&self) -> Progress {
        self.progress.borrow().clone()
    }
}

/// Keeps the progress's lock-wait view in step with the events: set by a
/// retry, cleared when the step moves on or the run stops.
fn track_lock_wait(p: &mut Progress, kind: &EventKind) -> bool {
    use EventKind as K;
    match kind {
        K::Retry {
            name,
            retry,
            of,
            reason,
            ..
        } => {
            // Each retry follows a rolled-back attempt: cutover's own, not
            // the application's (the rollback_rate criterion).
            crate::monitor::activity::count_own_rollback();
            let since = match &p.lock_wait {
                Some(w) if &w.step == name => w.since,
                _ => Some(std::time::Instant::now()),
            };
            p.lock_wait = Some(super::progress::LockRetry {
                step: name.clone(),
                retry: *retry,
                of: *of,
                reason: reason.clone(),
                since,
            });
            p.lock_retries += 1;
            true
        }
        K::StepFinished { .. }
        | K::StepFailed { .. }
        | K::StepStarted { .. }
        | K::Aborted { .. }
        | K::Detached { .. }
        | K::Failed { .. }
        | K::Finished { .. }
        | K::ConnectionLost { .. } => p.lock_wait.take().is_some(),
        _ => false,
    }
}

type StatusChange = (RunStatus, Option<(usize, usize)>, Option<String>);

/// The run row mirrors the events: each state change is written by the
/// forwarder, in event order, so the journal never runs ahead of or behind
/// what the frontends were told.
fn run_status_change(kind: &EventKind) -> Option<StatusChange> {
    use EventKind as K;
    Some(match kind {
        K::RunStarted { .. } | K::Resumed { .. } | K::GateReleased { .. } => {
            (RunStatus::Running, None, None)
        }
        K::StepStarted { phase, step, .. } => (RunStatus::Running, Some((*phase, *step)), None),
        K::Paused { reason } => (RunStatus::Paused, None, Some(reason.clone())),
        K::GateWaiting { name, .. } => (
            RunStatus::Waiting,
            None,
            Some(format!("waiting at the gate of {name}")),
        ),
        K::Aborted { reason, .. } => (RunStatus::Aborted, None, Some(reason.clone())),
        K::Failed { error } => (RunStatus::Failed, None, Some(error.clone())),
        K::Detached { .. } => (RunStatus::Paused, None, Some("detached".into())),
        K::Finished { .. } => (RunStatus::Finished, None, None),
        K::RollbackStarted { .. } => (RunStatus::RollingBack, None, None),
        K::RolledBack { to: None, .. } => (RunStatus::RolledBack, Some((0, 0)), None),
        K::RolledBack {
            to: Some(name),
            phase,
        } => (
            RunStatus::Paused,
            Some((*phase, 0)),
            Some(format!("rolled back to the start of phase {name}")),
        ),
        _ => return None,
    })
}
