//! `kind = "verify_across"`: the chunked checksum compare of `verify`,
//! with one side on the other database, while writes continue. Each chunk
//! is hashed on the main database (noting its WAL position as it reads)
//! and on the other. Writes land on the two sides at different moments,
//! so a mismatching chunk is only a suspect: once the other side has
//! applied past the point of the main side's read, its rows are compared
//! one by one, and rows that still differ are read again, a few rounds.
//! Only a persistent difference fails (a tripped criterion, naming the
//! key ranges and keys).

use std::collections::BTreeMap;
use std::time::Duration;

use super::batch::check_key;
use super::detach::{connect_other, focus_on, hold_for_apply_lag, move_name, pause, wait_applied};
use super::verify::{DEFAULT_CHUNK, columns_of, fail};
use super::{Ctx, StepError};
use crate::db::{Conn, DbError};
use crate::engine::progress::BatchProgress;
use crate::plan::model::VerifyAcrossStep;
use crate::statements::replication::CURRENT_LSN;
use crate::statements::verify_across as sql;

/// Rounds of per-row rechecks before a difference counts as persistent.
const ROUNDS: usize = 6;
/// Keys shown per persistent mismatch.
const SHOWN_KEYS: usize = 5;

/// A key range whose hashes differed: (after, up to) as key text; `None`
/// is open.
type Range = (Option<String>, Option<String>);

/// Runs the compare.
pub async fn run(spec: &VerifyAcrossStep, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let slot = move_name(ctx, &spec.database).await?;
    focus_on(ctx, &spec.database, &slot, None);
    let other = connect_other(ctx, &spec.database).await?;
    let source = Conn::connect(ctx.conn.target())
        .await
        .map_err(|e| ctx.db_error(e))?;
    for (conn, which) in [
        (&source, "the main database"),
        (&other, spec.database.as_str()),
    ] {
        conn.client
            .batch_execute(sql::STABLE_TEXT)
            .await
            .map_err(|e| {
                StepError::Failed(DbError::sql(format!("setting up {which}"), e).to_string())
            })?;
    }
    let key = check_key(&source, &spec.table, &spec.key)
        .await
        .map_err(|e| StepError::Failed(format!("{e} (verify_across `table`/`key`)")))?;
    let cols = match &spec.columns {
        Some(c) => c.clone(),
        None => columns_of(&source, &spec.table)
            .await
            .map_err(|e| ctx.db_error(e))?,
    };
    let t = &key.sql_type;
    let prepare = |e| {
        StepError::Failed(
            DbError::sql("preparing the compare (check `table`, `key`, `columns`)", e).to_string(),
        )
    };
    let src_chunk = source
        .client
        .prepare(&sql::source_chunk_sql(&spec.table, &spec.key, t, &cols))
        .await
        .map_err(prepare)?;
    let dst_chunk = other
        .client
        .prepare(&sql::target_chunk_sql(&spec.table, &spec.key, t, &cols))
        .await
        .map_err(prepare)?;
    let tail = sql::tail_count_sql(&spec.table, &spec.key, t);
    let chunk = spec.chunk.unwrap_or(DEFAULT_CHUNK).max(1) as i64;
    let total = super::batch::estimate_rows(&source, &spec.table).await;
    let mut last: Option<String> = None;
    let (mut rows, mut chunks, mut walks) = (0i64, 0u64, 0);
    let mut suspects: Vec<Range> = Vec::new();
    loop {
        loop {
            hold_for_apply_lag(ctx).await?;
            let r = source
                .client
                .query_one(&src_chunk, &[&chunk, &last])
                .await
                .map_err(|e| {
                    ctx.db_error(DbError::sql("hashing a chunk on the main database", e))
                })?;
            let hi: Option<String> = r.get(0);
            let Some(hi) = hi else { break };
            let (n, lsum): (i64, Option<String>) = (r.get(1), r.get(2));
            let d = other
                .client
                .query_one(&dst_chunk, &[&last, &hi])
                .await
                .map_err(|e| {
                    StepError::Failed(
                        DbError::sql(format!("hashing a chunk on {}", spec.database), e)
                            .to_string(),
                    )
                })?;
            let (rn, rsum): (i64, Option<String>) = (d.get(0), d.get(1));
            if n != rn || lsum != rsum {
                suspects.push((last.clone(), Some(hi.clone())));
            }
            rows += n;
            chunks += 1;
            last = Some(hi);
            let progress = BatchProgress {
                table: format!("{} vs {}", spec.table, spec.database),
                rows_done: rows,
                rows_total: total.map(|t| t.max(rows)),
                batch_size: chunk as u64,
                batches: chunks,
                ..BatchProgress::default()
            };
            ctx.out.progress(|p| p.batch = Some(progress));
        }
        // Rows inserted during the walk: walk on while the main side grew.
        let more: i64 = source
            .client
            .query_one(&tail, &[&last])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("counting rows past the last key", e)))?
            .get(0);
        if more > 0 && walks < 10 {
            walks += 1;
            continue;
        }
        suspects.push((last.clone(), None));
        break;
    }
    ctx.out.progress(|p| p.batch = None);
    let mut persistent = Vec::new();
    let rows_sql = sql::rows_sql(&spec.table, &spec.key, t, &cols);
    // The tail (past the last key) is always read again; others differed.
    let rechecked = suspects.len().saturating_sub(1);
    if rechecked > 0 {
        ctx.out.emit(crate::engine::events::EventKind::Notice {
            message: format!(
                "{rechecked} chunk(s) of {} differed while writes went on; comparing their rows \
                 again once {} has applied past each read",
                spec.table, spec.database
            ),
        });
    }
    for range in suspects {
        if let Some(keys) = recheck(ctx, &source, &other, &rows_sql, &slot, &range).await? {
            let lo = range
                .0
                .as_deref()
                .map_or("start".to_string(), |l| format!("{l} (exclusive)"));
            let hi = range.1.as_deref().unwrap_or("end");
            let shown: Vec<&str> = keys.iter().take(SHOWN_KEYS).map(String::as_str).collect();
            persistent.push(format!(
                "{} {lo} to {hi}: {} row(s) differ (e.g. {} = {})",
                spec.key,
                keys.len(),
                spec.key,
                shown.join(", ")
            ));
        }
    }
    if persistent.is_empty() {
        return Ok(format!(
            "{} matches on {}: {rows} rows in {chunks} chunks ({rechecked} rechecked after the \
             target caught up)",
            spec.table, spec.database
        ));
    }
    Err(fail(
        ctx,
        format!("{} mismatching range(s)", persistent.len()),
        "expected 0".into(),
        format!(
            "{} differs between the main database and {} in {}",
            spec.table,
            spec.database,
            persistent.join("; ")
        ),
    ))
}

