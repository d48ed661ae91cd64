//! The migrated table: index build progress, dead tuples and size.

use super::sample::{IndexBuild, TableStats};
use crate::db::{Conn, DbError};

const INDEX_PROGRESS: &str = "
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total
FROM pg_stat_progress_create_index WHERE pid = ANY($1) LIMIT 1";

const TABLE_STATS: &str = "
SELECT n_dead_tup, n_live_tup, pg_total_relation_size(relid)
FROM pg_stat_user_tables WHERE relid = to_regclass($1)";

/// A concurrent index build by one of `ours`, if any.
pub async fn index_build(conn: &Conn, ours: &[i32]) -> Result<Option<IndexBuild>, DbError> {
    let row = conn
        .client
        .query_opt(INDEX_PROGRESS, &[&ours])
        .await
        .map_err(|e| DbError::sql("sampling index build progress", e))?;
    Ok(row.map(|r| IndexBuild {
        phase: r.get(0),
        blocks: (r.get(1), r.get(2)),
        tuples: (r.get(3), r.get(4)),
        lockers: (r.get(5), r.get(6)),
    }))
}

/// Dead tuples and size of the table (quoted, possibly qualified).
pub async fn stats(conn: &Conn, table: &str) -> Result<Option<TableStats>, DbError> {
    let row = conn
        .client
        .query_opt(TABLE_STATS, &[&crate::db::quote_qualified(table)])
        .await
        .map_err(|e| DbError::sql("sampling table statistics", e))?;
    Ok(row.map(|r| TableStats {
        table: table.to_string(),
        dead_tuples: r.get(0),
        live_tuples: r.get(1),
        total_bytes: r.get(2),
    }))
}
