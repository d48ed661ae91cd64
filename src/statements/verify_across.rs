//! `verify_across`: the chunk and row hashes the cross-database compare
//! reads on each side, one statement per side (they are two servers).

use crate::db::{quote_ident, quote_qualified};

/// Session settings that make `ROW(…)::text` print the same on both
/// servers whatever their configuration.
pub const STABLE_TEXT: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'";

fn row_text(cols: &[String]) -> String {
    let q: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    format!("ROW({})::text", q.join(", "))
}

/// The source side of one chunk: `$1` rows, after `$2` (text key, NULL
/// at the start): (last key, rows, hash, the source's WAL position when
/// read). Every change visible to the read committed before that position.
pub fn source_chunk_sql(table: &str, key: &str, key_type: &str, cols: &[String]) -> String {
    let k = quote_ident(key);
    format!(
        "WITH c AS (SELECT {k} AS k, {row} AS r FROM {t}
                   WHERE $2::text IS NULL OR {k} > $2::text::{key_type}
                   ORDER BY {k} LIMIT $1)
         SELECT (SELECT k FROM c ORDER BY k DESC LIMIT 1)::text, (SELECT count(*) FROM c),
                (SELECT md5(string_agg(r, E'\\n' ORDER BY k)) FROM c), pg_current_wal_lsn()::text",
        row = row_text(cols),
        t = quote_qualified(table),
    )
}

/// The target side of one chunk: keys after `$1` (NULL: from the start)
/// up to `$2`: (rows, hash).
pub fn target_chunk_sql(table: &str, key: &str, key_type: &str, cols: &[String]) -> String {
    let k = quote_ident(key);
    format!(
        "SELECT count(*), md5(string_agg({row}, E'\\n' ORDER BY {k})) FROM {t}
         WHERE ($1::text IS NULL OR {k} > $1::text::{key_type}) AND {k} <= $2::text::{key_type}",
        row = row_text(cols),
        t = quote_qualified(table),
    )
}

/// Rows past the last compared key (`$1`, NULL: all rows), per side.
pub fn tail_count_sql(table: &str, key: &str, key_type: &str) -> String {
    let k = quote_ident(key);
    format!(
        "SELECT count(*) FROM {} WHERE $1::text IS NOT NULL AND {k} > $1::text::{key_type}
            OR $1::text IS NULL",
        quote_qualified(table)
    )
}

/// Per-row hashes of a range (`$1` lower exclusive, `$2` upper inclusive;
/// NULL: open), or only of the keys in `$3` (text array, when not NULL):
/// (key text, row hash).
pub fn rows_sql(table: &str, key: &str, key_type: &str, cols: &[String]) -> String {
    let k = quote_ident(key);
    format!(
        "SELECT {k}::text, md5({row}) FROM {t}
         WHERE ($1::text IS NULL OR {k} > $1::text::{key_type})
           AND ($2::text IS NULL OR {k} <= $2::text::{key_type})
           AND ($3::text[] IS NULL OR {k} = ANY ($3::text[]::{key_type}[]))
         ORDER BY {k}",
        row = row_text(cols),
        t = quote_qualified(table),
    )
}
