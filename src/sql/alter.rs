//! `ALTER TABLE` sub-commands described in our terms.

use squawk_syntax::SyntaxKind;
use squawk_syntax::ast::{self, AstNode};

use super::rel::Rel;
use super::syntax::{fold_one, has_token, text_of};
use super::volatility::may_be_volatile;
use super::{Action, ConstraintKind};

pub(super) fn action(a: &ast::AlterTableAction) -> Action {
    use ast::AlterTableAction as A;
    match a {
        A::AddColumn(c) => {
            let mut default = None;
            let mut not_null = false;
            let mut generated = false;
            let mut constraints = Vec::new();
            let mut references = None;
            for con in c.constraints() {
                match con {
                    ast::Constraint::DefaultConstraint(d) => {
                        if let Some(expr) = d.expr() {
                            default =
                                Some((text_of(expr.syntax()), may_be_volatile(expr.syntax())));
                        }
                    }
                    ast::Constraint::NotNullConstraint(_) => not_null = true,
                    // Identity columns (GENERATED … AS IDENTITY) fill every
                    // row from a sequence: a rewrite as well.
                    ast::Constraint::GeneratedConstraint(_) => generated = true,
                    ast::Constraint::PrimaryKeyConstraint(_) => {
                        constraints.push(ConstraintKind::PrimaryKey)
                    }
                    ast::Constraint::UniqueConstraint(_) => {
                        constraints.push(ConstraintKind::Unique)
                    }
                    ast::Constraint::ReferencesConstraint(r) => {
                        constraints.push(ConstraintKind::ForeignKey);
                        references = r.table().map(|t| Rel::from_sql(&text_of(t.syntax())));
                    }
                    ast::Constraint::ForeignKeyConstraint(_) => {
                        constraints.push(ConstraintKind::ForeignKey)
                    }
                    ast::Constraint::CheckConstraint(_) => constraints.push(ConstraintKind::Check),
                    _ => {}
                }
            }
            if c.ty().is_some_and(|t| {
                let t = text_of(t.syntax()).to_lowercase();
                [
                    "serial",
                    "bigserial",
                    "smallserial",
                    "serial2",
                    "serial4",
                    "serial8",
                ]
                .contains(&t.as_str())
            }) {
                // A serial column's default is nextval(): volatile.
                default = Some(("nextval(…)".into(), true));
            }
            Action::AddColumn {
                column: c
                    .column_name()
                    .map(|n| fold_one(&text_of(n.syntax())))
                    .unwrap_or_default(),
                ty: c.ty().map(|t| text_of(t.syntax())).unwrap_or_default(),
                default,
                not_null,
                generated,
                constraints,
                references,
            }
        }
        A::DropColumn(d) => Action::DropColumn {
            column: d
                .column_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default(),
        },
        A::AlterColumn(c) => {
            let column = c
                .column_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default();
            match c.option() {
                Some(ast::AlterColumnOption::SetType(t)) => Action::SetType {
                    column,
                    ty: t.ty().map(|t| text_of(t.syntax())).unwrap_or_default(),
                    using: t.using_expr().is_some(),
                },
                Some(ast::AlterColumnOption::SetNotNull(_)) => Action::SetNotNull { column },
                Some(ast::AlterColumnOption::DropNotNull(_)) => Action::DropNotNull { column },
                Some(ast::AlterColumnOption::SetDefault(_)) => Action::SetDefault,
                Some(ast::AlterColumnOption::DropDefault(_)) => Action::DropDefault { column },
                Some(ast::AlterColumnOption::SetStatistics(_)) => Action::Statistics,
                _ => Action::Other {
                    text: text_of(a.syntax()),
                },
            }
        }
        A::AddConstraint(c) => {
            let con = c.constraint();
            let kind = match &con {
                Some(ast::Constraint::CheckConstraint(_)) => ConstraintKind::Check,
                Some(ast::Constraint::ForeignKeyConstraint(_))
                | Some(ast::Constraint::ReferencesConstraint(_)) => ConstraintKind::ForeignKey,
                Some(ast::Constraint::UniqueConstraint(_)) => ConstraintKind::Unique,
                Some(ast::Constraint::PrimaryKeyConstraint(_)) => ConstraintKind::PrimaryKey,
                Some(ast::Constraint::ExcludeConstraint(_)) => ConstraintKind::Exclude,
                _ => ConstraintKind::NotNull,
            };
            let using_index = match &con {
                Some(ast::Constraint::UniqueConstraint(u)) => u.using_index().is_some(),
                Some(ast::Constraint::PrimaryKeyConstraint(p)) => p.using_index().is_some(),
                _ => false,
            };
            let check = match &con {
                Some(ast::Constraint::CheckConstraint(ch)) => {
                    ch.expr().map(|e| text_of(e.syntax()))
                }
                _ => None,
            };
            let references = match &con {
                Some(ast::Constraint::ForeignKeyConstraint(fk)) => fk
                    .table_name_ref()
                    .map(|t| Rel::from_sql(&text_of(t.syntax()))),
                _ => None,
            };
            Action::AddConstraint {
                kind,
                references,
                name: con
                    .as_ref()
                    .and_then(|c| c.constraint_name())
                    .map(|n| fold_one(&text_of(n.syntax()))),
                not_valid: con.as_ref().is_some_and(|c| c.is_not_valid()),
                using_index,
                check,
            }
        }
        A::ValidateConstraint(v) => Action::ValidateConstraint {
            name: v
                .constraint_name_ref()
                .map(|n| fold_one(&text_of(n.syntax())))
                .unwrap_or_default(),
        },
        A::DropConstraint(_) => Action::DropConstraint,
        A::RenameColumn(_) => Action::RenameColumn,
        A::TableRenameTo(_) => Action::RenameTable,
        A::RenameConstraint(_) => Action::RenameConstraint,
        A::EnableTrigger(_)
        | A::DisableTrigger(_)
        | A::EnableAlwaysTrigger(_)
        | A::EnableReplicaTrigger(_) => Action::Trigger,
        A::SetOptions(_) | A::ResetOptions(_) => Action::StorageParams,
        A::SetLogged(_) | A::SetUnlogged(_) => Action::Logged,
        A::SetTablespace(_) => Action::SetTablespace,
        A::AttachPartition(p) => Action::AttachPartition {
            partition: Rel::from_sql(
                &p.table_name_ref()
                    .map(|t| text_of(t.syntax()))
                    .unwrap_or_default(),
            ),
        },
        A::DetachPartition(d) if has_token(d.syntax(), SyntaxKind::FINALIZE_KW) => {
            Action::DetachFinalize
        }
        A::DetachPartition(d) => Action::DetachPartition {
            partition: Rel::from_sql(
                &d.table_name_ref()
                    .map(|t| text_of(t.syntax()))
                    .unwrap_or_default(),
            ),
            concurrently: has_token(d.syntax(), SyntaxKind::CONCURRENTLY_KW),
        },
        other => Action::Other {
            text: text_of(other.syntax()),
        },
    }
}
