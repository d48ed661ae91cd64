//! `kind = "copy_rows"`: `INSERT INTO to (cols) SELECT exprs FROM from …
//! ON CONFLICT DO NOTHING` in key-range batches — the backfill's loop with
//! another statement (checkpointed, throttled and paced the same way).

use super::batch::{self, BatchJob, Work};
use super::{Ctx, StepError};
use crate::plan::model::CopyRowsStep;

/// The batch job of a copy.
pub fn job(spec: &CopyRowsStep) -> BatchJob {
    BatchJob {
        table: spec.from.clone(),
        key: spec.key.clone(),
        filter: spec.where_.clone(),
        work: Work::Copy {
            to: spec.to.clone(),
            columns: spec.columns.pairs(),
        },
        batch_size: spec.batch_size,
        // A copy leaves no dead rows behind in its source.
        vacuum_behind: false,
    }
}

/// Runs the copy.
pub async fn run(spec: &CopyRowsStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    batch::run(&job(spec), ctx).await
}
