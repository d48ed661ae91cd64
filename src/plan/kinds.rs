//! The fields of the kinds that work on the tables in place (`sql`,
//! `create_index`, `backfill`, `verify`, `copy_rows`, `sync_trigger`,
//! `not_null`, `constraint`, `swap`, `gate`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `kind = "sql"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The statement.
    pub sql: String,
    /// The statement that undoes it.
    pub rollback: Option<String>,
    /// Why a statement the linter flags is acceptable here.
    pub allow_unsafe: Option<String>,
}

/// `kind = "create_index"`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIndexStep {
    /// The index name (also the step's name).
    pub name: String,
    /// The table.
    pub table: String,
    /// Column names or expressions (an expression is written in parentheses).
    pub columns: Vec<String>,
    /// `CREATE UNIQUE INDEX`.
    #[serde(default)]
    pub unique: bool,
    /// Partial index predicate.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// Index method (`btree`, `gin`, …).
    pub using: Option<String>,
    /// Non-key columns stored in the index (`INCLUDE (…)`), by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Storage parameters (`WITH (fillfactor = 90, …)`): name → number,
    /// boolean or string.
    #[serde(default, rename = "with", skip_serializing_if = "BTreeMap::is_empty")]
    pub with: BTreeMap<String, toml::Value>,
}

/// `kind = "backfill"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BackfillStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table to update.
    pub table: String,
    /// A unique, indexed column to walk in key order.
    pub key: String,
    /// The `SET` list (your SQL).
    pub set: String,
    /// Rows that still need the update (your SQL).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// First batch size (dynamic afterwards).
    pub batch_size: Option<u64>,
    /// VACUUM the table behind the batches while they are paced (default
    /// on), so later batches reuse the space of the rows already rewritten
    /// instead of extending the table.
    #[serde(default = "yes")]
    pub vacuum_behind: bool,
    /// Sessions walking disjoint key ranges at once, each with its own
    /// checkpoint (default 1).
    pub workers: Option<u32>,
}

fn yes() -> bool {
    true
}

/// `kind = "verify"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// A query returning one value.
    pub sql: Option<String>,
    /// The value it must return.
    pub expect: Option<toml::Value>,
    /// Or: compare two tables (or columns) chunk by chunk.
    pub compare: Option<Compare>,
}

/// `compare = { left, right, key, columns? }`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// One table.
    pub left: String,
    /// The other.
    pub right: String,
    /// The key both are walked by (unique, indexed on `left`).
    pub key: String,
    /// The key's name in `right`, when different.
    pub right_key: Option<String>,
    /// Columns to compare (default: all of `left`'s).
    pub columns: Option<Vec<String>>,
    /// `right`'s columns, positionally, when named differently.
    pub right_columns: Option<Vec<String>>,
    /// Rows per chunk.
    pub chunk: Option<u64>,
}

/// Target columns and where their values come from: a list of names (the
/// same in both tables) or a table `target = "source expression"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum ColumnMap {
    /// The same names on both sides.
    Same(Vec<String>),
    /// `target = "expression over the source"`.
    Mapped(std::collections::BTreeMap<String, String>),
}

impl ColumnMap {
    /// (target column, source expression) pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        match self {
            ColumnMap::Same(cols) => cols
                .iter()
                .map(|c| (c.clone(), crate::db::quote_ident(c)))
                .collect(),
            ColumnMap::Mapped(map) => map.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}

/// `kind = "copy_rows"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRowsStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// Source table.
    pub from: String,
    /// Target table.
    pub to: String,
    /// The source's unique, indexed key.
    pub key: String,
    /// Target columns and their source expressions.
    pub columns: ColumnMap,
    /// Only rows matching this (your SQL).
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// First batch size (dynamic afterwards).
    pub batch_size: Option<u64>,
    /// Sessions walking disjoint key ranges at once, each with its own
    /// checkpoint (default 1).
    pub workers: Option<u32>,
}

/// `kind = "sync_trigger"`: one of three shapes.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTriggerStep {
    /// Required: names the function and trigger `cutover_sync_<name>`.
    pub name: String,
    /// The table (column modes).
    pub table: Option<String>,
    /// One way: assignments to NEW (`"full_name = NEW.name"`).
    pub set: Option<String>,
    /// One way: only when this holds.
    pub when: Option<String>,
    /// Two ways: the old column.
    pub old: Option<String>,
    /// Two ways: the new column.
    pub new: Option<String>,
    /// Two ways: new's value from old (default `NEW.<old>`).
    pub forward: Option<String>,
    /// Two ways: old's value from new (default `NEW.<new>`).
    pub backward: Option<String>,
    /// Table copy: the source table.
    pub from: Option<String>,
    /// Table copy: the target table.
    pub to: Option<String>,
    /// Table copy: the source's key.
    pub key: Option<String>,
    /// Table copy: the target's key (default: same name).
    pub to_key: Option<String>,
    /// Table copy: target columns and source expressions.
    pub columns: Option<ColumnMap>,
}

/// `kind = "not_null"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotNullStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

/// `kind = "constraint"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConstraintStep {
    /// The constraint's name (also the step's).
    pub name: String,
    /// The table.
    pub table: String,
    /// `CHECK (…)`, `FOREIGN KEY (…) REFERENCES …`, `UNIQUE (…)`,
    /// `PRIMARY KEY (…)` or `EXCLUDE USING … (…)`.
    pub definition: String,
    /// EXCLUDE only: why building it under ACCESS EXCLUSIVE is acceptable
    /// (an exclusion constraint has no NOT VALID and no USING INDEX).
    pub allow_unsafe: Option<String>,
}

/// One rename of a swap.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// Current name (a table, index or sequence; or a column with `table`).
    pub from: String,
    /// New name (unqualified).
    pub to: String,
    /// For a column rename: its table.
    pub table: Option<String>,
}

/// `kind = "swap"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SwapStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// The renames, in order.
    pub renames: Vec<Rename>,
    /// Sync triggers (by name) whose functions follow the renames: they are
    /// re-created in the same transaction with the new names.
    #[serde(default)]
    pub sync_triggers: Vec<String>,
}

/// `kind = "gate"`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateStep {
    /// Shown on screen and in the journal.
    pub name: Option<String>,
    /// What the operator should do before advancing.
    pub message: String,
}
