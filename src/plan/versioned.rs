//! The fields of the kinds that change only what the new version sees
//! through its version schema (`rename_column`, `rename_table`,
//! `add_column`, `drop_column`; they need `[versions]`).

use serde::{Deserialize, Serialize};

/// `kind = "rename_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenameColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column's current name.
    pub from: String,
    /// Its name in the new version.
    pub to: String,
}

/// `kind = "rename_table"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RenameTableStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table's current name.
    pub from: String,
    /// Its name in the new version.
    pub to: String,
}

/// `kind = "add_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AddColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The new column's name.
    pub column: String,
    /// Its type (your SQL).
    #[serde(rename = "type")]
    pub type_: String,
    /// The value rows written by the old version (and existing rows) get: an
    /// expression over the row's columns (your SQL); default NULL.
    pub up: Option<String>,
}

/// `kind = "drop_column"` (needs `[versions]`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DropColumnStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table, as the new version names it.
    pub table: String,
    /// The column the new version no longer sees.
    pub column: String,
    /// The value rows written by the new version give it until contract: an
    /// expression over the row's columns (your SQL); default: the column's
    /// default.
    pub down: Option<String>,
}
