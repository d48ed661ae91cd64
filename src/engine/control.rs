//! The engine's inbox: operator commands, applied at safe points (between
//! batches and steps), and the abort handle that bypasses the queue.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::emitter::Emitter;
use super::events::EventKind;
use super::progress::RunState;

/// What a frontend asks of the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Release the gate the run waits at.
    Advance {
        /// Who: "operator", "--yes", "cutover advance".
        by: String,
    },
    /// Hold batches and steps at the next safe point.
    Pause {
        /// Who.
        by: String,
    },
    /// Go on after a pause.
    Resume {
        /// Who.
        by: String,
    },
    /// Fix the batch size (None = automatic again).
    SetBatchSize(Option<u64>),
    /// Pause at the next safe point and end this session (resumable).
    Detach,
    /// Cancel (or terminate) a session that blocks the migration: done at
    /// once by the engine, not at a safe point (the step it blocks is
    /// waiting). cutover's own sessions are refused.
    SignalSession {
        /// The backend pid.
        pid: i32,
        /// pg_terminate_backend instead of pg_cancel_backend.
        terminate: bool,
        /// Who asked.
        by: String,
    },
    /// Change a live setting (`cutover set`, the cockpit's pace keys):
    /// validated, applied within a second, journalled.
    Set {
        /// The key ([`super::live::KEYS`]).
        key: String,
        /// Its new value, as the plan file writes it.
        value: String,
        /// Who.
        by: String,
    },
    /// Stop counting a lost replica against the replication limits.
    ReleaseReplica {
        /// Its name.
        replica: String,
        /// Who.
        by: String,
    },
}

/// Stops an engine at once: cancels the running statement, no queueing.
/// Also carries the detach signal, which ends lock-retry waits at their
/// next boundary (a detach never cancels a running statement).
#[derive(Clone)]
pub struct AbortHandle {
    token: CancellationToken,
    detach: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl Default for AbortHandle {
    fn default() -> Self {
        let token = CancellationToken::new();
        AbortHandle {
            detach: token.child_token(),
            token,
            reason: Arc::default(),
        }
    }
}

impl AbortHandle {
    /// Asks the run to stop at the next boundary (a retry wait, a batch, a
    /// step): frontends call this along with [`Command::Detach`], which the
    /// engine reads only at safe points.
    pub fn detach(&self) {
        self.detach.cancel();
    }

    /// Cancelled by an abort or a detach: for waits between attempts.
    pub fn stop_token(&self) -> &CancellationToken {
        &self.detach
    }

    /// Aborts with a reason (the first reason given wins).
    pub fn abort(&self, reason: impl Into<String>) {
        if let Ok(mut r) = self.reason.lock()
            && r.is_none()
        {
            *r = Some(reason.into());
        }
        self.token.cancel();
    }

    /// True once aborted.
    pub fn is_aborted(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it was aborted.
    pub fn reason(&self) -> String {
        self.reason
            .lock()
            .ok()
            .and_then(|r| r.clone())
            .unwrap_or_else(|| "aborted".into())
    }

    /// The token statements are cancelled by.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }
}

/// Counts the guard reads across the run.
#[derive(Debug, Default)]
pub struct Counters {
    /// Statement attempts that timed out waiting for a lock.
    pub lock_timeouts: std::sync::atomic::AtomicU32,
}

/// Why the engine stops before the plan is done.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// Aborted, with the reason.
    Aborted(String),
    /// Detached by the operator.
    Detached,
}

/// The engine's view of its inbox.
pub struct Control {
    commands: mpsc::Receiver<Command>,
    /// The abort handle (shared with frontends).
    pub abort: AbortHandle,
    /// Batches and steps are held.
    pub paused: bool,
    /// An advance arrived and was not used yet.
    advance: Option<String>,
    /// The operator's batch size.
    pub batch_override: Option<u64>,
    /// Detach requested.
    pub detach: bool,
    /// Release every gate (`--yes`).
    pub auto_advance: bool,
    /// What the monitor looks at (released replicas are written there).
    pub focus: Option<Arc<Mutex<crate::monitor::Focus>>>,
    /// The plan's pace and limits as they stand (changed by `Set`).
    pub live: Option<super::live::Live>,
}

impl Control {
    /// Wraps the command receiver.
    pub fn new(
        commands: mpsc::Receiver<Command>,
        abort: AbortHandle,
        auto_advance: bool,
    ) -> Control {
        Control {
            commands,
            abort,
            paused: false,
            advance: None,
            batch_override: None,
            detach: false,
            auto_advance,
            focus: None,
            live: None,
        }
    }

