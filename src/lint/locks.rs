//! The lock each statement takes, on which relation, whether it scans or
//! rewrites the table under that lock, and what the application feels.
//! `tests/lint.rs` checks this table against `pg_locks` on a live server.

use serde::Serialize;

use super::Schema;
use crate::sql::{Action, ConstraintKind, DomainAction, Kind, Rel, Statement};

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum LockMode {
    /// SELECT.
    AccessShare,
    /// SELECT FOR UPDATE/SHARE.
    RowShare,
    /// INSERT, UPDATE, DELETE.
    RowExclusive,
    /// VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT.
    ShareUpdateExclusive,
    /// CREATE INDEX.
    Share,
    /// CREATE TRIGGER, ADD FOREIGN KEY.
    ShareRowExclusive,
    /// REFRESH MATERIALIZED VIEW CONCURRENTLY.
    Exclusive,
    /// Most ALTER TABLE forms, DROP, TRUNCATE, VACUUM FULL, CLUSTER.
    AccessExclusive,
}

impl LockMode {
    /// All modes, weakest first.
    pub const ALL: [LockMode; 8] = [
        LockMode::AccessShare,
        LockMode::RowShare,
        LockMode::RowExclusive,
        LockMode::ShareUpdateExclusive,
        LockMode::Share,
        LockMode::ShareRowExclusive,
        LockMode::Exclusive,
        LockMode::AccessExclusive,
    ];

    /// As SQL writes it: `ACCESS EXCLUSIVE`.
    pub fn sql(self) -> &'static str {
        match self {
            LockMode::AccessShare => "ACCESS SHARE",
            LockMode::RowShare => "ROW SHARE",
            LockMode::RowExclusive => "ROW EXCLUSIVE",
            LockMode::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            LockMode::Share => "SHARE",
            LockMode::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            LockMode::Exclusive => "EXCLUSIVE",
            LockMode::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }

    /// As `pg_locks.mode` shows it: `AccessExclusiveLock`.
    pub fn pg_locks_name(self) -> String {
        self.sql()
            .split(' ')
            .map(|w| {
                let lower = w.to_lowercase();
                let mut c = lower.chars();
                c.next()
                    .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<String>()
            + "Lock"
    }

    /// From `pg_locks.mode` or SQL (`LOCK TABLE … IN share MODE`).
    pub fn parse(text: &str) -> Option<LockMode> {
        let norm: String = text
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .collect::<String>()
            .to_lowercase();
        let norm = norm.strip_suffix("lock").unwrap_or(&norm).to_string();
        LockMode::ALL.into_iter().find(|m| {
            m.sql()
                .chars()
                .filter(|c| c.is_ascii_alphabetic())
                .collect::<String>()
                .to_lowercase()
                == norm
        })
    }

    /// What the application's statements wait for while it is held.
    pub fn blocks(self) -> Blocks {
        match self {
            LockMode::AccessShare
            | LockMode::RowShare
            | LockMode::RowExclusive
            | LockMode::ShareUpdateExclusive => Blocks::Nothing,
            LockMode::Share | LockMode::ShareRowExclusive | LockMode::Exclusive => Blocks::Writes,
            LockMode::AccessExclusive => Blocks::ReadsAndWrites,
        }
    }
}

/// What the application's ordinary reads and writes wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocks {
    /// Only other DDL (and VACUUM) waits.
    Nothing,
    /// INSERT, UPDATE, DELETE wait; SELECT goes on.
    Writes,
    /// Everything waits, SELECT included.
    ReadsAndWrites,
}

impl Blocks {
    /// For the plan view.
    pub fn describe(self) -> &'static str {
        match self {
            Blocks::Nothing => "blocks no reads or writes",
            Blocks::Writes => "blocks writes",
            Blocks::ReadsAndWrites => "blocks reads and writes",
        }
    }
}

/// How much of the table the statement reads or writes under its lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Catalog only: brief once the lock is granted.
    Catalog,
    /// Touches the rows it names (DML with a WHERE).
    Rows,
    /// Reads the whole table (index build, validation).
    Scan,
    /// Writes every row: a new copy of the table (and its indexes).
    Rewrite,
    /// Cannot be told offline (a type change whose current type is
    /// unknown).
    Unknown,
}

