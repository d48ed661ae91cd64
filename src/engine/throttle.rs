//! Dynamic batch sizing: the batch size follows the measured batch time
//! toward `target_batch_time`, like pt-online-schema-change's chunk-time.

use std::time::Duration;

/// Weight of the newest batch in the decayed rate average.
const DECAY: f64 = 0.25;
/// Most a batch may grow from one batch to the next.
const MAX_GROWTH: f64 = 1.5;
/// A batch this many times over target is cut sharply.
const OVERRUN: f64 = 5.0;
/// The sharp cut.
const OVERRUN_CUT: f64 = 0.25;

/// Picks each batch's size from the time the previous ones took.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    target: Duration,
    min: u64,
    max: u64,
    size: u64,
    avg_rate: Option<f64>,
}

impl BatchSizer {
    /// Starts at `initial`, bounded by `min..=max`.
    pub fn new(initial: u64, target: Duration, min: u64, max: u64) -> BatchSizer {
        let min = min.max(1);
        let max = max.max(min);
        BatchSizer {
            target,
            min,
            max,
            size: initial.clamp(min, max),
            avg_rate: None,
        }
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// What sizing aims at.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// Learns from a batch of `rows` keys that took `elapsed`.
    pub fn observe(&mut self, rows: u64, elapsed: Duration) {
        if rows == 0 || elapsed.is_zero() {
            return;
        }
        let rate = rows as f64 / elapsed.as_secs_f64();
        let target = self.target.as_secs_f64();
        if elapsed.as_secs_f64() > OVERRUN * target {
            // Far over: something is wrong (locks, I/O); back off hard and
            // forget the old average.
            self.avg_rate = Some(rate);
            self.size = ((self.size as f64 * OVERRUN_CUT) as u64).clamp(self.min, self.max);
            return;
        }
        let avg = match self.avg_rate {
            Some(avg) => avg * (1.0 - DECAY) + rate * DECAY,
            None => rate,
        };
        self.avg_rate = Some(avg);
        let ideal = avg * target;
        let capped = ideal.min(self.size as f64 * MAX_GROWTH);
        self.size = (capped as u64).clamp(self.min, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A table that updates `rate` rows per second.
    fn simulate(sizer: &mut BatchSizer, rate: f64, batches: usize) -> Vec<u64> {
        (0..batches)
            .map(|_| {
                let n = sizer.size();
                sizer.observe(n, Duration::from_secs_f64(n as f64 / rate));
                sizer.size()
            })
            .collect()
    }

    #[test]
    fn converges_on_the_target_time() {
        let mut s = BatchSizer::new(1000, ms(200), 100, 1_000_000);
        let sizes = simulate(&mut s, 100_000.0, 40);
        // 100k rows/s × 200 ms = 20k rows.
        let last = *sizes.last().unwrap();
        assert!((19_000..=21_000).contains(&last), "{sizes:?}");
    }

    #[test]
    fn growth_is_capped_per_batch() {
        let mut s = BatchSizer::new(1000, ms(200), 100, 1_000_000);
        let mut prev = s.size();
        for n in simulate(&mut s, 1_000_000.0, 20) {
            assert!(n as f64 <= prev as f64 * 1.5 + 1.0, "{prev} → {n}");
            prev = n;
        }
    }

    #[test]
    fn a_batch_five_times_over_is_cut_sharply() {
        let mut s = BatchSizer::new(10_000, ms(100), 100, 1_000_000);
        s.observe(10_000, ms(100));
        assert_eq!(s.size(), 10_000);
        s.observe(10_000, ms(600));
        assert_eq!(s.size(), 2_500);
    }

    #[test]
    fn stays_within_bounds() {
        let mut s = BatchSizer::new(50, ms(200), 100, 5_000);
        assert_eq!(s.size(), 100, "initial size is clamped");
        simulate(&mut s, 10_000_000.0, 30);
        assert_eq!(s.size(), 5_000);
        simulate(&mut s, 10.0, 30);
        assert_eq!(s.size(), 100);
    }

    #[test]
    fn ignores_empty_batches() {
        let mut s = BatchSizer::new(1000, ms(200), 100, 100_000);
        s.observe(0, ms(5));
        assert_eq!(s.size(), 1000);
    }
}

/// Why batches must wait now, if they must: a replica or slot over the
/// `[throttle]` limits, or no fresh monitor sample (fail closed).
pub fn hold_reason(
    limits: &crate::plan::model::Throttle,
    sample: &crate::monitor::sample::Sample,
    silent_for: Duration,
) -> Option<String> {
    use crate::engine::events::short_duration;
    use crate::plan::units::Size;
    if silent_for > STALE_AFTER {
        return Some(format!(
            "throttled: no monitor sample for {} (failing closed)",
            short_duration(silent_for)
        ));
    }
    if let Some(limit) = limits.replication_lag
        && let Some(r) = sample.worst_lag()
        && r.replay_lag > limit.0
    {
        return Some(format!(
            "throttled: replica {} lag {} > {}",
            r.name,
            short_duration(r.replay_lag),
            limit
        ));
    }
    if let Some(limit) = limits.replication_lag_bytes {
        if let Some(r) = sample.worst_bytes()
            && r.replay_bytes as u64 > limit.0
        {
            return Some(format!(
                "throttled: replica {} {} behind > {}",
                r.name,
                Size(r.replay_bytes as u64),
                limit
            ));
        }
        if let Some(s) = sample.slots.iter().max_by_key(|s| s.retained_bytes)
            && s.retained_bytes as u64 > limit.0
        {
            return Some(format!(
                "throttled: slot {} retains {} > {}",
                s.name,
                Size(s.retained_bytes as u64),
                limit
            ));
        }
    }
    None
}

/// Batches wait when the newest monitor sample is older than this.
pub const STALE_AFTER: Duration = Duration::from_secs(4);

/// Gentle mode: keeps the canary probe's p95 under `probe_latency` by
/// capping the batch size and pausing between batches — only as much as
/// needed (multiplicative decrease when over, gentle release when well
/// under).
#[derive(Debug, Clone)]
pub struct Gentle {
    target: Duration,
    pause: Duration,
    cap: Option<u64>,
}

/// Longest pause gentle mode inserts between batches.
const MAX_PAUSE: Duration = Duration::from_secs(5);

impl Gentle {
    /// A controller aiming at `target` p95.
    pub fn new(target: Duration) -> Gentle {
        Gentle {
            target,
            pause: Duration::ZERO,
            cap: None,
        }
    }

    /// Adjusts to the probe's recent p95 after a batch of `size` rows.
    pub fn observe(&mut self, p95: Duration, size: u64, min: u64) {
        if p95 > self.target {
            let over = p95.as_secs_f64() / self.target.as_secs_f64();
            // The further over, the harder the cut.
            let factor = if over > 2.0 { 0.5 } else { 0.75 };
            self.cap = Some(((size as f64 * factor) as u64).max(min));
            self.pause = (self.pause.mul_f64(1.5) + Duration::from_millis(20)).min(MAX_PAUSE);
        } else if p95 < self.target.mul_f64(0.7) {
            self.pause = self.pause.mul_f64(0.7);
            if self.pause < Duration::from_millis(5) {
                self.pause = Duration::ZERO;
            }
            self.cap = self.cap.map(|c| (c as f64 * 1.25) as u64 + 1);
        }
    }

    /// The most rows the next batch may have.
    pub fn cap(&self) -> Option<u64> {
        self.cap
    }

    /// The pause before the next batch.
    pub fn pause(&self) -> Duration {
        self.pause
    }

    /// What gentle mode is doing, when it is doing anything.
    pub fn reason(&self, p95: Duration) -> Option<String> {
        use crate::engine::events::short_duration;
        if self.pause.is_zero() && p95 <= self.target {
            return None;
        }
        Some(format!(
            "gentle: probe p95 {} (target {}){}, pausing {} between batches",
            short_duration(p95),
            short_duration(self.target),
            self.cap
                .map(|c| format!(", batch ≤ {c}"))
                .unwrap_or_default(),
            short_duration(self.pause)
        ))
    }
}

#[cfg(test)]
mod lag_tests {
    use super::*;
    use crate::monitor::sample::{ReplicaLag, Sample, SlotInfo};
    use crate::plan::model::Throttle;
    use crate::plan::units::{HumanDuration, Size};

    fn throttle() -> Throttle {
        Throttle {
            replication_lag: Some(HumanDuration(Duration::from_secs(5))),
            replication_lag_bytes: Some(Size(1_000_000)),
            ..Throttle::default()
        }
    }

    fn with_replica(lag_ms: u64, bytes: i64) -> Sample {
        Sample {
            replicas: vec![ReplicaLag {
                name: "r1".into(),
                state: "streaming".into(),
                sent_bytes: 0,
                replay_bytes: bytes,
                write_lag: Duration::ZERO,
                flush_lag: Duration::ZERO,
                replay_lag: Duration::from_millis(lag_ms),
            }],
            ..Sample::default()
        }
    }

    #[test]
    fn holds_while_a_replica_lags_and_says_why() {
        let fresh = Duration::from_millis(500);
        assert_eq!(hold_reason(&throttle(), &with_replica(100, 0), fresh), None);
        assert_eq!(
            hold_reason(&throttle(), &with_replica(7200, 0), fresh).as_deref(),
            Some("throttled: replica r1 lag 7.2s > 5s")
        );
        let r = hold_reason(&throttle(), &with_replica(0, 3_000_000), fresh).unwrap();
        assert!(
            r.starts_with("throttled: replica r1 3.0 MB behind > 1.0 MB"),
            "{r}"
        );
    }

    #[test]
    fn holds_on_slot_retention() {
        let mut s = Sample::default();
        s.slots.push(SlotInfo {
            name: "cdc".into(),
            kind: "logical".into(),
            active: false,
            retained_bytes: 5_000_000,
        });
        let r = hold_reason(&throttle(), &s, Duration::ZERO).unwrap();
        assert!(r.contains("slot cdc retains"), "{r}");
    }

    #[test]
    fn fails_closed_without_fresh_samples() {
        let r = hold_reason(&throttle(), &Sample::default(), Duration::from_secs(9)).unwrap();
        assert!(r.contains("failing closed"), "{r}");
    }

    #[test]
    fn unset_limits_never_hold() {
        assert_eq!(
            hold_reason(
                &Throttle::default(),
                &with_replica(999_999, i64::MAX / 4),
                Duration::ZERO
            ),
            None
        );
    }

    #[test]
    fn gentle_mode_backs_off_then_releases() {
        let mut g = Gentle::new(Duration::from_millis(10));
        g.observe(Duration::from_millis(30), 10_000, 100);
        assert_eq!(g.cap(), Some(5_000), "3× over: halve");
        assert_eq!(g.pause(), Duration::from_millis(20));
        g.observe(Duration::from_millis(12), 5_000, 100);
        assert_eq!(g.cap(), Some(3_750));
        assert!(g.pause() > Duration::from_millis(20));
        assert!(
            g.reason(Duration::from_millis(12))
                .unwrap()
                .contains("batch ≤ 3750")
        );
        for _ in 0..30 {
            g.observe(Duration::from_millis(2), 3_750, 100);
        }
        assert_eq!(g.pause(), Duration::ZERO, "well under target: no pause");
        assert_eq!(g.reason(Duration::from_millis(2)), None);
        // In the band between 70 % and 100 % of target it holds steady.
        let mut h = Gentle::new(Duration::from_millis(10));
        h.observe(Duration::from_millis(20), 1000, 100);
        let (cap, pause) = (h.cap(), h.pause());
        h.observe(Duration::from_millis(8), 1000, 100);
        assert_eq!((h.cap(), h.pause()), (cap, pause));
    }

    #[test]
    fn gentle_pause_is_bounded() {
        let mut g = Gentle::new(Duration::from_millis(1));
        for _ in 0..100 {
            let size = g.cap().unwrap_or(1000);
            g.observe(Duration::from_secs(1), size, 100);
        }
        assert_eq!(g.pause(), MAX_PAUSE);
        assert_eq!(g.cap(), Some(100));
    }
}
