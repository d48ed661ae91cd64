//! The cockpit's state and its reducer: `update(action) -> Effect` and
//! `on_event(event)`, pure and tested without a terminal.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::engine::control::Command;
use crate::engine::events::Level;
use crate::engine::progress::StepStatus;
use crate::engine::progress::{BatchProgress, Progress, RunState};
use crate::engine::rollback::{UndoAction, undo_list};
use crate::lint::plan::PlanReport;
use crate::monitor::MonitorState;
use crate::plan::Plan;
use crate::plan::model::{AbortLimits, Throttle};

use super::action::Action;
use super::locking::LockRow;

/// Log entries PgUp/PgDn move by.
pub const LOG_PAGE: usize = 10;

/// The panes that can take focus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Rows, rate, batch size, throttle.
    Backfill,
    /// Replica lag.
    Replication,
    /// Lock waits.
    Locks,
    /// Transactions and the probe.
    Activity,
    /// The event log.
    Log,
}

impl Pane {
    /// In tab order.
    pub const ALL: [Pane; 5] = [
        Pane::Backfill,
        Pane::Replication,
        Pane::Locks,
        Pane::Activity,
        Pane::Log,
    ];

    /// The tab title.
    pub fn title(self) -> &'static str {
        match self {
            Pane::Backfill => "Backfill",
            Pane::Replication => "Replication",
            Pane::Locks => "Locks",
            Pane::Activity => "Activity",
            Pane::Log => "Log",
        }
    }
}

/// An open dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum Modal {
    /// Nothing open.
    None,
    /// The key table.
    Help,
    /// "Abort the run? (y/n)".
    ConfirmAbort,
    /// What will be undone; type the table name to confirm.
    ConfirmRollback {
        /// The steps, last first.
        undo: Vec<String>,
        /// What was typed so far.
        typed: String,
        /// Why a rollback is not possible, if it is not.
        refused: Option<String>,
    },
    /// Entering an irreversible phase: type the table name to confirm.
    ConfirmIrreversible {
        /// What was typed so far.
        typed: String,
    },
    /// "Quit while a step runs? It pauses at a safe point." (y/n)
    ConfirmQuit,
    /// Cancel the query of, or terminate, a session (y/n).
    ConfirmSignal {
        /// The backend.
        pid: i32,
        /// Terminate the session (else cancel its query).
        terminate: bool,
    },
    /// A row or the run's now / next in full (Enter), closed with Esc or
    /// Enter; drawn from the live state.
    Inspect(Inspect),
}

/// What an inspect dialog shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inspect {
    /// A session of the Locks pane, by pid.
    Session(i32),
    /// What the run does now and next, with the current step's statements.
    NowNext,
}

/// What the loop must do after an action.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a command to the engine.
    Send(Command),
    /// Abort now, with this reason.
    Abort(String),
    /// Start a rollback of the plan.
    StartRollback,
    /// Leave the cockpit.
    Quit,
    /// Cancel the query of (or terminate) another session. The engine has
    /// no command for it yet: the loop reports that instead of acting.
    Signal {
        /// The backend.
        pid: i32,
        /// Terminate the session (else cancel its query).
        terminate: bool,
    },
}

/// A lock-timeout retry of the running step, from the newest Retry event.
#[derive(Debug, Clone, PartialEq)]
pub struct LockRetry {
    /// The step.
    pub step: String,
    /// Which retry.
    pub retry: u32,
    /// Retries allowed.
    pub of: u32,
    /// What the server said.
    pub reason: String,
    /// When it was reported.
    pub at: SystemTime,
}

/// One line of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    /// When.
    pub at: SystemTime,
    /// Severity.
    pub level: Level,
    /// The sentence.
    pub text: String,
}