    fn apply(&mut self, cmd: Command, out: &Emitter) {
        match cmd {
            Command::Advance { by } => self.advance = Some(by),
            Command::Pause { by } => {
                if !self.paused {
                    self.paused = true;
                    out.emit(EventKind::Paused {
                        reason: format!("by {by}"),
                    });
                    out.progress(|p| p.state = RunState::Paused);
                }
            }
            Command::Resume { by } => {
                if self.paused {
                    self.paused = false;
                    out.emit(EventKind::Resumed { by });
                    out.progress(|p| p.state = RunState::Running);
                }
            }
            Command::SetBatchSize(size) => {
                self.batch_override = size;
                out.emit(EventKind::BatchSizeSet { size });
                out.progress(|p| p.batch_override = size);
            }
            Command::Detach => self.detach = true,
            // Handled on arrival by the engine's inbox (see the driver).
            Command::SignalSession { .. } => {}
            Command::Set { key, value, by } => self.set(&key, &value, by, out),
            Command::ReleaseReplica { replica, by } => {
                if let Some(focus) = &self.focus
                    && let Ok(mut f) = focus.lock()
                    && !f.released.contains(&replica)
                {
                    f.released.push(replica.clone());
                }
                out.emit(EventKind::ReplicaReleased { replica, by });
            }
        }
    }

    /// Applies a live setting, or says why not.
    fn set(&mut self, key: &str, value: &str, by: String, out: &Emitter) {
        match key {
            "batch_size" => {
                let size = if value.eq_ignore_ascii_case("auto") {
                    None
                } else {
                    match value.parse::<u64>() {
                        Ok(n) if n > 0 => Some(n),
                        _ => {
                            out.emit(EventKind::Notice {
                                message: format!("refused `set batch_size={value}` from {by}: not a positive size or `auto`"),
                            });
                            return;
                        }
                    }
                };
                self.apply(Command::SetBatchSize(size), out);
            }
            "release_replica" => self.apply(
                Command::ReleaseReplica {
                    replica: value.to_string(),
                    by,
                },
                out,
            ),
            _ => {
                let Some(live) = &self.live else { return };
                let result = match live.write() {
                    Ok(mut s) => super::live::apply(&mut s, key, value),
                    Err(_) => Err("the live settings are unavailable".into()),
                };
                match result {
                    Ok((old, new)) => out.emit(EventKind::SettingChanged {
                        key: key.to_string(),
                        old,
                        new,
                        by,
                    }),
                    Err(why) => out.emit(EventKind::Notice {
                        message: format!("refused `set {key}={value}` from {by}: {why}"),
                    }),
                }
            }
        }
    }

    /// The plan's `[throttle]` as it stands now.
    pub fn throttle(&self, plan: &crate::plan::model::Throttle) -> crate::plan::model::Throttle {
        self.live
            .as_ref()
            .and_then(|l| l.read().ok().map(|s| s.throttle.clone()))
            .unwrap_or_else(|| plan.clone())
    }

    /// The plan's `[abort]` as it stands now.
    pub fn abort_limits(
        &self,
        plan: &crate::plan::model::AbortLimits,
    ) -> crate::plan::model::AbortLimits {
        self.live
            .as_ref()
            .and_then(|l| l.read().ok().map(|s| s.abort.clone()))
            .unwrap_or_else(|| plan.clone())
    }

    /// The live settings' version (moves on every change).
    pub fn live_version(&self) -> u64 {
        self.live
            .as_ref()
            .and_then(|l| l.read().ok().map(|s| s.version))
            .unwrap_or(0)
    }

    /// Applies every queued command without waiting.
    pub fn drain(&mut self, out: &Emitter) {
        while let Ok(cmd) = self.commands.try_recv() {
            self.apply(cmd, out);
        }
    }

    fn stopped(&self) -> Option<Stop> {
        if self.abort.is_aborted() {
            Some(Stop::Aborted(self.abort.reason()))
        } else if self.detach {
            Some(Stop::Detached)
        } else {
            None
        }
    }

    /// A safe point: applies commands; holds while paused; says whether to stop.
    pub async fn safe_point(&mut self, out: &Emitter) -> Result<(), Stop> {
        self.drain(out);
        loop {
            if let Some(stop) = self.stopped() {
                return Err(stop);
            }
            if !self.paused {
                return Ok(());
            }
            self.next_command(out).await;
        }
    }

    /// Forgets advances sent before a gate was reached (they belong to no
    /// gate); call it before announcing the gate.
    pub fn forget_advance(&mut self, out: &Emitter) {
        self.drain(out);
        self.advance = None;
    }

    /// Waits for an advance (or `--yes`), honouring pause, abort and detach.
    /// Returns who released the gate.
    pub async fn wait_advance(&mut self, out: &Emitter) -> Result<String, Stop> {
        self.drain(out);
        if self.auto_advance {
            return Ok("--yes".into());
        }
        loop {
            if let Some(stop) = self.stopped() {
                return Err(stop);
            }
            if let Some(by) = self.advance.take() {
                return Ok(by);
            }
            self.next_command(out).await;
        }
    }

    /// Waits for one command or the abort.
    async fn next_command(&mut self, out: &Emitter) {
        tokio::select! {
            cmd = self.commands.recv() => match cmd {
                Some(cmd) => self.apply(cmd, out),
                // Every frontend is gone: nobody can release a pause or
                // gate any more, so let go of the run.
                None => self.detach = true,
            },
            _ = self.abort.token().cancelled() => {}
        }
    }
}
