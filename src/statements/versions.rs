//! Version schemas: the statements that let the old and the new application
//! version use one database at once.
//!
//! The new version sees the tables through schema `[versions] new`: one
//! simple, auto-updatable view per table the plan touches, with explicit
//! column lists and `security_invoker`. The versioned step kinds only change
//! those views (and add hidden columns and triggers where the versions
//! write differently); the physical tables keep the old shape until the
//! plan's irreversible phase makes the new shape physical.
//!
//! Everything generated lives in the version schema (functions) or carries
//! the `_cutover_` prefix (hidden columns), so a rollback that drops the
//! schema and the hidden columns leaves the tables as they were.

use std::collections::BTreeMap;

use crate::db::{quote_ident, quote_literal};
use crate::plan::model::Versions;
use crate::plan::{Plan, Step};

pub use super::version_triggers::{
    Writer, drop_write_rule_sql, from_new_version_sql, old_columns, trigger_name, write_rule_sql,
};

/// Prefix of every column cutover adds for a version.
pub const HIDDEN_PREFIX: &str = "_cutover_new_";

/// The comment that marks a schema as a version schema cutover made.
pub fn schema_comment(plan: &Plan) -> String {
    format!("cutover version schema of plan \"{}\"", plan.name)
}

/// The comment once the plan's irreversible phase made the shape physical.
pub fn completed_comment(plan: &Plan) -> String {
    format!("{} (complete)", schema_comment(plan))
}

/// Whether a step kind works through the version schema.
pub fn is_versioned(step: &Step) -> bool {
    step.is_versioned()
}

/// The hidden physical column holding a column added for the new version.
pub fn hidden_column(column: &str) -> String {
    format!("{HIDDEN_PREFIX}{column}")
}

/// The versioned steps of the plan's reversible phases, in order, with
/// their (phase, step) positions.
pub fn versioned_steps(plan: &Plan) -> Vec<((usize, usize), &Step)> {
    plan.phases
        .iter()
        .enumerate()
        .filter(|(_, p)| !p.irreversible)
        .flat_map(|(pi, p)| {
            p.steps
                .iter()
                .enumerate()
                .map(move |(si, s)| ((pi, si), s.get_ref()))
        })
        .filter(|(_, s)| is_versioned(s))
        .collect()
}

/// Table names a versioned step may name before any rename applies: the
/// candidates to look up in the old schema.
pub fn named_tables(step: &Step) -> Vec<String> {
    match step {
        Step::RenameColumn(s) => vec![s.table.clone()],
        Step::RenameTable(s) => vec![s.from.clone()],
        Step::AddColumn(s) => vec![s.table.clone()],
        Step::DropColumn(s) => vec![s.table.clone()],
        Step::AlterColumn(s) => vec![s.table.clone()],
        Step::DropConstraint(s) => vec![s.table.clone()],
        Step::DropNotNull(s) => vec![s.table.clone()],
        _ => Vec::new(),
    }
}

/// One column of a version view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewColumn {
    /// The physical column.
    pub physical: String,
    /// Its name in the new version.
    pub visible: String,
}

/// How the new version sees one physical table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The physical table (in the old schema).
    pub table: String,
    /// The view's name in the new schema.
    pub name: String,
    /// Its columns, in order.
    pub columns: Vec<ViewColumn>,
    /// Physical columns the new version no longer sees (dropped at contract).
    pub dropped: Vec<String>,
    /// Columns added for the new version: (visible name, hidden physical).
    pub added: Vec<(String, String)>,
}

/// The new version's view of every table the given steps touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    /// One view per touched table, in the order first touched.
    pub views: Vec<View>,
}

/// The one column of each constraint a `drop_constraint` names:
/// (physical table, constraint) → column.
pub type ConstraintColumns = BTreeMap<(String, String), String>;

impl Model {
    /// Applies `steps` in order to the old schema's tables (`tables`:
    /// physical name → its columns in order).
    pub fn build(steps: &[&Step], tables: &BTreeMap<String, Vec<String>>) -> Result<Model, String> {
        Model::build_in(steps, tables, &ConstraintColumns::new())
    }

    /// As [`Model::build`], knowing the column of each constraint a
    /// `drop_constraint` names.
    pub fn build_in(
        steps: &[&Step],
        tables: &BTreeMap<String, Vec<String>>,
        constraints: &ConstraintColumns,
    ) -> Result<Model, String> {
        let mut model = Model::default();
        for step in steps {
            model.apply(step, tables, constraints)?;
        }
        Ok(model)
    }

