//! What the statements so far have established, plus what `cutover check`
//! read from the database.

use std::collections::{HashMap, HashSet};

use crate::sql::{Action, ConstraintKind, Kind, Rel, Statement};

/// What the statements so far have established (tables created, column
/// types, validated NOT NULL checks), plus what `cutover check` read from
/// the database.
#[derive(Debug, Clone)]
pub struct Schema {
    /// The server's major version.
    pub pg_major: u32,
    created: HashSet<String>,
    columns: HashMap<(String, String), String>,
    not_null_checks: HashMap<String, (String, String)>,
    validated: HashSet<(String, String)>,
    not_null: HashSet<(String, String)>,
    nullable: HashSet<(String, String)>,
    checks: HashMap<String, String>,
    checked: HashSet<String>,
}

impl Schema {
    /// Nothing known yet.
    pub fn new(pg_major: u32) -> Schema {
        Schema {
            pg_major,
            created: HashSet::new(),
            columns: HashMap::new(),
            not_null_checks: HashMap::new(),
            validated: HashSet::new(),
            not_null: HashSet::new(),
            nullable: HashSet::new(),
            checks: HashMap::new(),
            checked: HashSet::new(),
        }
    }

    /// The table was created earlier in the plan (nobody uses it yet).
    pub fn created(&self, table: &Rel) -> bool {
        self.created.contains(&table.name)
    }

    /// Records that a table is new (a plan step such as `copy_rows` made it).
    pub fn mark_created(&mut self, table: &Rel) {
        self.created.insert(table.name.clone());
    }

    /// The column's current type, when known.
    pub fn column_type(&self, table: &Rel, column: &str) -> Option<String> {
        self.columns
            .get(&(table.name.clone(), column.to_string()))
            .cloned()
    }

    /// Records a column's type (from the plan, or from the database).
    pub fn set_column_type(&mut self, table: &Rel, column: &str, ty: &str) {
        self.columns
            .insert((table.name.clone(), column.to_string()), ty.to_string());
    }

    /// A validated `CHECK (column IS NOT NULL)` exists, so SET NOT NULL
    /// needs no scan (PostgreSQL 12+).
    pub fn has_validated_not_null_check(&self, table: &Rel, column: &str) -> bool {
        self.pg_major >= 12
            && self
                .validated
                .contains(&(table.name.clone(), column.to_string()))
    }

    /// Records a validated `CHECK (column IS NOT NULL)`.
    pub fn mark_not_null_checked(&mut self, table: &Rel, column: &str) {
        self.validated
            .insert((table.name.clone(), column.to_string()));
    }

    /// Records that a column is NOT NULL (from the plan, or from the
    /// database).
    pub fn mark_not_null(&mut self, table: &Rel, column: &str) {
        let key = (table.name.clone(), column.to_string());
        self.nullable.remove(&key);
        self.not_null.insert(key);
    }

    /// Records that a column accepts NULL (from the plan, or from the
    /// database).
    pub fn mark_nullable(&mut self, table: &Rel, column: &str) {
        let key = (table.name.clone(), column.to_string());
        self.not_null.remove(&key);
        self.nullable.insert(key);
    }

    /// The column is known to accept NULL.
    pub fn is_nullable(&self, table: &Rel, column: &str) -> bool {
        self.nullable
            .contains(&(table.name.clone(), column.to_string()))
    }

    /// The column is known to be NOT NULL.
    pub fn is_not_null(&self, table: &Rel, column: &str) -> bool {
        self.not_null
            .contains(&(table.name.clone(), column.to_string()))
    }

    /// Records a validated CHECK constraint on a table (which can prove a
    /// partition's bound).
    pub fn mark_checked(&mut self, table: &Rel) {
        self.checked.insert(table.name.clone());
    }

    /// The table has a validated CHECK constraint.
    pub fn has_validated_check(&self, table: &Rel) -> bool {
        self.checked.contains(&table.name)
    }

    /// Takes in what a statement establishes.
    pub fn learn(&mut self, stmt: &Statement) {
        match &stmt.kind {
            Kind::CreateTable {
                table,
                columns,
                not_null,
                ..
            } => {
                self.mark_created(table);
                for (c, ty) in columns {
                    self.set_column_type(table, c, ty);
                }
                for c in not_null {
                    self.mark_not_null(table, c);
                }
            }
            Kind::AlterTable { table, actions } => {
                for a in actions {
                    match a {
                        Action::AddColumn {
                            column,
                            ty,
                            not_null,
                            constraints,
                            ..
                        } => {
                            self.set_column_type(table, column, ty);
                            if *not_null || constraints.contains(&ConstraintKind::PrimaryKey) {
                                self.mark_not_null(table, column);
                            } else {
                                self.mark_nullable(table, column);
                            }
                        }
                        Action::SetNotNull { column } => self.mark_not_null(table, column),
                        Action::DropNotNull { column } => self.mark_nullable(table, column),
                        Action::SetType { column, ty, .. } => {
                            self.set_column_type(table, column, ty)
                        }
                        Action::AddConstraint {
                            kind: ConstraintKind::Check,
                            name,
                            not_valid,
                            check: Some(expr),
                            ..
                        } => {
                            if !not_valid {
                                self.mark_checked(table);
                            }
                            if let Some(name) = name {
                                self.checks.insert(name.clone(), table.name.clone());
                            }
                            if let Some(column) = not_null_column(expr) {
                                if !not_valid {
                                    self.mark_not_null_checked(table, &column);
                                }
                                if let Some(name) = name {
                                    self.not_null_checks
                                        .insert(name.clone(), (table.name.clone(), column));
                                }
                            }
                        }
                        Action::ValidateConstraint { name } => {
                            if let Some(t) = self.checks.get(name).cloned() {
                                self.checked.insert(t);
                            }
                            if let Some(pair) = self.not_null_checks.get(name) {
                                self.validated.insert(pair.clone());
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// `col IS NOT NULL` (in any parentheses) → `col`.
fn not_null_column(expr: &str) -> Option<String> {
    let flat: String = expr.chars().filter(|c| *c != '(' && *c != ')').collect();
    let words: Vec<&str> = flat.split_whitespace().collect();
    match words.as_slice() {
        [col, is, not, null]
            if is.eq_ignore_ascii_case("is")
                && not.eq_ignore_ascii_case("not")
                && null.eq_ignore_ascii_case("null") =>
        {
            crate::db::ident::fold_qualified(col).pop()
        }
        _ => None,
    }
}
