//! `kind = "sql"`: one statement under `lock_timeout`, retried on lock
//! timeouts. Transactional statements commit together with their journal
//! record, so a crash can never leave "done but not recorded".

use super::{Ctx, StepError, create_index, needs_autocommit};
use crate::db::{Conn, DbError, execute_with_retry, quote_qualified};
use crate::journal::steps::Created;
use crate::plan::model::SqlStep;
use crate::sql::{Kind, parse};

/// The tables a statement builds an index on concurrently (CREATE INDEX
/// CONCURRENTLY, REINDEX … CONCURRENTLY): an interrupted build leaves an
/// INVALID index there.
async fn concurrent_build_tables(sql: &str, conn: &Conn) -> Result<Vec<String>, DbError> {
    let mut tables = Vec::new();
    for statement in parse(sql) {
        match statement.kind {
            Kind::CreateIndex {
                table,
                concurrently: true,
            } => tables.push(rel_text(&table.schema, &table.name)),
            Kind::Reindex {
                target,
                rel: Some(rel),
                concurrently: true,
            } => {
                let named = rel_text(&rel.schema, &rel.name);
                if target.eq_ignore_ascii_case("index") {
                    // The index's table.
                    if let Some(row) = conn
                        .client
                        .query_opt(
                            "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass($1)",
                            &[&named],
                        )
                        .await
                        .map_err(|e| DbError::sql("finding the reindexed index's table", e))?
                    {
                        tables.push(row.get(0));
                    }
                } else if target.eq_ignore_ascii_case("table") {
                    tables.push(named);
                }
            }
            _ => {}
        }
    }
    Ok(tables)
}

fn rel_text(schema: &Option<String>, name: &str) -> String {
    match schema {
        Some(s) => quote_qualified(&format!("{s}.{name}")),
        None => quote_qualified(name),
    }
}

/// Runs the statement.
pub async fn run(spec: &SqlStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let body = spec.sql.trim().trim_end_matches(';');
    // A concurrent index build: first remove what an earlier, interrupted
    // attempt of this step left (an INVALID index would otherwise satisfy
    // IF NOT EXISTS), then record the table's indexes so a clean-up can
    // tell this statement's leftovers from everything else.
    let builds = concurrent_build_tables(body, ctx.conn)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if !builds.is_empty() {
        if let Some(message) = create_index::clean_up_created(ctx.created_before(), ctx.conn)
            .await
            .map_err(|e| ctx.db_error(e))?
        {
            ctx.out
                .emit(crate::engine::events::EventKind::Notice { message });
        }
        for table in &builds {
            let before = create_index::indexes_on(ctx.conn, table)
                .await
                .map_err(|e| ctx.db_error(e))?;
            ctx.record_created(&Created::IndexBuild {
                table: table.clone(),
                before,
            })
            .await?;
        }
    }
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
    // IF NOT EXISTS can succeed over an INVALID index: never call that done.
    for table in &builds {
        let invalid: Vec<String> = ctx
            .conn
            .client
            .query(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = to_regclass($1) AND NOT indisvalid",
                &[table],
            )
            .await
            .map_err(|e| ctx.db_error(DbError::sql("checking the built indexes", e)))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !invalid.is_empty() {
            return Err(StepError::Failed(format!(
                "the concurrent build left INVALID index(es) on {table}: {}; drop them \
                 (DROP INDEX CONCURRENTLY) and run again",
                invalid.join(", ")
            )));
        }
    }
    Ok(match attempts {
        1 => String::new(),
        n => format!("took {n} attempts (lock timeouts)"),
    })
}
