//! The objects of a move and how they go away: the subscription on the
//! other database, the slots on the main one (its own and the initial
//! copy's), the publication, the tables the run created on the other side,
//! and the switchover's freeze while the replication is still attached.
//! Shared by the move's steps, their clean-up and the rollback.

use std::time::{Duration, Instant};

use super::{Ctx, StepError};
use crate::db::databases::Databases;
use crate::db::{Conn, DbError, quote_qualified};
use crate::journal::steps::Created;
use crate::statements::replication as sql;

/// How long a slot may stay held by its consumer after the subscription
/// went, before that consumer (our own walsender) is ended.
const SLOT_RELEASE: Duration = Duration::from_secs(15);

/// Connects to another database of the plan, or says how to give it.
pub async fn connect_other(ctx: &Ctx<'_>, database: &str) -> Result<Conn, StepError> {
    let target = ctx.databases.require(database).map_err(StepError::Failed)?;
    Conn::connect(target).await.map_err(|e| {
        StepError::Failed(format!("step \"{}\": database `{database}`: {e}", ctx.name))
    })
}

/// Drops a subscription and every slot it made on the main database. A
/// plain `DROP SUBSCRIPTION` drops the slots through the subscription's
/// own connection; when that fails (the main database unreachable from
/// the other), the subscription is detached from its slot and dropped,
/// and the slots are dropped here from the main side.
pub async fn drop_subscription(
    source: &Conn,
    other: Option<&Conn>,
    name: &str,
) -> Result<(), DbError> {
    let mut subid: Option<u32> = None;
    if let Some(other) = other {
        subid = other
            .client
            .query_opt(
                "SELECT oid FROM pg_subscription WHERE subname = $1",
                &[&name],
            )
            .await
            .map_err(|e| DbError::sql("looking up the subscription", e))?
            .map(|r| r.get(0));
        if subid.is_some() {
            let plain = format!(
                "DROP SUBSCRIPTION IF EXISTS {}",
                crate::db::quote_ident(name)
            );
            if let Err(e) = other.client.batch_execute(&plain).await {
                tracing::info!("DROP SUBSCRIPTION {name} failed ({e}); detaching it from its slot");
                for statement in sql::drop_subscription_sql(name).split("; ") {
                    other
                        .client
                        .batch_execute(statement)
                        .await
                        .map_err(|e| DbError::sql("dropping the subscription", e))?;
                }
            }
        }
    }
    drop_slots(source, name, subid).await
}

