//! The statements each step will send, aimed at the copies: the plan's own
//! SQL statement by statement, and the SQL cutover generates for each step
//! kind.

use std::collections::HashMap;

use super::names::{reaches_real, references_in_text, shadow, to_copies, without_concurrently};
use super::{Probe, Use};
use crate::db::{Conn, DbError, quote_ident, quote_qualified};
use crate::plan::Step;
use crate::plan::model::{Rename, SyncTriggerStep};
use crate::sql::{self, Action, ConstraintKind, Kind, Rel};
use crate::statements::batch::{self, BatchJob, KeyInfo};
use crate::statements::{constraint, create_index, not_null, swap, sync_trigger, verify};

/// The plan's own SQL, statement by statement: DDL that touches only
/// copies is replayed; writes and queries are prepared; statements that
/// would reach a real table are parsed only.
async fn plan_sql(
    conn: &Conn,
    text: &str,
    sources: &HashMap<u32, String>,
    what: &str,
    field: &'static str,
) -> Result<Vec<Probe>, String> {
    let text = to_copies(conn, text, sources).await?;
    let mut out = Vec::new();
    for stmt in sql::parse(&text) {
        let rels: Option<Vec<Rel>> = match &stmt.kind {
            Kind::Begin
            | Kind::End
            | Kind::Set
            | Kind::Vacuum { .. }
            | Kind::Cluster { .. }
            | Kind::Lock { .. }
            | Kind::Unparsed { .. } => continue,
            Kind::Read => {
                out.push(Probe::new(what, field, stmt.text.clone(), Use::Prepare));
                continue;
            }
            Kind::Update { table, .. } | Kind::Delete { table, .. } | Kind::Insert { table } => {
                if !reaches_real(conn, table).await? {
                    out.push(Probe::new(what, field, stmt.text.clone(), Use::Prepare));
                }
                continue;
            }
            Kind::AlterTable { table, actions } => {
                let mut rels = vec![table.clone()];
                let mut replayable = true;
                for a in actions {
                    match a {
                        Action::AddConstraint {
                            references: Some(r),
                            ..
                        } => rels.push(r.clone()),
                        Action::AddConstraint {
                            kind: ConstraintKind::ForeignKey,
                            references: None,
                            ..
                        }
                        | Action::DetachPartition { .. }
                        | Action::AttachPartition { .. } => replayable = false,
                        Action::AddColumn { constraints, .. }
                            if constraints.contains(&ConstraintKind::ForeignKey) =>
                        {
                            replayable = false
                        }
                        _ => {}
                    }
                }
                replayable.then_some(rels)
            }
            Kind::CreateIndex { table, .. } => Some(vec![table.clone()]),
            Kind::DropIndex { indexes, .. } => Some(indexes.clone()),
            Kind::Reindex { rel, .. } => rel.clone().map(|r| vec![r]),
            Kind::CreateTable {
                table,
                references,
                like,
                ..
            } => {
                let mut rels = vec![table.clone()];
                rels.extend(references.iter().cloned());
                rels.extend(like.iter().cloned());
                Some(rels)
            }
            Kind::DropTable { tables } | Kind::Truncate { tables, .. } => Some(tables.clone()),
            // Triggers, functions, grants…: their objects may live outside
            // the copies; the server parses them.
            // Domains, materialized views, schemas, databases, transaction
            // control: not table copies either.
            _ => None,
        };
        let rels = rels.map(|mut rels| {
            rels.extend(references_in_text(&stmt.text));
            rels
        });
        let mut replay = rels.is_some();
        for rel in rels.iter().flatten() {
            if reaches_real(conn, rel).await? {
                replay = false;
            }
        }
        out.push(if replay {
            Probe::new(what, field, without_concurrently(&stmt.text), Use::Replay)
        } else {
            Probe::new(what, field, stmt.text.clone(), Use::Prepare)
        });
    }
    Ok(out)
}

/// The key column's type on a copy (None: no such column; the existence
/// check reports that).
async fn key_info(conn: &Conn, table: &str, key: &str) -> Result<Option<KeyInfo>, String> {
    let row = conn
        .client
        .query_opt(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
            &[&quote_qualified(table), &key],
        )
        .await
        .map_err(|e| DbError::sql("reading a key's type for the shadow check", e).to_string())?;
    Ok(row.map(|r| KeyInfo {
        sql_type: r.get(0),
        has_max: true,
    }))
}

