//! The plan file: model (serde), loading with file:line:col errors, and
//! structural validation.

mod altered;
pub mod databases;
pub mod identity;
mod kinds;
pub mod model;
pub mod moving;
mod settings;
pub mod units;
mod versioned;

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use model::{Phase, Plan, STEP_KINDS, Step};

/// The table a plan is mostly about: what the operator types to confirm an
/// irreversible phase or a rollback (the cockpit and the CLI ask the same).
pub fn main_table(plan: &Plan) -> String {
    main_table_of(
        plan.phases
            .iter()
            .flat_map(|p| p.steps.iter())
            .map(|s| s.get_ref()),
    )
    .unwrap_or_else(|| plan.name.clone())
}

/// [`main_table`] of a list of steps (the journal's record of a run).
pub fn main_table_of<'a>(steps: impl Iterator<Item = &'a Step>) -> Option<String> {
    steps.into_iter().find_map(|s| match s {
        Step::Backfill(b) => Some(b.table.clone()),
        Step::CopyRows(c) => Some(c.from.clone()),
        Step::CreateIndex(c) => Some(c.table.clone()),
        Step::NotNull(n) => Some(n.table.clone()),
        Step::Constraint(c) => Some(c.table.clone()),
        Step::SyncTrigger(t) => t.table.clone().or(t.from.clone()),
        Step::Replicate(r) if !r.all_tables() => r.tables.first().cloned(),
        Step::VerifyAcross(v) => Some(v.table.clone()),
        Step::RenameColumn(s) => Some(s.table.clone()),
        Step::RenameTable(s) => Some(s.from.clone()),
        Step::AddColumn(s) => Some(s.table.clone()),
        Step::DropColumn(s) => Some(s.table.clone()),
        Step::AlterColumn(s) => Some(s.table.clone()),
        Step::DropConstraint(s) => Some(s.table.clone()),
        Step::DropNotNull(s) => Some(s.table.clone()),
        _ => None,
    })
}

/// A plan read from disk, with what identifies its exact content.
#[derive(Debug, Clone)]
pub struct LoadedPlan {
    /// Where it came from.
    pub path: PathBuf,
    /// The parsed plan.
    pub plan: Plan,
    /// SHA-256 of the file, to notice edits between runs.
    pub hash: String,
    /// The file's text.
    pub text: String,
}