/// The cockpit's whole state.
pub struct App {
    /// The plan.
    pub plan: Plan,
    /// Its file.
    pub plan_path: String,
    /// The database, redacted.
    pub database: String,
    /// The table a rollback or irreversible step is confirmed with.
    pub confirm_word: String,
    /// The engine's latest progress.
    pub progress: Progress,
    /// The monitor's latest sample and history.
    pub monitor: Arc<MonitorState>,
    /// The event log, oldest first.
    pub log: VecDeque<LogLine>,
    /// Log entries scrolled away from the newest (0 = following the tail).
    pub log_scroll: usize,
    /// Entries that arrived while scrolled away.
    pub log_unseen: usize,
    /// Rows/s once a second, for the sparkline; `None` while nothing
    /// moves (paused, held, at a gate): a gap, not a bar.
    pub rate_history: VecDeque<Option<u64>>,
    /// Keys walked at each tick of the running batched step, for a rate
    /// over a recent window (verify steps publish no rate of their own).
    pub marks: VecDeque<(SystemTime, i64)>,
    /// The last batched step's numbers, kept after it ends (summary).
    pub last_batch: Option<BatchProgress>,
    /// The newest lock-timeout retry of the running step.
    pub lock_retry: Option<LockRetry>,
    /// When the engine stopped (clocks stop there).
    pub stopped_at: Option<SystemTime>,
    /// The dry run of the plan: each step's statements and locks.
    pub dry_run: Option<PlanReport>,
    /// The selected row of the Locks pane.
    pub lock_selected: usize,
    /// The root blocker of our waiting statement, as last seen (between
    /// lock-timeout retries nothing of ours waits, but the blocker stays).
    pub last_blocker: Option<LockRow>,
    /// The relation our statement last waited for.
    pub last_blocked_on: Option<String>,
    /// When each step started (running) and how long finished ones took.
    pub step_times: HashMap<(usize, usize), (SystemTime, Option<Duration>)>,
    /// The clock the screen is drawn at.
    pub now: SystemTime,
    /// The focused pane.
    pub focus: Pane,
    /// The open dialog.
    pub modal: Modal,
    /// The engine task has ended, with this exit code.
    pub engine_exit: Option<i32>,
    /// The operator asked to leave (once the engine has let go).
    pub quitting: bool,
    /// Ctrl-C presses so far.
    pub interrupts: u32,
}

impl App {
    /// A cockpit for a plan.
    pub fn new(plan: Plan, plan_path: String, database: String) -> App {
        let confirm_word = crate::plan::main_table(&plan);
        App {
            plan,
            plan_path,
            database,
            confirm_word,
            progress: Progress::default(),
            monitor: Arc::new(MonitorState::default()),
            log: VecDeque::new(),
            log_scroll: 0,
            log_unseen: 0,
            rate_history: VecDeque::new(),
            marks: VecDeque::new(),
            last_batch: None,
            lock_retry: None,
            stopped_at: None,
            dry_run: None,
            lock_selected: 0,
            last_blocker: None,
            last_blocked_on: None,
            step_times: HashMap::new(),
            now: SystemTime::now(),
            focus: Pane::Backfill,
            modal: Modal::None,
            engine_exit: None,
            quitting: false,
            interrupts: 0,
        }
    }

    /// The `[throttle]` limits.
    pub fn throttle(&self) -> &Throttle {
        &self.plan.throttle
    }

    /// The `[abort]` limits.
    pub fn abort_limits(&self) -> &AbortLimits {
        &self.plan.abort
    }

    /// The engine task is alive.
    pub fn engine_running(&self) -> bool {
        self.engine_exit.is_none()
    }

    /// Waiting at a gate.
    pub fn at_gate(&self) -> bool {
        self.engine_running() && self.progress.gate.is_some()
    }

    /// A replica the run lost (gone from pg_stat_replication), if any.
    pub fn lost_replica(&self) -> Option<String> {
        self.monitor
            .sample
            .replicas
            .iter()
            .find(|r| r.gone_since.is_some())
            .map(|r| r.name.clone())
    }

    /// A batched step is running.
    pub fn batch_running(&self) -> bool {
        self.engine_running() && self.progress.batch.is_some()
    }

    /// A rollback makes sense now.
    pub fn can_roll_back(&self) -> bool {
        !self.engine_running()
            && self.progress.state != RunState::RolledBack
            && self.progress.statuses.iter().flatten().any(|s| {
                matches!(
                    s,
                    StepStatus::Done | StepStatus::Running | StepStatus::Failed
                )
            })
    }

