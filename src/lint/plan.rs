//! A whole plan, step by step: the exact SQL each step will run, the locks
//! it takes, whether it can be undone, and the lint findings — located in
//! the plan file. `cutover plan` prints it; `lint`, `check` and `run` use
//! its findings.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::locks::{self, LockEffect, LockMode, Work};
use super::{Hit, Role, Rule, Schema, Scope, lint_sql};
use crate::plan::{LoadedPlan, Step, line_col};
use crate::sql::Rel;
use crate::statements::batch::{self, BatchJob};
use crate::statements::{self as steps, Inverse};

/// A rule that matched, located in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The rule's name.
    pub rule_name: &'static str,
    /// What is wrong.
    pub message: String,
    /// The safe alternative.
    pub help: String,
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The file's line, for context.
    #[serde(skip)]
    pub line_text: String,
    /// The phase, in a plan.
    pub phase: Option<String>,
    /// The step, in a plan.
    pub step: Option<String>,
    /// The statement.
    pub statement: String,
    /// The step's `allow_unsafe` reason, when it allows this.
    pub allowed: Option<String>,
}

impl Finding {
    /// Not allowed by the step: it stops `run` and fails `lint`.
    pub fn is_error(&self) -> bool {
        self.allowed.is_none()
    }
}

/// One statement a step will run.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// What it is within the step ("each batch", "rollback", …).
    pub label: String,
    /// The SQL, exactly (batch placeholders `$1`…).
    pub sql: String,
    /// Its locks; `None` when cutover does not know them.
    pub locks: Option<Vec<LockEffect>>,
    /// Findings on it (indexes into [`PlanReport::findings`]).
    pub findings: Vec<usize>,
}

/// One step of the dry run.
#[derive(Debug, Clone, Serialize)]
pub struct StepPlan {
    /// The phase.
    pub phase: String,
    /// The phase is irreversible.
    pub irreversible: bool,
    /// The step.
    pub name: String,
    /// Its kind.
    pub kind: &'static str,
    /// What it runs, in order.
    pub statements: Vec<Planned>,
    /// How it is undone (`Ok`), or why it cannot be (`Err`).
    pub reversible: Result<String, String>,
    /// Why flagged statements are acceptable here.
    pub allow_unsafe: Option<String>,
}

/// The whole dry run.
#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    /// `[settings] max_stall`, when the plan sets one.
    pub max_stall: Option<std::time::Duration>,
    /// Steps in order.
    pub steps: Vec<StepPlan>,
    /// Every finding.
    pub findings: Vec<Finding>,
}

impl PlanReport {
    /// Findings no `allow_unsafe` covers.
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.is_error()).count()
    }
}

