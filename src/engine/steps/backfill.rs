//! `kind = "backfill"`: `UPDATE … SET <set> WHERE <where>` in key-range
//! batches, through the shared batching loop.

use super::{Ctx, StepError, batch};
use crate::plan::model::BackfillStep;
use crate::statements::batch::BatchJob;

/// Runs the backfill.
pub async fn run(spec: &BackfillStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    batch::run(&BatchJob::backfill(spec), ctx).await
}
