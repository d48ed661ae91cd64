//! Gentle mode: pacing the backfill by the canary probe's latency.

use std::time::{Duration, Instant};

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
#[cfg(test)]
mod tests {
    use super::*;

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
}