enum Source {
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

fn known(rel: &str, mode: LockMode, work: Work) -> LockEffect {
    LockEffect {
        relation: Rel::from_plan(rel).to_string(),
        mode,
        work,
        blocks: mode.blocks(),
    }
}

/// What the step runs.
fn statements(step: &Step, plan: &crate::plan::Plan) -> Vec<(String, String, Source)> {
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

fn primary_key(step: &Step) -> bool {
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

/// The dry run of a plan, with lint findings located in its file.
pub fn analyze(loaded: &LoadedPlan, schema: &mut Schema) -> PlanReport {
    let plan = &loaded.plan;
    let spans = SqlSpans::read(&loaded.text);
    let mut report = PlanReport {
        max_stall: plan.settings.max_stall.map(|b| b.0),
        steps: Vec::new(),
        findings: Vec::new(),
    };
    for (pi, phase) in plan.phases.iter().enumerate() {
        for (si, spanned) in phase.steps.iter().enumerate() {
            let step = spanned.get_ref();
            let allow = match step {
                Step::Sql(s) => s.allow_unsafe.clone(),
                Step::Constraint(s) => s.allow_unsafe.clone(),
                _ => None,
            };
            for fragment in super::fragments::of_step(step) {
                if let Some(hit) = super::fragments::check(&fragment) {
                    let at = spans
                        .find(pi, si, fragment.field)
                        .map(|span| value_offset(&loaded.text, &span, 0))
                        .unwrap_or_else(|| spanned.span().start);
                    report.findings.push(locate(
                        &hit,
                        &loaded.path,
                        &loaded.text,
                        at,
                        Some((phase.name(), &step.display_name())),
                        None,
                    ));
                }
            }
            let mut planned = Vec::new();
            for (label, sql, source) in statements(step, plan) {
                match source {
                    Source::Plan(role, field) => {
                        let span = spans.find(pi, si, field).unwrap_or_else(|| spanned.span());
                        let scope = Scope {
                            phase: Some(phase.name().to_string()),
                            irreversible: phase.irreversible,
                            role,
                        };
                        let (stmts, hits) = lint_sql(&sql, &mut Schema::clone(schema), &scope);
                        // Learn in order, statement by statement, so each
                        // statement's locks see what came before it.
                        for stmt in &stmts {
                            let mine: Vec<usize> = hits
                                .iter()
                                .filter(|h| h.offset == stmt.offset)
                                .map(|h| {
                                    report.findings.push(locate(
                                        h,
                                        &loaded.path,
                                        &loaded.text,
                                        value_offset(&loaded.text, &span, h.offset),
                                        Some((phase.name(), &step.display_name())),
                                        allow.clone(),
                                    ));
                                    report.findings.len() - 1
                                })
                                .collect();
                            planned.push(Planned {
                                label: label.clone(),
                                sql: stmt.text.clone(),
                                locks: locks::effects(stmt, schema),
                                findings: mine,
                            });
                            if role == Role::Step {
                                schema.learn(stmt);
                            }
                        }
                    }
                    Source::Generated => {
                        let stmts = crate::sql::parse(&sql);
                        let mut all = Vec::new();
                        let mut unknown = false;
                        for stmt in &stmts {
                            match locks::effects(stmt, schema) {
                                Some(e) => all.extend(e),
                                None => unknown = true,
                            }
                            schema.learn(stmt);
                        }
                        planned.push(Planned {
                            label,
                            sql,
                            locks: (!unknown).then(|| merge(all)),
                            findings: Vec::new(),
                        });
                    }
                    Source::Known(effects) => planned.push(Planned {
                        label,
                        sql,
                        locks: Some(merge(effects)),
                        findings: Vec::new(),
                    }),
                }
            }
            if let Step::CopyRows(c) = step
                && !schema.created(&Rel::from_plan(&c.to))
            {
                // A copy's target is new to the application either way.
                schema.mark_created(&Rel::from_plan(&c.to));
            }
            let reversible = if phase.irreversible {
                Err(format!(
                    "phase `{}` is irreversible: once it has run, it is never rolled back",
                    phase.name()
                ))
            } else {
                match steps::inverse(step, plan) {
                    Ok(Inverse::Sql(sql)) if primary_key(step) => Ok(format!(
                        "runs: {}; then DROP NOT NULL on the key columns the step made NOT NULL \
                         (recorded when it runs)",
                        one_line(&sql)
                    )),
                    Ok(Inverse::Sql(sql)) => Ok(format!("runs: {}", one_line(&sql))),
                    Ok(Inverse::DropIndex(s)) => {
                        Ok(format!("runs: {}", steps::create_index::drop_sql(&s)))
                    }
                    Ok(Inverse::Nothing(why)) if why == "nothing to undo" => Ok(why.to_string()),
                    Ok(Inverse::Nothing(why)) => Ok(format!("nothing to undo: {why}")),
                    Ok(Inverse::DropCreated(db)) => Ok(format!(
                        "removes the subscription, slot, publication and the tables it made on {db}"
                    )),
                    Err(e) => Err(e),
                }
            };
            report.steps.push(StepPlan {
                phase: phase.name().to_string(),
                irreversible: phase.irreversible,
                name: step.display_name(),
                kind: step.kind(),
                statements: planned,
                reversible,
                allow_unsafe: allow,
            });
        }
    }
    report
}

/// Where each step's `sql` and `rollback` values are in the plan file.
struct SqlSpans<'t> {
    doc: Option<toml::Spanned<toml::de::DeTable<'t>>>,
}

impl<'t> SqlSpans<'t> {
    fn read(text: &'t str) -> SqlSpans<'t> {
        SqlSpans {
            doc: toml::de::DeTable::parse(text).ok(),
        }
    }

    fn find(&self, phase: usize, step: usize, field: &str) -> Option<Range<usize>> {
        use toml::de::DeValue;
        let doc = self.doc.as_ref()?.get_ref();
        let DeValue::Array(phases) = doc.get("phases")?.get_ref() else {
            return None;
        };
        let DeValue::Table(p) = phases.get(phase)?.get_ref() else {
            return None;
        };
        let DeValue::Array(steps) = p.get("steps")?.get_ref() else {
            return None;
        };
        let DeValue::Table(s) = steps.get(step)?.get_ref() else {
            return None;
        };
        Some(s.get(field)?.span())
    }
}

/// Several statements' locks: the strongest mode per relation.
fn merge(effects: Vec<LockEffect>) -> Vec<LockEffect> {
    let mut out: Vec<LockEffect> = Vec::new();
    for e in effects {
        match out.iter_mut().find(|o| o.relation == e.relation) {
            Some(o) => {
                o.mode = o.mode.max(e.mode);
                o.work = o.work.max(e.work);
                o.blocks = o.blocks.max(e.blocks);
            }
            None => out.push(e),
        }
    }
    out
}

fn one_line(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn locate(
    hit: &Hit,
    path: &Path,
    text: &str,
    at: usize,
    place: Option<(&str, &str)>,
    allowed: Option<String>,
) -> Finding {
    let (line, column) = line_col(text, at);
    Finding {
        rule: hit.rule,
        rule_name: hit.rule.name(),
        message: hit.message.clone(),
        help: hit.help.clone(),
        file: path.to_path_buf(),
        line,
        column,
        line_text: text.lines().nth(line - 1).unwrap_or("").to_string(),
        phase: place.map(|(p, _)| p.to_string()),
        step: place.map(|(_, s)| s.to_string()),
        statement: hit.statement.clone(),
        allowed,
    }
}

/// Lints a `.sql` file: statements autocommit unless inside BEGIN … COMMIT;
/// there are no phases, so drops and renames are flagged.
pub fn lint_sql_file(path: &Path, text: &str, schema: &mut Schema) -> Vec<Finding> {
    let scope = Scope {
        phase: None,
        irreversible: false,
        role: Role::File,
    };
    let (_, hits) = lint_sql(text, schema, &scope);
    hits.iter()
        .map(|h| locate(h, path, text, h.offset, None, None))
        .collect()
}

/// The file offset of byte `offset` of a TOML string value whose source is
/// `span` (quotes included), following escapes in basic strings.
pub fn value_offset(text: &str, span: &Range<usize>, offset: usize) -> usize {
    let Some(raw) = text.get(span.clone()) else {
        return span.start;
    };
    let (quote, literal) = if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with('"') {
        (1, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else {
        return span.start;
    };
    let mut start = span.start + quote;
    if quote == 3 {
        // A newline right after the opening quotes is not part of the value.
        if text[start..].starts_with("\r\n") {
            start += 2;
        } else if text[start..].starts_with('\n') {
            start += 1;
        }
    }
    if literal {
        return start + offset;
    }
    let body = &text[start..span.end.saturating_sub(quote).max(start)];
    let mut decoded = 0;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if decoded >= offset {
            return start + i;
        }
        if c != '\\' {
            decoded += c.len_utf8();
            continue;
        }
        match chars.peek().map(|&(_, n)| n) {
            Some('u') | Some('U') => {
                let n = if chars.peek().map(|p| p.1) == Some('u') {
                    4
                } else {
                    8
                };
                chars.next();
                let hex: String = (0..n).filter_map(|_| chars.next().map(|p| p.1)).collect();
                decoded += u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .map_or(1, char::len_utf8);
            }
            Some(n) if n.is_whitespace() => {
                // A line-ending backslash: it and the following blanks vanish.
                while chars.peek().is_some_and(|p| p.1.is_whitespace()) {
                    chars.next();
                }
            }
            Some(_) => {
                chars.next();
                decoded += 1;
            }
            None => {}
        }
    }
    start + body.len()
}

/// Whether a statement can keep the application's waits under the stall
/// budget: `Err` says why not (a lock that blocks the application held
/// while the table is scanned or rewritten).
pub fn stall_verdict(st: &Planned, budget: std::time::Duration) -> Result<String, String> {
    use super::locks::{Blocks, Work};
    let budget = crate::plan::units::HumanDuration(budget);
    let Some(locks) = &st.locks else {
        return Err(format!(
            "its locks are not known to cutover: it may not meet max_stall {budget}"
        ));
    };
    for l in locks {
        let blocks = !matches!(l.blocks, Blocks::Nothing);
        if blocks && matches!(l.work, Work::Scan | Work::Rewrite | Work::Unknown) {
            return Err(format!(
                "holds {} on {} while it {} ({}): it cannot meet max_stall {budget}",
                l.mode.sql(),
                l.relation,
                l.work.describe(),
                l.blocks.describe()
            ));
        }
    }
    Ok(if st.label.contains("batch") {
        format!("within max_stall {budget}: batches are sized under half of it")
    } else if locks.iter().any(|l| !matches!(l.blocks, Blocks::Nothing)) {
        format!(
            "within max_stall {budget}: brief once granted; each attempt waits for a gap, then at most {budget}"
        )
    } else {
        format!("within max_stall {budget}: blocks no reads or writes")
    })
}
