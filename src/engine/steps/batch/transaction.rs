//! One batch's transaction: find the range, do the work, advance the
//! checkpoint, and commit — or roll back as a whole.

use tokio_postgres::types::ToSql;

/// One batch's prepared statements ([`crate::statements::batch::BatchSql`]).
#[derive(Clone)]
pub(super) struct Prepared {
    pub(super) range: tokio_postgres::Statement,
    pub(super) work: tokio_postgres::Statement,
    pub(super) checkpoint: tokio_postgres::Statement,
}

/// Whose checkpoint a batch advances when the step runs several workers:
/// the worker's row, and its range's upper key (None: open-ended).
#[derive(Debug, Clone)]
pub(super) struct Worker {
    pub(super) id: i32,
    pub(super) hi: Option<String>,
}

/// What one batch did.
pub(super) enum BatchResult {
    /// Committed: the range's upper key, its keys, the rows worked.
    Done { hi: String, keys: i64, rows: i64 },
    /// No keys after the last key done: the step is complete.
    Exhausted,
    /// Another session moved the checkpoint; nothing was done.
    Stale,
}

/// Runs one batch in its own transaction. On any error it is rolled back
/// before the error is returned, so the connection is ready for the next
/// statement (the journal's, on an abort).
pub(super) async fn one_batch(
    client: &tokio_postgres::Client,
    s: &Prepared,
    size: i64,
    (run_id, phase, step): (i64, i32, i32),
    last_key: &Option<String>,
    worker: Option<&Worker>,
) -> Result<BatchResult, tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let work = async {
        let mut range: Vec<&(dyn ToSql + Sync)> = vec![&size, &run_id, &phase, &step, last_key];
        if let Some(w) = worker {
            range.push(&w.id);
            if w.hi.is_some() {
                range.push(&w.hi);
            }
        }
        let row = client.query_one(&s.range, &range).await?;
        if row.get::<_, bool>(2) {
            return Ok(BatchResult::Stale);
        }
        let Some(hi) = row.get::<_, Option<String>>(0) else {
            return Ok(BatchResult::Exhausted);
        };
        let keys: i64 = row.get(1);
        let rows = match last_key {
            Some(lo) => client.execute(&s.work, &[&hi, lo]).await?,
            None => client.execute(&s.work, &[&hi]).await?,
        } as i64;
        let mut checkpoint: Vec<&(dyn ToSql + Sync)> =
            vec![&run_id, &phase, &step, &hi, &keys, &rows];
        if let Some(w) = worker {
            checkpoint.push(&w.id);
        }
        client.execute(&s.checkpoint, &checkpoint).await?;
        Ok(BatchResult::Done { hi, keys, rows })
    };
    match work.await {
        Ok(done @ BatchResult::Done { .. }) => {
            client.batch_execute("COMMIT").await?;
            Ok(done)
        }
        other => {
            rollback(client).await?;
            other
        }
    }
}

/// Ends the open transaction, also when a cancel request sent for the
/// batch reaches the server only now ([`crate::db::past_late_cancel`]).
async fn rollback(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    crate::db::past_late_cancel(|| client.batch_execute("ROLLBACK")).await
}
