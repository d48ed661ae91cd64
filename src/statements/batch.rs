//! The statements of a batched step (`backfill`, `copy_rows`): each batch
//! finds its key range, does the work on it, and advances the checkpoint,
//! in one transaction.

use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::{BackfillStep, CopyRowsStep};

/// The work one batch does on its key range.
#[derive(Debug, Clone)]
pub enum Work {
    /// `UPDATE table SET <set> WHERE <where>`.
    Update {
        /// The SET list (plan SQL).
        set: String,
    },
    /// `INSERT INTO to (cols) SELECT exprs FROM table … ON CONFLICT DO NOTHING`.
    Copy {
        /// Target table (as written in the plan).
        to: String,
        /// (target column, source expression) pairs.
        columns: Vec<(String, String)>,
    },
}

/// A batched step: walk `table` by `key`, doing `work` on rows matching
/// `filter`.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The table walked (updated, or copied from).
    pub table: String,
    /// Its unique, indexed key.
    pub key: String,
    /// Extra condition (plan SQL).
    pub filter: Option<String>,
    /// What each batch does.
    pub work: Work,
    /// First batch size.
    pub batch_size: Option<u64>,
    /// VACUUM the table behind the batches (updates only).
    pub vacuum_behind: bool,
    /// Sessions walking disjoint key ranges at once (1: the migration
    /// session alone).
    pub workers: u32,
}

impl Work {
    /// The statement doing the work on one range (`range` is its key
    /// condition). Its command tag counts the rows it updated or copied.
    fn sql(&self, table: &str, range: &str, filter: &str) -> String {
        match self {
            Work::Update { set } => {
                format!("UPDATE {table} SET {set}\n    WHERE {range} AND ({filter})")
            }
            Work::Copy { to, columns } => {
                let targets: Vec<String> = columns.iter().map(|(c, _)| quote_ident(c)).collect();
                let exprs: Vec<&str> = columns.iter().map(|(_, e)| e.as_str()).collect();
                // FOR SHARE: a concurrent update or delete of a source row
                // waits for this batch, so its sync trigger sees the copied
                // row; without it the copy could write a row the trigger
                // already deleted or updated (stale data), or deadlock
                // against it.
                format!(
                    "INSERT INTO {} ({})
    SELECT {} FROM {table}
    WHERE {range} AND ({filter})
    FOR SHARE
    ON CONFLICT DO NOTHING",
                    quote_qualified(to),
                    targets.join(", "),
                    exprs.join(", ")
                )
            }
        }
    }

    /// What the rows counted by the batch are, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Work::Update { .. } => "updated",
            Work::Copy { .. } => "copied",
        }
    }
}

/// What the batch statements need to know about the key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// `format_type` of the key column, used to cast the checkpoint.
    pub sql_type: String,
    /// The type has a `max` aggregate (uuid does not).
    pub has_max: bool,
}

/// The statements of one batch, run in one transaction (`BEGIN` …
/// `COMMIT`) so that the batch and its checkpoint commit or roll back
/// together.
///
/// Three statements rather than one: the work's row count comes from its
/// command tag. In one statement it needs `RETURNING` and a count over the
/// returned rows, which measured 23–25 ms of a 260 ms batch of 50k rows
/// (about 10 %); the two extra round trips cost well under a millisecond.
#[derive(Debug, Clone)]
pub struct BatchSql {
    /// Locks the step's checkpoint row, only if the checkpoint is still
    /// `$5`, and finds the range: up to `$1` keys after `$5`. Returns its
    /// upper key (text), its number of keys, and whether the checkpoint
    /// had moved (`stale`). A batch of a killed cutover may still be
    /// running on the server: this waits for it, sees the checkpoint moved,
    /// and the batch does nothing, so no range is ever done twice.
    pub range: String,
    /// The work on the range: keys up to `$1` (the upper key), and after
    /// `$2` (the last key done) unless this is the first batch.
    pub work: String,
    /// Advances the checkpoint of step (`$1` run, `$2` phase, `$3` step)
    /// to `$4`, counting `$5` keys and `$6` rows.
    pub checkpoint: String,
}

impl BatchSql {
    /// The whole batch as one script, for `cutover plan`.
    pub fn script(&self) -> String {
        format!(
            "BEGIN;\n\
             -- the range: up to $1 keys after $5, the last key done ($2, $3, $4: run, phase, step)\n\
             {};\n\
             -- the work: keys up to $1, the range's upper key, and after $2, the last key done\n\
             {};\n\
             -- the checkpoint: $4 the upper key, $5 keys and $6 rows done\n\
             {};\n\
             COMMIT",
            self.range, self.work, self.checkpoint
        )
    }
}

