//! `kind = "copy_rows"`: `INSERT INTO to (cols) SELECT exprs FROM from …
//! ON CONFLICT DO NOTHING` in key-range batches — the backfill's loop with
//! another statement (checkpointed, throttled and paced the same way).

use super::{Ctx, StepError, batch};
use crate::plan::model::CopyRowsStep;
use crate::statements::batch::BatchJob;

/// Runs the copy.
pub async fn run(spec: &CopyRowsStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    batch::run(&BatchJob::copy_rows(spec), ctx).await
}