/// Drops the run's slot and the initial copy's slots of subscription
/// `subid`, waiting for their consumers to let go.
async fn drop_slots(source: &Conn, name: &str, subid: Option<u32>) -> Result<(), DbError> {
    const OURS: &str = "SELECT slot_name::text, active, active_pid FROM pg_replication_slots
         WHERE slot_name = $1 OR ($2::text IS NOT NULL AND slot_name LIKE 'pg\\_' || $2 || '\\_sync\\_%')";
    let sub = subid.map(|s| s.to_string());
    let started = Instant::now();
    loop {
        let rows = source
            .client
            .query(OURS, &[&name, &sub])
            .await
            .map_err(|e| DbError::sql("looking up the replication slots", e))?;
        if rows.is_empty() {
            return Ok(());
        }
        for row in &rows {
            let (slot, active, pid): (String, bool, Option<i32>) =
                (row.get(0), row.get(1), row.get(2));
            if !active {
                source
                    .client
                    .query(sql::DROP_SLOT, &[&slot])
                    .await
                    .map_err(|e| DbError::sql(format!("dropping replication slot {slot}"), e))?;
            } else if started.elapsed() > SLOT_RELEASE
                && let Some(pid) = pid
            {
                // The subscription is gone; its walsender lingers.
                let _ = source
                    .client
                    .query("SELECT pg_terminate_backend($1)", &[&pid])
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the move of `publication` passed its switchover's point of no
/// return: the freeze is in place and the publication, dropped first by
/// the detach, is gone. Its tables on the other side now take the
/// application's writes.
pub async fn switched_over(source: &Conn, publication: &str) -> Result<bool, DbError> {
    let attached: bool = source
        .client
        .query_one(sql::PUBLICATION_EXISTS, &[&publication])
        .await
        .map_err(|e| DbError::sql("looking up the publication", e))?
        .get(0);
    if attached {
        return Ok(false);
    }
    let function = format!("{}()", sql::freeze_function(publication));
    source
        .client
        .query_one(sql::FREEZE_FUNCTION_EXISTS, &[&function])
        .await
        .map(|r| r.get(0))
        .map_err(|e| DbError::sql("looking up the write freeze", e))
}

/// Removes what a move recorded creating, last made first: subscriptions
/// and their slots, publications, the tables made on the other side; and
/// a freeze, unless the replication it belongs to was already detached.
/// Refuses, touching nothing, once the move was switched over.
/// Returns what was removed, in words.
pub async fn remove(
    created: &[Created],
    source: &Conn,
    databases: &Databases,
) -> Result<Option<String>, DbError> {
    for object in created {
        let (Created::Publication { name: publication } | Created::Freeze { publication, .. }) =
            object
        else {
            continue;
        };
        if switched_over(source, publication).await? {
            return Err(DbError::Refused(format!(
                "the move of {publication} was switched over (its publication is dropped and \
                 writes here are frozen): the tables on the other database take the \
                 application's writes now, so nothing is removed or unfrozen. `cutover run` \
                 finishes the detach"
            )));
        }
    }
    let mut done = Vec::new();
    let mut others: Vec<(String, Conn)> = Vec::new();
    let mut unfrozen: Vec<&str> = Vec::new();
    for object in created.iter().rev() {
        match object {
            Created::Freeze { table, publication } => {
                let attached: bool = source
                    .client
                    .query_one(sql::PUBLICATION_EXISTS, &[publication])
                    .await
                    .map_err(|e| DbError::sql("looking up the publication", e))?
                    .get(0);
                if attached {
                    source
                        .client
                        .batch_execute(&sql::unfreeze_sql(table))
                        .await
                        .map_err(|e| DbError::sql("removing the write freeze", e))?;
                    done.push(format!("writes to {table} allowed again"));
                    if !unfrozen.contains(&publication.as_str()) {
                        unfrozen.push(publication);
                    }
                }
            }
            Created::Subscription { database, name } => {
                let conn = other_conn(&mut others, databases, database).await?;
                drop_subscription(source, Some(conn), name).await?;
                done.push(format!("subscription and slot {name}"));
            }
            Created::Publication { name } => {
                source
                    .client
                    .batch_execute(&sql::drop_publication_sql(name))
                    .await
                    .map_err(|e| DbError::sql("dropping the publication", e))?;
                done.push(format!("publication {name}"));
            }
            Created::OtherTable { database, table } => {
                other_conn(&mut others, databases, database)
                    .await?
                    .client
                    .batch_execute(&format!("DROP TABLE IF EXISTS {}", quote_qualified(table)))
                    .await
                    .map_err(|e| DbError::sql(format!("dropping {table} on {database}"), e))?;
                done.push(format!("table {table} on {database}"));
            }
            _ => {}
        }
    }
    for publication in unfrozen {
        source
            .client
            .batch_execute(&sql::drop_freeze_function_sql(publication))
            .await
            .map_err(|e| DbError::sql("dropping the freeze function", e))?;
    }
    Ok((!done.is_empty()).then(|| format!("removed: {}", done.join(", "))))
}

/// A connection to another database, opened once per clean-up.
async fn other_conn<'a>(
    others: &'a mut Vec<(String, Conn)>,
    databases: &Databases,
    database: &str,
) -> Result<&'a Conn, DbError> {
    let i = match others.iter().position(|(d, _)| d == database) {
        Some(i) => i,
        None => {
            let target = databases.get(database).ok_or_else(|| DbError::BadTarget {
                setting: "--database NAME=URL",
                value: database.to_string(),
                reason: format!(
                    "removing what the move made needs database `{database}`: pass \
                     --database {database}=URL or set {}",
                    crate::db::databases::env_var(database)
                ),
            })?;
            others.push((database.to_string(), Conn::connect(target).await?));
            others.len() - 1
        }
    };
    Ok(&others[i].1)
}

/// Waits until the slot's consumer has confirmed every change before
/// `lsn` (the other database applied and flushed them), reporting how far
/// behind it is; gives up after `limit`.
pub async fn wait_applied(
    ctx: &mut Ctx<'_>,
    source: &Conn,
    slot: &str,
    lsn: &str,
    limit: Duration,
) -> Result<(), StepError> {
    let started = Instant::now();
    let mut reported = Instant::now();
    loop {
        let row = source
            .client
            .query_opt(sql::APPLIED_PAST, &[&slot, &lsn])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("reading the slot's confirmed position", e)))?;
        let Some(row) = row else {
            return Err(StepError::Failed(format!(
                "replication slot {slot} is gone from the main database; the replication was \
                 dropped by someone else"
            )));
        };
        if row.get::<_, Option<bool>>(0) == Some(true) {
            return Ok(());
        }
        let behind: Option<i64> = row.get(1);
        if started.elapsed() > limit {
            return Err(StepError::Failed(format!(
                "the other database has not applied the main database's changes up to {lsn} \
                 within {} ({} bytes behind); check the subscription's worker in its server log, \
                 or raise the step's `wait`",
                crate::engine::events::short_duration(limit),
                behind.unwrap_or(-1)
            )));
        }
        if reported.elapsed() > Duration::from_secs(5) {
            reported = Instant::now();
            ctx.out.emit(crate::engine::events::EventKind::Notice {
                message: format!(
                    "waiting for the other database to apply up to {lsn} ({} bytes to go)",
                    behind.unwrap_or(-1)
                ),
            });
        }
        pause(ctx, Duration::from_millis(100)).await?;
    }
}

