//! `kind = "create_index"`: `CREATE [UNIQUE] INDEX CONCURRENTLY`, outside a
//! transaction. A failed or cancelled concurrent build leaves an INVALID
//! index behind; it is dropped (concurrently) before every retry and after
//! an abort.

use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{Ctx, RecordedUndo, StepError};
use crate::db::retry::set_lock_timeout;
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::plan::model::CreateIndexStep;
use crate::statements::create_index::{build_sql, drop_sql, qualified_index_name};

/// Whether the index exists, and if so whether it is valid.
pub(super) async fn index_state(
    conn: &Conn,
    spec: &CreateIndexStep,
) -> Result<Option<bool>, DbError> {
    let row = conn
        .client
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)",
            &[&qualified_index_name(spec)],
        )
        .await
        .map_err(|e| DbError::sql("looking up the index", e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Builds the index (or finds it already built by an earlier session).
pub async fn run(spec: &CreateIndexStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let build = build_sql(spec);
    let cancel = ctx.control.abort.token().clone();
    let mut retry = 0;
    let ours = Created::Index {
        name: qualified_index_name(spec),
    };
    let made_by_this_run = ctx.created_before().contains(&ours);
    match index_state(ctx.conn, spec)
        .await
        .map_err(|e| ctx.db_error(e))?
    {
        Some(true) if !made_by_this_run => {
            // Someone else's index: this run must never drop it.
            ctx.record_undo(&RecordedUndo::Nothing {
                why: format!("index {} existed before this run", spec.name),
            })
            .await?;
            return Ok(format!(
                "index {} already exists and is valid (not built by this run; a rollback keeps it)",
                spec.name
            ));
        }
        Some(false) if !made_by_this_run => {
            return Err(StepError::Failed(format!(
                "an INVALID index named {} exists that this run did not build; drop it \
                 (DROP INDEX CONCURRENTLY {}) or give the step another index name",
                spec.name,
                qualified_index_name(spec)
            )));
        }
        _ => {}
    }
    ctx.record_created(&ours).await?;
    loop {
        ctx.control.safe_point(ctx.out).await?;
        match index_state(ctx.conn, spec)
            .await
            .map_err(|e| ctx.db_error(e))?
        {
            Some(true) => return Ok(format!("index {} exists and is valid", spec.name)),
            Some(false) => {
                ctx.out.emit(EventKind::Notice {
                    message: format!(
                        "dropping the INVALID index {} left by an earlier build",
                        spec.name
                    ),
                });
                drop_index(ctx.conn, spec, &ctx.policy, &cancel)
                    .await
                    .map_err(|e| ctx.db_error(e))?;
            }
            None => {}
        }
        set_lock_timeout(ctx.conn, ctx.policy.lock_timeout)
            .await
            .map_err(|e| ctx.db_error(e))?;
        match ctx.conn.execute_cancellable(&build, &cancel).await {
            Ok(()) => return Ok(format!("index {} built", spec.name)),
            Err(DbError::Sql { source, .. })
                if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                    && retry < ctx.policy.retries =>
            {
                retry += 1;
                let wait = ctx.policy.backoff(retry);
                (ctx.retry_reporter())(&crate::db::RetryNotice {
                    retry,
                    of: ctx.policy.retries,
                    wait,
                    reason: crate::db::describe(&source),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => return Err(ctx.db_error(DbError::Cancelled)),
                }
            }
            Err(DbError::Sql { source, .. })
                if source.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
            {
                return Err(ctx.db_error(DbError::LockTimeout {
                    attempts: retry + 1,
                    lock_timeout: ctx.policy.lock_timeout,
                }));
            }
            Err(e) => return Err(ctx.db_error(e)),
        }
    }
}

async fn drop_index(
    conn: &Conn,
    spec: &CreateIndexStep,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
) -> Result<(), DbError> {
    execute_with_retry(conn, &drop_sql(spec), policy, cancel, &mut |_| {}).await?;
    Ok(())
}

/// After an abort or failure: drops the INVALID leftovers of the index
/// builds this run recorded — a `create_index` step's index, or any new
/// INVALID index on a table a concurrent `sql` statement was building on.
pub async fn clean_up_created(created: &[Created], conn: &Conn) -> Result<Option<String>, DbError> {
    let mut dropped = Vec::new();
    for object in created {
        let invalid: Vec<String> = match object {
            Created::Index { name } => conn
                .client
                .query(
                    "SELECT $1::text FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid",
                    &[name],
                )
                .await
                .map_err(|e| DbError::sql("looking up the index", e))?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Created::IndexBuild { table, before } => conn
                .client
                .query(
                    "SELECT format('%I.%I', n.nspname, c.relname)
                     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                     JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE i.indrelid = to_regclass($1) AND NOT i.indisvalid
                       AND NOT (format('%I.%I', n.nspname, c.relname) = ANY($2))",
                    &[table, before],
                )
                .await
                .map_err(|e| DbError::sql("looking for INVALID indexes", e))?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            // Not index builds: constraints, and the objects of a move.
            _ => Vec::new(),
        };
        for name in invalid {
            execute_with_retry(
                conn,
                &format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"),
                &RetryPolicy::default(),
                &CancellationToken::new(),
                &mut |_| {},
            )
            .await?;
            dropped.push(name);
        }
    }
    Ok((!dropped.is_empty()).then(|| {
        format!(
            "dropped the INVALID index(es) {} left by the interrupted build",
            dropped.join(", ")
        )
    }))
}

/// The table's indexes now (qualified, quoted), to tell a concurrent
/// statement's leftovers from what was there before.
pub async fn indexes_on(conn: &Conn, table: &str) -> Result<Vec<String>, DbError> {
    Ok(conn
        .client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE i.indrelid = to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(|e| DbError::sql("listing the table's indexes", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Rollback: drops the index concurrently.
pub async fn undo(
    spec: &CreateIndexStep,
    conn: &Conn,
    policy: &RetryPolicy,
    cancel: &CancellationToken,
) -> Result<String, DbError> {
    drop_index(conn, spec, policy, cancel).await?;
    Ok(format!("dropped index {}", spec.name))
}
