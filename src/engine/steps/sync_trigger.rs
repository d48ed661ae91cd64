//! `kind = "sync_trigger"`: a row trigger keeping old and new in step while
//! both application versions run. Function and trigger are named
//! `cutover_sync_<name>`, created in one transaction with the step's journal
//! record (so an abort leaves neither), and dropped on rollback — or by an
//! explicit contract step:
//! `DROP TRIGGER cutover_sync_<name> ON <table>; DROP FUNCTION cutover_sync_<name>()`.

use super::{Ctx, StepError};
use crate::db::{execute_with_retry, quote_ident, quote_qualified};
use crate::plan::model::SyncTriggerStep;
use crate::statements::sync_trigger::{create_sql, drop_sql, object_name, trigger_table};

/// The spec with every table schema-qualified from the catalog, so the
/// function and its body name exactly the tables they mean.
pub async fn qualified(
    spec: &SyncTriggerStep,
    conn: &crate::db::Conn,
) -> Result<SyncTriggerStep, crate::db::DbError> {
    let qualify = async |t: &Option<String>| -> Result<Option<String>, crate::db::DbError> {
        let Some(t) = t else { return Ok(None) };
        let row = conn
            .client
            .query_opt(
                "SELECT n.nspname::text, c.relname::text FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
                &[&quote_qualified(t)],
            )
            .await
            .map_err(|e| crate::db::DbError::sql("finding the sync trigger's tables", e))?;
        // Keep the plan's name when the table does not exist (the statement
        // then fails naming it).
        Ok(Some(row.map_or(t.clone(), |r| {
            format!(
                "{}.{}",
                quote_ident(&r.get::<_, String>(0)),
                quote_ident(&r.get::<_, String>(1))
            )
        })))
    };
    let mut out = spec.clone();
    out.table = qualify(&spec.table).await?;
    out.from = qualify(&spec.from).await?;
    out.to = qualify(&spec.to).await?;
    Ok(out)
}

/// Creates function and trigger, with the journal record, in one transaction.
pub async fn run(spec: &SyncTriggerStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let spec = &qualified(spec, ctx.conn)
        .await
        .map_err(|e| ctx.db_error(e))?;
    // The undo names the function exactly where it is created.
    ctx.record_undo(&super::RecordedUndo::Sql {
        sql: drop_sql(spec),
    })
    .await?;
    let create = create_sql(spec).map_err(StepError::Failed)?;
    let statement = format!("{create};\n{}", ctx.mark_done_sql());
    let cancel = ctx.control.abort.token().clone();
    let mut report = ctx.retry_reporter();
    execute_with_retry(ctx.conn, &statement, &ctx.policy, &cancel, &mut report)
        .await
        .map_err(|e| ctx.db_error(e))?;
    Ok(format!(
        "trigger {} on {}",
        object_name(spec),
        trigger_table(spec)
    ))
}
