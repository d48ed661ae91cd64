//! How a batched step with `workers = N` divides its key: N disjoint ranges
//! cut at the key's quantiles, estimated from a sample of the table when
//! the step first starts. The cut is recorded in the journal
//! (`cutover.step_ranges`) and read back on every resume, never computed
//! again: the ranges and their checkpoints must keep meaning the same keys.

use crate::db::{quote_ident, quote_qualified};
use crate::statements::batch::{BatchJob, KeyInfo};

/// Rows the quantile sample aims at: enough for ranges within a few
/// percent of equal, cheap on any table.
pub const SAMPLE_ROWS: f64 = 50_000.0;

/// The most workers a step may have (the plan refuses more); `check`
/// warns well below it ([`SANE_WORKERS`]).
pub use crate::plan::MAX_WORKERS;

/// More workers than this is unlikely to help: each is a server backend
/// writing WAL, and the WAL writer and the replicas serialise them.
pub const SANE_WORKERS: u32 = 8;

/// The query returning the inner boundaries (`text[]`, in key order) for
/// the fractions `$1` (`float8[]`), over a `SYSTEM` sample of `$2` percent
/// of the table's pages, of the keys after `$3` (text, or NULL: all keys).
pub fn split_sql(spec: &BatchJob, key: &KeyInfo) -> String {
    let k = quote_ident(&spec.key);
    format!(
        "SELECT percentile_disc($1::float8[]) WITHIN GROUP (ORDER BY k)::text[]
FROM (SELECT {k} AS k FROM {} TABLESAMPLE SYSTEM ($2::float8)
      WHERE $3::text IS NULL OR {k} > $3::text::{}) s",
        quote_qualified(&spec.table),
        key.sql_type
    )
}

/// The fractions at which `workers` ranges are cut (`workers - 1` of them).
pub fn fractions(workers: u32) -> Vec<f64> {
    (1..workers).map(|i| i as f64 / workers as f64).collect()
}

/// The sample's size in percent of the table for an estimated `rows`
/// (unknown: all of it).
pub fn sample_percent(rows: Option<i64>) -> f64 {
    match rows {
        Some(n) if n > 0 => (SAMPLE_ROWS * 100.0 / n as f64).clamp(0.01, 100.0),
        _ => 100.0,
    }
}

/// One worker's range: keys after `lo` (None: from the start) up to and
/// including `hi` (None: to the end, rows inserted later included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Exclusive lower key (text), or the start of the key.
    pub lo: Option<String>,
    /// Inclusive upper key (text), or the end of the key.
    pub hi: Option<String>,
}

/// The ranges between `start` (exclusive; None = the first key) and the end,
/// cut at `bounds` (in key order; repeats, from a small sample, dropped).
pub fn ranges(start: Option<String>, bounds: &[String]) -> Vec<KeyRange> {
    let mut cuts: Vec<&String> = bounds.iter().collect();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut lo = start;
    for c in cuts {
        out.push(KeyRange {
            lo: lo.clone(),
            hi: Some(c.clone()),
        });
        lo = Some(c.clone());
    }
    out.push(KeyRange { lo, hi: None });
    out
}

/// How `cutover plan` describes the split of a step with `workers`.
pub fn describe(spec: &BatchJob, key: &KeyInfo) -> String {
    format!(
        "-- workers = {n}: when the step first starts, the keys of {table} (after the last key \
         done, if any) are cut into {n} ranges at the {n}-quantiles of {key}, estimated from a \
         sample of about {rows} rows (TABLESAMPLE SYSTEM); the cut is recorded in \
         cutover.step_ranges and reused on every resume. Each range is walked by its own \
         session with the batch below, its checkpoint in its own row ($6 the worker, $7 its \
         upper key; the last range is open-ended).{many}\n{sql}",
        many = if spec.workers > SANE_WORKERS {
            format!(
                "\n-- more than {SANE_WORKERS} workers rarely helps: each is a backend writing WAL, \
                 and they queue behind each other for it"
            )
        } else {
            String::new()
        },
        n = spec.workers,
        table = spec.table,
        key = spec.key,
        rows = SAMPLE_ROWS as u64,
        sql = split_sql(spec, key)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_key_once() {
        let r = ranges(None, &["10".into(), "20".into(), "20".into()]);
        assert_eq!(
            r,
            vec![
                KeyRange {
                    lo: None,
                    hi: Some("10".into())
                },
                KeyRange {
                    lo: Some("10".into()),
                    hi: Some("20".into())
                },
                KeyRange {
                    lo: Some("20".into()),
                    hi: None
                },
            ]
        );
        let resumed = ranges(Some("5".into()), &[]);
        assert_eq!(
            resumed,
            vec![KeyRange {
                lo: Some("5".into()),
                hi: None
            }]
        );
    }

    #[test]
    fn four_workers_cut_at_quarters_from_a_bounded_sample() {
        assert_eq!(fractions(4), vec![0.25, 0.5, 0.75]);
        assert!(fractions(1).is_empty());
        assert_eq!(sample_percent(None), 100.0);
        assert_eq!(sample_percent(Some(10_000)), 100.0);
        assert!((sample_percent(Some(10_000_000)) - 0.5).abs() < 1e-9);
    }
}
