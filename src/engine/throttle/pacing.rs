//! Pacing: the rows per second a backfill may move, and how much of a
//! second's rows one paced batch may hold.

/// Rows per second the backfill may move: the lowest of the plan's
/// `max_rows_per_second`, gentle mode's ceiling and the stall budget's
/// duty.
pub fn pace_limit(
    max_rows_per_second: Option<u64>,
    gentle: Option<f64>,
    duty: Option<f64>,
) -> Option<f64> {
    [max_rows_per_second.map(|r| r as f64), gentle, duty]
        .into_iter()
        .flatten()
        .reduce(f64::min)
}

/// Under `[settings] max_stall`, the batches run at most this share of the
/// time: the pace is half their own speed. An application's commit waits
/// for the WAL written before it to reach the disk, and on a small server
/// it shares the cores with the batches; a pause after each batch as long
/// as the batch leaves the disk and a core to the application half the
/// time. Measured with TPC-B through a whole plan: the application's p99
/// at 3.7× the load alone in both of two runs, where full speed gave 4.4×
/// and 9.5×, for twice the backfill's time (benches/README.md).
pub const STALL_DUTY: f64 = 0.5;

/// The stall budget's pace: [`STALL_DUTY`] of what `lanes` sessions move
/// at the batches' own speed (`batch_rate`, rows per second of one
/// session's batch time).
pub fn stall_duty(max_stall: bool, batch_rate: Option<f64>, lanes: usize) -> Option<f64> {
    batch_rate
        .filter(|r| max_stall && *r > 0.0)
        .map(|r| r * lanes.max(1) as f64 * STALL_DUTY)
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
        assert_eq!(pace_limit(None, None, None), None);
        assert_eq!(pace_limit(Some(5000), None, None), Some(5000.0));
        assert_eq!(pace_limit(None, Some(700.0), None), Some(700.0));
        assert_eq!(pace_limit(Some(5000), Some(700.0), None), Some(700.0));
        assert_eq!(pace_limit(Some(500), Some(700.0), None), Some(500.0));
        assert_eq!(pace_limit(Some(500), Some(700.0), Some(90.0)), Some(90.0));
        assert_eq!(pace_limit(None, None, Some(90.0)), Some(90.0));
    }

    #[test]
    fn the_stall_budget_paces_at_half_the_batches_speed() {
        assert_eq!(stall_duty(false, Some(100_000.0), 1), None);
        assert_eq!(stall_duty(true, None, 1), None, "no batch measured yet");
        assert_eq!(stall_duty(true, Some(100_000.0), 1), Some(50_000.0));
        assert_eq!(stall_duty(true, Some(100_000.0), 4), Some(200_000.0));
    }
}
