//! `not_null`: a NOT VALID check, its validation, then SET NOT NULL
//! (proved by the check) and the check dropped.

use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::NotNullStep;

/// The temporary check's name: `<table>_<column>_not_null` (≤ 63 bytes).
pub fn check_name(spec: &NotNullStep) -> String {
    let table = crate::db::ident::split_qualified(&spec.table)
        .pop()
        .unwrap_or_default();
    let mut name = format!("{table}_{}_not_null", spec.column);
    while name.len() > 63 {
        name.remove(0);
    }
    name
}

/// The first statement: the check, NOT VALID (brief lock, no scan).
pub fn add_sql(spec: &NotNullStep) -> String {
    format!(
        "ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID",
        quote_qualified(&spec.table),
        quote_ident(&check_name(spec)),
        quote_ident(&spec.column)
    )
}

/// The second: validation (scans under SHARE UPDATE EXCLUSIVE).
pub fn validate_sql(spec: &NotNullStep) -> String {
    format!(
        "ALTER TABLE {} VALIDATE CONSTRAINT {}",
        quote_qualified(&spec.table),
        quote_ident(&check_name(spec))
    )
}

/// The last two, in one transaction: SET NOT NULL (proved by the check,
/// no scan) and dropping the check.
pub fn finish_sql(spec: &NotNullStep) -> String {
    format!(
        "ALTER TABLE {0} ALTER COLUMN {1} SET NOT NULL;\n\
         ALTER TABLE {0} DROP CONSTRAINT IF EXISTS {2}",
        quote_qualified(&spec.table),
        quote_ident(&spec.column),
        quote_ident(&check_name(spec))
    )
}

/// Drops the temporary check (clean-up after an interrupted step).
pub fn drop_check_sql(spec: &NotNullStep) -> String {
    format!(
        "ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}",
        quote_qualified(&spec.table),
        quote_ident(&check_name(spec))
    )
}

/// Rollback: DROP NOT NULL (and any leftover check).
pub fn undo_sql(spec: &NotNullStep) -> String {
    format!(
        "ALTER TABLE {0} ALTER COLUMN {1} DROP NOT NULL;\nALTER TABLE {0} DROP CONSTRAINT IF EXISTS {2}",
        quote_qualified(&spec.table),
        quote_ident(&spec.column),
        quote_ident(&check_name(spec))
    )
}
