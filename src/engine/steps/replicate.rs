//! `kind = "replicate"`: the tables' definitions on the other database
//! (made from the main database's catalog when absent, else checked to
//! match and be empty), a publication here, a subscription there (its slot
//! made here by it), and the initial copy; done once every table is
//! synchronised and streaming. Each object is journalled before it is
//! made. Anything that stops the step (failure, abort, detach) removes
//! them all: a subscription nobody watches keeps WAL on the main
//! database's disk. A resumed step starts the copy over.

use std::time::{Duration, Instant};

use super::detach::{connect_other, pause, remove};
use super::{Ctx, StepError};
use crate::db::databases::subscription_conninfo;
use crate::db::{Conn, DbError};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::monitor::subscription::SubscriptionFocus;
use crate::plan::model::ReplicateStep;
use crate::statements::replication::{self as sql, Column};

/// Runs the step; on any stop, removes what it made.
pub async fn run(spec: &ReplicateStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    if !ctx.created_before().is_empty() {
        let before = ctx.created_before().to_vec();
        let removed = remove(&before, ctx.conn, ctx.databases)
            .await
            .map_err(|e| ctx.db_error(e))?;
        ctx.out.emit(EventKind::Notice {
            message: format!(
                "an earlier session of \"{}\" was interrupted; starting the copy over ({})",
                ctx.name,
                removed.unwrap_or_else(|| "nothing to remove".into())
            ),
        });
    }
    let result = replicate(spec, ctx).await;
    if let Err(err) = &result
        && !matches!(err, StepError::Lost(_))
    {
        set_focus(ctx, None);
        let created = crate::journal::steps(&ctx.journal_conn.client, ctx.run_id)
            .await
            .ok()
            .and_then(|rows| {
                rows.into_iter()
                    .find(|r| r.phase == ctx.phase as i32 && r.step == ctx.step as i32)
                    .map(|r| r.created)
            })
            .unwrap_or_default();
        let message = match remove(&created, ctx.conn, ctx.databases).await {
            Ok(Some(done)) => format!("\"{}\" stopped; {done}", ctx.name),
            Ok(None) => format!("\"{}\" stopped before it made anything", ctx.name),
            Err(e) => format!(
                "\"{}\" stopped, and removing what it made failed: {e}; `cutover rollback` \
                 tries again",
                ctx.name
            ),
        };
        ctx.out.emit(EventKind::Notice { message });
    }
    result
}

fn set_focus(ctx: &Ctx<'_>, focus: Option<SubscriptionFocus>) {
    if let Ok(mut f) = ctx.focus.lock() {
        f.subscription = focus;
    }
}

async fn replicate(spec: &ReplicateStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let mut other = connect_other(ctx, &spec.to).await?;
    let name = super::detach::move_name(ctx, &spec.to).await?;
    let tables = tables(spec, ctx).await?;
    for table in &tables {
        definition_on_other(ctx, &other, &spec.to, table).await?;
    }
    ctx.record_created(&Created::Publication { name: name.clone() })
        .await?;
    ctx.conn
        .client
        .batch_execute(&sql::create_publication_sql(&name, &tables))
        .await
        .map_err(|e| {
            StepError::Failed(format!(
                "{}; the role needs to own the tables (or be superuser) to publish them",
                DbError::sql(format!("creating publication {name}"), e)
            ))
        })?;
    ctx.record_created(&Created::Subscription {
        database: spec.to.clone(),
        name: name.clone(),
    })
    .await?;
    let conninfo = subscription_conninfo(ctx.conn.target());
    let cancel = ctx.control.abort.token().clone();
    let slot_made = same_server(ctx.conn, &other).await;
    if slot_made {
        ctx.conn
            .cancellable(
                ctx.conn.client.query(sql::CREATE_SLOT, &[&name]),
                &cancel,
                || format!("creating replication slot {name}"),
            )
            .await
            .map_err(|e| ctx.db_error(e))?;
    }
    other
        .cancellable(
            other
                .client
                .batch_execute(&sql::create_subscription_sql(&name, &conninfo, slot_made)),
            &cancel,
            || format!("creating subscription {name} on database {}", spec.to),
        )
        .await
        .map_err(|e| match e {
            DbError::Cancelled => ctx.db_error(e),
            e => StepError::Failed(format!(
                "{e}; on `{}` the role needs CREATE on the database and superuser (or, from \
                 PostgreSQL 16, pg_create_subscription), and that server must reach the main \
                 database at {} with a role that has REPLICATION",
                spec.to,
                ctx.conn.target().display()
            )),
        })?;
    let total = copy_total(ctx.conn, &tables).await;
    set_focus(
        ctx,
        Some(SubscriptionFocus {
            database: spec.to.clone(),
            target: other.target().clone(),
            name: name.clone(),
            copy_total_bytes: total,
        }),
    );
    wait_ready(ctx, &mut other, &spec.to, &name, tables.len()).await?;
    Ok(format!(
        "{} replicated to {} (publication, subscription and slot {name})",
        tables.join(", "),
        spec.to
    ))
}