/// The columns of a copy, in order.
async fn columns_of(conn: &Conn, table: &str) -> Result<Vec<String>, String> {
    let rows = conn
        .client
        .query(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("reading columns for the shadow check", e).to_string())?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `col = expr, …` (a sync trigger's `set`) as an UPDATE SET list.
fn set_list(set: &str) -> Result<String, String> {
    sync_trigger::split_assignments(set)
        .iter()
        .map(|part| {
            let (col, expr) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in `set` is not `column = expression`"))?;
            let col = col.trim().trim_start_matches("NEW.").trim_matches('"');
            Ok(format!("{} = {}", quote_ident(col), expr.trim()))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|v| v.join(", "))
}

/// What a sync trigger's function will evaluate, as statements the server
/// can prepare: `NEW`/`OLD` become aliases of the copy.
fn trigger_probes(spec: &SyncTriggerStep, out: &mut Vec<Probe>) -> Result<(), String> {
    if let Some(set) = &spec.set {
        let table = shadow(spec.table.as_deref().unwrap_or_default());
        out.push(Probe::new(
            "the sync trigger's assignments",
            "`set`/`when`",
            format!(
                "UPDATE {} AS new SET {} WHERE {}",
                quote_qualified(&table),
                set_list(set)?,
                spec.when.as_deref().unwrap_or("TRUE")
            ),
            Use::Prepare,
        ));
    } else if let (Some(old), Some(new)) = (&spec.old, &spec.new) {
        let table = shadow(spec.table.as_deref().unwrap_or_default());
        let (o, n) = (quote_ident(old), quote_ident(new));
        let forward = spec.forward.clone().unwrap_or(format!("NEW.{o}"));
        let backward = spec.backward.clone().unwrap_or(format!("NEW.{n}"));
        out.push(Probe::new(
            "the sync trigger's copies between the columns",
            "`old`/`new`/`forward`/`backward`",
            format!(
                "UPDATE {} AS new SET {n} = {forward}, {o} = {backward}",
                quote_qualified(&table)
            ),
            Use::Prepare,
        ));
    } else if let (Some(from), Some(to), Some(key), Some(columns)) =
        (&spec.from, &spec.to, &spec.key, &spec.columns)
    {
        let (from, to) = (quote_qualified(&shadow(from)), quote_qualified(&shadow(to)));
        let to_key = spec.to_key.clone().unwrap_or(key.clone());
        let (qk, qtk) = (quote_ident(key), quote_ident(&to_key));
        let pairs = columns.pairs();
        let targets: Vec<String> = pairs.iter().map(|(c, _)| quote_ident(c)).collect();
        let exprs: Vec<&str> = pairs.iter().map(|(_, e)| e.as_str()).collect();
        out.push(Probe::new(
            "the sync trigger's copy of a row",
            "`columns`/`to_key`",
            format!(
                "INSERT INTO {to} ({}) SELECT {} FROM (SELECT new.* FROM {from} AS new) AS s \
                 ON CONFLICT ({qtk}) DO NOTHING",
                targets.join(", "),
                exprs.join(", ")
            ),
            Use::Prepare,
        ));
        out.push(Probe::new(
            "the sync trigger's delete of a copied row",
            "`key`/`to_key`",
            format!("DELETE FROM {to} WHERE {qtk} = (SELECT old.{qk} FROM {from} AS old LIMIT 1)"),
            Use::Prepare,
        ));
    }
    Ok(())
}

/// Whether an added constraint references a table that is not a copy (a
/// foreign key locks the table it references).
async fn references_real(conn: &Conn, add: &str) -> Result<bool, String> {
    let targets = references_in_text(add);
    for r in &targets {
        if reaches_real(conn, r).await? {
            return Ok(true);
        }
    }
    if !targets.is_empty() {
        return Ok(false);
    }
    for stmt in sql::parse(add) {
        let Kind::AlterTable { actions, .. } = &stmt.kind else {
            continue;
        };
        for a in actions {
            match a {
                Action::AddConstraint {
                    references: Some(r),
                    ..
                } if reaches_real(conn, r).await? => return Ok(true),
                Action::AddConstraint {
                    kind: ConstraintKind::ForeignKey,
                    references: None,
                    ..
                } => return Ok(true),
                _ => {}
            }
        }
    }
    Ok(false)
}

/// The statements a step will send, aimed at the copies.
pub(super) async fn probes(
    conn: &Conn,
    step: &Step,
    sources: &HashMap<u32, String>,
) -> Result<Vec<Probe>, String> {
    let mut out = Vec::new();
    match step {
        Step::Sql(s) => {
            out.extend(plan_sql(conn, &s.sql, sources, "a statement of `sql`", "`sql`").await?)
        }
        Step::Backfill(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            if let Some(key) = key_info(conn, &spec.table, &spec.key).await? {
                let work = batch::batch_sql(&BatchJob::backfill(&spec), &key, true).work;
                out.push(Probe::new(
                    "the batch UPDATE",
                    "`set`/`where`",
                    work,
                    Use::Prepare,
                ));
            }
        }
        Step::CopyRows(s) => {
            let mut spec = s.clone();
            spec.from = shadow(&s.from);
            spec.to = shadow(&s.to);
            if let Some(key) = key_info(conn, &spec.from, &spec.key).await? {
                let work = batch::batch_sql(&BatchJob::copy_rows(&spec), &key, true).work;
                out.push(Probe::new(
                    "the batch INSERT … SELECT",
                    "`columns`/`where`",
                    work,
                    Use::Prepare,
                ));
            }
        }
        Step::CreateIndex(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            out.push(Probe::new(
                "the index build",
                "`columns`/`where`/`using`",
                without_concurrently(&create_index::build_sql(&spec)),
                Use::Replay,
            ));
        }
        Step::Constraint(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            if let Some((build, attach)) = constraint::unique_sql(&spec) {
                out.push(Probe::new(
                    "the unique index build",
                    "`definition`",
                    without_concurrently(&build),
                    Use::Replay,
                ));
                out.push(Probe::new(
                    "attaching the index",
                    "`definition`",
                    attach,
                    Use::Replay,
                ));
            } else if constraint::shape(&spec) == constraint::Shape::Exclude {
                out.push(Probe::new(
                    "adding the exclusion constraint",
                    "`definition`",
                    constraint::exclude_sql(&spec),
                    Use::Replay,
                ));
            } else {
                let add = constraint::add_sql(&spec);
                // A foreign key locks the table it references: replayed
                // only when that is a copy.
                let replay = !references_real(conn, &add).await?;
                if replay {
                    out.push(Probe::new(
                        "adding the constraint",
                        "`definition`",
                        add,
                        Use::Replay,
                    ));
                    out.push(Probe::new(
                        "validating the constraint",
                        "`definition`",
                        constraint::validate_sql(&spec),
                        Use::Replay,
                    ));
                } else {
                    out.push(Probe::new(
                        "adding the constraint",
                        "`definition`",
                        add,
                        Use::Prepare,
                    ));
                }
            }
        }
        Step::NotNull(s) => {
            let mut spec = s.clone();
            spec.table = shadow(&s.table);
            for (what, sql) in [
                ("the NOT VALID check", not_null::add_sql(&spec)),
                ("validating the check", not_null::validate_sql(&spec)),
                ("SET NOT NULL", not_null::finish_sql(&spec)),
            ] {
                out.push(Probe::new(what, "`column`", sql, Use::Replay));
            }
        }
        Step::SyncTrigger(s) => {
            let mut spec = s.clone();
            spec.table = s.table.as_deref().map(shadow);
            spec.from = s.from.as_deref().map(shadow);
            spec.to = s.to.as_deref().map(shadow);
            trigger_probes(&spec, &mut out)?;
            let name = quote_ident(&sync_trigger::object_name(s));
            // The function lives with the copies; the trigger names it
            // explicitly (functions are never looked up in pg_temp).
            let create = sync_trigger::create_sql(&spec)?.replace(
                &format!("FUNCTION {name}("),
                &format!("FUNCTION pg_temp.{name}("),
            );
            out.push(Probe::new(
                "creating the sync trigger",
                "the step's fields",
                create,
                Use::Replay,
            ));
        }
        Step::Verify(s) => {
            if let Some(text) = &s.sql {
                out.extend(plan_sql(conn, text, sources, "the verify query", "`sql`").await?);
            }
            if let Some(c) = &s.compare {
                let mut c2 = c.clone();
                c2.left = shadow(&c.left);
                c2.right = shadow(&c.right);
                if let Some(key) = key_info(conn, &c2.left, &c2.key).await? {
                    let cols = match &c.columns {
                        Some(cols) => cols.clone(),
                        None => columns_of(conn, &c2.left).await?,
                    };
                    let rcols = c.right_columns.clone().unwrap_or_else(|| cols.clone());
                    out.push(Probe::new(
                        "the compare",
                        "`compare`",
                        verify::chunk_sql(&c2, &key, &cols, &rcols, true),
                        Use::Prepare,
                    ));
                }
            }
        }
        Step::Swap(s) => {
            let renames: Vec<Rename> = s
                .renames
                .iter()
                .map(|r| match &r.table {
                    Some(t) => Rename {
                        table: Some(shadow(t)),
                        ..r.clone()
                    },
                    None => Rename {
                        from: shadow(&r.from),
                        ..r.clone()
                    },
                })
                .collect();
            out.push(Probe::new(
                "the renames",
                "`renames`",
                swap::swap_sql(&renames),
                Use::Replay,
            ));
        }
        Step::Gate(_) => {}
        // Checked on both databases when they run.
        Step::Replicate(_) | Step::VerifyAcross(_) | Step::Switchover(_) => {}
        // Checked against the catalog when they run (names resolve through
        // earlier renames of the version).
        Step::RenameColumn(_)
        | Step::RenameTable(_)
        | Step::AddColumn(_)
        | Step::DropColumn(_)
        | Step::AlterColumn(_)
        | Step::DropConstraint(_)
        | Step::DropNotNull(_) => {}
    }
    Ok(out)
}
