//! Plan fields that are pieces of SQL (`set`, `where`, `when`, column
//! expressions) are spliced into statements cutover builds. Each must parse
//! as exactly what it stands for, and must not escape the statement around
//! it: `where = "v IS NULL) OR (true"` would turn every batch into a
//! whole-table UPDATE.
//!
//! Two proofs, both required: a scan of the fragment alone (its
//! parentheses balance, no `;`, no comment that swallows what follows, no
//! unterminated string), then the real grammar on the fragment inside a
//! wrapper statement, checking that the parsed node covers exactly the
//! fragment.

use std::fmt;

use squawk_syntax::SourceFile;
use squawk_syntax::ast::{self, AstNode};

use super::ConstraintKind;
use super::syntax::text_of;
use crate::db::ident::fold_qualified;

/// Why a fragment is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FragmentError {
    /// It would change the statement cutover builds around it.
    Escapes(String),
    /// It is not what the field stands for (or not SQL at all).
    Unparsable(String),
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FragmentError::Escapes(why) | FragmentError::Unparsable(why) => f.write_str(why),
        }
    }
}

/// A `where` / `when` / column expression: exactly one expression.
pub fn expression(fragment: &str) -> Result<(), FragmentError> {
    contained(fragment)?;
    const PREFIX: &str = "SELECT 1 WHERE (";
    let text = format!("{PREFIX}{fragment})");
    let parse = SourceFile::parse(&text);
    if let Some(e) = parse.errors().first() {
        return Err(FragmentError::Unparsable(format!(
            "it is not a valid SQL expression ({})",
            e.message()
        )));
    }
    let mut stmts = parse.tree().stmts();
    let (Some(ast::Stmt::Select(select)), None) = (stmts.next(), stmts.next()) else {
        return Err(FragmentError::Escapes(
            "it does not stay one expression: with the SQL around it, it becomes another statement"
                .into(),
        ));
    };
    let paren = select.where_clause().and_then(|w| w.expr());
    let covers = match &paren {
        Some(ast::Expr::ParenExpr(p)) => {
            let r = p.syntax().text_range();
            usize::from(r.start()) == PREFIX.len() - 1 && usize::from(r.end()) == text.len()
        }
        _ => false,
    };
    if !covers {
        return Err(FragmentError::Escapes(
            "it is not one expression: inside the parentheses cutover puts around it, it \
             becomes several terms joined outside them"
                .into(),
        ));
    }
    Ok(())
}

/// A `set` fragment: an assignment list `col = expr, col2 = expr`. Returns
/// the assigned columns (folded as SQL folds them; a `NEW.` qualifier, as a
/// trigger's `set` may write, is dropped).
pub fn assignments(fragment: &str) -> Result<Vec<String>, FragmentError> {
    contained(fragment)?;
    const PREFIX: &str = "UPDATE cutover_fragment SET ";
    let text = format!("{PREFIX}{fragment}");
    let parse = SourceFile::parse(&text);
    if let Some(e) = parse.errors().first() {
        return Err(FragmentError::Unparsable(format!(
            "it is not a list of `column = expression` assignments ({})",
            e.message()
        )));
    }
    let mut stmts = parse.tree().stmts();
    let (Some(ast::Stmt::Update(update)), None) = (stmts.next(), stmts.next()) else {
        return Err(FragmentError::Escapes(
            "it does not stay an assignment list: with the SQL around it, it becomes another \
             statement"
                .into(),
        ));
    };
    if update.where_clause_or_current_of().is_some()
        || update.from_clause().is_some()
        || update.returning_clause().is_some()
    {
        return Err(FragmentError::Escapes(
            "it adds a clause (WHERE, FROM or RETURNING) to the UPDATE cutover builds: put a row \
             filter in the step's `where`"
                .into(),
        ));
    }
    let Some(list) = update.set_clause().and_then(|s| s.set_column_list()) else {
        return Err(FragmentError::Unparsable(
            "it is not a list of `column = expression` assignments".into(),
        ));
    };
    let trimmed_end = text.trim_end().len();
    if usize::from(list.syntax().text_range().end()) != trimmed_end {
        return Err(FragmentError::Escapes(
            "something follows the assignment list".into(),
        ));
    }
    let mut columns = Vec::new();
    for col in list.set_columns() {
        let targets: Vec<ast::ColumnTarget> = match col {
            ast::SetColumn::SetSingleColumn(s) => s.column_target().into_iter().collect(),
            ast::SetColumn::SetMultipleColumns(m) => m
                .column_target_list()
                .map(|l| l.column_targets().collect())
                .unwrap_or_default(),
        };
        for t in targets {
            let text = text_of(t.syntax());
            let text = text.split('[').next().unwrap_or("").trim();
            let parts = fold_qualified(text);
            let name = match parts.as_slice() {
                [new, col, ..] if new == "new" => col.clone(),
                [col, ..] => col.clone(),
                [] => continue,
            };
            columns.push(name);
        }
    }
    if columns.is_empty() {
        return Err(FragmentError::Unparsable("it assigns no column".into()));
    }
    Ok(columns)
}

