//! What each step runs, before linting: the plan's own SQL, or the SQL
//! cutover generates with the locks it is known to take.

use crate::lint::Role;
use crate::lint::locks::{LockEffect, LockMode, Work};
use crate::plan::Step;
use crate::sql::Rel;
use crate::statements as steps;
use crate::statements::batch::{self, BatchJob};

/// Where a statement comes from, and so how its locks are found.
pub(super) enum Source {
    /// The plan's own SQL (this field of the step), linted.
    Plan(Role, &'static str),
    /// SQL cutover generates; the locks are computed from it.
    Generated,
    /// SQL cutover generates whose locks are known from the step.
    Known(Vec<LockEffect>),
}

/// A batched step's statements: its batch, and with `workers` the split
/// that comes first and the batch each worker runs on its range.
fn batched(
    job: &BatchJob,
    key: &batch::KeyInfo,
    mut locks: Vec<LockEffect>,
) -> Vec<(String, String, Source)> {
    locks.push(known("cutover.steps", LockMode::RowExclusive, Work::Rows));
    if job.workers <= 1 {
        return vec![(
            "each batch, one transaction".into(),
            batch::batch_sql(job, key, true).script(),
            Source::Known(locks),
        )];
    }
    let table = locks[0].relation.clone();
    locks.push(known(
        "cutover.step_ranges",
        LockMode::RowExclusive,
        Work::Rows,
    ));
    vec![
        (
            "once, when the step first starts: the split".into(),
            crate::statements::split::describe(job, key),
            Source::Known(vec![LockEffect {
                relation: table,
                mode: LockMode::AccessShare,
                work: Work::Rows,
                blocks: LockMode::AccessShare.blocks(),
            }]),
        ),
        (
            format!(
                "each batch of each of the {} workers, one transaction",
                job.workers
            ),
            batch::worker_batch_sql(job, key, true, true).script(),
            Source::Known(locks),
        ),
    ]
}

/// A lock cutover knows the statement takes.
fn known(rel: &str, mode: LockMode, work: Work) -> LockEffect {
    LockEffect {
        relation: Rel::from_plan(rel).to_string(),
        mode,
        work,
        blocks: mode.blocks(),
    }
}

/// What the step runs.
pub(super) fn statements(step: &Step, plan: &crate::plan::Plan) -> Vec<(String, String, Source)> {
    let placeholder_key = batch::KeyInfo {
        sql_type: "<key type>".into(),
        has_max: true,
    };
    match step {
        Step::Sql(s) => {
            let mut out = vec![(
                String::new(),
                s.sql.clone(),
                Source::Plan(Role::Step, "sql"),
            )];
            if let Some(r) = &s.rollback {
                out.push((
                    "rollback".into(),
                    r.clone(),
                    Source::Plan(Role::Rollback, "rollback"),
                ));
            }
            out
        }
        Step::CreateIndex(s) => vec![(
            String::new(),
            steps::create_index::build_sql(s),
            Source::Generated,
        )],
        Step::Backfill(s) => batched(
            &BatchJob::backfill(s),
            &placeholder_key,
            vec![known(&s.table, LockMode::RowExclusive, Work::Rows)],
        ),
        Step::CopyRows(s) => batched(
            &BatchJob::copy_rows(s),
            &placeholder_key,
            vec![
                known(&s.from, LockMode::RowShare, Work::Rows),
                known(&s.to, LockMode::RowExclusive, Work::Rows),
            ],
        ),
        Step::Verify(s) => match (&s.sql, &s.compare) {
            (Some(sql), _) => vec![(String::new(), sql.clone(), Source::Generated)],
            (None, Some(c)) => {
                let cols = c
                    .columns
                    .clone()
                    .unwrap_or_else(|| vec!["<every column>".into()]);
                let rcols = c.right_columns.clone().unwrap_or_else(|| cols.clone());
                vec![(
                    "each chunk ($1 chunk size, $2 last key compared)".into(),
                    steps::verify::chunk_sql(c, &placeholder_key, &cols, &rcols, true),
                    Source::Known(vec![
                        known(&c.left, LockMode::AccessShare, Work::Scan),
                        known(&c.right, LockMode::AccessShare, Work::Scan),
                    ]),
                )]
            }
            _ => Vec::new(),
        },
        Step::SyncTrigger(s) => match steps::sync_trigger::create_sql(s) {
            Ok(sql) => vec![(String::new(), sql, Source::Generated)],
            Err(e) => vec![(
                format!("cannot build: {e}"),
                String::new(),
                Source::Generated,
            )],
        },
        Step::NotNull(s) => vec![
            (
                "1. check, not yet validated".into(),
                steps::not_null::add_sql(s),
                Source::Generated,
            ),
            (
                "2. validate".into(),
                steps::not_null::validate_sql(s),
                Source::Generated,
            ),
            (
                "3. set not null (proved by the check, no scan), in one transaction".into(),
                steps::not_null::finish_sql(s),
                Source::Known(vec![known(
                    &s.table,
                    LockMode::AccessExclusive,
                    Work::Catalog,
                )]),
            ),
        ],
        Step::Constraint(s) => match (
            steps::constraint::shape(s),
            steps::constraint::unique_sql(s),
        ) {
            (steps::constraint::Shape::Exclude, _) => vec![(
                "under ACCESS EXCLUSIVE for the whole build (no safe way exists)".into(),
                steps::constraint::exclude_sql(s),
                Source::Plan(Role::Step, "definition"),
            )],
            (steps::constraint::Shape::PrimaryKey, Some((build, _))) => {
                primary_key_statements(s, build)
            }
            (_, Some((build, attach))) => vec![
                ("1. build the index".into(), build, Source::Generated),
                ("2. attach it".into(), attach, Source::Generated),
            ],
            (_, None) => vec![
                (
                    "1. add, not yet validated".into(),
                    steps::constraint::add_sql(s),
                    Source::Generated,
                ),
                (
                    "2. validate".into(),
                    steps::constraint::validate_sql(s),
                    Source::Generated,
                ),
            ],
        },
        Step::Swap(s) => match steps::swap::full_sql(plan, &s.renames, &s.sync_triggers, false) {
            Ok(sql) => vec![("in one transaction".into(), sql, Source::Generated)],
            Err(e) => vec![(
                format!("cannot build: {e}"),
                String::new(),
                Source::Generated,
            )],
        },
        Step::Gate(_) => Vec::new(),
        // A move's statements are built when it runs (names carry the run
        // id, definitions come from the catalog).
        Step::Replicate(_) | Step::VerifyAcross(_) | Step::Switchover(_) => Vec::new(),
        // Built from the catalog when the step runs.
        Step::RenameColumn(_)
        | Step::RenameTable(_)
        | Step::AddColumn(_)
        | Step::DropColumn(_)
        | Step::AlterColumn(_)
        | Step::DropConstraint(_)
        | Step::DropNotNull(_) => Vec::new(),
    }
}

/// The step adds a PRIMARY KEY.
pub(super) fn primary_key(step: &Step) -> bool {
    matches!(step, Step::Constraint(c)
        if steps::constraint::shape(c) == steps::constraint::Shape::PrimaryKey)
}

/// A PRIMARY KEY: the index, each key column's NOT NULL proved by a
/// validated check (a column already NOT NULL skips its check when the step
/// runs), then one short transaction.
fn primary_key_statements(
    s: &crate::plan::model::ConstraintStep,
    build: String,
) -> Vec<(String, String, Source)> {
    let columns = steps::constraint::not_null_specs(s);
    let mut out = vec![("1. build the index".into(), build, Source::Generated)];
    for c in &columns {
        out.push((
            format!(
                "2. NOT NULL on {}, if it allows NULL: check, not yet validated",
                c.column
            ),
            steps::not_null::add_sql(c),
            Source::Generated,
        ));
        out.push((
            format!("2. NOT NULL on {}: validate", c.column),
            steps::not_null::validate_sql(c),
            Source::Generated,
        ));
    }
    out.push((
        "3. set not null (proved by the checks, no scan), drop the checks, attach the index as \
         the primary key, in one transaction"
            .into(),
        steps::constraint::primary_key_finish_sql(s, &columns).unwrap_or_default(),
        Source::Known(vec![known(
            &s.table,
            LockMode::AccessExclusive,
            Work::Catalog,
        )]),
    ));
    out
}