/// A plan that cannot be used, located in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong and what to do.
    pub message: String,
    /// The offending line, for context.
    pub line_text: Option<String>,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.path.display(), self.message)?
            }
            None => write!(f, "{}: {}", self.path.display(), self.message)?,
        }
        if let (Some(text), Some((line, col))) = (&self.line_text, self.position) {
            let gutter = line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{line} | {text}\n{:gutter$} | {:>col$}",
                "", "", "^"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanError {}

impl PlanError {
    fn at(path: &Path, text: &str, span: Option<Range<usize>>, message: String) -> PlanError {
        let position = span.map(|s| line_col(text, s.start));
        PlanError {
            path: path.to_path_buf(),
            line_text: position.and_then(|(l, _)| text.lines().nth(l - 1).map(str::to_string)),
            position,
            message,
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Reads, parses and validates a plan file.
pub fn load(path: &Path) -> Result<LoadedPlan, PlanError> {
    let bytes = std::fs::read(path).map_err(|e| PlanError {
        path: path.to_path_buf(),
        position: None,
        message: format!("cannot read the plan: {e}"),
        line_text: None,
    })?;
    let text = String::from_utf8(bytes.clone()).map_err(|_| PlanError {
        path: path.to_path_buf(),
        position: None,
        message: "the plan is not UTF-8 text".into(),
        line_text: None,
    })?;
    let plan = parse(path, &text)?;
    Ok(LoadedPlan {
        path: path.to_path_buf(),
        plan,
        hash: hex::encode(Sha256::digest(&bytes)),
        text,
    })
}

/// A plan from text that is not a file (a built-in plan).
pub fn from_text(path: &Path, text: &str) -> Result<LoadedPlan, PlanError> {
    let plan = parse(path, text)?;
    Ok(LoadedPlan {
        path: path.to_path_buf(),
        plan,
        hash: hex::encode(Sha256::digest(text.as_bytes())),
        text: text.to_string(),
    })
}

/// Parses and validates plan text (`path` is only used in messages).
pub fn parse(path: &Path, text: &str) -> Result<Plan, PlanError> {
    let plan: Plan = toml::from_str(text)
        .map_err(|e| PlanError::at(path, text, e.span(), explain(e.message())))?;
    validate(&plan).map_err(|(span, msg)| PlanError::at(path, text, span, msg))?;
    Ok(plan)
}

/// Adds what to do to serde's messages where it can.
fn explain(message: &str) -> String {
    let message = message.trim_end();
    if message.starts_with("unknown variant") {
        format!("{message}\n(the step kinds are: {})", STEP_KINDS.join(", "))
    } else if message.starts_with("missing field `kind`") {
        format!(
            "every step needs `kind = \"…\"`, one of: {}",
            STEP_KINDS.join(", ")
        )
    } else {
        message.to_string()
    }
}

type Invalid = (Option<Range<usize>>, String);

fn validate(plan: &Plan) -> Result<(), Invalid> {
    if plan.name.trim().is_empty() {
        return Err((
            None,
            "`name` must not be empty: it identifies the plan's runs".into(),
        ));
    }
    if plan.phases.is_empty() {
        return Err((
            None,
            "the plan has no phases; add at least one [[phases]]".into(),
        ));
    }
    if plan.throttle.max_rows_per_second == Some(0) {
        return Err((
            None,
            "[throttle] max_rows_per_second = 0 would never move a row; \
             remove it for no limit, or give the most rows per second the backfill may move"
                .into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut seen_irreversible: Option<&str> = None;
    let mut step_names = std::collections::HashMap::new();
    for phase in &plan.phases {
        let span = Some(phase.name.span());
        if !seen.insert(phase.name()) {
            return Err((
                span,
                format!(
                    "phase name `{}` is used twice; phase names must be unique",
                    phase.name()
                ),
            ));
        }
        if phase.steps.is_empty() {
            return Err((
                span,
                format!(
                    "phase `{}` has no steps; add a [[phases.steps]]",
                    phase.name()
                ),
            ));
        }
        match (phase.irreversible, seen_irreversible) {
            (true, _) => seen_irreversible = Some(phase.name()),
            (false, Some(earlier)) => {
                return Err((
                    span,
                    format!(
                        "phase `{}` comes after the irreversible phase `{earlier}`; \
                         irreversible (contract) phases must come last",
                        phase.name()
                    ),
                ));
            }
            (false, None) => {}
        }
        for step in &phase.steps {
            let sspan = Some(step.span());
            if step.get_ref().is_versioned() && plan.versions.is_none() {
                return Err((
                    sspan,
                    format!(
                        "step \"{}\" ({}) works through a version schema, and the plan has no \
                         [versions]; add `[versions]` with `old = \"public\"` and `new = \"app_v2\"` \
                         (the schema the new app puts first on its search_path)",
                        step.get_ref().display_name(),
                        step.get_ref().kind()
                    ),
                ));
            }
            validate_step(step.get_ref(), phase).map_err(|m| (sspan.clone(), m))?;
            if let Some(name) = step.get_ref().explicit_name()
                && let Some(first) = step_names.insert(name.to_string(), phase.name().to_string())
            {
                return Err((
                    sspan,
                    format!(
                        "step name `{name}` is used twice (first in phase `{first}`); step names must be unique"
                    ),
                ));
            }
        }
    }
    databases::validate(plan)?;
    Ok(())
}

fn validate_step(step: &Step, phase: &Phase) -> Result<(), String> {
    let blank = |s: &str| s.trim().is_empty();
    match step {
        Step::Sql(s) => {
            if blank(&s.sql) {
                return Err("`sql` is empty".into());
            }
            if s.rollback.is_some() && phase.irreversible {
                return Err(format!(
                    "a `rollback` in the irreversible phase `{}` would never run; remove it, \
                     or make the phase reversible",
                    phase.name()
                ));
            }
            if s.allow_unsafe.as_deref().is_some_and(blank) {
                return Err(
                    "`allow_unsafe` must give the reason the statement is acceptable".into(),
                );
            }
        }
        Step::CreateIndex(s) => {
            if s.columns.is_empty() || s.columns.iter().any(|c| blank(c)) {
                return Err(format!("index `{}` needs `columns = [\"col\", …]`", s.name));
            }
            if blank(&s.table) {
                return Err(format!("index `{}` needs `table`", s.name));
            }
            if s.include.iter().any(|c| blank(c)) {
                return Err(format!(
                    "index `{}`: `include` takes column names, and one is empty",
                    s.name
                ));
            }
            for (key, value) in &s.with {
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                {
                    return Err(format!(
                        "index `{}`: `with` key \"{key}\" is not a storage parameter name \
                         (lower-case letters, digits and _, e.g. fillfactor)",
                        s.name
                    ));
                }
                if !matches!(
                    value,
                    toml::Value::Integer(_)
                        | toml::Value::Float(_)
                        | toml::Value::Boolean(_)
                        | toml::Value::String(_)
                ) {
                    return Err(format!(
                        "index `{}`: `with.{key}` must be a number, true/false or a string",
                        s.name
                    ));
                }
            }
        }
        Step::Backfill(s) => {
            for (field, value) in [("table", &s.table), ("key", &s.key), ("set", &s.set)] {
                if blank(value) {
                    return Err(format!("backfill `{field}` is empty"));
                }
            }
            if s.batch_size == Some(0) {
                return Err("backfill `batch_size` must be at least 1".into());
            }
            check_workers("backfill", s.workers)?;
        }
        Step::Verify(s) => match (&s.sql, &s.expect, &s.compare) {
            (Some(sql), Some(_), None) if !blank(sql) => {}
            (None, None, Some(c)) => {
                if blank(&c.left) || blank(&c.right) || blank(&c.key) {
                    return Err("compare needs `left`, `right` and `key`".into());
                }
                if let (Some(l), Some(r)) = (&c.columns, &c.right_columns)
                    && l.len() != r.len()
                {
                    return Err(format!(
                        "compare: `columns` has {} entries but `right_columns` has {}",
                        l.len(),
                        r.len()
                    ));
                }
                if c.right_columns.is_some() && c.columns.is_none() {
                    return Err("compare: `right_columns` needs `columns`".into());
                }
            }
            _ => {
                return Err(
                    "verify needs either `sql` and `expect`, or `compare = { left, right, key }`"
                        .into(),
                );
            }
        },
        Step::CopyRows(s) => {
            for (field, value) in [("from", &s.from), ("to", &s.to), ("key", &s.key)] {
                if blank(value) {
                    return Err(format!("copy_rows `{field}` is empty"));
                }
            }
            if s.columns.pairs().is_empty() {
                return Err("copy_rows needs `columns`".into());
            }
            if s.batch_size == Some(0) {
                return Err("copy_rows `batch_size` must be at least 1".into());
            }
            check_workers("copy_rows", s.workers)?;
        }
        Step::SyncTrigger(s) => {
            if s.name.is_empty()
                || !s
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!(
                    "sync_trigger `name` \"{}\" must be lower-case letters, digits and _ \
                     (the trigger and function are named cutover_sync_<name>)",
                    s.name
                ));
            }
            let one_way = s.set.is_some();
            let two_way = s.old.is_some() || s.new.is_some();
            let copy = s.from.is_some() || s.to.is_some() || s.columns.is_some();
            match (one_way, two_way, copy) {
                (true, false, false) | (false, true, false) => {
                    if s.table.as_deref().is_none_or(blank) {
                        return Err("sync_trigger needs `table`".into());
                    }
                    if two_way && (s.old.is_none() || s.new.is_none()) {
                        return Err("a two-way sync_trigger needs both `old` and `new`".into());
                    }
                }
                (false, false, true) => {
                    if s.from.is_none() || s.to.is_none() || s.key.is_none() || s.columns.is_none()
                    {
                        return Err(
                            "a table-copy sync_trigger needs `from`, `to`, `key` and `columns`"
                                .into(),
                        );
                    }
                }
                _ => {
                    return Err("sync_trigger takes one of: `table` + `set` (one way); `table` + \
                         `old` + `new` (two ways); or `from` + `to` + `key` + `columns` (table copy)"
                        .into());
                }
            }
        }
        Step::NotNull(s) => {
            if blank(&s.table) || blank(&s.column) {
                return Err("not_null needs `table` and `column`".into());
            }
        }
        Step::Constraint(s) => {
            let first = s
                .definition
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_uppercase();
            if !["CHECK", "FOREIGN", "UNIQUE", "PRIMARY", "EXCLUDE"].contains(&first.as_str()) {
                return Err(format!(
                    "constraint `definition` must start with CHECK, FOREIGN KEY, UNIQUE, \
                     PRIMARY KEY or EXCLUDE (got \"{}\")",
                    s.definition
                ));
            }
            if s.allow_unsafe.is_some() && first != "EXCLUDE" {
                return Err(format!(
                    "constraint `{}`: `allow_unsafe` is only for EXCLUDE (every other definition \
                     is built without blocking)",
                    s.name
                ));
            }
            if s.allow_unsafe.as_deref().is_some_and(blank) {
                return Err(
                    "`allow_unsafe` must give the reason the statement is acceptable".into(),
                );
            }
        }
        Step::Swap(s) => {
            if s.renames.is_empty() {
                return Err("swap needs `renames = [{ from = \"…\", to = \"…\" }, …]`".into());
            }
        }
        Step::RenameColumn(_)
        | Step::RenameTable(_)
        | Step::AddColumn(_)
        | Step::DropColumn(_)
        | Step::AlterColumn(_)
        | Step::DropConstraint(_)
        | Step::DropNotNull(_)
            if phase.irreversible =>
        {
            return Err(format!(
                "{} belongs in a phase before the irreversible phase `{}`, which makes it physical",
                step.kind(),
                phase.name()
            ));
        }
        Step::AlterColumn(s) => altered::validate_alter(s)?,
        Step::DropConstraint(s) => {
            if blank(&s.table) || blank(&s.constraint) {
                return Err("drop_constraint needs `table` and `constraint`".into());
            }
        }
        Step::DropNotNull(s) => {
            if blank(&s.table) || blank(&s.column) {
                return Err("drop_not_null needs `table` and `column`".into());
            }
        }
        Step::RenameColumn(_) | Step::RenameTable(_) | Step::AddColumn(_) | Step::DropColumn(_) => {
        }
        // Checked with the plan's `databases` (plan::databases).
        Step::Replicate(_) | Step::VerifyAcross(_) | Step::Switchover(_) => {}
        Step::Gate(s) => {
            if blank(&s.message) {
                return Err("a gate needs a `message` telling the operator what to do".into());
            }
        }
    }
    Ok(())
}

/// The most workers a batched step may have.
pub const MAX_WORKERS: u32 = 64;

/// A batched step's `workers`: at least 1, at most [`MAX_WORKERS`].
fn check_workers(kind: &str, workers: Option<u32>) -> Result<(), String> {
    let max = MAX_WORKERS;
    match workers {
        Some(0) => Err(format!("{kind} `workers` must be at least 1")),
        Some(n) if n > max => Err(format!(
            "{kind} `workers = {n}` is more than {max} sessions; each worker is a server backend writing WAL, and past a few they only queue behind each other: use 2 to 8"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
