//! The fields of the kinds that give the new version its own copy of a
//! column (`alter_column`, `drop_constraint`, `drop_not_null`; they need
//! `[versions]`), and what makes an `alter_column` valid.

use serde::{Deserialize, Serialize};

/// `check = "expression"` or `check = { name, constraint }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum CheckSpec {
    /// The expression over the column (by its name); named by cutover.
    Expr(String),
    /// A named check.
    Named {
        /// The constraint's name after contract.
        name: String,
        /// The expression over the column (by its name).
        constraint: String,
    },
}

/// `unique = true` or `unique = { name }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum UniqueSpec {
    /// Unique (or not), named by cutover.
    Flag(bool),
    /// A named unique constraint.
    Named {
        /// The constraint's name after contract.
        name: String,
    },
}

/// `references = "table(column)"` or `references = { name?, table, column, on_delete? }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ReferencesSpec {
    /// `table(column)`, or `table` for its primary key.
    Target(String),
    /// A foreign key spelled out.
    Named {
        /// The constraint's name after contract.
        name: Option<String>,
        /// The referenced table.
        table: String,
        /// The referenced column.
        column: Option<String>,
        /// `CASCADE`, `SET NULL`, `RESTRICT`… (default NO ACTION).
        on_delete: Option<String>,
    },
}

/// `kind = "alter_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlterColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column, as the new version names it.
    pub column: String,
    /// Its new type (your SQL); default: unchanged.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// NOT NULL in the new version (default: as the column is now).
    pub not_null: Option<bool>,
    /// Its default in the new version (your SQL); default: as now.
    pub default: Option<String>,
    /// A CHECK the new version enforces.
    pub check: Option<CheckSpec>,
    /// Unique in the new version.
    pub unique: Option<UniqueSpec>,
    /// A foreign key the new version enforces.
    pub references: Option<ReferencesSpec>,
    /// The column's comment after contract.
    pub comment: Option<String>,
    /// The new value from the old row (your SQL over the old columns, by
    /// name); default: the column itself.
    pub up: Option<String>,
    /// The old value from the new row (your SQL over the new version's
    /// columns, by name); default: the column itself.
    pub down: Option<String>,
}

/// `kind = "drop_constraint"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropConstraintStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The constraint (on one column) the new version no longer enforces.
    pub constraint: String,
    /// The new value from the old row; default: the column itself.
    pub up: Option<String>,
    /// The old value from the new row, which must satisfy the constraint
    /// for the old version; default: the column itself.
    pub down: Option<String>,
}

/// `kind = "drop_not_null"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropNotNullStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column that may be NULL in the new version.
    pub column: String,
    /// The new value from the old row; default: the column itself.
    pub up: Option<String>,
    /// The old value from the new row (for a NULL, the value the old
    /// version sees, e.g. `coalesce(col, 'unknown')`); default: the column.
    pub down: Option<String>,
}

/// Refuses an `alter_column` that changes nothing or names an unknown
/// foreign-key action.
pub(super) fn validate_alter(s: &AlterColumnStep) -> Result<(), String> {
    let blank = |s: &str| s.trim().is_empty();
    if blank(&s.table) || blank(&s.column) {
        return Err("alter_column needs `table` and `column`".into());
    }
    let changes = s.type_.is_some()
        || s.not_null.is_some()
        || s.default.is_some()
        || s.check.is_some()
        || s.unique.is_some()
        || s.references.is_some()
        || s.comment.is_some();
    if !changes {
        return Err(format!(
            "alter_column of {}.{} changes nothing; give at least one of `type`, \
             `not_null`, `default`, `check`, `unique`, `references`, `comment`",
            s.table, s.column
        ));
    }
    if s.type_.as_deref().is_some_and(blank) {
        return Err("alter_column `type` is empty".into());
    }
    if let Some(ReferencesSpec::Named {
        on_delete: Some(action),
        ..
    }) = &s.references
        && ![
            "NO ACTION",
            "RESTRICT",
            "CASCADE",
            "SET NULL",
            "SET DEFAULT",
        ]
        .contains(&action.to_uppercase().as_str())
    {
        return Err(format!(
            "alter_column `references.on_delete` \"{action}\" must be one of NO ACTION, \
             RESTRICT, CASCADE, SET NULL, SET DEFAULT"
        ));
    }
    if let Some(ReferencesSpec::Target(t)) = &s.references
        && (blank(t) || t.contains(';') || t.matches('(').count() > 1)
    {
        return Err(format!(
            "alter_column `references` \"{t}\" must be `table(column)`, or `table` for \
             its primary key"
        ));
    }
    Ok(())
}
