//! What comes in from the engine and the monitor: progress snapshots,
//! monitor samples and events, folded into the app state (the log, step
//! clocks, lock-retry state, the last blocker seen).

use std::sync::Arc;
use std::time::Duration;

use super::{App, LockRetry, LogLine};
use crate::engine::events::{Event, EventKind, Level};
use crate::engine::progress::Progress;
use crate::monitor::MonitorState;
use crate::ui::locking;

/// Lines the event log keeps.
const LOG_LINES: usize = 500;

impl App {
    /// Takes the engine's newest progress; keeps the last batched step's
    /// numbers for the exit summary.
    pub fn set_progress(&mut self, progress: Progress) {
        if let Some(b) = &progress.batch {
            // The rows a run moved: a verify step's compared rows are not.
            let kind = progress
                .position
                .and_then(|(pi, si)| self.plan.phases.get(pi)?.steps.get(si))
                .map(|s| s.get_ref().kind());
            if kind != Some("verify") {
                self.last_batch = Some(b.clone());
            }
        } else {
            self.marks.clear();
        }
        self.progress = progress;
    }

    /// Takes the monitor's newest sample; remembers who blocks our
    /// statement while its lock retries go on.
    pub fn set_monitor(&mut self, monitor: Arc<MonitorState>) {
        let sample = &monitor.sample;
        if let Some(w) = locking::our_wait(sample) {
            self.last_blocked_on = locking::relation(&w.waits_for).map(str::to_string);
            if let Some(b) = locking::our_blocker(sample) {
                self.last_blocker = Some(b);
            }
        } else if self.lock_retry.is_none() {
            self.last_blocker = None;
            self.last_blocked_on = None;
        }
        // The selection follows its session, not its row number: a new
        // sample may reorder the rows under the operator's cursor.
        let selected_pid = self.lock_rows().get(self.lock_selected).map(|r| r.pid);
        self.monitor = monitor;
        let rows = self.lock_rows();
        self.lock_selected = selected_pid
            .and_then(|pid| rows.iter().position(|r| r.pid == pid))
            .unwrap_or(self.lock_selected)
            .min(rows.len().saturating_sub(1));
    }

    /// A line of the cockpit's own in the log.
    pub fn note(&mut self, level: Level, text: String) {
        self.push_log(LogLine {
            at: self.now,
            level,
            text,
        });
    }

    fn push_log(&mut self, line: LogLine) {
        self.log.push_back(line);
        // Scrolled away: the view stays on the same entries, and says how
        // many arrived below it.
        if self.log_scroll > 0 {
            self.log_scroll += 1;
            self.log_unseen += 1;
        }
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
        self.log_scroll = self.log_scroll.min(self.log.len().saturating_sub(1));
    }

    /// Records an engine event.
    pub fn on_event(&mut self, event: &Event) {
        match &event.kind {
            // The limits on screen follow `cutover set` and the pace keys.
            EventKind::SettingChanged { key, new, .. } => {
                let mut live = crate::engine::live::LiveSettings {
                    throttle: self.plan.throttle.clone(),
                    abort: self.plan.abort.clone(),
                    version: 0,
                };
                if crate::engine::live::apply(&mut live, key, new).is_ok() {
                    self.plan.throttle = live.throttle;
                    self.plan.abort = live.abort;
                }
            }
            EventKind::StepStarted { phase, step, .. } => {
                self.step_times.insert((*phase, *step), (event.at, None));
                self.lock_retry = None;
            }
            EventKind::StepFinished {
                phase,
                step,
                elapsed_ms,
                ..
            } => {
                let started = self
                    .step_times
                    .get(&(*phase, *step))
                    .map_or(event.at, |t| t.0);
                self.step_times.insert(
                    (*phase, *step),
                    (started, Some(Duration::from_millis(*elapsed_ms))),
                );
                self.lock_retry = None;
            }
            EventKind::Retry {
                name,
                retry,
                of,
                reason,
                ..
            } => {
                self.lock_retry = Some(LockRetry {
                    step: name.clone(),
                    retry: *retry,
                    of: *of,
                    reason: reason.clone(),
                    at: event.at,
                });
            }
            EventKind::StepFailed { .. } | EventKind::GateWaiting { .. } => self.lock_retry = None,
            EventKind::Aborted { .. }
            | EventKind::Failed { .. }
            | EventKind::Finished { .. }
            | EventKind::Detached { .. }
            | EventKind::RolledBack { .. } => {
                self.lock_retry = None;
                self.stopped_at = Some(event.at);
            }
            EventKind::RollbackStarted { .. } => self.stopped_at = None,
            _ => {}
        }
        self.push_log(LogLine {
            at: event.at,
            level: event.level,
            text: event.kind.message(),
        });
    }
}
