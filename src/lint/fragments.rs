//! A plan's SQL fragments (`set`, `where`, `when`, column expressions) are
//! checked before anything runs: each must parse as exactly what it stands
//! for and stay inside the statement cutover builds around it.

use super::{Hit, Rule};
use crate::plan::Step;
use crate::plan::model::ColumnMap;
use crate::sql::fragment::{self, FragmentError};

/// What a fragment field stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One expression (`where`, `when`, a column expression).
    Expression,
    /// `column = expression, …` (`set`).
    Assignments,
    /// One table constraint (a `constraint` step's `definition`).
    Constraint,
}

/// One fragment of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The plan field it is written in.
    pub field: &'static str,
    /// Its text.
    pub text: String,
    /// What it stands for.
    pub shape: Shape,
}

fn expr(field: &'static str, text: &str) -> Fragment {
    Fragment {
        field,
        text: text.to_string(),
        shape: Shape::Expression,
    }
}

fn mapped(columns: &ColumnMap) -> Vec<Fragment> {
    match columns {
        // Plain names: cutover quotes them itself.
        ColumnMap::Same(_) => Vec::new(),
        ColumnMap::Mapped(map) => map.values().map(|e| expr("columns", e)).collect(),
    }
}

/// Every fragment a step splices into SQL.
pub fn of_step(step: &Step) -> Vec<Fragment> {
    let mut out = Vec::new();
    let assign = |text: &str| Fragment {
        field: "set",
        text: text.to_string(),
        shape: Shape::Assignments,
    };
    match step {
        Step::Backfill(s) => {
            out.push(assign(&s.set));
            out.extend(s.where_.as_deref().map(|w| expr("where", w)));
        }
        Step::CopyRows(s) => {
            out.extend(mapped(&s.columns));
            out.extend(s.where_.as_deref().map(|w| expr("where", w)));
        }
        Step::SyncTrigger(s) => {
            out.extend(s.set.as_deref().map(assign));
            out.extend(s.when.as_deref().map(|w| expr("when", w)));
            out.extend(s.forward.as_deref().map(|w| expr("forward", w)));
            out.extend(s.backward.as_deref().map(|w| expr("backward", w)));
            out.extend(s.columns.as_ref().map(mapped).unwrap_or_default());
        }
        Step::CreateIndex(s) => {
            // An expression column is written in parentheses; a bare entry
            // is a column name, which cutover quotes.
            out.extend(
                s.columns
                    .iter()
                    .filter(|c| c.trim_start().starts_with('('))
                    .map(|c| expr("columns", c)),
            );
            out.extend(s.where_.as_deref().map(|w| expr("where", w)));
        }
        Step::Constraint(s) => out.push(Fragment {
            field: "definition",
            text: s.definition.clone(),
            shape: Shape::Constraint,
        }),
        Step::AddColumn(s) => out.extend(s.up.as_deref().map(|w| expr("up", w))),
        Step::DropColumn(s) => out.extend(s.down.as_deref().map(|w| expr("down", w))),
        Step::AlterColumn(s) => {
            out.extend(s.up.as_deref().map(|w| expr("up", w)));
            out.extend(s.down.as_deref().map(|w| expr("down", w)));
            out.extend(s.default.as_deref().map(|w| expr("default", w)));
            out.extend(s.check.as_ref().map(|c| match c {
                crate::plan::model::CheckSpec::Expr(e)
                | crate::plan::model::CheckSpec::Named { constraint: e, .. } => expr("check", e),
            }));
        }
        Step::DropConstraint(s) => {
            out.extend(s.up.as_deref().map(|w| expr("up", w)));
            out.extend(s.down.as_deref().map(|w| expr("down", w)));
        }
        Step::DropNotNull(s) => {
            out.extend(s.up.as_deref().map(|w| expr("up", w)));
            out.extend(s.down.as_deref().map(|w| expr("down", w)));
        }
        _ => {}
    }
    out
}

/// The finding for a refused fragment, or `None` when it is sound.
pub fn check(f: &Fragment) -> Option<Hit> {
    let result = match f.shape {
        Shape::Expression => fragment::expression(&f.text).map(|_| ()),
        Shape::Assignments => fragment::assignments(&f.text).map(|_| ()),
        Shape::Constraint => fragment::constraint(&f.text).map(|_| ()),
    };
    let what = match f.shape {
        Shape::Expression => "exactly one SQL expression",
        Shape::Assignments => "an assignment list `column = expression, …`",
        Shape::Constraint => {
            "one table constraint: CHECK (…), FOREIGN KEY (…) REFERENCES …, UNIQUE (…), \
             PRIMARY KEY (…) or EXCLUDE USING … (…)"
        }
    };
    let (rule, why) = match result {
        Ok(()) => return None,
        Err(FragmentError::Escapes(why)) => (Rule::FragmentEscapes, why),
        Err(FragmentError::Unparsable(why)) => (Rule::FragmentUnparsable, why),
    };
    let help = match rule {
        Rule::FragmentEscapes => format!(
            "write `{}` as {what}, with balanced parentheses and no `;` or `--` comment: cutover \
             places it inside its own statement, and it must not change that statement",
            f.field
        ),
        _ => format!(
            "write `{}` as {what}; cutover places it inside its own statement",
            f.field
        ),
    };
    Some(Hit {
        rule,
        message: format!("`{}` = {:?}: {why}", f.field, f.text),
        help,
        offset: 0,
        statement: f.text.clone(),
    })
}