/// The tables to move, qualified and quoted, each checked to exist and
/// have a primary key (logical replication needs a replica identity for
/// updates and deletes).
async fn tables(spec: &ReplicateStep, ctx: &Ctx<'_>) -> Result<Vec<String>, StepError> {
    const CANONICAL: &str = "SELECT format('%I.%I', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
    let c = &ctx.conn.client;
    let names: Vec<String> = if spec.all_tables() {
        c.query(sql::ALL_TABLES, &[])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("listing the tables", e)))?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        let mut out = Vec::new();
        for t in &spec.tables {
            let row = c
                .query_opt(CANONICAL, &[&crate::db::quote_qualified(t)])
                .await
                .map_err(|e| ctx.db_error(DbError::sql("looking up the table", e)))?;
            match row {
                Some(r) => out.push(r.get(0)),
                None => {
                    return Err(StepError::Failed(format!(
                        "replicate `tables`: table {t} does not exist on the main database"
                    )));
                }
            }
        }
        out
    };
    if names.is_empty() {
        return Err(StepError::Failed(
            "replicate: the main database has no tables to move".into(),
        ));
    }
    for t in &names {
        let pk = c
            .query_opt(sql::PRIMARY_KEY, &[t])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("reading the primary key", e)))?;
        if pk.is_none() {
            return Err(StepError::Failed(format!(
                "table {t} has no primary key: logical replication needs one (its replica \
                 identity) to carry updates and deletes; add one before moving it"
            )));
        }
    }
    Ok(names)
}

async fn columns(conn: &Conn, table: &str) -> Result<Vec<(Column, bool)>, DbError> {
    Ok(conn
        .client
        .query(sql::TABLE_COLUMNS, &[&table])
        .await
        .map_err(|e| DbError::sql(format!("reading the columns of {table}"), e))?
        .iter()
        .map(|r| {
            let generated: String = r.get(6);
            (
                Column {
                    name: r.get(0),
                    sql_type: r.get(1),
                    not_null: r.get(2),
                    default: r.get(3),
                    sequence: r.get(4),
                    identity: r.get(5),
                },
                !generated.is_empty(),
            )
        })
        .collect())
}