/// The batch's statements; `resume`: after a last key done (else the
/// first batch, from the start of the key).
pub fn batch_sql(spec: &BatchJob, key: &KeyInfo, resume: bool) -> BatchSql {
    build(spec, key, resume, None)
}

/// The statements of one worker's batch when the step runs `workers`
/// ([`crate::statements::split`]): as [`batch_sql`], but the checkpoint is
/// the worker's row of `cutover.step_ranges` (`$6` in the range, `$7` in the
/// checkpoint, which also adds to the step's totals), and, when `bounded`,
/// the range stops at the worker's upper key `$7` (the last worker's range
/// is open, so rows inserted above the split are walked too).
pub fn worker_batch_sql(spec: &BatchJob, key: &KeyInfo, resume: bool, bounded: bool) -> BatchSql {
    build(spec, key, resume, Some(bounded))
}

fn build(spec: &BatchJob, key: &KeyInfo, resume: bool, worker: Option<bool>) -> BatchSql {
    let table = quote_qualified(&spec.table);
    let k = quote_ident(&spec.key);
    let cast = |n: u8| format!("${n}::text::{}", key.sql_type);
    let mut lower = if resume {
        format!("{k} > {}", cast(5))
    } else {
        "TRUE".to_string()
    };
    if worker == Some(true) {
        lower = format!("{lower} AND {k} <= {}", cast(7));
    }
    let filter = spec.filter.as_deref().unwrap_or("TRUE");
    let keys = format!(
        "SELECT {k} AS k FROM {table} WHERE {lower} AND EXISTS (SELECT 1 FROM ck) ORDER BY {k} LIMIT $1"
    );
    // The upper key of the range: max() where the type has one, else the
    // last row of the ordered range.
    let bounds = if key.has_max {
        format!("SELECT max(k) AS hi, count(*) AS n FROM ({keys}) s")
    } else {
        format!("SELECT k AS hi, count(*) OVER () AS n FROM ({keys}) s ORDER BY k DESC LIMIT 1")
    };
    let (checkpoint_row, checkpoint) = match worker {
        None => (
            "SELECT 1 FROM cutover.steps
    WHERE run_id = $2 AND phase = $3 AND step = $4
      AND (checkpoint->>'last_key') IS NOT DISTINCT FROM $5::text",
            STEP_CHECKPOINT,
        ),
        Some(_) => (
            "SELECT 1 FROM cutover.step_ranges
    WHERE run_id = $2 AND phase = $3 AND step = $4 AND worker = $6
      AND last_key IS NOT DISTINCT FROM $5::text",
            WORKER_CHECKPOINT,
        ),
    };
    let range = format!(
        "WITH ck AS (
    {checkpoint_row}
    FOR UPDATE
),
bounds AS ({bounds})
SELECT (SELECT hi FROM bounds)::text, coalesce((SELECT n FROM bounds), 0),
       NOT EXISTS (SELECT 1 FROM ck)"
    );
    let within = if resume {
        format!("{k} <= {} AND {k} > {}", cast(1), cast(2))
    } else {
        format!("{k} <= {}", cast(1))
    };
    BatchSql {
        range,
        work: spec.work.sql(&table, &within, filter),
        checkpoint: checkpoint.to_string(),
    }
}

/// Advances a single-session step's checkpoint.
const STEP_CHECKPOINT: &str = "UPDATE cutover.steps
    SET checkpoint = jsonb_build_object('last_key', $4::text),
        status = 'running',
        rows_done = rows_done + $5,
        rows_updated = rows_updated + $6
    WHERE run_id = $1 AND phase = $2 AND step = $3";

/// Advances worker `$7`'s checkpoint and adds its batch to the step's
/// totals. The step row is locked only from here to the commit.
const WORKER_CHECKPOINT: &str = "WITH range AS (
    UPDATE cutover.step_ranges
    SET last_key = $4::text, rows_done = rows_done + $5, rows_updated = rows_updated + $6
    WHERE run_id = $1 AND phase = $2 AND step = $3 AND worker = $7
)
UPDATE cutover.steps
    SET status = 'running', rows_done = rows_done + $5, rows_updated = rows_updated + $6
    WHERE run_id = $1 AND phase = $2 AND step = $3";

