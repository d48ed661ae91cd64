//! The tables to move: found and checked on the main database, then made
//! (or checked to match and be empty) on the other one.

use crate::db::{Conn, DbError};
use crate::engine::events::EventKind;
use crate::engine::steps::{Ctx, StepError};
use crate::journal::steps::Created;
use crate::plan::model::ReplicateStep;
use crate::statements::replication::{self as sql, Column};

/// The tables to move, qualified and quoted, each checked to exist and
/// have a primary key (logical replication needs a replica identity for
/// updates and deletes).
pub(super) async fn tables(spec: &ReplicateStep, ctx: &Ctx<'_>) -> Result<Vec<String>, StepError> {
    const CANONICAL: &str = "SELECT format('%I.%I', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)";
    let c = &ctx.conn.client;
    let names: Vec<String> = if spec.all_tables() {
        c.query(sql::ALL_TABLES, &[])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("listing the tables", e)))?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        let mut out = Vec::new();
        for t in &spec.tables {
            let row = c
                .query_opt(CANONICAL, &[&crate::db::quote_qualified(t)])
                .await
                .map_err(|e| ctx.db_error(DbError::sql("looking up the table", e)))?;
            match row {
                Some(r) => out.push(r.get(0)),
                None => {
                    return Err(StepError::Failed(format!(
                        "replicate `tables`: table {t} does not exist on the main database"
                    )));
                }
            }
        }
        out
    };
    if names.is_empty() {
        return Err(StepError::Failed(
            "replicate: the main database has no tables to move".into(),
        ));
    }
    for t in &names {
        let pk = c
            .query_opt(sql::PRIMARY_KEY, &[t])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("reading the primary key", e)))?;
        if pk.is_none() {
            return Err(StepError::Failed(format!(
                "table {t} has no primary key: logical replication needs one (its replica \
                 identity) to carry updates and deletes; add one before moving it"
            )));
        }
    }
    Ok(names)
}

/// A table's columns, each with whether it is generated.
async fn columns(conn: &Conn, table: &str) -> Result<Vec<(Column, bool)>, DbError> {
    Ok(conn
        .client
        .query(sql::TABLE_COLUMNS, &[&table])
        .await
        .map_err(|e| DbError::sql(format!("reading the columns of {table}"), e))?
        .iter()
        .map(|r| {
            let generated: String = r.get(6);
            (
                Column {
                    name: r.get(0),
                    sql_type: r.get(1),
                    not_null: r.get(2),
                    default: r.get(3),
                    sequence: r.get(4),
                    identity: r.get(5),
                },
                !generated.is_empty(),
            )
        })
        .collect())
}

/// Makes the table on the other database from the main one's catalog, or
/// checks the one there matches (same columns and types) and is empty.
pub(super) async fn definition_on_other(
    ctx: &Ctx<'_>,
    other: &Conn,
    database: &str,
    table: &str,
) -> Result<(), StepError> {
    let fail = |e: DbError| StepError::Failed(format!("database `{database}`: {e}"));
    let source_cols = columns(ctx.conn, table)
        .await
        .map_err(|e| ctx.db_error(e))?;
    if let Some((c, _)) = source_cols.iter().find(|(_, generated)| *generated) {
        return Err(StepError::Failed(format!(
            "{table}.{} is a generated column; create {table} on `{database}` yourself first \
             (replication fills it there)",
            c.name
        )));
    }
    let exists: bool = other
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(|e| fail(DbError::sql("looking up the table", e)))?
        .get(0);
    if exists {
        let theirs = columns(other, table).await.map_err(fail)?;
        let shape = |cols: &[(Column, bool)]| -> Vec<(String, String)> {
            cols.iter()
                .map(|(c, _)| (c.name.clone(), c.sql_type.clone()))
                .collect()
        };
        if shape(&theirs) != shape(&source_cols) {
            return Err(StepError::Failed(column_mismatch(
                table,
                database,
                &shape(&source_cols),
                &shape(&theirs),
            )));
        }
        let empty: bool = other
            .client
            .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[])
            .await
            .map_err(|e| fail(DbError::sql("checking the table is empty", e)))?
            .get(0);
        if !empty {
            return Err(StepError::Failed(format!(
                "{table} on `{database}` already holds rows; the initial copy would clash with \
                 them. Empty it (or drop it) first"
            )));
        }
        return Ok(());
    }
    let pk: String = ctx
        .conn
        .client
        .query_one(sql::PRIMARY_KEY, &[&table])
        .await
        .map_err(|e| ctx.db_error(DbError::sql("reading the primary key", e)))?
        .get(0);
    let cols: Vec<Column> = source_cols.into_iter().map(|(c, _)| c).collect();
    let mut statements = Vec::new();
    for seq in cols
        .iter()
        .filter(|c| c.is_serial())
        .filter_map(|c| c.sequence.as_ref())
    {
        let taken: bool = other
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[seq])
            .await
            .map_err(|e| fail(DbError::sql("looking up the sequence", e)))?
            .get(0);
        if taken {
            return Err(StepError::Failed(format!(
                "sequence {seq} already exists on `{database}` without table {table}; drop it \
                 there, or create {table} there yourself"
            )));
        }
        statements.push(sql::create_sequence_sql(seq));
    }
    statements.push(sql::create_table_sql(table, &cols, &pk));
    ctx.record_created(&Created::OtherTable {
        database: database.to_string(),
        table: table.to_string(),
    })
    .await?;
    let body = format!("BEGIN;\n{};\nCOMMIT", statements.join(";\n"));
    if let Err(e) = other.client.batch_execute(&body).await {
        let _ = other.client.batch_execute("ROLLBACK").await;
        return Err(fail(DbError::sql(format!("creating {table}"), e)));
    }
    ctx.out.emit(EventKind::Notice {
        message: format!("created {table} on `{database}` from the main database's definition"),
    });
    Ok(())
}

