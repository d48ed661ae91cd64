//! The migrated table: index build progress, dead tuples and size.

use super::sample::{IndexBuild, TableStats};

pub const INDEX_PROGRESS: &str = "
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total, lockers_done, lockers_total
FROM pg_stat_progress_create_index WHERE pid = ANY($1) LIMIT 1";

pub const TABLE_STATS: &str = "
SELECT n_dead_tup, n_live_tup FROM pg_stat_user_tables WHERE relid = to_regclass($1)";

/// Takes an ACCESS SHARE lock: with the monitor's short lock_timeout it
/// fails rather than queue behind a DDL (the size is then left out).
pub const TABLE_SIZE: &str = "SELECT pg_total_relation_size(to_regclass($1))";

/// Reads the index build row.
pub fn parse_index(row: Option<&tokio_postgres::Row>) -> Option<IndexBuild> {
    row.map(|r| IndexBuild {
        phase: r.get(0),
        blocks: (r.get(1), r.get(2)),
        tuples: (r.get(3), r.get(4)),
        lockers: (r.get(5), r.get(6)),
    })
}

/// Reads the table rows (size may be missing: it needs a lock).
pub fn parse_table(
    table: &str,
    stats: Option<&tokio_postgres::Row>,
    size: Option<i64>,
) -> Option<TableStats> {
    stats.map(|r| TableStats {
        table: table.to_string(),
        dead_tuples: r.get(0),
        live_tuples: r.get(1),
        total_bytes: size,
    })
}