/// A `constraint` step's `definition`: exactly one table constraint
/// (`CHECK (…)`, `FOREIGN KEY (…) REFERENCES …`, `UNIQUE (…)`,
/// `PRIMARY KEY (…)`, `EXCLUDE …`). Returns its kind.
pub fn constraint(fragment: &str) -> Result<ConstraintKind, FragmentError> {
    contained(fragment)?;
    const PREFIX: &str = "ALTER TABLE cutover_fragment ADD CONSTRAINT cutover_fragment ";
    let text = format!("{PREFIX}{fragment}");
    let parse = SourceFile::parse(&text);
    if let Some(e) = parse.errors().first() {
        return Err(FragmentError::Unparsable(format!(
            "it is not a table constraint ({})",
            e.message()
        )));
    }
    let mut stmts = parse.tree().stmts();
    let (Some(ast::Stmt::AlterTable(alter)), None) = (stmts.next(), stmts.next()) else {
        return Err(FragmentError::Escapes(
            "it does not stay one constraint: with the SQL around it, it becomes another \
             statement"
                .into(),
        ));
    };
    let actions: Vec<ast::AlterTableAction> = alter.actions().collect();
    let [ast::AlterTableAction::AddConstraint(add)] = actions.as_slice() else {
        return Err(FragmentError::Escapes(
            "it adds more to the ALTER TABLE cutover builds than one constraint".into(),
        ));
    };
    if usize::from(add.syntax().text_range().end()) != text.trim_end().len() {
        return Err(FragmentError::Escapes(
            "something follows the constraint".into(),
        ));
    }
    match add.constraint() {
        Some(ast::Constraint::CheckConstraint(_)) => Ok(ConstraintKind::Check),
        Some(ast::Constraint::ForeignKeyConstraint(_)) => Ok(ConstraintKind::ForeignKey),
        Some(ast::Constraint::UniqueConstraint(_)) => Ok(ConstraintKind::Unique),
        Some(ast::Constraint::PrimaryKeyConstraint(p)) if p.using_index().is_none() => {
            Ok(ConstraintKind::PrimaryKey)
        }
        Some(ast::Constraint::ExcludeConstraint(_)) => Ok(ConstraintKind::Exclude),
        _ => Err(FragmentError::Unparsable(
            "a `constraint` step takes CHECK (…), FOREIGN KEY (…) REFERENCES …, UNIQUE (…), \
             PRIMARY KEY (…) or EXCLUDE USING … (…)"
                .into(),
        )),
    }
}

/// The fragment on its own: nothing in it can end, comment out or reopen
/// the SQL cutover writes around it.
fn contained(fragment: &str) -> Result<(), FragmentError> {
    let escapes = |why: &str| Err(FragmentError::Escapes(why.to_string()));
    if fragment.trim().is_empty() {
        return Err(FragmentError::Unparsable("it is empty".into()));
    }
    if fragment.contains("$cutover$") {
        return escapes(
            "it contains `$cutover$`, which ends the body of the functions cutover creates",
        );
    }
    let chars: Vec<char> = fragment.chars().collect();
    let mut depth = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            '\'' => {
                // E'…' strings take backslash escapes.
                let backslash = i > 0 && matches!(chars[i - 1], 'e' | 'E');
                i = match skip_quoted(&chars, i, '\'', backslash) {
                    Some(end) => end,
                    None => return escapes("it has a string with no closing quote"),
                };
                continue;
            }
            '"' => {
                i = match skip_quoted(&chars, i, '"', false) {
                    Some(end) => end,
                    None => return escapes("it has a quoted name with no closing quote"),
                };
                continue;
            }
            '$' if next.is_some_and(|n| n == '$' || n.is_alphabetic() || n == '_')
                && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')) =>
            {
                if let Some(end) = skip_dollar(&chars, i) {
                    i = end;
                    continue;
                }
            }
            '-' if next == Some('-') => {
                return escapes(
                    "it has a `--` comment, which swallows the SQL cutover writes after it",
                );
            }
            '/' if next == Some('*') => {
                i = match skip_block_comment(&chars, i) {
                    Some(end) => end,
                    None => {
                        return escapes(
                            "it opens a `/*` comment it does not close, which swallows the SQL \
                             cutover writes after it",
                        );
                    }
                };
                continue;
            }
            ';' => {
                return escapes(
                    "it has a `;`, which ends the statement early: whatever follows would run as \
                     a statement of its own",
                );
            }
            '(' => depth += 1,
            ')' => {
                if depth == 0 {
                    return escapes(
                        "it closes a parenthesis it did not open, escaping the parentheses \
                         cutover puts around it",
                    );
                }
                depth -= 1;
            }
            _ => {}
        }
        i += 1;
    }
    if depth > 0 {
        return escapes("it leaves a parenthesis open");
    }
    Ok(())
}