/// Makes the table on the other database from the main one's catalog, or
/// checks the one there matches (same columns and types) and is empty.
async fn definition_on_other(
    ctx: &Ctx<'_>,
    other: &Conn,
    database: &str,
    table: &str,
) -> Result<(), StepError> {
    let fail = |e: DbError| StepError::Failed(format!("database `{database}`: {e}"));
    let source_cols = columns(ctx.conn, table)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if let Some((c, _)) = source_cols.iter().find(|(_, generated)| *generated) {
        return Err(StepError::Failed(format!(
            "{table}.{} is a generated column; create {table} on `{database}` yourself first \
             (replication fills it there)",
            c.name
        )));
    }
    let exists: bool = other
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(|e| fail(DbError::sql("looking up the table", e)))?
        .get(0);
    if exists {
        let theirs = columns(other, table).await.map_err(fail)?;
        let shape = |cols: &[(Column, bool)]| -> Vec<(String, String)> {
            cols.iter()
                .map(|(c, _)| (c.name.clone(), c.sql_type.clone()))
                .collect()
        };
        if shape(&theirs) != shape(&source_cols) {
            return Err(StepError::Failed(format!(
                "{table} exists on `{database}` with other columns ({:?}) than on the main \
                 database ({:?}); make them match, or drop it there and let the step create it",
                shape(&theirs),
                shape(&source_cols)
            )));
        }
        let empty: bool = other
            .client
            .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[])
            .await
            .map_err(|e| fail(DbError::sql("checking the table is empty", e)))?
            .get(0);
        if !empty {
            return Err(StepError::Failed(format!(
                "{table} on `{database}` already holds rows; the initial copy would clash with \
                 them. Empty it (or drop it) first"
            )));
        }
        return Ok(());
    }
    let pk: String = ctx
        .conn
        .client
        .query_one(sql::PRIMARY_KEY, &[&table])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("reading the primary key", e)))?
        .get(0);
    let cols: Vec<Column> = source_cols.into_iter().map(|(c, _)| c).collect();
    let mut statements = Vec::new();
    for seq in cols
        .iter()
        .filter(|c| c.is_serial())
        .filter_map(|c| c.sequence.as_ref())
    {
        let taken: bool = other
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[seq])
            .await
            .map_err(|e| fail(DbError::sql("looking up the sequence", e)))?
            .get(0);
        if taken {
            return Err(StepError::Failed(format!(
                "sequence {seq} already exists on `{database}` without table {table}; drop it \
                 there, or create {table} there yourself"
            )));
        }
        statements.push(sql::create_sequence_sql(seq));
    }
    statements.push(sql::create_table_sql(table, &cols, &pk));
    ctx.record_created(&Created::OtherTable {
        database: database.to_string(),
        table: table.to_string(),
    })
    .await?;
    let body = format!("BEGIN;\n{};\nCOMMIT", statements.join(";\n"));
    if let Err(e) = other.client.batch_execute(&body).await {
        let _ = other.client.batch_execute("ROLLBACK").await;
        return Err(fail(DbError::sql(format!("creating {table}"), e)));
    }
    ctx.out.emit(EventKind::Notice {
        message: format!("created {table} on `{database}` from the main database's definition"),
    });
    Ok(())
}

/// Both databases on one server: a subscription there cannot make its
/// slot itself (the slot would wait for the subscription's own
/// transaction). Unknown (no right to read the control data): assume not.
async fn same_server(main: &Conn, other: &Conn) -> bool {
    let id = async |c: &Conn| -> Option<String> {
        c.client
            .query_one(sql::SYSTEM_ID, &[])
            .await
            .ok()
            .map(|r| r.get(0))
    };
    match (id(main).await, id(other).await) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The tables' size on the main database: the copy's rough total.
async fn copy_total(conn: &Conn, tables: &[String]) -> Option<i64> {
    conn.client
        .query_one(
            "SELECT sum(pg_table_size(to_regclass(t)))::bigint FROM unnest($1::text[]) t",
            &[&tables],
        )
        .await
        .ok()
        .and_then(|r| r.get(0))
}

/// Waits until every table is ready (`r`: synchronised and streaming).
/// A lost connection to the other database is opened again: the
/// subscription there carries on by itself once its server is back, and
/// meanwhile `[abort] slot_retained_wal` guards this server's disk.
async fn wait_ready(
    ctx: &mut Ctx<'_>,
    other: &mut Conn,
    database: &str,
    name: &str,
    tables: usize,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut last_ready = usize::MAX;
    let mut down = false;
    loop {
        let rows = match other.client.query(sql::SYNC_STATES, &[&name]).await {
            Ok(rows) => rows,
            Err(e) => {
                let e = DbError::sql("reading the sync states", e);
                if !e.is_connection_lost() {
                    return Err(StepError::Failed(e.to_string()));
                }
                if !down {
                    down = true;
                    ctx.out.emit(EventKind::Notice {
                        message: format!(
                            "{e}: connecting to `{database}` again until it answers (its \
                             subscription resumes by itself; `cutover abort` stops the move)"
                        ),
                    });
                }
                pause(ctx, Duration::from_secs(1)).await?;
                if let Ok(conn) = connect_other(ctx, database).await {
                    *other = conn;
                }
                continue;
            }
        };
        if down {
            down = false;
            ctx.out.emit(EventKind::Notice {
                message: format!("`{database}` answers again"),
            });
        }
        let ready = rows.iter().filter(|r| r.get::<_, String>(1) == "r").count();
        if ready != last_ready {
            last_ready = ready;
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "{ready} of {tables} table(s) synchronised and streaming ({})",
                    crate::engine::events::short_duration(started.elapsed())
                ),
            });
        }
        if rows.len() == tables && ready == tables {
            return Ok(());
        }
        pause(ctx, Duration::from_millis(250)).await?;
    }
}
