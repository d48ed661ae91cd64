//! `kind = "verify"`: a read-only query whose value must match `expect`, or
//! a chunked compare of two tables (or columns): per key range of `left`,
//! `md5(string_agg(row text ORDER BY key))` on both sides, so millions of
//! rows are checked without leaving the server. A mismatch is an abort
//! criterion: the run stops, nothing is undone, and the message names the
//! mismatching key ranges.

use super::batch::{check_key, estimate_rows};
use super::{Ctx, StepError};
use crate::db::{Conn, DbError, quote_qualified};
use crate::engine::control::Stop;
use crate::engine::events::EventKind;
use crate::engine::progress::BatchProgress;
use crate::plan::model::{Compare, VerifyStep};
use crate::statements::verify::{chunk_sql, tail_sql};

/// Rows per compared chunk unless the plan says otherwise.
pub const DEFAULT_CHUNK: u64 = 50_000;

/// Runs the check.
pub async fn run(spec: &VerifyStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    match (&spec.compare, &spec.sql, &spec.expect) {
        (Some(c), _, _) => compare(c, ctx).await,
        (None, Some(sql), Some(expect)) => query(sql, expect, ctx).await,
        _ => Err(StepError::Failed(
            "verify needs `sql` + `expect` or `compare`".into(),
        )),
    }
}

/// What a verify query returned: exactly one value, or why not.
pub fn single_value(
    messages: &[tokio_postgres::SimpleQueryMessage],
) -> Result<Option<String>, String> {
    let rows: Vec<&tokio_postgres::SimpleQueryRow> = messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .collect();
    match rows.as_slice() {
        [] => Err("no row".into()),
        [row] if row.len() == 1 => Ok(row.get(0).map(str::to_string)),
        [row] => Err(format!("{} columns (it must return one value)", row.len())),
        more => Err(format!("{} rows (it must return one value)", more.len())),
    }
}

async fn query(sql: &str, expect: &toml::Value, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let cancel = ctx.control.abort.token().clone();
    // Read only: a verify query that tries to change data fails instead.
    let body = sql.trim().trim_end_matches(';');
    let wrapped = format!("BEGIN READ ONLY;\n{body}\n;\nCOMMIT");
    let result = ctx
        .conn
        .cancellable(ctx.conn.client.simple_query(&wrapped), &cancel, || {
            format!("verify query `{}` (run READ ONLY)", sql.trim())
        })
        .await;
    let messages = match result {
        Ok(m) => m,
        Err(e) => {
            // Leave the session outside any transaction for what follows.
            let _ = crate::db::past_late_cancel(|| ctx.conn.client.batch_execute("ROLLBACK")).await;
            return Err(ctx.db_error(e));
        }
    };
    let got = single_value(&messages).map_err(|why| {
        StepError::Failed(format!(
            "verify query `{}` returned {why}; write a query that returns exactly one value",
            sql.trim()
        ))
    })?;
    let expected = expected_text(expect);
    match got {
        Some(value) if Some(&value) == expected.as_ref() => {
            Ok(format!("{} = {}", sql.trim(), show(&Some(value))))
        }
        other => {
            let got = show(&other);
            Err(fail(
                ctx,
                got.clone(),
                format!("expected {}", show(&expected)),
                format!("`{}` returned {got}", sql.trim()),
            ))
        }
    }
}

/// A failed verification: recorded as a tripped criterion, then an abort.
pub(super) fn fail(ctx: &mut Ctx<'_>, value: String, limit: String, detail: String) -> StepError {
    ctx.out.emit(EventKind::CriterionTripped {
        criterion: "failed_verification".into(),
        value,
        limit: limit.clone(),
        detail: detail.clone(),
    });
    let reason = format!("verification failed: {detail} ({limit})");
    ctx.control.abort.abort(reason.clone());
    StepError::Stopped(Stop::Aborted(reason))
}

/// `expect` as PostgreSQL prints the value in text form.
pub fn expected_text(expect: &toml::Value) -> Option<String> {
    Some(match expect {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(true) => "t".into(),
        toml::Value::Boolean(false) => "f".into(),
        other => other.to_string(),
    })
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(s) => s.clone(),
        None => "NULL".into(),
    }
}

