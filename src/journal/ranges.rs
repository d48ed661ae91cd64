//! The key ranges of a batched step run by several workers
//! (`cutover.step_ranges`): recorded once when the step first starts, each
//! with the checkpoint its worker's batches advance.

use tokio_postgres::Client;

use crate::db::DbError;
use crate::statements::split::KeyRange;

/// One worker's range and where it got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeRow {
    /// The worker's number, from 0.
    pub worker: i32,
    /// Its range.
    pub range: KeyRange,
    /// The last key its batches committed (its range's `lo` at first).
    pub last_key: Option<String>,
    /// Keys it walked.
    pub rows_done: i64,
    /// Rows it changed.
    pub rows_updated: i64,
}

const READ: &str = "SELECT worker, lo, hi, last_key, rows_done, rows_updated
    FROM cutover.step_ranges WHERE run_id = $1 AND phase = $2 AND step = $3 ORDER BY worker";

const INSERT: &str =
    "INSERT INTO cutover.step_ranges (run_id, phase, step, worker, lo, hi, last_key)
    SELECT $1, $2, $3, w - 1, lo, hi, lo
    FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS r(lo, hi, w)";

/// Marks the step as split (a checkpoint that is not NULL; resetting it
/// forgets the ranges), keeping a single session's last key if it had one.
const MARK: &str = "UPDATE cutover.steps
    SET checkpoint = coalesce(checkpoint, '{}'::jsonb) || jsonb_build_object('workers', $4::int)
    WHERE run_id = $1 AND phase = $2 AND step = $3";

/// The step's ranges, by worker (empty: never split).
pub async fn read(
    client: &Client,
    run_id: i64,
    phase: i32,
    step: i32,
) -> Result<Vec<RangeRow>, DbError> {
    let rows = client
        .query(READ, &[&run_id, &phase, &step])
        .await
        .map_err(|e| DbError::sql("reading the step's key ranges", e))?;
    Ok(rows
        .iter()
        .map(|r| RangeRow {
            worker: r.get(0),
            range: KeyRange {
                lo: r.get(1),
                hi: r.get(2),
            },
            last_key: r.get(3),
            rows_done: r.get(4),
            rows_updated: r.get(5),
        })
        .collect())
}

/// Records the step's ranges, each starting at its `lo`, in one
/// transaction with the mark on the step.
pub async fn record(
    client: &Client,
    run_id: i64,
    phase: i32,
    step: i32,
    ranges: &[KeyRange],
) -> Result<(), DbError> {
    let ctx = |e| DbError::sql("recording the step's key ranges", e);
    let lo: Vec<Option<String>> = ranges.iter().map(|r| r.lo.clone()).collect();
    let hi: Vec<Option<String>> = ranges.iter().map(|r| r.hi.clone()).collect();
    let n = ranges.len() as i32;
    super::in_transaction(client, "recording the step's key ranges", async {
        client
            .execute(INSERT, &[&run_id, &phase, &step, &lo, &hi])
            .await
            .map_err(ctx)?;
        client
            .execute(MARK, &[&run_id, &phase, &step, &n])
            .await
            .map_err(ctx)?;
        Ok(())
    })
    .await
}

/// One worker's row as it stands (after a stale batch: another session's
/// batch committed after this one read the checkpoint).
pub async fn read_one(
    client: &Client,
    run_id: i64,
    phase: i32,
    step: i32,
    worker: i32,
) -> Result<Option<RangeRow>, DbError> {
    Ok(read(client, run_id, phase, step)
        .await?
        .into_iter()
        .find(|r| r.worker == worker))
}
