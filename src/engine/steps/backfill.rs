//! `kind = "backfill"`: `UPDATE … SET <set> WHERE <where>` in key-range
//! batches, through the shared batching loop.

use super::batch::{self, BatchJob, Work};
use super::{Ctx, StepError};
use crate::plan::model::BackfillStep;

/// The batch job of a backfill.
pub fn job(spec: &BackfillStep) -> BatchJob {
    BatchJob {
        table: spec.table.clone(),
        key: spec.key.clone(),
        filter: spec.where_.clone(),
        work: Work::Update {
            set: spec.set.clone(),
        },
        batch_size: spec.batch_size,
        vacuum_behind: spec.vacuum_behind,
    }
}

/// Runs the backfill.
pub async fn run(spec: &BackfillStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    batch::run(&job(spec), ctx).await
}
