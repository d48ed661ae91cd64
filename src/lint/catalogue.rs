//! What each rule flags and the safe way, for `cutover lint --rules`: the
//! rule table an operator reads before writing a plan.

use super::Rule;

impl Rule {
    /// What the rule flags, in one line.
    pub fn flags(self) -> &'static str {
        match self {
            Rule::CreateIndexNotConcurrently => "CREATE INDEX on an existing table",
            Rule::DropIndexNotConcurrently => "DROP INDEX",
            Rule::ConcurrentlyInTransaction => {
                "CONCURRENTLY / VACUUM in a multi-statement step or after BEGIN"
            }
            Rule::ConstraintWithoutNotValid => {
                "ADD CHECK / FOREIGN KEY without NOT VALID; ADD COLUMN … DEFAULT x REFERENCES t; ADD COLUMN … CHECK (…) inline"
            }
            Rule::SetNotNullScans => "SET NOT NULL without a validated CHECK (… IS NOT NULL)",
            Rule::AddColumnRewrites => {
                "ADD COLUMN with a volatile default (any default before PostgreSQL 11), stored generated or identity column"
            }
            Rule::AddColumnNotNull => "ADD COLUMN … NOT NULL without a default",
            Rule::AlterTypeRewrites => {
                "ALTER COLUMN TYPE that rewrites (varchar widening, varchar → text, numeric precision up are exempt)"
            }
            Rule::UniqueWithoutIndex => "ADD UNIQUE / PRIMARY KEY without USING INDEX",
            Rule::RenameBeforeContract => {
                "RENAME of a column or table before the irreversible phase"
            }
            Rule::DropBeforeContract => "DROP COLUMN / TABLE before the irreversible phase",
            Rule::UpdateWithoutWhere => "UPDATE without WHERE",
            Rule::DeleteWithoutWhere => "DELETE without WHERE",
            Rule::VacuumFull => "VACUUM FULL (VACUUM (FULL false) / (FULL off) is plain VACUUM)",
            Rule::Cluster => "CLUSTER",
            Rule::ReindexNotConcurrently => "REINDEX without CONCURRENTLY",
            Rule::Unparsable => "text the parser rejects",
            Rule::FragmentEscapes => {
                "a set/where/when/forward/backward/column expression/definition that escapes the statement cutover builds around it"
            }
            Rule::FragmentUnparsable => "such a fragment that is not what its field stands for",
            Rule::ValidateInSameTransaction => {
                "VALIDATE CONSTRAINT in the transaction (BEGIN block or multi-statement step) whose ADD … NOT VALID made it"
            }
            Rule::DetachPartitionNotConcurrently => {
                "DETACH PARTITION without CONCURRENTLY (FINALIZE exempt)"
            }
            Rule::AttachPartitionScans => {
                "ATTACH PARTITION of an existing table with no validated CHECK on it"
            }
            Rule::DomainConstraintWithoutNotValid => {
                "ALTER DOMAIN … ADD CONSTRAINT without NOT VALID; ALTER DOMAIN … SET NOT NULL"
            }
            Rule::CreateDomainWithCheck => "CREATE DOMAIN … CHECK",
            Rule::ExcludeConstraint => "ADD CONSTRAINT … EXCLUDE",
            Rule::Truncate => "TRUNCATE, with or without CASCADE",
            Rule::DropDefaultNotNull => {
                "DROP DEFAULT before contract, unless the column is known to accept NULL"
            }
            Rule::DropNotNullBeforeContract => "DROP NOT NULL before the irreversible phase",
            Rule::DropDatabase => "DROP DATABASE",
            Rule::DropSchemaCascade => "DROP SCHEMA … CASCADE",
            Rule::SetLoggedRewrites => "SET LOGGED / SET UNLOGGED",
            Rule::SetTablespaceRewrites => "ALTER TABLE … SET TABLESPACE",
            Rule::RefreshNotConcurrently => "REFRESH MATERIALIZED VIEW without CONCURRENTLY",
            Rule::TransactionLeftOpen => {
                "BEGIN without COMMIT/ROLLBACK by the end of the file or step"
            }
        }
    }

    /// The safe way, in one line.
    pub fn safe_way(self) -> &'static str {
        match self {
            Rule::CreateIndexNotConcurrently => "a create_index step",
            Rule::DropIndexNotConcurrently => "DROP INDEX CONCURRENTLY",
            Rule::ConcurrentlyInTransaction => "a step of its own",
            Rule::ConstraintWithoutNotValid => "a constraint step (add the column plainly first)",
            Rule::SetNotNullScans => "a not_null step",
            Rule::AddColumnRewrites => "add plain, SET DEFAULT, backfill",
            Rule::AddColumnNotNull => "nullable, backfill, not_null",
            Rule::AlterTypeRewrites => {
                "alter_column with [versions]; or new column, sync_trigger, backfill, swap"
            }
            Rule::UniqueWithoutIndex => "a constraint step with UNIQUE or PRIMARY KEY",
            Rule::RenameBeforeContract => {
                "rename_column / rename_table with [versions]; or add alongside and rename in contract"
            }
            Rule::DropBeforeContract => "drop_column with [versions]; or move it to contract",
            Rule::UpdateWithoutWhere => "a backfill step",
            Rule::DeleteWithoutWhere => "batches, or drop in contract",
            Rule::VacuumFull => "VACUUM (ANALYZE); pg_repack",
            Rule::Cluster => "pg_repack --order-by",
            Rule::ReindexNotConcurrently => "REINDEX … CONCURRENTLY",
            Rule::Unparsable => "fix it, or allow_unsafe",
            Rule::FragmentEscapes => "one expression, one assignment list, or one constraint",
            Rule::FragmentUnparsable => "fix its syntax",
            Rule::ValidateInSameTransaction => "VALIDATE in a later step; a constraint step",
            Rule::DetachPartitionNotConcurrently => {
                "DETACH PARTITION … CONCURRENTLY in a sql step of its own (PostgreSQL 14+)"
            }
            Rule::AttachPartitionScans => {
                "a CHECK matching the bound, NOT VALID then VALIDATE, then ATTACH"
            }
            Rule::DomainConstraintWithoutNotValid => {
                "ADD … NOT VALID, VALIDATE in a later step; or a table CHECK via a constraint step"
            }
            Rule::CreateDomainWithCheck => {
                "the domain without the CHECK, then ALTER DOMAIN … NOT VALID + VALIDATE"
            }
            Rule::ExcludeConstraint => {
                "UNIQUE via a constraint step if enough; else new table, copy_rows, sync_trigger, swap"
            }
            Rule::Truncate => "batched DELETE; drop the table in contract",
            Rule::DropDefaultNotNull => {
                "keep the default until the app writes the column; drop it in contract"
            }
            Rule::DropNotNullBeforeContract => {
                "drop_not_null with [versions]; or move it to contract"
            }
            Rule::DropDatabase => "not from a migration",
            Rule::DropSchemaCascade => "drop objects by name in contract; no CASCADE",
            Rule::SetLoggedRewrites => "new table, copy_rows, sync_trigger, swap",
            Rule::SetTablespaceRewrites => "pg_repack --tablespace; or copy and swap",
            Rule::RefreshNotConcurrently => {
                "REFRESH … CONCURRENTLY (needs a unique index on the view)"
            }
            Rule::TransactionLeftOpen => "COMMIT in the same file or step",
        }
    }
}

/// The rule table, one rule per paragraph: name, what it flags, the safe way.
pub fn rule_table() -> String {
    let mut out = String::new();
    for rule in Rule::ALL {
        out.push_str(&format!(
            "{}\n  flags:    {}\n  safe way: {}\n",
            rule.name(),
            rule.flags(),
            rule.safe_way()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_in_the_table_with_what_it_flags_and_the_safe_way() {
        let table = rule_table();
        for rule in Rule::ALL {
            assert!(table.contains(rule.name()), "{} missing", rule.name());
            assert!(!rule.flags().is_empty() && !rule.safe_way().is_empty());
        }
        assert_eq!(table.matches("safe way:").count(), Rule::ALL.len());
    }
}
