//! A whole plan, step by step: the exact SQL each step will run, the locks
//! it takes, whether it can be undone, and the lint findings — located in
//! the plan file. `cutover plan` prints it; `lint`, `check` and `run` use
//! its findings.

mod spans;
pub mod stall;
mod statements;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::locks::{self, LockEffect};
use super::{Hit, Role, Rule, Schema, Scope, lint_sql};
use crate::plan::{LoadedPlan, Step, line_col};
use crate::sql::Rel;
use crate::statements::{self as steps, Inverse};
use spans::{SqlSpans, value_offset};
use statements::{Source, primary_key, statements};

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
