//! The latest numbers of a run, published on a `watch` channel: frontends
//! read the newest value whenever they draw; nothing queues up.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A step's status, as the journal stores it (frontends read it from here).
pub use crate::journal::StepStatus;

/// Where a run stands, as the screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Connecting, checking, loading the journal.
    #[default]
    Starting,
    /// Executing steps.
    Running,
    /// Waiting at a gate.
    WaitingGate,
    /// The connections dropped; reconnecting.
    Reconnecting,
    /// Paused by the operator or a throttle.
    Paused,
    /// Abort requested; cleaning up.
    Aborting,
    /// Stopped by an abort.
    Aborted,
    /// A step failed.
    Failed,
    /// Every step done.
    Finished,
    /// Paused and let go.
    Detached,
    /// Undoing steps.
    RollingBack,
    /// Undo done.
    RolledBack,
}

impl RunState {
    /// True once the engine task has stopped.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RunState::Aborted
                | RunState::Failed
                | RunState::Finished
                | RunState::Detached
                | RunState::RolledBack
        )
    }
}

/// The gate the run waits at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateInfo {
    /// Phase index.
    pub phase: usize,
    /// What it guards.
    pub name: String,
    /// What to do.
    pub message: String,
    /// Advancing starts an irreversible phase.
    pub irreversible: bool,
}

/// A batched step's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchProgress {
    /// The table.
    pub table: String,
    /// Keys walked so far.
    pub rows_done: i64,
    /// Rows changed so far.
    pub rows_updated: i64,
    /// Estimated rows in the table (`reltuples`), if known.
    pub rows_total: Option<i64>,
    /// Keys per second over the recent window.
    pub rows_per_sec: f64,
    /// Time left at that rate.
    pub eta: Option<Duration>,
    /// Size of the next batch.
    pub batch_size: u64,
    /// Duration of the last batch.
    pub last_batch: Duration,
    /// What dynamic sizing aims at.
    pub target_batch: Duration,
    /// Batches committed in this session.
    pub batches: u64,
    /// With several workers: each one's share of its range done, 0 to 1
    /// (empty for a single session).
    pub workers: Vec<f64>,
}

impl BatchProgress {
    /// Percent done, when the total is known.
    pub fn percent(&self) -> Option<f64> {
        self.rows_total
            .filter(|t| *t > 0)
            .map(|t| (self.rows_done as f64 / t as f64 * 100.0).min(100.0))
    }
}

/// The latest state of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Journal id, once known.
    pub run_id: Option<i64>,
    /// The overall state.
    pub state: RunState,
    /// Current phase and step.
    pub position: Option<(usize, usize)>,
    /// Each phase's step statuses.
    pub statuses: Vec<Vec<StepStatus>>,
    /// The gate waited at.
    pub gate: Option<GateInfo>,
    /// The running batched step.
    pub batch: Option<BatchProgress>,
    /// The operator's batch size, overriding the automatic one.
    pub batch_override: Option<u64>,
    /// Why batches are slowed or held, if they are.
    pub throttle: Option<String>,
    /// Why the run stopped, if it did.
    pub reason: Option<String>,
    /// A statement retrying after lock timeouts, while it does.
    pub lock_wait: Option<LockRetry>,
    /// Lock-timeout retries across the run (DDL attempts and batches).
    pub lock_retries: u64,
    /// `[settings] max_stall`, when the plan sets one.
    pub stall_budget: Option<Duration>,
    /// The longest any session waited behind cutover so far in this run.
    pub worst_stall: Duration,
}

/// A statement waiting its turn for a lock, retry after retry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LockRetry {
    /// The step.
    pub step: String,
    /// The last retry.
    pub retry: u32,
    /// Retries allowed.
    pub of: u32,
    /// What the server said.
    pub reason: String,
    /// When the first retry began.
    #[serde(skip)]
    pub since: Option<std::time::Instant>,
}

/// Rows per second over a sliding window of recent batches.
#[derive(Debug, Clone)]
pub struct RateWindow {
    window: Duration,
    points: VecDeque<(Instant, i64)>,
}

impl RateWindow {
    /// A window of this length.
    pub fn new(window: Duration) -> RateWindow {
        RateWindow {
            window,
            points: VecDeque::new(),
        }
    }

    /// Records the running total at a time.
    pub fn record(&mut self, at: Instant, total: i64) {
        self.points.push_back((at, total));
        while let Some((t, _)) = self.points.front() {
            if at.duration_since(*t) > self.window && self.points.len() > 2 {
                self.points.pop_front();
            } else {
                break;
            }
        }
    }

    /// Rows per second between the oldest and newest point.
    pub fn rate(&self) -> f64 {
        match (self.points.front(), self.points.back()) {
            (Some((t0, r0)), Some((t1, r1))) if t1 > t0 => {
                (r1 - r0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_uses_the_recent_window() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Duration::from_secs(10));
        w.record(t0, 0);
        w.record(t0 + Duration::from_secs(1), 1000);
        assert!((w.rate() - 1000.0).abs() < 1e-6);
        // Old points fall out: only the last 10 s count.
        for s in 2..=30 {
            w.record(t0 + Duration::from_secs(s), 1000 + (s as i64 - 1) * 10);
        }
        assert!((w.rate() - 10.0).abs() < 1e-6, "{}", w.rate());
    }

    #[test]
    fn percent_is_capped_and_needs_a_total() {
        let mut b = BatchProgress {
            rows_done: 50,
            rows_total: Some(200),
            ..Default::default()
        };
        assert_eq!(b.percent(), Some(25.0));
        b.rows_done = 300;
        assert_eq!(b.percent(), Some(100.0));
        b.rows_total = None;
        assert_eq!(b.percent(), None);
    }
}
