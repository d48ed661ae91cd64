//! Pacing: the rows per second a backfill may move, and how much of a
//! second's rows one paced batch may hold.

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
mod tests {
    use super::*;

    #[test]
    fn the_lower_limit_paces() {
        assert_eq!(pace_limit(None, None), None);
        assert_eq!(pace_limit(Some(5000), None), Some(5000.0));
        assert_eq!(pace_limit(None, Some(700.0)), Some(700.0));
        assert_eq!(pace_limit(Some(5000), Some(700.0)), Some(700.0));
        assert_eq!(pace_limit(Some(500), Some(700.0)), Some(500.0));
    }
}