/// Index just past a quoted string or name starting at `start`.
fn skip_quoted(chars: &[char], start: usize, quote: char, backslash: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() {
        if backslash && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// Index just past a `$tag$…$tag$` string, or `None` when `$` does not
/// open one (or it is not closed; the grammar then refuses it).
fn skip_dollar(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
        i += 1;
    }
    if chars.get(i) != Some(&'$') {
        return None;
    }
    let tag: String = chars[start..=i].iter().collect();
    let rest: String = chars[i + 1..].iter().collect();
    rest.find(&tag)
        .map(|at| i + 1 + rest[..at].chars().count() + tag.chars().count())
}

/// Index just past a (nested) block comment.
fn skip_block_comment(chars: &[char], start: usize) -> Option<usize> {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < chars.len() {
        match (chars[i], chars[i + 1]) {
            ('/', '*') => {
                depth += 1;
                i += 2;
            }
            ('*', '/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escapes(r: Result<impl fmt::Debug, FragmentError>) -> bool {
        matches!(r, Err(FragmentError::Escapes(_)))
    }

    #[test]
    fn where_fragments_are_one_expression() {
        for ok in [
            "v IS NULL",
            "a = 1 AND (b > 2 OR c IS NOT NULL)",
            "name <> 'it''s (not) -- a comment; really'",
            "\"Odd; name)\" IS NULL",
            "lower(email) LIKE E'%\\'%'",
            "id IN (SELECT user_id FROM orders WHERE total > 0)",
            "note = $$a ) b$$",
            "x /* a (harmless) comment */ > 0",
            "coalesce(x, 0) BETWEEN 1 AND 10",
        ] {
            assert_eq!(expression(ok), Ok(()), "{ok}");
        }
        for bad in [
            "v IS NULL) OR (true",
            "v IS NULL)) OR ((true",
            "true; DROP TABLE users",
            "v IS NULL -- only the new rows",
            "v IS NULL /* unclosed",
            "(v IS NULL",
            "name = 'unclosed",
            "\"unclosed",
            "note = $cutover$x$cutover$",
        ] {
            assert!(escapes(expression(bad)), "{bad}: {:?}", expression(bad));
        }
        for bad in ["v IS", "", "SELECT", "a b c"] {
            assert!(expression(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            expression("v IS"),
            Err(FragmentError::Unparsable(_))
        ));
    }

    #[test]
    fn constraint_definitions_are_one_table_constraint() {
        assert_eq!(constraint("CHECK (age >= 0)"), Ok(ConstraintKind::Check));
        assert_eq!(
            constraint("FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"),
            Ok(ConstraintKind::ForeignKey)
        );
        assert_eq!(
            constraint("UNIQUE (email, country)"),
            Ok(ConstraintKind::Unique)
        );
        for bad in [
            "CHECK (age >= 0)) OR (true",
            "CHECK (age >= 0); DROP TABLE users",
            "CHECK (age >= 0), DROP COLUMN age",
            "CHECK (age >= 0) -- why",
        ] {
            assert!(escapes(constraint(bad)), "{bad}: {:?}", constraint(bad));
        }
        assert_eq!(
            constraint("PRIMARY KEY (id, tenant)"),
            Ok(ConstraintKind::PrimaryKey)
        );
        assert_eq!(
            constraint("EXCLUDE USING gist (room WITH =, during WITH &&)"),
            Ok(ConstraintKind::Exclude)
        );
        for bad in ["PRIMARY KEY USING INDEX i", "CHECK", "age >= 0"] {
            assert!(constraint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn set_fragments_are_assignment_lists_and_name_their_columns() {
        assert_eq!(assignments("a = 1"), Ok(vec!["a".to_string()]));
        assert_eq!(
            assignments("Full_Name = first || ' ' || last, \"Odd Col\" = NULL, (x, y) = (1, 2)"),
            Ok(vec![
                "full_name".to_string(),
                "Odd Col".to_string(),
                "x".to_string(),
                "y".to_string()
            ])
        );
        assert_eq!(
            assignments("NEW.full_name = NEW.name"),
            Ok(vec!["full_name".to_string()])
        );
        for bad in [
            "a = 1 WHERE false",
            "a = 1 RETURNING *",
            "a = 1 FROM other",
            "a = 1; DELETE FROM users",
            "a = (1",
            "a = 1) , (b",
            "a = 1 -- set",
        ] {
            assert!(escapes(assignments(bad)), "{bad}: {:?}", assignments(bad));
        }
        for bad in ["a", "a = ", "= 1", "1 = a", ""] {
            assert!(assignments(bad).is_err(), "{bad}");
        }
    }
}
