//! Renaming a column's references inside one expression of the plan (a
//! `check` written over the column's name, built on cutover's hidden copy
//! of the column). Works on the grammar's tokens, so string literals,
//! quoted names, comments and qualified names (`t.col`) are told apart.

use squawk_syntax::SourceFile;
use squawk_syntax::SyntaxKind;

/// `expr` with every bare reference to column `from` (compared as
/// PostgreSQL folds names) written as the quoted `to`. A name followed by
/// `(` (a function) or next to a `.` (qualified) is left alone.
pub fn rename_column_refs(expr: &str, from: &str, to: &str) -> Result<String, String> {
    super::fragment::expression(expr).map_err(|e| e.to_string())?;
    const PREFIX: &str = "SELECT 1 WHERE (";
    let text = format!("{PREFIX}{expr})");
    let parse = SourceFile::parse(&text);
    let tokens: Vec<(usize, String, SyntaxKind)> = parse
        .syntax_node()
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !matches!(t.kind(), SyntaxKind::WHITESPACE | SyntaxKind::COMMENT))
        .map(|t| {
            (
                usize::from(t.text_range().start()),
                t.text().to_string(),
                t.kind(),
            )
        })
        .collect();
    let mut out = String::new();
    let mut done = PREFIX.len();
    for (i, (start, token, _)) in tokens.iter().enumerate() {
        if *start < PREFIX.len() || *start >= PREFIX.len() + expr.len() {
            continue;
        }
        let prev = i.checked_sub(1).map(|j| tokens[j].1.as_str());
        let next = tokens.get(i + 1).map(|t| t.1.as_str());
        if fold(token).as_deref() != Some(from)
            || prev == Some(".")
            || next == Some(".")
            || next == Some("(")
        {
            continue;
        }
        out.push_str(&text[done..*start]);
        out.push_str(&crate::db::quote_ident(to));
        done = start + token.len();
    }
    out.push_str(&text[done..PREFIX.len() + expr.len()]);
    Ok(out)
}

/// A name token as PostgreSQL folds it; `None` for anything not a name.
fn fold(token: &str) -> Option<String> {
    if let Some(inner) = token.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        return Some(inner.replace("\"\"", "\""));
    }
    let first = token.chars().next()?;
    (first.is_alphabetic() || first == '_')
        .then(|| token.to_lowercase())
        .filter(|t| {
            t.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        })
}

#[cfg(test)]
mod tests {
    use super::rename_column_refs;

    #[test]
    fn only_the_columns_own_references_are_renamed() {
        let got = rename_column_refs(
            "age >= 0 AND \"age\" < 200 AND t.age IS NULL OR age(now()) IS NULL OR 'age' <> ''",
            "age",
            "_cutover_new_age",
        )
        .expect("renames");
        assert_eq!(
            got,
            "\"_cutover_new_age\" >= 0 AND \"_cutover_new_age\" < 200 AND t.age IS NULL OR \
             age(now()) IS NULL OR 'age' <> ''"
        );
    }

    #[test]
    fn a_fragment_that_escapes_is_refused() {
        assert!(rename_column_refs("age > 0) OR (true", "age", "x").is_err());
    }
}
