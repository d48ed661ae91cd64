//! Dynamic batch sizing: the batch size follows the measured batch time
//! toward `target_batch_time`, like pt-online-schema-change's chunk-time.

use std::time::{Duration, Instant};

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
    cap: Option<u64>,
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
            cap: None,
        }
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.cap.map_or(self.size, |cap| self.size.min(cap))
    }

    /// Under a rate limit, a batch holds at most [`PACE_SLICE`] of a
    /// second's rows (never fewer than the minimum), so the pause after it
    /// stays short and the pace smooth.
    pub fn pace(&mut self, rows_per_second: Option<f64>) {
        self.cap = rows_per_second.map(|r| ((r * PACE_SLICE) as u64).max(self.min));
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
    fn a_rate_limit_caps_the_batch_but_not_what_sizing_learned() {
        let mut s = BatchSizer::new(20_000, ms(200), 100, 1_000_000);
        s.pace(Some(10_000.0));
        assert_eq!(s.size(), 500, "a twentieth of a second's rows");
        s.pace(Some(40.0));
        assert_eq!(s.size(), 100, "never below the minimum");
        s.pace(None);
        assert_eq!(s.size(), 20_000);
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
    abort: &crate::plan::model::AbortLimits,
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
    // A replica that went away cannot be measured: under any replication
    // limit of the plan, that counts as over it until the operator releases
    // it (or it comes back).
    let limited = limits.replication_lag.is_some()
        || limits.replication_lag_bytes.is_some()
        || abort.replication_lag.is_some()
        || abort.replication_lag_bytes.is_some();
    if limited
        && let Some((r, since)) = sample
            .replicas
            .iter()
            .find_map(|r| r.gone_since.map(|t| (r, t)))
    {
        return Some(format!(
            "throttled: replica {} gone since {}: holding (release it with the cockpit's `L` or \
             `cutover release-replica PLAN {}`)",
            r.name,
            crate::engine::events::clock(since),
            r.name
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
/// pacing the backfill to a rows-per-second ceiling that it learns — AIMD,
/// like TCP: it starts at a quarter of the speed the first batches show,
/// grows slowly while the probe is within budget and is cut at once
/// when the probe goes over.
///
/// Pacing a steady rate, rather than racing and then pausing, matters on
/// tables larger than `shared_buffers`: the pages a batch dirties reach the
/// disk seconds later (evicted by backends, then written back by the
/// kernel), and that write-back is what slows the application's commits. A
/// controller that runs flat out until the probe complains has by then
/// dirtied far more than the disk absorbs quietly.
#[derive(Debug, Clone)]
pub struct Gentle {
    target: Duration,
    ceiling: Option<f64>,
    /// The ceiling comes from batch speeds only: no probe sample yet.
    seeded: bool,
    last_cut: Option<Instant>,
    /// Ceilings of the last [`HARM_DELAY`], oldest first.
    recent: std::collections::VecDeque<(Instant, f64)>,
    /// The last growth was held back by [`RAMP_STEP`].
    ramp_held: bool,
    /// The highest ceiling that ran a whole [`HARM_DELAY`] without a cut
    /// after it (lowered by later cuts): climbing back to it is not held.
    proven: f64,
    /// A quarter of the fastest batch seen: where gentle mode starts, and
    /// so never held back by the ramp limit.
    start_rate: f64,
}

/// Gentle mode starts at this fraction of the first measured speed.
const START_FRACTION: f64 = 0.25;
/// Growth of the ceiling per probe sample (about one a second) while the
/// probe is within budget: doubling takes about 15 s, so the ceiling
/// does not run far ahead of harm that shows up late.
const GROWTH: f64 = 1.05;
/// With the probe's p95 under this share of the budget, the ceiling grows
/// [`FAST_GROWTH`] a sample instead: far from harm it finds its speed in
/// about half the time (4M rows: 3 minutes from 2k to 130k rows/s at 5 %,
/// with the probe at a third of its budget all the way).
const ROOMY: f64 = 0.5;
/// Growth per sample far within budget.
const FAST_GROWTH: f64 = 1.10;
/// How late harm shows: the pages a batch dirties sit in the server's page
/// cache until the kernel writes them back, after
/// `vm.dirty_expire_centisecs` (30 s by default) — the probe's spikes at 4M
/// rows came 25–35 s after the rate that caused them.
pub const HARM_DELAY: Duration = Duration::from_secs(30);
/// The ceiling rises at most this far above its lowest value over the last
/// [`HARM_DELAY`]. Growing 5–10 % a second alone, it ran from 46k to 177k
/// rows/s in 15 s of good probes at 4M rows, and the write-back of those
/// seconds stalled the application for the 40 s after.
pub const RAMP_STEP: f64 = 1.5;
/// The ceiling never goes below this many rows per second.
const MIN_RATE: f64 = 10.0;
/// Cuts stop at this share of the start rate (a fortieth of the fastest
/// batch): below it the backfill's own writes are too few for a cut to
/// help. Measured at 4M rows: the probe's p95 stayed at 38–484 ms for
/// 100 s while ten cuts took the ceiling from 5,800 to 10 rows/s — the
/// write-back of what ran a minute before, or the host's disk — and
/// recovered with the backfill at 10 rows/s, from where it took minutes to
/// climb back.
const CUT_FLOOR: f64 = 0.1;
/// Gentle mode steers by the probe's p95 over its whole window (about 100
/// probes): a true 95th percentile, which background noise alone rarely
/// pushes over budget — unlike a 2-second window's p95, which is nearly
/// its maximum. After a cut the window still holds the probes that caused
/// it, so there is no second cut until it has turned over.
const CUT_HOLD: Duration = crate::monitor::probe::WINDOW;

impl Gentle {
    /// A controller aiming at `target` p95.
    pub fn new(target: Duration) -> Gentle {
        Gentle {
            target,
            ceiling: None,
            seeded: false,
            last_cut: None,
            recent: std::collections::VecDeque::new(),
            ramp_held: false,
            proven: 0.0,
            start_rate: 0.0,
        }
    }

    /// Paces from the first batch on, before any probe sample, at a
    /// quarter of the fastest batch so far: unpaced, the first second alone
    /// moves a full second's rows at full speed (measured at 1M rows: 173k
    /// rows in that second, the probe's p95 at 407 ms for the next ten). The
    /// fastest, not the first: a first batch on a cold cache ran at a tenth
    /// of the speed of the next (4M rows). Once the probe has spoken, batch
    /// speeds no longer set the ceiling.
    ///
    /// Every batch is seen here: a quarter of the fastest one is also the
    /// rate the ramp limit never holds back (a first batch of 625 ms on a
    /// cold cache at 4M rows seeded 400 rows/s, and 1.5× per 30 s never
    /// climbed out of it).
    pub fn start_from(&mut self, batch_rate: f64) {
        if batch_rate <= 0.0 {
            return;
        }
        let start = (batch_rate * START_FRACTION).max(MIN_RATE);
        self.start_rate = self.start_rate.max(start);
        if self.ceiling.is_some() && !self.seeded {
            return;
        }
        self.ceiling = Some(self.ceiling.map_or(start, |c| c.max(start)));
        self.seeded = true;
    }

    /// Adjusts the ceiling to the probe's recent p95, given the rows/s the
    /// backfill achieved recently.
    pub fn observe(&mut self, p95: Duration, achieved: f64, now: Instant) {
        if achieved <= 0.0 && self.ceiling.is_none() {
            return;
        }
        self.seeded = false;
        let ceiling = *self
            .ceiling
            .get_or_insert((achieved * START_FRACTION).max(MIN_RATE));
        if self.recent.is_empty() {
            self.recent.push_back((now, ceiling));
        }
        while let Some(&(t, c)) = self.recent.front() {
            if now.saturating_duration_since(t) <= HARM_DELAY {
                break;
            }
            self.recent.pop_front();
            if self.last_cut.is_none_or(|cut| cut <= t) {
                self.proven = self.proven.max(c);
            }
        }
        if p95 > self.target {
            if self
                .last_cut
                .is_some_and(|t| now.saturating_duration_since(t) < CUT_HOLD)
            {
                return;
            }
            let over = p95.as_secs_f64() / self.target.as_secs_f64();
            // The further over, the harder the cut.
            let factor = if over > 2.0 { 0.5 } else { 0.7 };
            let base = if achieved > 0.0 {
                ceiling.min(achieved)
            } else {
                ceiling
            };
            // A cut never raises the ceiling to the floor.
            let floor = (self.start_rate * CUT_FLOOR).min(ceiling);
            self.ceiling = Some((base * factor).max(MIN_RATE).max(floor));
            self.proven = self.proven.min(base);
            self.last_cut = Some(now);
        } else {
            let growth = if p95.as_secs_f64() < self.target.as_secs_f64() * ROOMY {
                FAST_GROWTH
            } else {
                GROWTH
            };
            // A rate counts as harmless only once it has run for the whole
            // delay with which harm shows: above the proven rate, the
            // ceiling may rise at most RAMP_STEP above the lowest it was
            // over that time. Back up to the proven rate (after a cut that
            // noise on the probe caused) it climbs at its normal pace.
            let lowest = self.recent.iter().map(|(_, c)| *c).fold(ceiling, f64::min);
            let grown = ceiling * growth;
            let cap = (lowest * RAMP_STEP)
                .max(self.proven)
                .max(self.start_rate)
                .max(ceiling);
            self.ramp_held = grown > cap;
            self.ceiling = Some(grown.min(cap));
        }
        if let Some(c) = self.ceiling {
            self.recent.push_back((now, c));
        }
    }

    /// The most rows per second the backfill may move now (None until the
    /// first probe sample).
    pub fn ceiling(&self) -> Option<f64> {
        self.ceiling
    }

    /// What gentle mode is doing.
    pub fn reason(&self, p95: Duration) -> Option<String> {
        use crate::engine::events::short_duration;
        let ceiling = self.ceiling?;
        Some(format!(
            "gentle: probe p95 {} (target {}), pacing ≤ {:.0} rows/s{}",
            short_duration(p95),
            short_duration(self.target),
            ceiling,
            if self.ramp_held {
                format!(" (rising ≤ {RAMP_STEP}× per {}s)", HARM_DELAY.as_secs())
            } else {
                String::new()
            }
        ))
    }
}

/// Rows per second the backfill may move: the lower of the plan's
/// `max_rows_per_second` and gentle mode's ceiling.
pub fn pace_limit(max_rows_per_second: Option<u64>, gentle: Option<f64>) -> Option<f64> {
    match (max_rows_per_second.map(|r| r as f64), gentle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The share of a second's rows a paced batch may hold: a twentieth, so a
/// paced backfill writes its WAL in small steady steps. A batch's WAL
/// reaches the disk ahead of the application's next commit, which waits
/// for it; a batch of a quarter second's rows (16k rows, about 6 MB of WAL
/// in 60 ms, at 65k rows/s on the 1M benchmark table) put the
/// application's p99 at 19.8–57.5 ms, batches of 3,000 rows at the same
/// pace at 6.6–69.6 ms, two runs of three under 9 ms (baseline 2.5 ms;
/// README, Performance).
pub const PACE_SLICE: f64 = 0.05;

#[cfg(test)]
mod lag_tests {
    use super::*;
    use crate::monitor::sample::{ReplicaLag, Sample, SlotInfo};
    use crate::plan::model::{AbortLimits, Throttle};
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
                gone_since: None,
            }],
            ..Sample::default()
        }
    }

    #[test]
    fn holds_while_a_replica_lags_and_says_why() {
        let fresh = Duration::from_millis(500);
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                &with_replica(100, 0),
                fresh
            ),
            None
        );
        assert_eq!(
            hold_reason(
                &throttle(),
                &AbortLimits::default(),
                &with_replica(7200, 0),
                fresh
            )
            .as_deref(),
            Some("throttled: replica r1 lag 7.2s > 5s")
        );
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            &with_replica(0, 3_000_000),
            fresh,
        )
        .unwrap();
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
        let r = hold_reason(&throttle(), &AbortLimits::default(), &s, Duration::ZERO).unwrap();
        assert!(r.contains("slot cdc retains"), "{r}");
    }

    #[test]
    fn fails_closed_without_fresh_samples() {
        let r = hold_reason(
            &throttle(),
            &AbortLimits::default(),
            &Sample::default(),
            Duration::from_secs(9),
        )
        .unwrap();
        assert!(r.contains("failing closed"), "{r}");
    }

    #[test]
    fn unset_limits_never_hold() {
        assert_eq!(
            hold_reason(
                &Throttle::default(),
                &AbortLimits::default(),
                &with_replica(999_999, i64::MAX / 4),
                Duration::ZERO
            ),
            None
        );
    }

    /// A controller aiming at a 10 ms p95, and its clock: `at(s)` is `s`
    /// seconds in.
    fn gentle_10ms() -> (Gentle, impl Fn(u64) -> Instant) {
        let t0 = Instant::now();
        (Gentle::new(Duration::from_millis(10)), move |s| {
            t0 + Duration::from_secs(s)
        })
    }

    #[test]
    fn gentle_mode_starts_at_a_quarter_grows_slowly_and_cuts_at_once() {
        let (mut g, at) = gentle_10ms();
        assert_eq!(g.ceiling(), None, "no ceiling before the first sample");
        g.observe(Duration::from_millis(6), 100_000.0, at(1));
        assert_eq!(
            g.ceiling(),
            Some(25_000.0 * GROWTH),
            "a quarter, then grown"
        );
        for s in 2..9 {
            g.observe(Duration::from_millis(6), 25_000.0, at(s));
        }
        let grown = g.ceiling().unwrap();
        // 25,000 × 1.05^8.
        assert!((36_900.0..37_000.0).contains(&grown), "{grown}");
        // At the budget it keeps growing slowly, up to 1.5× where it
        // started 30 s ago.
        g.observe(Duration::from_millis(10), 40_000.0, at(12));
        assert_eq!(g.ceiling(), Some(37_500.0));
        // Over: cut from what was achieved (here, below the ceiling).
        g.observe(Duration::from_millis(15), 30_000.0, at(13));
        assert_eq!(g.ceiling(), Some(30_000.0 * 0.7));
        // The same probes still in the window: no second cut.
        g.observe(Duration::from_millis(15), 21_000.0, at(20));
        assert_eq!(g.ceiling(), Some(30_000.0 * 0.7));
        // More than 2× over, once the window has turned over: halve.
        g.observe(Duration::from_millis(25), 21_000.0, at(24));
        assert_eq!(g.ceiling(), Some(21_000.0 * 0.5));
        let reason = g.reason(Duration::from_millis(25)).unwrap();
        assert!(reason.contains("pacing ≤ 10500 rows/s"), "{reason}");
    }

    #[test]
    fn gentle_mode_climbs_back_to_a_proven_rate_after_a_cut() {
        let (mut g, at) = gentle_10ms();
        g.start_from(80_000.0);
        // 40 s without harm: 20,000 rising to 30,000 in the first 30 s
        // proves 30,000.
        for s in 1..=40 {
            g.observe(Duration::from_millis(1), 20_000.0, at(s));
        }
        assert!(g.ceiling().unwrap() > 30_000.0);
        // Noise: one spike, a halving from what was achieved.
        g.observe(Duration::from_millis(50), 28_000.0, at(41));
        assert_eq!(g.ceiling(), Some(14_000.0));
        // Back up to the proven 28,000 at 10 % a second, not 1.5× per 30 s.
        for s in 42..=50 {
            g.observe(Duration::from_millis(1), 14_000.0, at(s));
        }
        let c = g.ceiling().unwrap();
        assert!((28_000.0..=28_000.0 * 1.1).contains(&c), "{c}");
        // Above it, held: at most 1.5× the lowest of the last 30 s.
        for s in 51..=60 {
            g.observe(Duration::from_millis(1), c, at(s));
        }
        assert_eq!(g.ceiling(), Some(28_000.0_f64.max(14_000.0 * 1.5)));
    }

    #[test]
    fn a_slow_first_batch_does_not_hold_gentle_mode_down() {
        let (mut g, at) = gentle_10ms();
        // A cold first batch: 1,000 rows in 625 ms.
        g.start_from(1_600.0);
        assert_eq!(g.ceiling(), Some(400.0));
        g.observe(Duration::from_millis(1), 400.0, at(1));
        // The next batches show the table's real speed.
        g.start_from(100_000.0);
        for s in 2..=50 {
            g.observe(Duration::from_millis(1), 400.0, at(s));
        }
        // Up to a quarter of it at 10 % a second, not 1.5× per 30 s.
        assert_eq!(g.ceiling(), Some(25_000.0));
    }

    #[test]
    fn gentle_mode_grows_faster_far_within_budget() {
        let mut g = Gentle::new(Duration::from_millis(10));
        g.start_from(40_000.0);
        g.observe(Duration::from_millis(4), 10_000.0, Instant::now());
        assert_eq!(g.ceiling(), Some(10_000.0 * FAST_GROWTH));
    }

    #[test]
    fn gentle_mode_paces_from_the_first_batch() {
        let mut g = Gentle::new(Duration::from_millis(10));
        g.start_from(0.0);
        assert_eq!(g.ceiling(), None, "an empty batch tells nothing");
        g.start_from(12_000.0);
        assert_eq!(
            g.ceiling(),
            Some(3_000.0),
            "a quarter of the first batch's speed"
        );
        g.start_from(120_000.0);
        assert_eq!(g.ceiling(), Some(30_000.0), "a warmer batch raises it");
        g.start_from(60_000.0);
        assert_eq!(
            g.ceiling(),
            Some(30_000.0),
            "a slower one does not lower it"
        );
        // The first probe sample grows it from there, not from the 10 s
        // average; batch speeds no longer count.
        g.observe(Duration::from_millis(6), 200_000.0, Instant::now());
        assert_eq!(g.ceiling(), Some(30_000.0 * GROWTH));
        g.start_from(900_000.0);
        assert_eq!(g.ceiling(), Some(30_000.0 * GROWTH));
    }

    #[test]
    fn gentle_mode_rises_at_most_half_again_per_harm_delay() {
        let (mut g, at) = gentle_10ms();
        g.start_from(40_000.0);
        // Probes far within budget for 30 s: 10 %/s would be 17×; the
        // ceiling stops at 1.5× the start.
        for s in 1..=30 {
            g.observe(Duration::from_millis(1), 10_000.0, at(s));
        }
        assert_eq!(g.ceiling(), Some(15_000.0));
        let reason = g.reason(Duration::from_millis(1)).unwrap();
        assert!(reason.ends_with("(rising ≤ 1.5× per 30s)"), "{reason}");
        // Once the start has aged out of the window, it may rise again.
        for s in 31..=45 {
            g.observe(Duration::from_millis(1), 15_000.0, at(s));
        }
        let c = g.ceiling().unwrap();
        assert!(c > 15_000.0 && c <= 10_000.0 * 1.1_f64.powi(5) * 1.5, "{c}");
        // A cut: for the next 30 s it rises back to the proven rate (here
        // what was achieved when it came, 12,000), not beyond.
        g.observe(Duration::from_millis(30), 12_000.0, at(46));
        assert_eq!(g.ceiling(), Some(6_000.0));
        for s in 47..=75 {
            g.observe(Duration::from_millis(1), 6_000.0, at(s));
        }
        assert_eq!(g.ceiling(), Some(12_000.0));
    }

    #[test]
    fn gentle_ceiling_has_a_floor() {
        let mut g = Gentle::new(Duration::from_millis(1));
        let t0 = Instant::now();
        for s in 0..100 {
            g.observe(
                Duration::from_secs(1),
                50.0,
                t0 + Duration::from_secs(11 * s),
            );
        }
        assert_eq!(g.ceiling(), Some(MIN_RATE));
    }

    #[test]
    fn cuts_stop_at_a_tenth_of_the_start_rate() {
        let (mut g, at) = gentle_10ms();
        g.start_from(80_000.0);
        assert_eq!(g.ceiling(), Some(20_000.0));
        // 200 s over budget, whatever the rate: halved every 11 s, down to
        // 2,000 rows/s and no further.
        for s in 0..20 {
            let achieved = g.ceiling().unwrap();
            g.observe(Duration::from_millis(100), achieved, at(11 * s));
        }
        assert_eq!(g.ceiling(), Some(2_000.0));
        // Back within budget, it climbs at its normal pace from there.
        for s in 0..25 {
            g.observe(Duration::from_millis(1), 2_000.0, at(221 + s));
        }
        assert_eq!(g.ceiling(), Some(20_000.0), "back to the start rate");
    }

    #[test]
    fn the_lower_limit_paces() {
        assert_eq!(pace_limit(None, None), None);
        assert_eq!(pace_limit(Some(5000), None), Some(5000.0));
        assert_eq!(pace_limit(None, Some(700.0)), Some(700.0));
        assert_eq!(pace_limit(Some(5000), Some(700.0)), Some(700.0));
        assert_eq!(pace_limit(Some(500), Some(700.0)), Some(500.0));
    }
}
