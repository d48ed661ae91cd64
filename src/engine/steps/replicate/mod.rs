//! `kind = "replicate"`: the tables' definitions on the other database
//! (made from the main database's catalog when absent, else checked to
//! match and be empty), a publication here, a subscription there (its slot
//! made here by it), and the initial copy; done once every table is
//! synchronised and streaming. Each object is journalled before it is
//! made. Anything that stops the step (failure, abort, detach) removes
//! them all: a subscription nobody watches keeps WAL on the main
//! database's disk. A resumed step starts the copy over.

mod tables;
mod wait;

use super::detach::{connect_other, remove};
use super::{Ctx, StepError};
use crate::db::databases::subscription_conninfo;
use crate::db::{Conn, DbError};
use crate::engine::events::EventKind;
use crate::journal::steps::Created;
use crate::monitor::subscription::SubscriptionFocus;
use crate::plan::model::ReplicateStep;
use crate::statements::replication as sql;
use tables::{definition_on_other, tables};
use wait::wait_ready;

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
        let created = ctx.created_so_far().await;
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

/// Points the monitor at the move's subscription (or at none).
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
