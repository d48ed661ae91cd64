//! The rules on ALTER TABLE's sub-commands.

use super::{Role, Rule, Schema, Scope, type_change_rewrites};
use crate::sql::{Action, ConstraintKind, Rel};

pub(super) fn alter_action(
    table: &Rel,
    a: &Action,
    schema: &Schema,
    scope: &Scope,
    phase: &dyn Fn() -> String,
    report: &mut dyn FnMut(Rule, String, &str),
) {
    let new_table = schema.created(table);
    let rollback = scope.role == Role::Rollback;
    let contract_rules = !rollback && !scope.irreversible;
    match a {
        Action::AddColumn {
            column,
            default,
            not_null,
            generated,
            constraints,
            references,
            ..
        } if !new_table => {
            if *generated {
                report(
                    Rule::AddColumnRewrites,
                    format!(
                        "ADD COLUMN {column} as a generated or identity column fills every row: \
                         {table} is rewritten under ACCESS EXCLUSIVE (reads and writes wait)"
                    ),
                    "add a plain nullable column, keep it filled for new writes with a \
                     `sync_trigger`, and fill existing rows with a `backfill` step",
                );
            } else if let Some((expr, volatile)) = default {
                if *volatile {
                    report(
                        Rule::AddColumnRewrites,
                        format!(
                            "ADD COLUMN {column} with the volatile default {expr} rewrites \
                             {table} under ACCESS EXCLUSIVE (reads and writes wait)"
                        ),
                        "add the column without a default, then SET DEFAULT for new rows in a \
                         second statement, and fill existing rows with a `backfill` step",
                    );
                } else if schema.pg_major < 11 {
                    report(
                        Rule::AddColumnRewrites,
                        format!(
                            "ADD COLUMN {column} with a default rewrites {table} on PostgreSQL \
                             {} (only 11 and later add it without a rewrite)",
                            schema.pg_major
                        ),
                        "add the column without a default, then SET DEFAULT for new rows in a \
                         second statement, and fill existing rows with a `backfill` step",
                    );
                }
            }
            if *not_null && default.is_none() && !generated {
                report(
                    Rule::AddColumnNotNull,
                    format!(
                        "ADD COLUMN {column} NOT NULL without a default fails on a table that has \
                         rows, and checks every row under ACCESS EXCLUSIVE"
                    ),
                    "add it nullable, fill it with a `backfill` step, then use a `not_null` step",
                );
            }
            let has_default = default
                .as_ref()
                .is_some_and(|(expr, _)| !expr.trim().eq_ignore_ascii_case("null"));
            if constraints.contains(&ConstraintKind::ForeignKey) && has_default {
                report(
                    Rule::ConstraintWithoutNotValid,
                    format!(
                        "ADD COLUMN {column} with a DEFAULT and REFERENCES {}: every row gets the \
                         default, and the foreign key is validated with a full scan while {table} \
                         is locked ACCESS EXCLUSIVE (reads and writes wait)",
                        references
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    ),
                    "add the column plainly (no default: there is nothing to validate), then add \
                     the foreign key with a `constraint` step (NOT VALID, then VALIDATE), and set \
                     the default afterwards",
                );
            }
            if constraints.contains(&ConstraintKind::Check) {
                report(
                    Rule::ConstraintWithoutNotValid,
                    format!(
                        "ADD COLUMN {column} with an inline CHECK: the check is validated against \
                         every row while {table} is locked ACCESS EXCLUSIVE (reads and writes wait)"
                    ),
                    "add the column plainly, then add the CHECK with a `constraint` step (NOT \
                     VALID, then VALIDATE in its own transaction)",
                );
            }
            if let Some(kind) = constraints
                .iter()
                .find(|k| matches!(k, ConstraintKind::Unique | ConstraintKind::PrimaryKey))
            {
                report(
                    Rule::UniqueWithoutIndex,
                    format!(
                        "ADD COLUMN {column} {} builds its index under ACCESS EXCLUSIVE",
                        kind.sql()
                    ),
                    if *kind == ConstraintKind::PrimaryKey {
                        "add the column plainly, fill it, then use a `constraint` step with \
                         PRIMARY KEY (…) (index built CONCURRENTLY, NOT NULL proved by a \
                         validated check, then attached USING INDEX)"
                    } else {
                        "add the column plainly, then use a `constraint` step with UNIQUE (…) \
                         (index built CONCURRENTLY, then attached USING INDEX)"
                    },
                );
            }
        }
        Action::SetType { column, ty, using } if !new_table => {
            let old = schema.column_type(table, column);
            match type_change_rewrites(old.as_deref(), ty, *using) {
                Some(false) => {}
                Some(true) => report(
                    Rule::AlterTypeRewrites,
                    format!(
                        "ALTER COLUMN {column} TYPE {ty}{} rewrites {table} and its indexes under \
                         ACCESS EXCLUSIVE: reads and writes wait until it is done",
                        old.map(|o| format!(" (from {o})")).unwrap_or_default()
                    ),
                    "add a column of the new type, keep it in step with a `sync_trigger`, \
                     `backfill` it and `swap` the names (see plans/change_type_int_to_bigint.toml)",
                ),
                None => report(
                    Rule::AlterTypeRewrites,
                    format!(
                        "ALTER COLUMN {column} TYPE {ty} may rewrite {table} under ACCESS \
                         EXCLUSIVE: the column's current type is not known offline"
                    ),
                    "run `cutover check`, which reads the current type from the database (a \
                     binary-compatible change such as varchar widening or varchar → text does \
                     not rewrite); otherwise add a new column, sync, backfill and `swap`",
                ),
            }
        }
        Action::SetNotNull { column }
            if !new_table && !schema.has_validated_not_null_check(table, column) =>
        {
            report(
                Rule::SetNotNullScans,
                format!(
                    "SET NOT NULL on {table}.{column} scans the whole table under ACCESS \
                     EXCLUSIVE: reads and writes wait until it is done"
                ),
                "use a `not_null` step: it validates CHECK (… IS NOT NULL) first without \
                 blocking, so SET NOT NULL needs no scan",
            )
        }
        Action::AddConstraint {
            kind: kind @ (ConstraintKind::Check | ConstraintKind::ForeignKey),
            not_valid: false,
            ..
        } if !new_table => report(
            Rule::ConstraintWithoutNotValid,
            format!(
                "ADD CONSTRAINT … {} on {table} without NOT VALID checks every row under {}: \
                 writes wait until it is done",
                kind.sql(),
                if *kind == ConstraintKind::Check {
                    "ACCESS EXCLUSIVE (reads wait too)"
                } else {
                    "SHARE ROW EXCLUSIVE on both tables"
                }
            ),
            "use a `constraint` step (NOT VALID, then VALIDATE in its own transaction), or add \
             NOT VALID here and VALIDATE CONSTRAINT in a later step",
        ),
        Action::AddConstraint {
            kind: kind @ (ConstraintKind::Unique | ConstraintKind::PrimaryKey),
            using_index: false,
            ..
        } if !new_table => report(
            Rule::UniqueWithoutIndex,
            format!(
                "ADD {} on {table} builds its index under ACCESS EXCLUSIVE: reads and writes wait \
                 for the whole build",
                kind.sql()
            ),
            if *kind == ConstraintKind::PrimaryKey {
                "use a `constraint` step with PRIMARY KEY (…): it builds the index CONCURRENTLY, \
                 makes the key columns NOT NULL through validated checks, then adds the \
                 constraint USING INDEX"
            } else {
                "use a `constraint` step with UNIQUE (…): it builds the index CONCURRENTLY, then \
                 adds the constraint USING INDEX"
            },
        ),
        Action::AddConstraint {
            kind: ConstraintKind::Exclude,
            ..
        } if !new_table => report(
            Rule::ExcludeConstraint,
            format!(
                "ADD CONSTRAINT … EXCLUDE on {table} builds its index under ACCESS EXCLUSIVE: \
                 reads and writes wait for the whole build (an exclusion constraint cannot be \
                 added NOT VALID or USING INDEX)"
            ),
            "if uniqueness is enough, use a `constraint` step with UNIQUE (built CONCURRENTLY); \
             otherwise add the exclusion constraint on a new table (copy_rows, sync_trigger, \
             swap), or in a maintenance window with `allow_unsafe`",
        ),
        Action::DetachPartition {
            partition,
            concurrently: false,
        } if !new_table => report(
            Rule::DetachPartitionNotConcurrently,
            format!(
                "DETACH PARTITION {partition} without CONCURRENTLY takes ACCESS EXCLUSIVE on \
                 {table}: every read and write of the partitioned table waits{}",
                if schema.pg_major < 14 {
                    format!(
                        " (CONCURRENTLY needs PostgreSQL 14; this is {})",
                        schema.pg_major
                    )
                } else {
                    String::new()
                }
            ),
            if schema.pg_major >= 14 {
                "write ALTER TABLE … DETACH PARTITION … CONCURRENTLY in a `sql` step of its own \
                 (it runs outside a transaction, which cutover does for a one-statement step)"
            } else {
                "upgrade to PostgreSQL 14+ for DETACH … CONCURRENTLY; until then detach in a \
                 quiet moment with a short lock_timeout, and say so with `allow_unsafe`"
            },
        ),
        Action::AttachPartition { partition }
            if !new_table
                && !rollback
                && !schema.created(partition)
                && !schema.has_validated_check(partition) =>
        {
            report(
                Rule::AttachPartitionScans,
                format!(
                    "ATTACH PARTITION {partition} scans {partition} under ACCESS EXCLUSIVE to \
                     prove every row fits the partition bound{}",
                    if schema.pg_major < 12 {
                        format!(
                            ", and on PostgreSQL {} holds ACCESS EXCLUSIVE on {table} as well",
                            schema.pg_major
                        )
                    } else {
                        String::new()
                    }
                ),
                "first add a CHECK matching the bound to the partition (NOT VALID, then VALIDATE \
                 in a later step, or a `constraint` step); ATTACH then skips the scan, and the \
                 CHECK can be dropped afterwards",
            )
        }
        Action::Logged if !new_table => report(
            Rule::SetLoggedRewrites,
            format!(
                "SET LOGGED / SET UNLOGGED rewrites {table} and its indexes under ACCESS \
                 EXCLUSIVE (reads and writes wait); SET LOGGED also writes the whole table to the \
                 WAL, which replicas must replay"
            ),
            "create a new table with the persistence you want, fill it with `copy_rows` kept \
             current by a `sync_trigger`, and `swap` the names",
        ),
        Action::SetTablespace if !new_table => report(
            Rule::SetTablespaceRewrites,
            format!(
                "SET TABLESPACE copies every file of {table} under ACCESS EXCLUSIVE: reads and \
                 writes wait until the copy is done"
            ),
            "move it online with pg_repack --tablespace, or copy it (`copy_rows` + \
             `sync_trigger` + `swap`) into a table created in the new tablespace",
        ),
        Action::DropDefault { column }
            if !new_table && contract_rules && !schema.is_nullable(table, column) =>
        {
            report(
                Rule::DropDefaultNotNull,
                if schema.is_not_null(table, column) {
                    format!(
                        "DROP DEFAULT on {table}.{column}, which is NOT NULL, in {}: the running \
                         application's inserts that leave {column} out start failing",
                        phase()
                    )
                } else {
                    format!(
                        "DROP DEFAULT on {table}.{column} in {}: if the column is NOT NULL (not \
                         known offline), the running application's inserts that leave {column} \
                         out start failing; if not, they start writing NULL",
                        phase()
                    )
                },
                "keep the default until the application always writes the column; drop it in the \
                 irreversible contract phase (or DROP NOT NULL first, there too)",
            )
        }
        Action::DropNotNull { column } if !new_table && contract_rules => report(
            Rule::DropNotNullBeforeContract,
            format!(
                "DROP NOT NULL on {table}.{column} in {}: code that relies on it may read NULLs \
                 as soon as anyone writes one, and rolling back means SET NOT NULL again, which \
                 scans the table under ACCESS EXCLUSIVE",
                phase()
            ),
            "move it to the irreversible contract phase (`irreversible = true`), after the \
             application no longer needs the column filled",
        ),
        Action::RenameColumn | Action::RenameTable if contract_rules && !new_table => report(
            Rule::RenameBeforeContract,
            format!(
                "RENAME on {table} in {}: code using the old name fails the moment it commits",
                phase()
            ),
            "add the new name alongside (new column + `sync_trigger` + `backfill`, or `swap` a \
             copy), and retire the old one in the irreversible contract phase",
        ),
        Action::DropColumn { column } if contract_rules && !new_table => report(
            Rule::DropBeforeContract,
            format!(
                "DROP COLUMN {table}.{column} in {}: its data cannot be brought back by a \
                 rollback, and code still using it fails",
                phase()
            ),
            "move it to the irreversible contract phase (`irreversible = true`), after the \
             application stops using the column",
        ),
        _ => {}
    }
}
