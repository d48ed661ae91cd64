//! What the panes read off the app state, made honest: rates that drop
//! to zero while nothing moves, clocks that stop with the run, staleness,
//! and step counts that match `cutover status`.

use std::time::{Duration, SystemTime};

use super::App;
use crate::engine::progress::RunState;
use crate::engine::progress::StepStatus;

/// Seconds of sparkline history kept.
const RATE_POINTS: usize = 600;

impl App {
    /// True while batches cannot move: paused, held by a limit, at a gate,
    /// or the engine stopped.
    pub fn batches_still(&self) -> bool {
        !self.engine_running()
            || matches!(
                self.progress.state,
                RunState::Paused | RunState::WaitingGate | RunState::Detached
            )
            || self.held_by_limit()
    }

    /// A limit holds batches (not the operator's own pacing).
    pub fn held_by_limit(&self) -> bool {
        self.progress
            .throttle
            .as_deref()
            .is_some_and(|r| r.starts_with("throttled"))
    }

    /// The throttle's reason without its "throttled: " prefix.
    pub fn throttle_reason(&self) -> Option<String> {
        self.progress
            .throttle
            .as_deref()
            .map(|r| r.strip_prefix("throttled: ").unwrap_or(r).to_string())
    }

    /// Once a second: the sparkline's next point (a gap while batches are
    /// still) and the recent-window rate's next mark.
    pub fn on_tick(&mut self, now: SystemTime) {
        self.now = now;
        if let Some(b) = &self.progress.batch {
            self.marks.push_back((now, b.rows_done));
            while self.marks.len() > 11 {
                self.marks.pop_front();
            }
            let point = if self.batches_still() {
                None
            } else {
                Some(self.rows_per_sec().max(0.0) as u64)
            };
            self.rate_history.push_back(point);
            while self.rate_history.len() > RATE_POINTS {
                self.rate_history.pop_front();
            }
        }
    }

    /// Keys per second of the running batched step, honestly: 0 while
    /// batches are held or paused, the engine's recent-window rate when it
    /// publishes one, else the cockpit's own over the last ten seconds.
    pub fn rows_per_sec(&self) -> f64 {
        let Some(b) = &self.progress.batch else {
            return 0.0;
        };
        if self.batches_still() {
            return 0.0;
        }
        if b.rows_per_sec > 0.0 {
            return b.rows_per_sec;
        }
        match (self.marks.front(), self.marks.back()) {
            (Some((t0, r0)), Some((t1, r1))) => match t1.duration_since(*t0) {
                Ok(d) if d.as_secs_f64() > 0.0 => (r1 - r0).max(0) as f64 / d.as_secs_f64(),
                _ => 0.0,
            },
            _ => 0.0,
        }
    }

    /// Time left at the honest rate; `None` while nothing moves.
    pub fn eta(&self) -> Option<Duration> {
        let b = self.progress.batch.as_ref()?;
        if self.batches_still() {
            return None;
        }
        if b.rows_per_sec > 0.0 {
            return b.eta;
        }
        let rate = self.rows_per_sec();
        let left = b.rows_total? - b.rows_done;
        (rate > 0.0 && left >= 0).then(|| Duration::from_secs_f64(left as f64 / rate))
    }

    /// The clock panes read: the engine's stop, once it stopped.
    pub fn clock(&self) -> SystemTime {
        match self.stopped_at {
            Some(t) if !self.engine_running() => t.min(self.now),
            _ => self.now,
        }
    }

    /// How long a step has run (or took); a running step's clock stops
    /// when the engine does.
    pub fn step_elapsed(&self, phase: usize, step: usize) -> Option<Duration> {
        self.step_times.get(&(phase, step)).map(|(start, took)| {
            took.unwrap_or_else(|| self.clock().duration_since(*start).unwrap_or_default())
        })
    }

    /// The step kind at the run's position.
    pub fn current_kind(&self) -> Option<&'static str> {
        let (pi, si) = self.progress.position?;
        Some(self.plan.phases.get(pi)?.steps.get(si)?.get_ref().kind())
    }

    /// The monitor's sample is older than a few seconds, or its run ended.
    pub fn monitor_stale(&self) -> bool {
        let s = &self.monitor.sample;
        s.seq > 0
            && (!self.engine_running()
                || self
                    .now
                    .duration_since(s.at)
                    .is_ok_and(|d| d > Duration::from_secs(5)))
    }

    /// Steps done, counted as `cutover status` counts them (journal rows
    /// with status done), and the plan's total.
    pub fn steps_done(&self) -> (usize, usize) {
        let total = self.plan.phases.iter().map(|p| p.steps.len()).sum();
        let done = self
            .progress
            .statuses
            .iter()
            .flatten()
            .filter(|s| **s == StepStatus::Done)
            .count();
        (done, total)
    }
}
