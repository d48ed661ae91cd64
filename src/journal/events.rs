//! The run's event log.

use tokio_postgres::Client;

use crate::db::DbError;

/// Appends an event to the run's log.
pub async fn record_event(
    client: &Client,
    run_id: i64,
    level: &str,
    message: &str,
    data: &serde_json::Value,
) -> Result<(), DbError> {
    client
        .execute(
            "INSERT INTO cutover.events (run_id, level, message, data) VALUES ($1, $2, $3, $4)",
            &[&run_id, &level, &message, data],
        )
        .await
        .map_err(|e| DbError::sql("recording an event", e))?;
    Ok(())
}

/// The last events of a run, oldest first.
pub async fn recent_events(
    client: &Client,
    run_id: i64,
    limit: i64,
) -> Result<Vec<(std::time::SystemTime, String, String)>, DbError> {
    let rows = client
        .query(
            "SELECT at, level, message FROM (
                 SELECT id, at, level, message FROM cutover.events WHERE run_id = $1
                 ORDER BY id DESC LIMIT $2) e ORDER BY id",
            &[&run_id, &limit],
        )
        .await
        .map_err(|e| DbError::sql("reading events", e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}
