//! One driver per plan: a session-level advisory lock, and who holds it.

use tokio_postgres::Client;

use crate::db::DbError;

/// The advisory lock key of a plan: one driver per plan per database.
pub fn plan_lock_key(plan_name: &str) -> String {
    format!("cutover plan {plan_name}")
}

/// Who holds a plan's lock.
#[derive(Debug, Clone)]
pub struct LockHolder {
    /// The holder's backend pid.
    pub backend_pid: i32,
    /// Its client address.
    pub client_addr: Option<String>,
    /// Since when it is connected.
    pub backend_start: Option<std::time::SystemTime>,
}

/// Takes the plan's session-level advisory lock, or names who holds it.
pub async fn try_lock_plan(
    client: &Client,
    plan_name: &str,
) -> Result<Option<LockHolder>, DbError> {
    let key = plan_lock_key(plan_name);
    let got: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&key],
        )
        .await
        .map_err(|e| DbError::sql("taking the plan's advisory lock", e))?
        .get(0);
    if got {
        return Ok(None);
    }
    Ok(Some(lock_holder(client, plan_name).await?.unwrap_or(
        LockHolder {
            backend_pid: 0,
            client_addr: None,
            backend_start: None,
        },
    )))
}

/// The session holding a plan's advisory lock, if any (a live driver).
pub async fn lock_holder(client: &Client, plan_name: &str) -> Result<Option<LockHolder>, DbError> {
    let key = plan_lock_key(plan_name);
    // A bigint advisory key is stored as classid (high 32 bits) and objid
    // (low 32 bits) with objsubid = 1.
    let row = client
        .query_opt(
            "WITH k AS (SELECT hashtextextended($1, 0) AS key)
             SELECT a.pid, a.client_addr::text, a.backend_start
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::bigint = ((k.key >> 32) & 4294967295)
               AND l.objid::bigint = (k.key & 4294967295)
             LIMIT 1",
            &[&key],
        )
        .await
        .map_err(|e| DbError::sql("finding the plan's driver", e))?;
    Ok(row.map(|r| LockHolder {
        backend_pid: r.get(0),
        client_addr: r.get(1),
        backend_start: r.get(2),
    }))
}