    /// The new version gets its own copy of a column: the view shows a
    /// hidden column under the column's name; the old one is dropped at
    /// contract.
    fn duplicate(
        &mut self,
        table: &str,
        column: &str,
        tables: &BTreeMap<String, Vec<String>>,
        what: &str,
    ) -> Result<(), String> {
        let view = self.view_mut(table, tables, what)?;
        let Some(col) = view.columns.iter_mut().find(|c| c.visible == column) else {
            return Err(format!(
                "{what}: table \"{table}\" has no column \"{column}\""
            ));
        };
        if col.physical.starts_with(HIDDEN_PREFIX) {
            return Err(format!(
                "{what}: column \"{column}\" is already changed or added by an earlier step; \
                 make all its changes in one step"
            ));
        }
        let old = col.physical.clone();
        col.physical = hidden_column(&old);
        view.dropped.push(old);
        Ok(())
    }

    /// The physical table a name of the new version stands for.
    pub fn physical_table(&self, name: &str) -> String {
        self.views
            .iter()
            .find(|view| view.name == name)
            .map_or_else(|| name.to_string(), |view| view.table.clone())
    }

    fn view_mut(
        &mut self,
        name: &str,
        tables: &BTreeMap<String, Vec<String>>,
        what: &str,
    ) -> Result<&mut View, String> {
        if let Some(i) = self.views.iter().position(|v| v.name == name) {
            return Ok(&mut self.views[i]);
        }
        if self.views.iter().any(|v| v.table == name) {
            return Err(format!(
                "{what}: table \"{name}\" was renamed by an earlier step; use its new name"
            ));
        }
        let Some(columns) = tables.get(name) else {
            return Err(format!(
                "{what}: no table \"{name}\" in the old version's schema"
            ));
        };
        self.views.push(View {
            table: name.to_string(),
            name: name.to_string(),
            columns: columns
                .iter()
                .map(|c| ViewColumn {
                    physical: c.clone(),
                    visible: c.clone(),
                })
                .collect(),
            dropped: Vec::new(),
            added: Vec::new(),
        });
        let last = self.views.len() - 1;
        Ok(&mut self.views[last])
    }

    fn apply(
        &mut self,
        step: &Step,
        tables: &BTreeMap<String, Vec<String>>,
        constraints: &ConstraintColumns,
    ) -> Result<(), String> {
        let what = format!("step \"{}\"", step.display_name());
        match step {
            Step::AlterColumn(s) => self.duplicate(&s.table, &s.column, tables, &what)?,
            Step::DropNotNull(s) => self.duplicate(&s.table, &s.column, tables, &what)?,
            Step::DropConstraint(s) => {
                let table = self.physical_table(&s.table);
                let Some(column) = constraints.get(&(table.clone(), s.constraint.clone())) else {
                    return Err(format!(
                        "{what}: table \"{}\" has no constraint \"{}\" on one column",
                        s.table, s.constraint
                    ));
                };
                // The constraint names the physical column; the view may
                // show it renamed.
                let visible = self
                    .view_of(&table)
                    .and_then(|v| v.columns.iter().find(|c| &c.physical == column))
                    .map_or_else(|| column.clone(), |c| c.visible.clone());
                self.duplicate(&s.table, &visible, tables, &what)?
            }
            Step::RenameTable(s) => {
                if self.views.iter().any(|v| v.name == s.to) || tables.contains_key(&s.to) {
                    return Err(format!("{what}: a table \"{}\" already exists", s.to));
                }
                self.view_mut(&s.from, tables, &what)?.name = s.to.clone();
            }
            Step::RenameColumn(s) => {
                let view = self.view_mut(&s.table, tables, &what)?;
                if view.columns.iter().any(|c| c.visible == s.to) {
                    return Err(format!(
                        "{what}: table \"{}\" already has a column \"{}\"",
                        s.table, s.to
                    ));
                }
                let Some(col) = view.columns.iter_mut().find(|c| c.visible == s.from) else {
                    return Err(format!(
                        "{what}: table \"{}\" has no column \"{}\"",
                        s.table, s.from
                    ));
                };
                col.visible = s.to.clone();
            }
            Step::AddColumn(s) => {
                let view = self.view_mut(&s.table, tables, &what)?;
                if view.columns.iter().any(|c| c.visible == s.column) {
                    return Err(format!(
                        "{what}: table \"{}\" already has a column \"{}\"",
                        s.table, s.column
                    ));
                }
                let hidden = hidden_column(&s.column);
                view.columns.push(ViewColumn {
                    physical: hidden.clone(),
                    visible: s.column.clone(),
                });
                view.added.push((s.column.clone(), hidden));
            }
            Step::DropColumn(s) => {
                let view = self.view_mut(&s.table, tables, &what)?;
                let Some(i) = view.columns.iter().position(|c| c.visible == s.column) else {
                    return Err(format!(
                        "{what}: table \"{}\" has no column \"{}\"",
                        s.table, s.column
                    ));
                };
                let col = view.columns.remove(i);
                if col.physical.starts_with(HIDDEN_PREFIX) {
                    return Err(format!(
                        "{what}: \"{}\" was added by this plan; drop the add_column step instead",
                        s.column
                    ));
                }
                view.dropped.push(col.physical);
            }
            _ => {}
        }
        Ok(())
    }