/// Sleeps, ending early on an abort or detach; then a safe point.
pub async fn pause(ctx: &mut Ctx<'_>, d: Duration) -> Result<(), StepError> {
    let token = ctx.control.abort.stop_token().clone();
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = token.cancelled() => {}
    }
    ctx.control.safe_point(ctx.out).await?;
    Ok(())
}

/// The name of the run's publication, subscription and slot for `database`.
pub async fn move_name(ctx: &Ctx<'_>, database: &str) -> Result<String, StepError> {
    let oid: u32 = ctx
        .conn
        .client
        .query_one(sql::DATABASE_OID, &[])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("reading the database's oid", e)))?
        .get(0);
    Ok(sql::move_name(oid, ctx.run_id, database))
}

/// Points the monitor at the run's subscription `name` on `database` (for
/// its sync state, apply lag and slot; a resumed run sets it again).
pub fn focus_on(ctx: &Ctx<'_>, database: &str, name: &str, copy_total_bytes: Option<i64>) {
    let Some(target) = ctx.databases.get(database) else {
        return;
    };
    if let Ok(mut f) = ctx.focus.lock() {
        f.subscription = Some(crate::monitor::subscription::SubscriptionFocus {
            database: database.to_string(),
            target: target.clone(),
            name: name.to_string(),
            copy_total_bytes,
        });
    }
}

/// Why the apply lag holds the work now, if it does: over a `[throttle]`
/// limit, or not measured while a limit is set (fail closed).
pub fn apply_lag_hold(
    throttle: &crate::plan::model::Throttle,
    sample: Option<&crate::monitor::subscription::SubscriptionSample>,
) -> Option<String> {
    if throttle.apply_lag.is_none() && throttle.apply_lag_bytes.is_none() {
        return None;
    }
    let Some(s) = sample else {
        return Some("apply lag not measured yet ([throttle] apply_lag, apply_lag_bytes)".into());
    };
    if let Some(limit) = throttle.apply_lag {
        match s.apply_lag {
            Some(lag) if lag > limit.0 => {
                return Some(format!(
                    "subscription {} applies {} behind (throttle apply_lag {limit})",
                    s.name,
                    crate::engine::events::short_duration(lag)
                ));
            }
            None => return Some(format!("apply lag of {} cannot be measured", s.name)),
            _ => {}
        }
    }
    if let Some(limit) = throttle.apply_lag_bytes {
        match s.apply_lag_bytes {
            Some(n) if n.max(0) as u64 > limit.0 => {
                return Some(format!(
                    "subscription {} is {} behind (throttle apply_lag_bytes {limit})",
                    s.name,
                    crate::plan::units::Size(n.max(0) as u64)
                ));
            }
            None => return Some(format!("apply lag of {} cannot be measured", s.name)),
            _ => {}
        }
    }
    None
}

/// Holds while the subscription's apply lag is over `[throttle]`.
pub async fn hold_for_apply_lag(ctx: &mut Ctx<'_>) -> Result<(), StepError> {
    let mut held: Option<Instant> = None;
    loop {
        let throttle = ctx.control.throttle(&ctx.plan.throttle);
        let reason = {
            let state = ctx.monitor.borrow();
            apply_lag_hold(&throttle, state.sample.subscription.as_ref())
        };
        match reason {
            None => {
                if let Some(since) = held {
                    ctx.out.emit(crate::engine::events::EventKind::Unthrottled {
                        held_ms: since.elapsed().as_millis() as u64,
                    });
                }
                return Ok(());
            }
            Some(reason) => {
                if held.is_none() {
                    held = Some(Instant::now());
                    ctx.out
                        .emit(crate::engine::events::EventKind::Throttled { reason });
                }
                pause(ctx, Duration::from_millis(250)).await?;
            }
        }
    }
}
