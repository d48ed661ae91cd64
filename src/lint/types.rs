//! Whether a column type change rewrites the table.

/// A type change rewrites the table: `Some(false)` when the new type is
/// binary-compatible with the old (varchar widening, varchar → text, …),
/// `None` when the old type is not known and it could be.
pub fn type_change_rewrites(old: Option<&str>, new: &str, using: bool) -> Option<bool> {
    let new = TypeName::parse(new);
    let compatible_family = ["varchar", "text", "numeric", "varbit", "inet"];
    let Some(old) = old else {
        return if compatible_family.contains(&new.base.as_str()) && !using {
            None
        } else {
            Some(true)
        };
    };
    if using {
        return Some(true);
    }
    let old = TypeName::parse(old);
    let widened = |o: &[u64], n: &[u64]| match (o, n) {
        (_, []) => true,
        ([], _) => false,
        ([a], [b]) => b >= a,
        ([p, s], [p2, s2]) => s2 == s && p2 >= p,
        ([p], [p2, s2]) => *s2 == 0 && p2 >= p,
        _ => false,
    };
    let same_base = old.base == new.base;
    let ok = (same_base
        && ["varchar", "numeric", "varbit", "bit_len"].contains(&new.base.as_str())
        && widened(&old.args, &new.args))
        || (same_base && old.args == new.args)
        || (old.base == "varchar" && new.base == "text")
        || (old.base == "text" && new.base == "varchar" && new.args.is_empty())
        || (old.base == "cidr" && new.base == "inet");
    Some(!ok)
}

/// A type name reduced to a canonical base and its numeric arguments.
#[derive(Debug, PartialEq)]
struct TypeName {
    base: String,
    args: Vec<u64>,
}

impl TypeName {
    fn parse(text: &str) -> TypeName {
        let lower = text.trim().to_lowercase();
        let (head, args) = match lower.find('(') {
            Some(i) => (
                lower[..i].trim().to_string(),
                lower[i + 1..]
                    .trim_end_matches(|c: char| c == ')' || c.is_whitespace())
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect(),
            ),
            None => (lower.clone(), Vec::new()),
        };
        let head = head.split_whitespace().collect::<Vec<_>>().join(" ");
        let head = head.rsplit('.').next().unwrap_or(&head).to_string();
        let base = match head.as_str() {
            "character varying" | "varchar" => "varchar",
            "int" | "integer" | "int4" => "int4",
            "bigint" | "int8" => "int8",
            "smallint" | "int2" => "int2",
            "decimal" | "numeric" => "numeric",
            "bit varying" | "varbit" => "varbit",
            "character" | "char" | "bpchar" => "bpchar",
            "timestamp" | "timestamp without time zone" => "timestamp",
            "timestamptz" | "timestamp with time zone" => "timestamptz",
            "double precision" | "float8" => "float8",
            "real" | "float4" => "float4",
            "bool" | "boolean" => "bool",
            other => other,
        }
        .to_string();
        TypeName { base, args }
    }
}