async fn row_hashes(
    conn: &Conn,
    statement: &str,
    range: &Range,
    keys: &Option<Vec<String>>,
) -> Result<BTreeMap<String, String>, DbError> {
    Ok(conn
        .client
        .query(statement, &[&range.0, &range.1, keys])
        .await
        .map_err(|e| DbError::sql("reading row hashes", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Compares a suspect range row by row. Each round reads the main side,
/// waits until the other side has applied past that read, and reads the
/// other side. A row differs for good when the other side still disagrees
/// although the main side's row did not change from that round's read to
/// the next (so there was nothing left to apply for it). Rows that keep
/// changing are read again; if they never settle they are reported, not
/// failed (a row the application rewrites is rewritten on both sides).
/// Returns the keys that differ for good, or `None`.
async fn recheck(
    ctx: &mut Ctx<'_>,
    source: &Conn,
    other: &Conn,
    statement: &str,
    slot: &str,
    range: &Range,
) -> Result<Option<Vec<String>>, StepError> {
    let wait = Duration::from_secs(300);
    let mut keys: Option<Vec<String>> = None;
    let mut previous: Option<(BTreeMap<String, String>, Vec<String>)> = None;
    for round in 0..=ROUNDS {
        let mine = row_hashes(source, statement, range, &keys)
            .await
            .map_err(|e| ctx.db_error(e))?;
        if let Some((before, differed)) = &previous {
            let settled: Vec<String> = differed
                .iter()
                .filter(|k| before.get(*k) == mine.get(*k))
                .cloned()
                .collect();
            if !settled.is_empty() {
                return Ok(Some(settled));
            }
            if round == ROUNDS {
                ctx.out.emit(crate::engine::events::EventKind::Notice {
                    message: format!(
                        "{} row(s) kept changing while compared (e.g. {}); they are rewritten \
                         on both sides as they change",
                        differed.len(),
                        differed.first().map_or("", String::as_str)
                    ),
                });
                return Ok(None);
            }
        }
        // Read after the rows: every change the read saw is before it.
        let lsn: String = source
            .client
            .query_one(CURRENT_LSN, &[])
            .await
            .map_err(|e| ctx.db_error(DbError::sql("reading the WAL position", e)))?
            .get(0);
        wait_applied(ctx, source, slot, &lsn, wait).await?;
        let theirs = row_hashes(other, statement, range, &keys)
            .await
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let mut differ: Vec<String> = mine
            .iter()
            .filter(|(k, h)| theirs.get(*k) != Some(*h))
            .map(|(k, _)| k.clone())
            .collect();
        differ.extend(theirs.keys().filter(|k| !mine.contains_key(*k)).cloned());
        if differ.is_empty() {
            return Ok(None);
        }
        differ.sort();
        differ.truncate(10_000);
        keys = Some(differ.clone());
        previous = Some((mine, differ));
        pause(ctx, Duration::from_millis(100 * (round as u64 + 1))).await?;
    }
    Ok(None)
}