impl Work {
    /// For the plan view.
    pub fn describe(self) -> &'static str {
        match self {
            Work::Catalog => "brief (catalog only)",
            Work::Rows => "the rows it matches",
            Work::Scan => "scans the table",
            Work::Rewrite => "rewrites the table",
            Work::Unknown => "may rewrite the table",
        }
    }
}

/// One lock a statement takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockEffect {
    /// The relation (as the statement names it).
    pub relation: String,
    /// The strongest mode taken on it.
    pub mode: LockMode,
    /// What happens to the table under the lock.
    pub work: Work,
    /// What the application feels.
    pub blocks: Blocks,
}

fn effect(rel: &Rel, mode: LockMode, work: Work) -> LockEffect {
    LockEffect {
        relation: rel.to_string(),
        mode,
        work,
        blocks: mode.blocks(),
    }
}

/// The locks of one statement. `None` when cutover does not know the
/// statement's locks (shown as such, never guessed).
pub fn effects(stmt: &Statement, schema: &Schema) -> Option<Vec<LockEffect>> {
    use LockMode as M;
    let all = |rels: &[Rel], mode: LockMode, work: Work| -> Vec<LockEffect> {
        rels.iter().map(|r| effect(r, mode, work)).collect()
    };
    Some(match &stmt.kind {
        Kind::CreateIndex {
            table,
            concurrently,
        } => vec![effect(
            table,
            if *concurrently {
                M::ShareUpdateExclusive
            } else {
                M::Share
            },
            Work::Scan,
        )],
        Kind::DropIndex {
            indexes,
            concurrently,
        } => all(
            indexes,
            if *concurrently {
                M::ShareUpdateExclusive
            } else {
                M::AccessExclusive
            },
            Work::Catalog,
        )
        .into_iter()
        .map(|mut e| {
            e.relation = format!("{} (and its table)", e.relation);
            e
        })
        .collect(),
        Kind::Reindex {
            rel, concurrently, ..
        } => {
            let rel = rel.clone().unwrap_or_else(|| Rel::from_sql("?"));
            if *concurrently {
                vec![effect(&rel, M::ShareUpdateExclusive, Work::Scan)]
            } else {
                // SHARE on the table, ACCESS EXCLUSIVE on each index: reads
                // that would use the index wait too.
                vec![effect(&rel, M::Share, Work::Scan)]
            }
        }
        Kind::AlterTable { table, actions } => {
            let mut out = Vec::new();
            let mut mode = M::AccessShare;
            let mut work = Work::Catalog;
            for a in actions {
                let (m, w) = action_lock(table, a, schema);
                mode = mode.max(m);
                work = work.max(w);
                match a {
                    Action::AddConstraint {
                        references: Some(target),
                        ..
                    }
                    | Action::AddColumn {
                        references: Some(target),
                        ..
                    } => out.push(effect(target, M::ShareRowExclusive, Work::Catalog)),
                    Action::AttachPartition { partition } => out.push(effect(
                        partition,
                        M::AccessExclusive,
                        if schema.created(partition) || schema.has_validated_check(partition) {
                            Work::Catalog
                        } else {
                            Work::Scan
                        },
                    )),
                    Action::DetachPartition {
                        partition,
                        concurrently,
                    } => out.push(effect(
                        partition,
                        if *concurrently {
                            M::ShareUpdateExclusive
                        } else {
                            M::AccessExclusive
                        },
                        Work::Catalog,
                    )),
                    _ => {}
                }
            }
            out.insert(0, effect(table, mode, work));
            out
        }
        Kind::CreateTable {
            table,
            references,
            like,
            ..
        } => {
            let mut out = vec![effect(table, M::AccessExclusive, Work::Catalog)];
            out.iter_mut().for_each(|e| {
                e.relation = format!("{} (new)", e.relation);
                e.blocks = Blocks::Nothing;
            });
            out.extend(all(references, M::ShareRowExclusive, Work::Catalog));
            out.extend(all(like, M::AccessShare, Work::Catalog));
            out
        }
        Kind::DropTable { tables } => all(tables, M::AccessExclusive, Work::Catalog),
        Kind::Update { table, has_where } | Kind::Delete { table, has_where } => {
            let mut e = effect(
                table,
                M::RowExclusive,
                if *has_where {
                    Work::Rows
                } else {
                    Work::Rewrite
                },
            );
            if !has_where {
                // Every row stays locked until it commits.
                e.blocks = Blocks::Writes;
            }
            vec![e]
        }
        Kind::Insert { table } => vec![effect(table, M::RowExclusive, Work::Rows)],
        Kind::Read => Vec::new(),
        Kind::Vacuum { full, tables } => {
            let tables = if tables.is_empty() {
                vec![Rel::from_sql("every table")]
            } else {
                tables.clone()
            };
            if *full {
                all(&tables, M::AccessExclusive, Work::Rewrite)
            } else {
                all(&tables, M::ShareUpdateExclusive, Work::Scan)
            }
        }
        Kind::Cluster { table } => vec![effect(
            &table
                .clone()
                .unwrap_or_else(|| Rel::from_sql("every clustered table")),
            M::AccessExclusive,
            Work::Rewrite,
        )],
        Kind::Truncate { tables, .. } => all(tables, M::AccessExclusive, Work::Catalog),
        Kind::Refresh { view, concurrently } => vec![if *concurrently {
            // Reads of the view go on; it has no writers.
            effect(view, M::Exclusive, Work::Scan)
        } else {
            effect(view, M::AccessExclusive, Work::Rewrite)
        }],
        Kind::AlterDomain { domain, action } => {
            // The domain itself takes no relation lock; the tables with a
            // column of the domain are locked while each is checked.
            let users = Rel::from_sql(&format!("tables using {domain}"));
            match action {
                DomainAction::AddConstraint {
                    not_valid: false, ..
                }
                | DomainAction::ValidateConstraint { .. }
                | DomainAction::SetNotNull => vec![LockEffect {
                    relation: format!("every table using domain {domain}"),
                    ..effect(&users, M::Share, Work::Scan)
                }],
                _ => Vec::new(),
            }
        }
        Kind::CreateDomain { .. } | Kind::DropDatabase { .. } => Vec::new(),
        Kind::DropSchema { schemas, .. } => schemas
            .iter()
            .map(|s| LockEffect {
                relation: format!("every relation in schema {s}"),
                ..effect(&Rel::from_sql("x"), M::AccessExclusive, Work::Catalog)
            })
            .collect(),
        Kind::Lock { tables, mode } => all(
            tables,
            LockMode::parse(mode).unwrap_or(M::AccessExclusive),
            Work::Catalog,
        ),
        Kind::CreateTrigger { table } => vec![effect(
            &table.clone().unwrap_or_else(|| Rel::from_sql("?")),
            M::ShareRowExclusive,
            Work::Catalog,
        )],
        Kind::DropTrigger { table } => vec![effect(
            &table.clone().unwrap_or_else(|| Rel::from_sql("?")),
            M::AccessExclusive,
            Work::Catalog,
        )],
        Kind::Begin | Kind::End | Kind::Set => Vec::new(),
        Kind::Other { what } => match what.as_str() {
            "CREATE FUNCTION" | "CREATE PROCEDURE" | "DROP FUNCTION" | "DROP PROCEDURE"
            | "CREATE SCHEMA" | "CREATE SEQUENCE" | "CREATE TYPE" | "COMMENT ON" | "GRANT"
            | "REVOKE" | "ANALYZE" | "CREATE VIEW" | "CREATE EXTENSION" => Vec::new(),
            _ => return None,
        },
        Kind::Unparsed { .. } => return None,
    })
}

