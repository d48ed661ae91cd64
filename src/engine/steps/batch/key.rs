//! What the batches need to know from the catalog before they start: the
//! key's type (and that it is unique and indexed), and the table's size.

use crate::db::{Conn, DbError, quote_qualified};
use crate::statements::batch::KeyInfo;

/// Checks that the key exists and is unique and indexed; returns its type.
pub async fn check_key(conn: &Conn, table: &str, key: &str) -> Result<KeyInfo, String> {
    let qtable = quote_qualified(table);
    let row = conn
        .client
        .query_opt(
            "SELECT format_type(a.atttypid, a.atttypmod),
                    EXISTS (SELECT 1 FROM pg_index i
                            WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indisvalid
                              AND i.indpred IS NULL AND i.indnkeyatts = 1
                              AND i.indkey[0] = a.attnum),
                    EXISTS (SELECT 1 FROM pg_aggregate g JOIN pg_proc p ON p.oid = g.aggfnoid
                            WHERE p.proname = 'max' AND p.pronargs = 1
                              AND p.proargtypes[0] = a.atttypid)
             FROM pg_attribute a
             WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
            &[&qtable, &key],
        )
        .await
        .map_err(|e| DbError::sql("checking the backfill key", e).to_string())?;
    let exists: bool = conn
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qtable])
        .await
        .map_err(|e| DbError::sql("checking the backfill table", e).to_string())?
        .get(0);
    if !exists {
        return Err(format!("table {table} does not exist (backfill `table`)"));
    }
    let Some(row) = row else {
        return Err(format!(
            "table {table} has no column {key} (backfill `key`)"
        ));
    };
    if !row.get::<_, bool>(1) {
        return Err(format!(
            "backfill key {table}.{key} has no valid unique index; batches walk the key in order, \
             so it must be unique and indexed (use the primary key)"
        ));
    }
    Ok(KeyInfo {
        sql_type: row.get(0),
        has_max: row.get(2),
    })
}

/// Estimated rows in the table (planner statistics), if analyzed.
pub async fn estimate_rows(conn: &Conn, table: &str) -> Option<i64> {
    conn.client
        .query_one(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)",
            &[&quote_qualified(table)],
        )
        .await
        .ok()
        .map(|r| r.get::<_, i64>(0))
        .filter(|n| *n > 0)
}
