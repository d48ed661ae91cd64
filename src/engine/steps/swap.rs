//! `kind = "swap"`: renames (tables, indexes, sequences, columns) in one
//! short transaction under lock_timeout, retried. An abort asked for inside
//! the critical section takes effect when it ends: a half-done swap is
//! impossible (one transaction), and cancelling it would only waste the
//! lock the application already queued behind.

use tokio_util::sync::CancellationToken;

use super::{Ctx, StepError, sync_trigger};
use crate::db::retry::execute_with_retry_between;
use crate::engine::events::EventKind;
use crate::plan::model::SwapStep;
use crate::statements::swap::{full_sql_with, inverse, named_triggers};

/// Runs the swap.
pub async fn run(spec: &SwapStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    // The functions name their tables schema-qualified (their search_path
    // is pinned): resolve them before the renames move the names.
    let mut triggers = Vec::new();
    for t in named_triggers(ctx.plan, &spec.sync_triggers).map_err(StepError::Failed)? {
        triggers.push(
            sync_trigger::qualified(t, ctx.conn)
                .await
                .map_err(|e| ctx.db_error(e))?,
        );
    }
    let body = full_sql_with(&spec.renames, &triggers, false).map_err(StepError::Failed)?;
    let undo =
        full_sql_with(&inverse(&spec.renames), &triggers, true).map_err(StepError::Failed)?;
    ctx.record_undo(&super::RecordedUndo::Sql { sql: undo })
        .await?;
    let statement = format!("{body};\n{}", ctx.mark_done_sql());
    // An attempt is never cancelled (the abort waits for the transaction to
    // end), but an abort ends the retry sequence at the next boundary.
    let never = CancellationToken::new();
    let abort = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    let attempt = execute_with_retry_between(
        ctx.conn,
        &statement,
        &ctx.policy,
        &never,
        &abort,
        &mut report,
    )
    .await;
    if ctx.control.abort.is_aborted() {
        ctx.out.emit(EventKind::Notice {
            message: "an abort arrived during the swap's critical section; it takes effect now that the swap has ended".into(),
        });
    }
    attempt.map_err(|e| ctx.db_error(e))?;
    Ok(spec
        .renames
        .iter()
        .map(|r| format!("{} → {}", r.from, r.to))
        .collect::<Vec<_>>()
        .join(", "))
}
