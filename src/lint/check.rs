//! The rules on one statement (ALTER TABLE's sub-commands in `alter.rs`).

use super::alter::alter_action;
use super::{Role, Rule, Schema, Scope};
use crate::sql::{DomainAction, Kind, Rel, Statement};

pub(super) fn check(
    stmt: &Statement,
    schema: &Schema,
    scope: &Scope,
    in_transaction: bool,
    report: &mut dyn FnMut(Rule, String, &str),
) {
    let phase = || match &scope.phase {
        Some(p) => format!("phase `{p}`, which is reversible"),
        None => "a plain SQL file (no phases)".to_string(),
    };
    let contract_rules = scope.role != Role::Rollback && !scope.irreversible;
    if in_transaction && stmt.needs_autocommit() {
        let why = if scope.role == Role::File {
            "after BEGIN"
        } else {
            "the step has several statements, which run as one transaction"
        };
        report(
            Rule::ConcurrentlyInTransaction,
            format!(
                "{} cannot run inside a transaction block, and here it would ({why})",
                first_words(&stmt.text, 4)
            ),
            "give it a `sql` step of its own: a step with one statement runs outside a transaction",
        );
    }
    match &stmt.kind {
        Kind::Unparsed { message } => report(
            Rule::Unparsable,
            format!(
                "cutover cannot parse this statement ({message}), so it cannot tell which locks it \
                 takes; it is treated as unsafe"
            ),
            "fix the syntax; if PostgreSQL accepts it and you have checked its locks, give the step \
             `allow_unsafe = \"why\"`",
        ),
        Kind::CreateIndex {
            table,
            concurrently: false,
        } if !schema.created(table) => report(
            Rule::CreateIndexNotConcurrently,
            format!(
                "CREATE INDEX on {table} without CONCURRENTLY holds a SHARE lock for the whole \
                 build: every write to {table} waits"
            ),
            "use a `create_index` step (it builds CONCURRENTLY and removes an INVALID index \
             after an abort), or write CREATE INDEX CONCURRENTLY in a `sql` step of its own",
        ),
        Kind::DropIndex {
            indexes,
            concurrently: false,
        } => report(
            Rule::DropIndexNotConcurrently,
            format!(
                "DROP INDEX {} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table: reads and \
                 writes wait, and queue behind it while it waits for running queries",
                names(indexes)
            ),
            "write DROP INDEX CONCURRENTLY, in a `sql` step of its own",
        ),
        Kind::Reindex {
            target,
            rel,
            concurrently: false,
        } => report(
            Rule::ReindexNotConcurrently,
            format!(
                "REINDEX {target} {} without CONCURRENTLY blocks writes to the table, and reads \
                 that use the index, for the whole rebuild",
                rel.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
            if schema.pg_major >= 12 {
                "write REINDEX … CONCURRENTLY, in a `sql` step of its own"
            } else {
                "build a new index with a `create_index` step and drop the old one \
                 CONCURRENTLY (REINDEX CONCURRENTLY needs PostgreSQL 12+)"
            },
        ),
        Kind::Vacuum { full: true, tables } => report(
            Rule::VacuumFull,
            format!(
                "VACUUM FULL {} rewrites the table under ACCESS EXCLUSIVE: reads and writes wait \
                 until it is done",
                names(tables)
            ),
            "use plain VACUUM (ANALYZE), which runs alongside reads and writes; to shrink a table \
             online use pg_repack",
        ),
        Kind::Cluster { table } => report(
            Rule::Cluster,
            format!(
                "CLUSTER {} rewrites the table under ACCESS EXCLUSIVE: reads and writes wait \
                 until it is done",
                table.as_ref().map(ToString::to_string).unwrap_or_default()
            ),
            "use pg_repack --order-by to reorder online; or run it in a maintenance window and say \
             so with `allow_unsafe`",
        ),
        Kind::Update {
            table,
            has_where: false,
        } if scope.role != Role::Rollback && !schema.created(table) => report(
            Rule::UpdateWithoutWhere,
            format!(
                "UPDATE {table} without WHERE changes every row in one transaction: all rows stay \
                 locked until it commits, and it writes a burst of WAL (replica lag) and a dead \
                 copy of each row"
            ),
            "use a `backfill` step: it updates in key-range batches with a checkpoint, paced by \
             batch time and throttled on replica lag",
        ),
        Kind::Delete {
            table,
            has_where: false,
        } if scope.role != Role::Rollback && !schema.created(table) => report(
            Rule::DeleteWithoutWhere,
            format!(
                "DELETE FROM {table} without WHERE deletes every row in one transaction, holding \
                 every row lock until it commits"
            ),
            "delete in key-range batches, or if the table is retired drop it in the irreversible \
             contract phase",
        ),
        Kind::DropTable { tables } if contract_rules => {
            let old: Vec<&Rel> = tables.iter().filter(|t| !schema.created(t)).collect();
            if !old.is_empty() {
                report(
                    Rule::DropBeforeContract,
                    format!(
                        "DROP TABLE {} in {}: its data cannot be brought back by a rollback, and \
                         code still using it fails",
                        old.iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                        phase()
                    ),
                    "move it to the irreversible contract phase (`irreversible = true`), after \
                     the application stops using it",
                )
            }
        }
        Kind::AlterTable { table, actions } => {
            for a in actions {
                alter_action(table, a, schema, scope, &phase, report);
            }
        }
        Kind::Truncate { tables, cascade } if scope.role != Role::Rollback => {
            let old: Vec<Rel> = tables
                .iter()
                .filter(|t| !schema.created(t))
                .cloned()
                .collect();
            if !old.is_empty() || *cascade {
                report(
                    Rule::Truncate,
                    format!(
                        "TRUNCATE {} deletes every row at once under ACCESS EXCLUSIVE{}; a \
                         rollback cannot bring the rows back",
                        names(tables),
                        if *cascade {
                            ", and CASCADE empties every table with a foreign key to it as well"
                        } else {
                            ""
                        }
                    ),
                    "delete in key-range batches (DELETE … WHERE key BETWEEN …, a step at a \
                     time); if the table is retired, drop it in the irreversible contract phase",
                );
            }
        }
        Kind::Refresh {
            view,
            concurrently: false,
        } if !schema.created(view) => report(
            Rule::RefreshNotConcurrently,
            format!(
                "REFRESH MATERIALIZED VIEW {view} without CONCURRENTLY rebuilds it under ACCESS \
                 EXCLUSIVE: every read of the view waits until the refresh is done"
            ),
            "write REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view, \
             which a `create_index` step can build); reads go on while it runs",
        ),
        Kind::AlterDomain { domain, action } => match action {
            DomainAction::AddConstraint {
                not_valid: false, ..
            } => report(
                Rule::DomainConstraintWithoutNotValid,
                format!(
                    "ALTER DOMAIN {domain} ADD CONSTRAINT without NOT VALID checks every column of \
                     every table that uses the domain, holding a SHARE lock on each: their writes \
                     wait until it is done"
                ),
                "add it NOT VALID (new values are checked at once), then ALTER DOMAIN … VALIDATE \
                 CONSTRAINT in a later `sql` step, in its own transaction (on PostgreSQL 15 the \
                 VALIDATE still holds SHARE on those tables while it scans: for a large table, \
                 put the CHECK on the table's column with a `constraint` step instead)",
            ),
            DomainAction::SetNotNull => report(
                Rule::DomainConstraintWithoutNotValid,
                format!(
                    "ALTER DOMAIN {domain} SET NOT NULL checks every column of every table that \
                     uses the domain, holding a SHARE lock on each: their writes wait until it is \
                     done"
                ),
                "add CHECK (VALUE IS NOT NULL) NOT VALID to the domain, then VALIDATE CONSTRAINT \
                 in a later `sql` step",
            ),
            _ => {}
        },
        Kind::CreateDomain {
            domain,
            check: true,
        } if contract_rules || scope.role == Role::File => report(
            Rule::CreateDomainWithCheck,
            format!(
                "CREATE DOMAIN {domain} with a CHECK: a column of an existing table moved to this \
                 domain is checked row by row under ACCESS EXCLUSIVE, and a CHECK changed later \
                 must be checked against every column that uses it"
            ),
            "create the domain without the constraint, then ALTER DOMAIN … ADD CONSTRAINT … NOT \
             VALID and VALIDATE CONSTRAINT in a later step; or put the CHECK on the table's \
             column with a `constraint` step",
        ),
        Kind::DropSchema {
            schemas,
            cascade: true,
        } if scope.role != Role::Rollback => report(
            Rule::DropSchemaCascade,
            format!(
                "DROP SCHEMA {} CASCADE drops every table, view and function in it, with their \
                 data, whatever they are: nothing lists them first and a rollback cannot bring \
                 them back",
                schemas.join(", ")
            ),
            "drop the objects you mean by name, in the irreversible contract phase; then DROP \
             SCHEMA without CASCADE (it fails if anything is left)",
        ),
        Kind::DropDatabase { name } => report(
            Rule::DropDatabase,
            format!(
                "DROP DATABASE {name} removes a whole database and every row in it; no \
                 migration step can undo it"
            ),
            "do not drop databases from a migration: retire it by hand after a backup, outside \
             cutover",
        ),
        _ => {}
    }
}

pub(super) fn names(rels: &[Rel]) -> String {
    rels.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}