/// Why a table already on the other database does not fit: which columns
/// are missing there, extra there or of another type (or the order, when
/// only that differs), then both column lists as `name type`.
fn column_mismatch(
    table: &str,
    database: &str,
    main: &[(String, String)],
    other: &[(String, String)],
) -> String {
    let find = |cols: &[(String, String)], name: &str| {
        cols.iter().find(|(n, _)| n == name).map(|(_, t)| t.clone())
    };
    let listed = |cols: &[&(String, String)]| {
        cols.iter()
            .map(|(n, t)| format!("{n} {t}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut differences = Vec::new();
    let missing: Vec<_> = main
        .iter()
        .filter(|(n, _)| find(other, n).is_none())
        .collect();
    if !missing.is_empty() {
        differences.push(format!("missing on `{database}`: {}", listed(&missing)));
    }
    let extra: Vec<_> = other
        .iter()
        .filter(|(n, _)| find(main, n).is_none())
        .collect();
    if !extra.is_empty() {
        differences.push(format!("only on `{database}`: {}", listed(&extra)));
    }
    for (name, ours) in main {
        if let Some(theirs) = find(other, name).filter(|t| t != ours) {
            differences.push(format!(
                "{name} is {ours} on the main database but {theirs} on `{database}`"
            ));
        }
    }
    if differences.is_empty() {
        differences.push("the same columns in another order".into());
    }
    let all = |cols: &[(String, String)]| listed(&cols.iter().collect::<Vec<_>>());
    format!(
        "{table} exists on `{database}` with other columns than on the main database: {}. \
         Main database: {}; `{database}`: {}. Make them match, or drop it there and let the \
         step create it",
        differences.join("; "),
        all(main),
        all(other)
    )
}

#[cfg(test)]
mod tests {
    use super::column_mismatch;

    fn cols(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_column_mismatch_names_each_difference_with_names_and_types() {
        let main = cols(&[("id", "bigint"), ("email", "text"), ("born", "date")]);
        let other = cols(&[
            ("id", "bigint"),
            ("email", "character varying(80)"),
            ("x", "integer"),
        ]);
        let m = column_mismatch("public.users", "target", &main, &other);
        assert_eq!(
            m,
            "public.users exists on `target` with other columns than on the main database: \
             missing on `target`: born date; only on `target`: x integer; email is text on the \
             main database but character varying(80) on `target`. Main database: id bigint, \
             email text, born date; `target`: id bigint, email character varying(80), x integer. \
             Make them match, or drop it there and let the step create it"
        );
        assert!(!m.contains("(\""), "no raw tuples: {m}");
    }

    #[test]
    fn columns_in_another_order_say_so() {
        let main = cols(&[("id", "bigint"), ("email", "text")]);
        let other = cols(&[("email", "text"), ("id", "bigint")]);
        let m = column_mismatch("public.users", "target", &main, &other);
        assert!(m.contains(": the same columns in another order."), "{m}");
    }
}
