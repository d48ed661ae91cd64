//! A relation's name as SQL or a plan writes it.

use std::fmt;

use crate::db::ident::fold_qualified;

/// A relation as SQL names it (unquoted parts folded to lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rel {
    /// `schema.` when written.
    pub schema: Option<String>,
    /// The relation.
    pub name: String,
}

impl Rel {
    /// From SQL text such as `public."Users"`.
    pub fn from_sql(text: &str) -> Rel {
        let mut parts = fold_qualified(text);
        let name = parts.pop().unwrap_or_default();
        Rel {
            schema: parts.pop(),
            name,
        }
    }

    /// From a plan field, where names are exact (`table = "Users"`).
    pub fn from_plan(text: &str) -> Rel {
        let mut parts = crate::db::ident::split_qualified(text);
        let name = parts.pop().unwrap_or_default();
        Rel {
            schema: parts.pop(),
            name,
        }
    }

    /// Whether two names can mean the same relation (a missing schema
    /// matches any).
    pub fn same(&self, other: &Rel) -> bool {
        self.name == other.name
            && match (&self.schema, &other.schema) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl fmt::Display for Rel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |s: &str| {
            let plain = s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !s.is_empty();
            if plain {
                s.to_string()
            } else {
                crate::db::quote_ident(s)
            }
        };
        match &self.schema {
            Some(schema) => write!(f, "{}.{}", show(schema), show(&self.name)),
            None => write!(f, "{}", show(&self.name)),
        }
    }
}