/// The table's columns, in order (what a compare hashes by default).
pub(super) async fn columns_of(conn: &Conn, table: &str) -> Result<Vec<String>, DbError> {
    let rows = conn
        .client
        .query(
            "SELECT attname::text FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&quote_qualified(table)],
        )
        .await
        .map_err(|e| DbError::sql("reading the compared columns", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn compare(c: &Compare, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let key = check_key(ctx.conn, &c.left, &c.key)
        .await
        .map_err(|e| StepError::Failed(format!("{e} (compare `left`/`key`)")))?;
    let cols = match &c.columns {
        Some(cols) => cols.clone(),
        None => columns_of(ctx.conn, &c.left)
            .await
            .map_err(|e| ctx.db_error(e))?,
    };
    let rcols = c.right_columns.clone().unwrap_or_else(|| cols.clone());
    let first = chunk_sql(c, &key, &cols, &rcols, false);
    let next = chunk_sql(c, &key, &cols, &rcols, true);
    let prepare_err = |e| {
        StepError::Failed(
            DbError::sql(
                "preparing the compare (check `left`, `right`, `columns`)",
                e,
            )
            .to_string(),
        )
    };
    let first = ctx.conn.client.prepare(&first).await.map_err(prepare_err)?;
    let next = ctx.conn.client.prepare(&next).await.map_err(prepare_err)?;
    let chunk = c.chunk.unwrap_or(DEFAULT_CHUNK).max(1) as i64;
    let total = estimate_rows(ctx.conn, &c.left).await;
    let cancel = ctx.control.abort.token().clone();
    let mut last: Option<String> = None;
    let (mut rows, mut chunks) = (0i64, 0u64);
    let mut mismatches: Vec<String> = Vec::new();
    // Rows inserted while the walk runs (on both sides, by a sync trigger)
    // can land past the last key between statements: the tail is checked on
    // both sides in one statement, and the walk resumes if `left` grew.
    let mut tails = 0;
    'walk: loop {
        loop {
            ctx.control.safe_point(ctx.out).await?;
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match &last {
                None => vec![&chunk],
                Some(lo) => vec![&chunk, lo],
            };
            let statement = if last.is_some() { &next } else { &first };
            let fut = ctx.conn.client.query_one(statement, &params);
            let row = ctx
                .conn
                .cancellable(fut, &cancel, || {
                    format!("comparing {} with {}", c.left, c.right)
                })
                .await
                .map_err(|e| ctx.db_error(e))?;
            let hi: Option<String> = row.get(0);
            let Some(hi) = hi else { break };
            let n: i64 = row.get(1);
            let (lsum, rsum): (Option<String>, Option<String>) = (row.get(2), row.get(3));
            let rn: i64 = row.get(4);
            if lsum != rsum || n != rn {
                let lo = last
                    .as_deref()
                    .map_or("start".to_string(), |l| format!("{l} (exclusive)"));
                mismatches.push(format!("{} {lo} to {hi}: {n} rows left, {rn} right", c.key));
            }
            rows += n;
            chunks += 1;
            last = Some(hi);
            let progress = BatchProgress {
                table: format!("{} vs {}", c.left, c.right),
                rows_done: rows,
                rows_total: total.map(|t| t.max(rows)),
                batch_size: chunk as u64,
                batches: chunks,
                workers: Vec::new(),
                ..BatchProgress::default()
            };
            ctx.out.progress(|p| p.batch = Some(progress));
        }
        let past_last = tail_sql(c, &key, last.is_some());
        let tail = ctx
            .conn
            .client
            .query_one(&past_last, &[&last])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("checking the rows past the last key", e)))?;
        let (more_left, more_right): (i64, i64) = (tail.get(0), tail.get(1));
        if more_left > 0 && tails < 10 {
            tails += 1;
            continue 'walk;
        }
        if more_right != more_left {
            mismatches.push(format!(
                "{} after {}: {more_left} rows in {}, {more_right} in {}",
                c.key,
                last.as_deref().unwrap_or("start"),
                c.left,
                c.right
            ));
        }
        break;
    }
    ctx.out.progress(|p| p.batch = None);
    if mismatches.is_empty() {
        return Ok(format!(
            "{} and {} match: {rows} rows in {chunks} chunks",
            c.left, c.right
        ));
    }
    let shown: Vec<&str> = mismatches.iter().take(10).map(String::as_str).collect();
    let more = if mismatches.len() > 10 {
        format!(" and {} more", mismatches.len() - 10)
    } else {
        String::new()
    };
    Err(fail(
        ctx,
        format!("{} mismatching range(s)", mismatches.len()),
        "expected 0".into(),
        format!(
            "{} and {} differ in {}{more}",
            c.left,
            c.right,
            shown.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_render_like_postgres_text() {
        assert_eq!(
            expected_text(&toml::Value::Integer(0)).as_deref(),
            Some("0")
        );
        assert_eq!(
            expected_text(&toml::Value::Boolean(true)).as_deref(),
            Some("t")
        );
        assert_eq!(
            expected_text(&toml::Value::String("ok".into())).as_deref(),
            Some("ok")
        );
    }
}