fn action_lock(table: &Rel, a: &Action, schema: &Schema) -> (LockMode, Work) {
    use LockMode as M;
    let new_table = schema.created(table);
    match a {
        Action::AddColumn {
            default,
            generated,
            not_null,
            constraints,
            ..
        } => {
            let rewrites = *generated
                || default
                    .as_ref()
                    .is_some_and(|(_, volatile)| *volatile || schema.pg_major < 11);
            let has_default = default
                .as_ref()
                .is_some_and(|(expr, _)| !expr.trim().eq_ignore_ascii_case("null"));
            // An inline CHECK, or a foreign key whose column starts with a
            // value, is validated against every row.
            let validates = constraints.contains(&ConstraintKind::Check)
                || (constraints.contains(&ConstraintKind::ForeignKey) && has_default);
            let work = if rewrites && !new_table {
                Work::Rewrite
            } else if ((*not_null && default.is_none()) || validates) && !new_table {
                Work::Scan
            } else {
                Work::Catalog
            };
            (M::AccessExclusive, work)
        }
        Action::DropColumn { .. }
        | Action::DropNotNull { .. }
        | Action::SetDefault
        | Action::DropDefault { .. }
        | Action::DropConstraint
        | Action::RenameColumn
        | Action::RenameTable
        | Action::RenameConstraint => (M::AccessExclusive, Work::Catalog),
        Action::SetType {
            column, ty, using, ..
        } => {
            let work = match super::type_change_rewrites(
                schema.column_type(table, column).as_deref(),
                ty,
                *using,
            ) {
                Some(true) => Work::Rewrite,
                Some(false) => Work::Catalog,
                None => Work::Unknown,
            };
            (M::AccessExclusive, work)
        }
        Action::SetNotNull { column } => (
            M::AccessExclusive,
            if schema.has_validated_not_null_check(table, column) || new_table {
                Work::Catalog
            } else {
                Work::Scan
            },
        ),
        Action::AddConstraint {
            kind,
            not_valid,
            using_index,
            ..
        } => {
            let scan = if *not_valid || new_table {
                Work::Catalog
            } else {
                Work::Scan
            };
            match kind {
                ConstraintKind::ForeignKey => (M::ShareRowExclusive, scan),
                ConstraintKind::Unique | ConstraintKind::PrimaryKey if *using_index => {
                    (M::AccessExclusive, Work::Catalog)
                }
                _ => (M::AccessExclusive, scan),
            }
        }
        Action::ValidateConstraint { .. } => (M::ShareUpdateExclusive, Work::Scan),
        Action::Trigger => (M::ShareRowExclusive, Work::Catalog),
        Action::StorageParams | Action::Statistics | Action::DetachFinalize => {
            (M::ShareUpdateExclusive, Work::Catalog)
        }
        // Before 12, ATTACH locked the parent ACCESS EXCLUSIVE.
        Action::AttachPartition { .. } if schema.pg_major < 12 => {
            (M::AccessExclusive, Work::Catalog)
        }
        Action::AttachPartition { .. } => (M::ShareUpdateExclusive, Work::Catalog),
        Action::Logged | Action::SetTablespace => (M::AccessExclusive, Work::Rewrite),
        Action::DetachPartition { concurrently, .. } => (
            if *concurrently {
                M::ShareUpdateExclusive
            } else {
                M::AccessExclusive
            },
            Work::Catalog,
        ),
        Action::Other { .. } => (M::AccessExclusive, Work::Catalog),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_both_spellings() {
        for m in LockMode::ALL {
            assert_eq!(LockMode::parse(m.sql()), Some(m));
            assert_eq!(LockMode::parse(&m.pg_locks_name()), Some(m));
        }
        assert_eq!(
            LockMode::ShareUpdateExclusive.pg_locks_name(),
            "ShareUpdateExclusiveLock"
        );
        assert_eq!(LockMode::parse("nonsense"), None);
    }

    #[test]
    fn alter_table_takes_the_strongest_of_its_actions() {
        let schema = Schema::new(15);
        let stmts = crate::sql::parse(
            "ALTER TABLE users VALIDATE CONSTRAINT c, ALTER COLUMN a SET STATISTICS 100",
        );
        let e = effects(&stmts[0], &schema).unwrap_or_default();
        assert_eq!(e[0].mode, LockMode::ShareUpdateExclusive);
        assert_eq!(e[0].blocks, Blocks::Nothing);
        let stmts = crate::sql::parse(
            "ALTER TABLE users VALIDATE CONSTRAINT c, ADD COLUMN b int DEFAULT random()",
        );
        let e = effects(&stmts[0], &schema).unwrap_or_default();
        assert_eq!(
            (e[0].mode, e[0].work),
            (LockMode::AccessExclusive, Work::Rewrite)
        );
    }
}
