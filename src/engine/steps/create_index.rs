//! `kind = "create_index"`: `CREATE [UNIQUE] INDEX CONCURRENTLY`, outside a
//! transaction. A failed or cancelled concurrent build leaves an INVALID
//! index behind; it is dropped (concurrently) before every retry and after
//! an abort.

use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{Ctx, RecordedUndo, StepError};
use crate::db::retry::set_lock_timeout;
use crate::db::{Conn, DbError, RetryPolicy, execute_with_retry, quote_ident, quote_qualified};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::plan::model::CreateIndexStep;

/// The index's name, qualified with the table's schema.
pub fn qualified_index_name(spec: &CreateIndexStep) -> String {
    let parts = crate::db::ident::split_qualified(&spec.table);
    match parts.as_slice() {
        [schema, _] => format!("{}.{}", quote_ident(schema), quote_ident(&spec.name)),
        _ => quote_ident(&spec.name),
    }
}

/// One entry of `columns` as SQL: an expression in parentheses is the
/// plan's own SQL; otherwise a column name (quoted, spaces and capitals
/// kept) followed by any of its options: an operator class (`…_ops`),
/// `COLLATE "x"`, `ASC`/`DESC`, `NULLS FIRST`/`NULLS LAST`.
pub fn index_column(entry: &str) -> String {
    let c = entry.trim();
    if c.starts_with('(') {
        return c.to_string();
    }
    let words: Vec<&str> = c.split_whitespace().collect();
    // Peel options off the end; what is left is the name.
    let mut end = words.len();
    loop {
        let upper = |i: usize| words.get(i).map(|w| w.to_uppercase());
        if end >= 2
            && upper(end - 2).as_deref() == Some("NULLS")
            && matches!(upper(end - 1).as_deref(), Some("FIRST" | "LAST"))
        {
            end -= 2;
        } else if end >= 2 && matches!(upper(end - 1).as_deref(), Some("ASC" | "DESC")) {
            end -= 1;
        } else if end >= 3 && upper(end - 2).as_deref() == Some("COLLATE") {
            end -= 2;
        } else if end >= 2 && words[end - 1].to_lowercase().ends_with("_ops") {
            end -= 1;
        } else {
            break;
        }
    }
    let name = words[..end].join(" ");
    let name = if name.starts_with('"') && name.ends_with('"') && name.len() >= 2 {
        name
    } else {
        quote_ident(&name)
    };
    let options = words[end..].join(" ");
    if options.is_empty() {
        name
    } else {
        format!("{name} {options}")
    }
}

/// The build statement.
pub fn build_sql(spec: &CreateIndexStep) -> String {
    let columns: Vec<String> = spec.columns.iter().map(|c| index_column(c)).collect();
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
            Created::Constraint { .. } => Vec::new(),
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
    fn column_names_are_quoted_and_options_kept() {
        assert_eq!(index_column("my id"), r#""my id""#);
        assert_eq!(index_column("Email"), r#""Email""#);
        assert_eq!(index_column("created_at DESC"), r#""created_at" DESC"#);
        assert_eq!(
            index_column("name text_pattern_ops NULLS LAST"),
            r#""name" text_pattern_ops NULLS LAST"#
        );
        assert_eq!(
            index_column(r#"title COLLATE "C""#),
            r#""title" COLLATE "C""#
        );
        assert_eq!(index_column(r#""already quoted""#), r#""already quoted""#);
        assert_eq!(index_column("(lower(email))"), "(lower(email))");
        assert_eq!(index_column("a;drop table t"), r#""a;drop table t""#);
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
            r#"CREATE UNIQUE INDEX CONCURRENTLY "users_email_idx" ON "app"."users" USING "btree" ((lower(email)), "created_at" DESC) WHERE deleted_at IS NULL"#
        );
        assert_eq!(qualified_index_name(&s), r#""app"."users_email_idx""#);
    }
}
