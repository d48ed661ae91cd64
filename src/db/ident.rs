//! The one place SQL identifiers are quoted.

/// Quotes one identifier the way PostgreSQL's `quote_ident` does, always.
///
/// Always quoting (even `users`) keeps case and reserved words exactly as the
/// plan wrote them and makes injection through a name impossible.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Quotes a possibly schema-qualified name from a plan (`users`, `app.users`).
///
/// A dot separates schema and name; a name that itself contains a dot can be
/// written in double quotes in the plan (`"odd.name"`).
pub fn quote_qualified(name: &str) -> String {
    split_qualified(name)
        .iter()
        .map(|part| quote_ident(part))
        .collect::<Vec<_>>()
        .join(".")
}

/// Splits `schema.name` into its parts, honouring double-quoted parts.
pub fn split_qualified(name: &str) -> Vec<String> {
    split(name, false)
}

/// Splits a name as SQL text would mean it: unquoted parts fold to lower
/// case, quoted parts are kept exactly (`Public."Users"` → `public`, `Users`).
pub fn fold_qualified(name: &str) -> Vec<String> {
    split(name.trim(), true)
}

fn split(name: &str, fold: bool) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = name.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if fold && !quoted && c.is_whitespace() => {}
            c if fold && !quoted => current.extend(c.to_lowercase()),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

/// Quotes a string literal (for the rare places a value cannot be a bind
/// parameter, such as `SET lock_timeout`).
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_plain_and_hostile_names() {
        assert_eq!(quote_ident("users"), r#""users""#);
        assert_eq!(quote_ident("Users"), r#""Users""#);
        assert_eq!(
            quote_ident(r#"a"; DROP TABLE x; --"#),
            r#""a""; DROP TABLE x; --""#
        );
    }

    #[test]
    fn qualified_names_split_on_unquoted_dots() {
        assert_eq!(quote_qualified("app.users"), r#""app"."users""#);
        assert_eq!(quote_qualified(r#""odd.name""#), r#""odd.name""#);
        assert_eq!(split_qualified(r#"s."a""b""#), vec!["s", r#"a"b"#]);
        assert_eq!(
            fold_qualified(r#"Public."Us""ers""#),
            vec!["public", r#"Us"ers"#]
        );
        assert_eq!(fold_qualified("USERS"), vec!["users"]);
    }

    #[test]
    fn literals_double_single_quotes() {
        assert_eq!(quote_literal("2s"), "'2s'");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
