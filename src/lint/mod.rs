//! Safety before the first statement: every statement a plan (or a `.sql`
//! file) would run is parsed (`crate::sql`: PostgreSQL's grammar as
//! squawk's parser reads it), matched against rules for DDL that locks out
//! a live application, and given its lock level. `cutover lint`, `cutover
//! plan`, `cutover check` and `cutover run` all use this.

mod alter;
pub mod catalogue;
mod check;
pub mod fragments;
pub mod locks;
pub mod plan;
pub mod render;
mod rule;
mod schema;
mod types;

pub use rule::{Hit, Rule};
pub use schema::Schema;
pub use types::type_change_rewrites;

use crate::sql::{self, Action, DomainAction, Kind, Statement};

/// The PostgreSQL major version rules assume when neither the database nor
/// `--pg-version` says.
pub const DEFAULT_PG_MAJOR: u32 = 15;

/// Where the statements run, which decides some rules.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The phase (None for a `.sql` file).
    pub phase: Option<String>,
    /// The phase is irreversible (contract).
    pub irreversible: bool,
    /// What the SQL is.
    pub role: Role,
}

/// What a piece of SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A `sql` step: sent as one query, so several statements share one
    /// transaction.
    Step,
    /// A step's `rollback`: undoes what the step made, so dropping it is
    /// the point.
    Rollback,
    /// A `.sql` file: statements autocommit unless inside BEGIN … COMMIT.
    File,
}

/// Lints one piece of SQL (a step's statement, its rollback, or a file),
/// learning as it goes.
pub fn lint_sql(text: &str, schema: &mut Schema, scope: &Scope) -> (Vec<Statement>, Vec<Hit>) {
    let statements = sql::parse(text);
    let mut hits = Vec::new();
    let mut in_block = false;
    let mut opened_at: Option<&Statement> = None;
    let shared_transaction = scope.role != Role::File && statements.len() > 1;
    // Constraints added NOT VALID in the transaction still open.
    let mut not_valid_here: Vec<String> = Vec::new();
    for stmt in &statements {
        match stmt.kind {
            Kind::Begin => {
                in_block = true;
                opened_at = Some(stmt);
                not_valid_here.clear();
            }
            Kind::End => {
                in_block = false;
                opened_at = None;
                not_valid_here.clear();
            }
            _ => {}
        }
        let in_transaction = in_block || shared_transaction;
        if !in_transaction {
            not_valid_here.clear();
        }
        for (name, target) in validated_in_same_transaction(stmt, schema, &mut not_valid_here) {
            hits.push(Hit {
                rule: Rule::ValidateInSameTransaction,
                message: format!(
                    "VALIDATE CONSTRAINT {name} runs in the same transaction as the ADD … NOT VALID \
                     that created it: the scan then runs while the ADD's lock on {target} is still \
                     held (ACCESS EXCLUSIVE for a CHECK, SHARE ROW EXCLUSIVE for a foreign key), \
                     so NOT VALID saves nothing"
                ),
                help: "commit in between: VALIDATE CONSTRAINT in a later `sql` step (or after \
                       COMMIT); a `constraint` step does both, each in its own transaction"
                    .to_string(),
                offset: stmt.offset,
                statement: stmt.text.clone(),
            });
        }
        check::check(
            stmt,
            schema,
            scope,
            in_transaction,
            &mut |rule, message, help| {
                hits.push(Hit {
                    rule,
                    message,
                    help: help.to_string(),
                    offset: stmt.offset,
                    statement: stmt.text.clone(),
                })
            },
        );
        schema.learn(stmt);
    }
    if let (true, Some(begin)) = (in_block, opened_at) {
        let place = if scope.role == Role::File {
            "the end of the file"
        } else {
            "the end of the step"
        };
        hits.push(Hit {
            rule: Rule::TransactionLeftOpen,
            message: format!(
                "this BEGIN has no COMMIT before {place}: the transaction stays open, holding \
                 every lock its statements took (and holding back VACUUM) until the session ends, \
                 and its work is lost if the session drops"
            ),
            help: "end the transaction with COMMIT (or ROLLBACK) in the same file or step"
                .to_string(),
            offset: begin.offset,
            statement: begin.text.clone(),
        });
    }
    (statements, hits)
}

/// Constraints this statement validates that were added NOT VALID earlier
/// in the same transaction (`not_valid_here`, which it updates): (name,
/// table or domain).
fn validated_in_same_transaction(
    stmt: &Statement,
    schema: &Schema,
    not_valid_here: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match &stmt.kind {
        Kind::AlterTable { table, actions } if !schema.created(table) => {
            for a in actions {
                match a {
                    Action::AddConstraint {
                        name: Some(name),
                        not_valid: true,
                        ..
                    } => not_valid_here.push(format!("{}.{name}", table.name)),
                    Action::ValidateConstraint { name }
                        if not_valid_here.contains(&format!("{}.{name}", table.name)) =>
                    {
                        out.push((name.clone(), table.to_string()))
                    }
                    _ => {}
                }
            }
        }
        Kind::AlterDomain { domain, action } => match action {
            DomainAction::AddConstraint {
                name: Some(name),
                not_valid: true,
            } => not_valid_here.push(format!("domain {}.{name}", domain.name)),
            DomainAction::ValidateConstraint { name }
                if not_valid_here.contains(&format!("domain {}.{name}", domain.name)) =>
            {
                out.push((name.clone(), format!("the tables using domain {domain}")))
            }
            _ => {}
        },
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests;