    /// A step is executing (quitting needs a safe point).
    fn step_running(&self) -> bool {
        self.engine_running()
            && matches!(self.progress.state, RunState::Running | RunState::Paused)
            && self.progress.gate.is_none()
    }

    fn current_batch_size(&self) -> u64 {
        self.progress
            .batch_override
            .or(self.progress.batch.as_ref().map(|b| b.batch_size))
            .unwrap_or(1000)
    }

    /// Applies an action; returns what the loop must do.
    pub fn update(&mut self, action: Action) -> Option<Effect> {
        let operator = || "operator".to_string();
        match (&mut self.modal, action) {
            (_, Action::Interrupt) => {
                self.interrupts += 1;
                self.quitting = true;
                if self.interrupts >= 2 || !self.engine_running() {
                    if self.engine_running() {
                        return Some(Effect::Abort("interrupted twice (Ctrl-C)".into()));
                    }
                    return Some(Effect::Quit);
                }
                return Some(Effect::Send(Command::Detach));
            }
            (Modal::Help, Action::Help | Action::Cancel) => self.modal = Modal::None,
            (Modal::ConfirmAbort, Action::Confirm) => {
                self.modal = Modal::None;
                return Some(Effect::Abort("aborted by the operator (cockpit)".into()));
            }
            (Modal::ConfirmQuit, Action::Confirm) => {
                self.modal = Modal::None;
                self.quitting = true;
                return Some(Effect::Send(Command::Detach));
            }
            (Modal::ConfirmAbort | Modal::ConfirmQuit, Action::Cancel) => self.modal = Modal::None,
            (
                Modal::ConfirmRollback { typed, .. } | Modal::ConfirmIrreversible { typed },
                Action::Type(c),
            ) => typed.push(c),
            (
                Modal::ConfirmRollback { typed, .. } | Modal::ConfirmIrreversible { typed },
                Action::Backspace,
            ) => {
                typed.pop();
            }
            (Modal::ConfirmRollback { .. } | Modal::ConfirmIrreversible { .. }, Action::Cancel) => {
                self.modal = Modal::None;
            }
            (Modal::ConfirmRollback { typed, refused, .. }, Action::Confirm)
                if refused.is_none() && *typed == self.confirm_word =>
            {
                self.modal = Modal::None;
                return Some(Effect::StartRollback);
            }
            (Modal::ConfirmIrreversible { typed }, Action::Confirm)
                if *typed == self.confirm_word =>
            {
                self.modal = Modal::None;
                return Some(Effect::Send(Command::Advance { by: operator() }));
            }
            (Modal::ConfirmSignal { pid, terminate }, Action::Confirm) => {
                let effect = Effect::Signal {
                    pid: *pid,
                    terminate: *terminate,
                };
                self.modal = Modal::None;
                return Some(effect);
            }
            (Modal::ConfirmSignal { .. }, Action::Cancel) => self.modal = Modal::None,
            (Modal::Inspect(_), Action::Cancel | Action::Confirm | Action::Inspect) => {
                self.modal = Modal::None;
            }
            (Modal::None, action) => return self.update_main(action),
            _ => {}
        }
        None
    }

