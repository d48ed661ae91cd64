//! Bounded time series for charts: pruned by age, never growing unbounded.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One series of (time, value) points no older than `keep`.
#[derive(Debug, Clone, Serialize)]
pub struct Series {
    #[serde(skip)]
    keep: Duration,
    #[serde(skip)]
    points: VecDeque<(Instant, f64)>,
}

impl Series {
    /// A series keeping `keep` of history.
    pub fn new(keep: Duration) -> Series {
        Series {
            keep,
            points: VecDeque::new(),
        }
    }

    /// Adds a point and drops those older than `keep`.
    pub fn push(&mut self, at: Instant, value: f64) {
        self.points.push_back((at, value));
        while let Some((t, _)) = self.points.front() {
            if at.duration_since(*t) > self.keep {
                self.points.pop_front();
            } else {
                break;
            }
        }
    }

    /// The points, oldest first, as (seconds before `now`, value).
    pub fn points(&self, now: Instant) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .map(|(t, v)| (-now.saturating_duration_since(*t).as_secs_f64(), *v))
            .collect()
    }

    /// The values, oldest first.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.points.iter().map(|(_, v)| *v)
    }

    /// The newest value.
    pub fn last(&self) -> Option<f64> {
        self.points.back().map(|(_, v)| *v)
    }

    /// Number of points kept.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

/// The charts' history: the last ten minutes of the key numbers.
#[derive(Debug, Clone, Serialize)]
pub struct History {
    /// Worst replica replay delay, seconds.
    pub lag_seconds: Series,
    /// Worst replica replay distance, bytes.
    pub lag_bytes: Series,
    /// Sessions blocked behind us.
    pub blocked: Series,
    /// Transactions per second.
    pub tps: Series,
    /// Probe p95, milliseconds.
    pub probe_p95_ms: Series,
}

/// How much history the charts keep.
pub const KEEP: Duration = Duration::from_secs(600);

impl Default for History {
    fn default() -> Self {
        History {
            lag_seconds: Series::new(KEEP),
            lag_bytes: Series::new(KEEP),
            blocked: Series::new(KEEP),
            tps: Series::new(KEEP),
            probe_p95_ms: Series::new(KEEP),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_points_are_pruned() {
        let t0 = Instant::now();
        let mut s = Series::new(Duration::from_secs(10));
        for i in 0..100 {
            s.push(t0 + Duration::from_secs(i), i as f64);
        }
        assert_eq!(s.len(), 11, "only the last 10 s are kept");
        assert_eq!(s.last(), Some(99.0));
        let pts = s.points(t0 + Duration::from_secs(99));
        assert_eq!(pts.first(), Some(&(-10.0, 89.0)));
    }
}