    /// The view a table is seen through, by its physical name.
    pub fn view_of(&self, table: &str) -> Option<&View> {
        self.views.iter().find(|v| v.table == table)
    }

    /// Drops every view of the model (before it is rebuilt).
    pub fn drop_views_sql(&self, v: &Versions) -> String {
        self.views
            .iter()
            .map(|view| {
                format!(
                    "DROP VIEW IF EXISTS {}.{};\n",
                    quote_ident(&v.new),
                    quote_ident(&view.name)
                )
            })
            .collect()
    }

    /// Creates every view of the model.
    pub fn create_views_sql(&self, v: &Versions) -> String {
        self.views
            .iter()
            .map(|view| {
                let cols: Vec<String> = view
                    .columns
                    .iter()
                    .map(|c| {
                        if c.physical == c.visible {
                            quote_ident(&c.physical)
                        } else {
                            format!(
                                "{} AS {}",
                                quote_ident(&c.physical),
                                quote_ident(&c.visible)
                            )
                        }
                    })
                    .collect();
                format!(
                    "CREATE VIEW {}.{} WITH (security_invoker = true) AS SELECT {} FROM {}.{};\n",
                    quote_ident(&v.new),
                    quote_ident(&view.name),
                    cols.join(", "),
                    quote_ident(&v.old),
                    quote_ident(&view.table)
                )
            })
            .collect()
    }
}

/// Creates the version schema (once) and marks it as cutover's.
pub fn create_schema_sql(plan: &Plan, v: &Versions) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {new};\nCOMMENT ON SCHEMA {new} IS {};\n",
        quote_literal(&schema_comment(plan)),
        new = quote_ident(&v.new)
    )
}

/// Drops the version schema with everything cutover made in it (views,
/// functions, and through them the triggers on the physical tables).
pub fn drop_schema_sql(v: &Versions) -> String {
    format!("DROP SCHEMA IF EXISTS {} CASCADE;\n", quote_ident(&v.new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{RenameColumnStep, RenameTableStep};

    fn tables() -> BTreeMap<String, Vec<String>> {
        BTreeMap::from([(
            "users".to_string(),
            vec!["id".to_string(), "name".to_string()],
        )])
    }

    #[test]
    fn renames_change_only_the_view() {
        let v = Versions {
            old: "public".into(),
            new: "app_v2".into(),
        };
        let steps = [
            Step::RenameTable(RenameTableStep {
                name: None,
                from: "users".into(),
                to: "people".into(),
            }),
            Step::RenameColumn(RenameColumnStep {
                name: None,
                table: "people".into(),
                from: "name".into(),
                to: "full_name".into(),
            }),
        ];
        let refs: Vec<&Step> = steps.iter().collect();
        let model = Model::build(&refs, &tables()).expect("builds");
        assert_eq!(
            model.create_views_sql(&v),
            "CREATE VIEW \"app_v2\".\"people\" WITH (security_invoker = true) AS SELECT \"id\", \
             \"name\" AS \"full_name\" FROM \"public\".\"users\";\n"
        );
    }

    #[test]
    fn a_rename_of_a_missing_column_names_it() {
        let steps = [Step::RenameColumn(RenameColumnStep {
            name: None,
            table: "users".into(),
            from: "nope".into(),
            to: "x".into(),
        })];
        let refs: Vec<&Step> = steps.iter().collect();
        let err = Model::build(&refs, &tables()).expect_err("refused");
        assert!(err.contains("no column \"nope\""), "{err}");
    }
}
