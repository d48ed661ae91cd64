//! `kind = "create_index"`: `CREATE [UNIQUE] INDEX CONCURRENTLY`, outside a
//! transaction. A failed or cancelled concurrent build leaves an INVALID
//! index behind; it is dropped (concurrently) before every retry and after
//! an abort.

use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{Ctx, StepError};
use crate::db::retry::set_lock_timeout;
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry, quote_ident, quote_qualified};
use crate::engine::events::EventKind;
use crate::plan::model::CreateIndexStep;

/// The index's name, qualified with the table's schema.
pub fn qualified_index_name(spec: &CreateIndexStep) -> String {
    let parts = crate::db::ident::split_qualified(&spec.table);
    match parts.as_slice() {
        [schema, _] => format!("{}.{}", quote_ident(schema), quote_ident(&spec.name)),
        _ => quote_ident(&spec.name),
    }
}

/// The build statement.
pub fn build_sql(spec: &CreateIndexStep) -> String {
    let columns: Vec<String> = spec
        .columns
        .iter()
        .map(|c| {
            let c = c.trim();
            // A bare name is quoted; an expression "(lower(email))" or a
            // column with options ("created_at DESC") is the plan's own SQL.
            if c.starts_with('(') || c.contains(char::is_whitespace) {
                c.to_string()
            } else {
                quote_ident(c)
            }
        })
        .collect();
    let mut sql = format!(
        "CREATE {}INDEX CONCURRENTLY {} ON {}",
        if spec.unique { "UNIQUE " } else { "" },
        quote_ident(&spec.name),
        quote_qualified(&spec.table)
    );
    if let Some(method) = &spec.using {
        sql.push_str(&format!(" USING {}", quote_ident(method)));
    }
    sql.push_str(&format!(" ({})", columns.join(", ")));
    if let Some(pred) = &spec.where_ {
        sql.push_str(&format!(" WHERE {pred}"));
    }
    sql
}

/// Whether the index exists, and if so whether it is valid.
async fn index_state(conn: &Conn, spec: &CreateIndexStep) -> Result<Option<bool>, DbError> {
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

/// The rollback (and clean-up) statement.
pub fn drop_sql(spec: &CreateIndexStep) -> String {
    format!(
        "DROP INDEX CONCURRENTLY IF EXISTS {}",
        qualified_index_name(spec)
    )
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

/// After an abort or failure: drops the build's INVALID leftover, if any.
pub async fn clean_up(spec: &CreateIndexStep, conn: &Conn) -> Result<Option<String>, DbError> {
    if index_state(conn, spec).await? == Some(false) {
        drop_index(
            conn,
            spec,
            &RetryPolicy::default(),
            &CancellationToken::new(),
        )
        .await?;
        return Ok(Some(format!(
            "dropped the INVALID index {} left by the interrupted build",
            spec.name
        )));
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(columns: &[&str]) -> CreateIndexStep {
        CreateIndexStep {
            name: "users_email_idx".into(),
            table: "app.users".into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            unique: false,
            where_: None,
            using: None,
        }
    }

    #[test]
    fn builds_a_quoted_concurrent_statement() {
        assert_eq!(
            build_sql(&spec(&["email"])),
            r#"CREATE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" ("email")"#
        );
        let mut s = spec(&["(lower(email))", "created_at DESC"]);
        s.unique = true;
        s.using = Some("btree".into());
        s.where_ = Some("deleted_at IS NULL".into());
        assert_eq!(
            build_sql(&s),
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" USING "btree" ((lower(email)), created_at DESC) WHERE deleted_at IS NULL"#
        );
        assert_eq!(qualified_index_name(&s), r#""app"."users_email_idx""#);
    }
}