impl BatchJob {
    /// The batch job of a backfill.
    pub fn backfill(spec: &BackfillStep) -> BatchJob {
        BatchJob {
            table: spec.table.clone(),
            key: spec.key.clone(),
            filter: spec.where_.clone(),
            work: Work::Update {
                set: spec.set.clone(),
            },
            batch_size: spec.batch_size,
            vacuum_behind: spec.vacuum_behind,
            workers: spec.workers.unwrap_or(1),
        }
    }

    /// The batch job of a copy.
    pub fn copy_rows(spec: &CopyRowsStep) -> BatchJob {
        BatchJob {
            table: spec.from.clone(),
            key: spec.key.clone(),
            filter: spec.where_.clone(),
            work: Work::Copy {
                to: spec.to.clone(),
                columns: spec.columns.pairs(),
            },
            batch_size: spec.batch_size,
            // A copy leaves no dead rows behind in its source.
            vacuum_behind: false,
            workers: spec.workers.unwrap_or(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BatchJob {
        BatchJob {
            table: "users".into(),
            key: "id".into(),
            filter: Some("full_name IS NULL".into()),
            work: Work::Update {
                set: "full_name = name".into(),
            },
            batch_size: None,
            vacuum_behind: false,
            workers: 1,
        }
    }

    #[test]
    fn copy_batches_insert_and_skip_conflicts() {
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let job = BatchJob {
            table: "users".into(),
            key: "id".into(),
            filter: None,
            work: Work::Copy {
                to: "addresses".into(),
                columns: vec![
                    ("user_id".into(), "id".into()),
                    ("city".into(), "upper(city)".into()),
                ],
            },
            batch_size: None,
            vacuum_behind: false,
            workers: 1,
        };
        let sql = batch_sql(&job, &key, true).work;
        assert!(
            sql.contains(r#"INSERT INTO "addresses" ("user_id", "city")"#),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT id, upper(city) FROM \"users\""),
            "{sql}"
        );
        assert!(sql.contains("ON CONFLICT DO NOTHING"), "{sql}");
    }

    #[test]
    fn batch_statement_quotes_names_and_keeps_plan_sql() {
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let sql = batch_sql(&spec(), &key, true);
        assert!(
            sql.work.contains(r#"UPDATE "users" SET full_name = name"#),
            "{sql:?}"
        );
        assert!(sql.range.contains(r#""id" > $5::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains(r#""id" > $2::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains(r#""id" <= $1::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains("(full_name IS NULL)"), "{sql:?}");
        assert!(!sql.work.contains("RETURNING"), "{sql:?}");
        assert!(sql.range.contains("max(k)"), "{sql:?}");
        assert!(sql.range.contains("FOR UPDATE"), "{sql:?}");
        let first = batch_sql(&spec(), &key, false);
        assert!(!first.range.contains("$5::text::bigint"), "{first:?}");
        assert!(!first.work.contains("$2"), "{first:?}");
        assert!(first.range.contains("FOR UPDATE"), "{first:?}");
    }

    #[test]
    fn a_workers_batch_keeps_to_its_range_and_its_own_checkpoint() {
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let bounded = worker_batch_sql(&spec(), &key, true, true);
        assert!(bounded.range.contains("cutover.step_ranges"), "{bounded:?}");
        assert!(bounded.range.contains("worker = $6"), "{bounded:?}");
        assert!(
            bounded.range.contains(r#""id" <= $7::text::bigint"#),
            "{bounded:?}"
        );
        assert!(bounded.checkpoint.contains("worker = $7"), "{bounded:?}");
        assert!(
            bounded.checkpoint.contains("UPDATE cutover.steps"),
            "{bounded:?}"
        );
        let open = worker_batch_sql(&spec(), &key, true, false);
        assert!(
            !open.range.contains("$7"),
            "the last range is open: {open:?}"
        );
        assert_eq!(open.work, batch_sql(&spec(), &key, true).work);
    }

    #[test]
    fn keys_without_max_use_the_last_row_of_the_range() {
        let key = KeyInfo {
            sql_type: "uuid".into(),
            has_max: false,
        };
        let sql = batch_sql(&spec(), &key, true).range;
        assert!(!sql.contains("max(k)"), "{sql}");
        assert!(sql.contains("ORDER BY k DESC LIMIT 1"), "{sql}");
    }
}