    fn update_main(&mut self, action: Action) -> Option<Effect> {
        let operator = || "operator".to_string();
        match action {
            Action::Advance if self.at_gate() => {
                if self.progress.gate.as_ref().is_some_and(|g| g.irreversible) {
                    self.modal = Modal::ConfirmIrreversible {
                        typed: String::new(),
                    };
                } else {
                    return Some(Effect::Send(Command::Advance { by: operator() }));
                }
            }
            Action::TogglePause if self.engine_running() => {
                return Some(Effect::Send(if self.progress.state == RunState::Paused {
                    Command::Resume { by: operator() }
                } else {
                    Command::Pause { by: operator() }
                }));
            }
            Action::BatchUp if self.batch_running() => {
                let n = self.current_batch_size().saturating_mul(2);
                return Some(Effect::Send(Command::SetBatchSize(Some(n))));
            }
            Action::BatchDown if self.batch_running() => {
                let n = (self.current_batch_size() / 2).max(1);
                return Some(Effect::Send(Command::SetBatchSize(Some(n))));
            }
            Action::BatchAuto if self.batch_running() => {
                return Some(Effect::Send(Command::SetBatchSize(None)));
            }
            Action::PaceDown | Action::PaceUp if self.batch_running() => {
                // From the limit in force, else from the rate now.
                let now = self.plan.throttle.max_rows_per_second.or_else(|| {
                    self.progress
                        .batch
                        .as_ref()
                        .map(|b| b.rows_per_sec.round() as u64)
                        .filter(|r| *r > 0)
                })?;
                let value = if action == Action::PaceDown {
                    (now / 2).max(1).to_string()
                } else if self.plan.throttle.max_rows_per_second.is_some() {
                    now.saturating_mul(2).to_string()
                } else {
                    return None;
                };
                return Some(Effect::Send(Command::Set {
                    key: "max_rows_per_second".into(),
                    value,
                    by: "the operator (cockpit)".into(),
                }));
            }
            Action::ReleaseReplica => {
                let replica = self.lost_replica()?;
                return Some(Effect::Send(Command::ReleaseReplica {
                    replica,
                    by: "the operator (cockpit)".into(),
                }));
            }
            Action::Abort if self.engine_running() => self.modal = Modal::ConfirmAbort,
            Action::Rollback if self.can_roll_back() => {
                let (undo, refused) = match undo_list(&self.plan, &self.progress.statuses, 0) {
                    Ok(items) => (
                        items
                            .iter()
                            .map(|i| match &i.action {
                                UndoAction::CleanUp => format!("clean up \"{}\"", i.name),
                                UndoAction::Undo(_) => format!("undo \"{}\"", i.name),
                            })
                            .collect(),
                        None,
                    ),
                    Err(why) => (Vec::new(), Some(why)),
                };
                self.modal = Modal::ConfirmRollback {
                    undo,
                    typed: String::new(),
                    refused,
                };
            }
            Action::FocusNext | Action::FocusPrev => {
                let i = Pane::ALL.iter().position(|p| *p == self.focus).unwrap_or(0);
                let n = Pane::ALL.len();
                let next = if action == Action::FocusNext {
                    (i + 1) % n
                } else {
                    (i + n - 1) % n
                };
                self.focus = Pane::ALL[next];
            }
            Action::ScrollUp if self.focus == Pane::Locks => {
                self.lock_selected = self.lock_selected.saturating_sub(1);
            }
            Action::ScrollDown if self.focus == Pane::Locks => {
                let rows = self.lock_rows().len();
                self.lock_selected = (self.lock_selected + 1).min(rows.saturating_sub(1));
            }
            Action::ScrollUp => self.scroll_log_up(1),
            Action::ScrollDown => self.scroll_log_down(1),
            Action::PageUp => self.scroll_log_up(LOG_PAGE),
            Action::PageDown => self.scroll_log_down(LOG_PAGE),
            Action::ScrollEnd => self.scroll_log_down(usize::MAX),
            Action::ScrollHome => self.scroll_log_up(usize::MAX),
            Action::Inspect => self.modal = self.inspect(),
            Action::CancelSession | Action::TerminateSession => {
                if let Some(pid) = self.selected_other_session() {
                    self.modal = Modal::ConfirmSignal {
                        pid,
                        terminate: action == Action::TerminateSession,
                    };
                }
            }
            Action::Help => self.modal = Modal::Help,
            Action::Quit => {
                if !self.engine_running() {
                    return Some(Effect::Quit);
                }
                if self.step_running() {
                    self.modal = Modal::ConfirmQuit;
                } else {
                    self.quitting = true;
                    return Some(Effect::Send(Command::Detach));
                }
            }
            _ => {}
        }
        None
    }
}

mod intake;
mod readings;
mod select;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod truth_tests;
