//! `verify`: the chunked compare of two tables (or columns).

use super::batch::KeyInfo;
use crate::db::{quote_ident, quote_qualified};
use crate::plan::model::Compare;

/// The chunk statement: `$1` = chunk size, `$2` = last key (next chunks).
pub fn chunk_sql(
    c: &Compare,
    key: &KeyInfo,
    cols: &[String],
    rcols: &[String],
    resume: bool,
) -> String {
    let (left, right) = (quote_qualified(&c.left), quote_qualified(&c.right));
    let k = quote_ident(&c.key);
    let rk = quote_ident(c.right_key.as_deref().unwrap_or(&c.key));
    let row = |cs: &[String]| {
        let q: Vec<String> = cs.iter().map(|c| quote_ident(c)).collect();
        format!("ROW({})::text", q.join(", "))
    };
    let (lower_l, lower_r) = if resume {
        (
            format!("{k} > $2::text::{}", key.sql_type),
            format!("{rk} > $2::text::{}", key.sql_type),
        )
    } else {
        ("TRUE".to_string(), "TRUE".to_string())
    };
    let range = format!("SELECT {k} AS k FROM {left} WHERE {lower_l} ORDER BY {k} LIMIT $1");
    let bounds = if key.has_max {
        format!("SELECT max(k) AS hi, count(*) AS n FROM ({range}) s")
    } else {
        format!("SELECT k AS hi, count(*) OVER () AS n FROM ({range}) s ORDER BY k DESC LIMIT 1")
    };
    format!(
        "WITH r AS ({bounds})
SELECT (SELECT hi FROM r)::text, coalesce((SELECT n FROM r), 0),
  (SELECT md5(string_agg({lrow}, E'\\n' ORDER BY {k})) FROM {left}
     WHERE {lower_l} AND {k} <= (SELECT hi FROM r)),
  (SELECT md5(string_agg({rrow}, E'\\n' ORDER BY {rk})) FROM {right}
     WHERE {lower_r} AND {rk} <= (SELECT hi FROM r)),
  (SELECT count(*) FROM {right} WHERE {lower_r} AND {rk} <= (SELECT hi FROM r))",
        lrow = row(cols),
        rrow = row(rcols),
    )
}

/// The tail check after the walk: how many rows each side has past the
/// last key compared (`$1`, text; `resume` false: none compared yet, so
/// every row counts).
pub fn tail_sql(c: &Compare, key: &KeyInfo, resume: bool) -> String {
    let k = quote_ident(&c.key);
    let rk = quote_ident(c.right_key.as_deref().unwrap_or(&c.key));
    let (left_past, right_past) = if resume {
        (
            format!("{k} > $1::text::{}", key.sql_type),
            format!("{rk} > $1::text::{}", key.sql_type),
        )
    } else {
        (
            "$1::text IS NULL".to_string(),
            "$1::text IS NULL".to_string(),
        )
    };
    format!(
        "SELECT (SELECT count(*) FROM {} WHERE {left_past}), (SELECT count(*) FROM {} WHERE {right_past})",
        quote_qualified(&c.left),
        quote_qualified(&c.right)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare() -> Compare {
        Compare {
            left: "users".into(),
            right: "users_v2".into(),
            key: "id".into(),
            right_key: None,
            columns: None,
            right_columns: None,
            chunk: None,
        }
    }

    #[test]
    fn compare_chunks_hash_both_sides_in_key_order() {
        let c = compare();
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let cols = vec!["id".to_string(), "name".to_string()];
        let sql = chunk_sql(&c, &key, &cols, &cols, true);
        assert!(
            sql.contains(
                r#"md5(string_agg(ROW("id", "name")::text, E'\n' ORDER BY "id")) FROM "users""#
            ),
            "{sql}"
        );
        assert!(sql.contains(r#"FROM "users_v2""#), "{sql}");
        assert!(sql.contains(r#""id" > $2::text::bigint"#), "{sql}");
    }

    #[test]
    fn the_tail_counts_both_sides_past_the_last_key() {
        let mut c = compare();
        c.right_key = Some("user id".into());
        let key = KeyInfo {
            sql_type: "uuid".into(),
            has_max: false,
        };
        let sql = tail_sql(&c, &key, true);
        assert!(
            sql.contains(r#"FROM "users" WHERE "id" > $1::text::uuid"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#"FROM "users_v2" WHERE "user id" > $1::text::uuid"#),
            "{sql}"
        );
        let first = tail_sql(&c, &key, false);
        assert_eq!(first.matches("$1::text IS NULL").count(), 2, "{first}");
    }
}
