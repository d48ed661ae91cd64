//! Dynamic batch sizing: the batch size follows the measured batch time
//! toward `target_batch_time`, like pt-online-schema-change's chunk-time.

use std::time::Duration;

use super::pacing::PACE_SLICE;

/// Weight of the newest batch in the decayed rate average.
const DECAY: f64 = 0.25;
/// Most a batch may grow from one batch to the next.
const MAX_GROWTH: f64 = 1.5;
/// A batch this many times over target is cut sharply.
const OVERRUN: f64 = 5.0;
/// The sharp cut.
const OVERRUN_CUT: f64 = 0.25;
/// The target is at least this many times the shortest batch of at most
/// twice the minimum size seen. What a
/// batch costs whatever its size (round trips to a distant server, the
/// commit, a statement trigger) cannot be sized away: aiming under it
/// would shrink every batch to the minimum and the backfill to a crawl.
/// At twice it, a batch spends at least half its time on rows.
const FLOOR_FACTOR: u32 = 2;

/// Picks each batch's size from the time the previous ones took.
#[derive(Debug, Clone)]
pub struct BatchSizer {
    target: Duration,
    min: u64,
    max: u64,
    size: u64,
    avg_rate: Option<f64>,
    cap: Option<u64>,
    /// The shortest batch of at most twice the minimum size seen.
    shortest: Option<Duration>,
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
            shortest: None,
        }
    }

    /// The size of the next batch.
    pub fn size(&self) -> u64 {
        self.cap.map_or(self.size, |cap| self.size.min(cap))
    }

    /// The size of the next batch with the operator's override (`+`/`-`,
    /// `cutover set batch_size`), held to `min..=max` and the pace as the
    /// automatic size is.
    pub fn size_with(&self, manual: Option<u64>) -> u64 {
        match manual {
            Some(n) => {
                let n = n.clamp(self.min, self.max);
                self.cap.map_or(n, |cap| n.min(cap))
            }
            None => self.size(),
        }
    }

    /// Under a rate limit, a batch holds at most [`PACE_SLICE`] of a
    /// second's rows (never fewer than the minimum), so the pause after it
    /// stays short and the pace smooth.
    pub fn pace(&mut self, rows_per_second: Option<f64>) {
        self.cap = rows_per_second.map(|r| ((r * PACE_SLICE) as u64).max(self.min));
    }

    /// Takes a new target and bounds (a live `cutover set`), keeping what
    /// it learned.
    pub fn retarget(&mut self, target: Duration, min: u64, max: u64) {
        self.target = target;
        self.min = min.max(1);
        self.max = max.max(self.min);
        self.size = self.size.clamp(self.min, self.max);
    }

    /// The batches' own speed, rows per second of batch time (a decayed
    /// average), once a batch has been measured.
    pub fn rate(&self) -> Option<f64> {
        self.avg_rate
    }

    /// What sizing aims at: the target, or twice the shortest batch of at
    /// most twice the minimum size, if that is longer ([`FLOOR_FACTOR`]).
    pub fn target(&self) -> Duration {
        match self.shortest {
            Some(s) => self.target.max(s * FLOOR_FACTOR),
            None => self.target,
        }
    }

    /// Learns from a batch of `rows` keys that took `elapsed`.
    pub fn observe(&mut self, rows: u64, elapsed: Duration) {
        if rows == 0 || elapsed.is_zero() {
            return;
        }
        // Only a batch near the minimum size tells what every batch costs.
        if rows <= self.min * 2 {
            self.shortest = Some(self.shortest.map_or(elapsed, |s| s.min(elapsed)));
        }
        let rate = rows as f64 / elapsed.as_secs_f64();
        let target = self.target().as_secs_f64();
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
    fn the_operators_size_stays_within_the_bounds_and_the_pace() {
        let mut s = BatchSizer::new(1000, ms(200), 100, 50_000);
        assert_eq!(s.size_with(Some(99_999_999_999)), 50_000);
        assert_eq!(s.size_with(Some(10)), 100);
        assert_eq!(s.size_with(Some(2_000)), 2_000);
        s.pace(Some(1_000.0));
        assert!(s.size_with(Some(40_000)) < 40_000, "the pace caps it too");
        assert_eq!(s.size_with(None), s.size());
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
    fn a_cost_every_batch_pays_does_not_shrink_batches_to_the_minimum() {
        // 50 ms a batch whatever its size (a distant server, a trigger),
        // then 10 µs a row: aiming at 25 ms would mean 100-row batches.
        let mut s = BatchSizer::new(1000, ms(25), 100, 1_000_000);
        for _ in 0..60 {
            let n = s.size();
            s.observe(n, ms(50) + Duration::from_micros(10 * n));
        }
        // It shrinks toward 100 rows (51–52 ms), then aims at twice that.
        assert!(
            (ms(100)..=ms(104)).contains(&s.target()),
            "twice the shortest batch: {:?}",
            s.target()
        );
        assert!(s.size() > 4_000, "{}", s.size());
        // Without such a cost, the target stands.
        let mut t = BatchSizer::new(1000, ms(25), 100, 1_000_000);
        simulate(&mut t, 100_000.0, 40);
        assert_eq!(t.target(), ms(25));
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
