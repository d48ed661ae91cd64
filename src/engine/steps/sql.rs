//! `kind = "sql"`: one statement under `lock_timeout`, retried on lock
//! timeouts. Transactional statements commit together with their journal
//! record, so a crash can never leave "done but not recorded".

use super::{Ctx, StepError, needs_autocommit};
use crate::db::execute_with_retry;
use crate::plan::model::SqlStep;

/// Runs the statement.
pub async fn run(spec: &SqlStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let body = spec.sql.trim().trim_end_matches(';');
    let statement = if needs_autocommit(body) {
        body.to_string()
    } else {
        // One simple query = one implicit transaction: both or neither.
        format!("{body};\n{}", ctx.mark_done_sql())
    };
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    let attempts = execute_with_retry(ctx.conn, &statement, &ctx.policy, &cancel, &mut report)
        .await
        .map_err(|e| ctx.db_error(e))?;
    Ok(match attempts {
        1 => String::new(),
        n => format!("took {n} attempts (lock timeouts)"),
    })
}
