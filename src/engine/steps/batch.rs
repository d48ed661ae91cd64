//! The batching loop shared by `backfill` (UPDATE) and `copy_rows`
//! (INSERT … SELECT): walk a unique key in ranges; each batch is one
//! transaction — find the range's upper key, do the work, advance the
//! checkpoint — so it commits or rolls back as a whole: a crash can neither
//! skip nor repeat a batch. Throttled on lag, gentle on the probe, paced by
//! dynamic batch sizing.

use std::time::{Duration, Instant};

use super::{Ctx, StepError};
use crate::db::{Conn, DbError, quote_ident, quote_qualified};
use crate::engine::events::EventKind;
use crate::engine::progress::{BatchProgress, RateWindow};
use crate::engine::throttle::{BatchSizer, Gentle, hold_reason, pace_limit};

use super::vacuum_behind::{BULK_IO, VacuumBehind, reset_session, set_session};

/// First batch size when the plan gives none.
pub const DEFAULT_BATCH: u64 = 1000;

/// The work one batch does on its key range.
#[derive(Debug, Clone)]
pub enum Work {
    /// `UPDATE table SET <set> WHERE <where>`.
    Update {
        /// The SET list (plan SQL).
        set: String,
    },
    /// `INSERT INTO to (cols) SELECT exprs FROM table … ON CONFLICT DO NOTHING`.
    Copy {
        /// Target table (as written in the plan).
        to: String,
        /// (target column, source expression) pairs.
        columns: Vec<(String, String)>,
    },
}

/// A batched step: walk `table` by `key`, doing `work` on rows matching
/// `filter`.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// The table walked (updated, or copied from).
    pub table: String,
    /// Its unique, indexed key.
    pub key: String,
    /// Extra condition (plan SQL).
    pub filter: Option<String>,
    /// What each batch does.
    pub work: Work,
    /// First batch size.
    pub batch_size: Option<u64>,
    /// VACUUM the table behind the batches (updates only).
    pub vacuum_behind: bool,
}

impl Work {
    /// The statement doing the work on one range (`range` is its key
    /// condition). Its command tag counts the rows it updated or copied.
    fn sql(&self, table: &str, range: &str, filter: &str) -> String {
        match self {
            Work::Update { set } => {
                format!("UPDATE {table} SET {set}\n    WHERE {range} AND ({filter})")
            }
            Work::Copy { to, columns } => {
                let targets: Vec<String> = columns.iter().map(|(c, _)| quote_ident(c)).collect();
                let exprs: Vec<&str> = columns.iter().map(|(_, e)| e.as_str()).collect();
                // FOR SHARE: a concurrent update or delete of a source row
                // waits for this batch, so its sync trigger sees the copied
                // row; without it the copy could write a row the trigger
                // already deleted or updated (stale data), or deadlock
                // against it.
                format!(
                    "INSERT INTO {} ({})
    SELECT {} FROM {table}
    WHERE {range} AND ({filter})
    FOR SHARE
    ON CONFLICT DO NOTHING",
                    quote_qualified(to),
                    targets.join(", "),
                    exprs.join(", ")
                )
            }
        }
    }

    /// What the rows counted by the batch are, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Work::Update { .. } => "updated",
            Work::Copy { .. } => "copied",
        }
    }
}

/// What the batch statements need to know about the key.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    /// `format_type` of the key column, used to cast the checkpoint.
    pub sql_type: String,
    /// The type has a `max` aggregate (uuid does not).
    pub has_max: bool,
}

/// Checks that the key exists and is unique and indexed; returns its type.
pub async fn check_key(conn: &Conn, table: &str, key: &str) -> Result<KeyInfo, String> {
    let qtable = quote_qualified(table);
    let row = conn
        .client
        .query_opt(
            "SELECT format_type(a.atttypid, a.atttypmod),
                    EXISTS (SELECT 1 FROM pg_index i
                            WHERE i.indrelid = a.attrelid AND i.indisunique AND i.indisvalid
                              AND i.indpred IS NULL AND i.indnkeyatts = 1
                              AND i.indkey[0] = a.attnum),
                    EXISTS (SELECT 1 FROM pg_aggregate g JOIN pg_proc p ON p.oid = g.aggfnoid
                            WHERE p.proname = 'max' AND p.pronargs = 1
                              AND p.proargtypes[0] = a.atttypid)
             FROM pg_attribute a
             WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
            &[&qtable, &key],
        )
        .await
        .map_err(|e| DbError::sql("checking the backfill key", e).to_string())?;
    let exists: bool = conn
        .client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qtable])
        .await
        .map_err(|e| DbError::sql("checking the backfill table", e).to_string())?
        .get(0);
    if !exists {
        return Err(format!("table {table} does not exist (backfill `table`)"));
    }
    let Some(row) = row else {
        return Err(format!(
            "table {table} has no column {key} (backfill `key`)"
        ));
    };
    if !row.get::<_, bool>(1) {
        return Err(format!(
            "backfill key {table}.{key} has no valid unique index; batches walk the key in order, \
             so it must be unique and indexed (use the primary key)"
        ));
    }
    Ok(KeyInfo {
        sql_type: row.get(0),
        has_max: row.get(2),
    })
}

/// The statements of one batch, run in one transaction (`BEGIN` …
/// `COMMIT`) so that the batch and its checkpoint commit or roll back
/// together.
///
/// Three statements rather than one: the work's row count comes from its
/// command tag. In one statement it needs `RETURNING` and a count over the
/// returned rows, which measured 23–25 ms of a 260 ms batch of 50k rows
/// (about 10 %); the two extra round trips cost well under a millisecond.
#[derive(Debug, Clone)]
pub struct BatchSql {
    /// Locks the step's checkpoint row, only if the checkpoint is still
    /// `$5`, and finds the range: up to `$1` keys after `$5`. Returns its
    /// upper key (text), its number of keys, and whether the checkpoint
    /// had moved (`stale`). A batch of a killed cutover may still be
    /// running on the server: this waits for it, sees the checkpoint moved,
    /// and the batch does nothing, so no range is ever done twice.
    pub range: String,
    /// The work on the range: keys up to `$1` (the upper key), and after
    /// `$2` (the last key done) unless this is the first batch.
    pub work: String,
    /// Advances the checkpoint of step (`$1` run, `$2` phase, `$3` step)
    /// to `$4`, counting `$5` keys and `$6` rows.
    pub checkpoint: String,
}

impl BatchSql {
    /// The whole batch as one script, for `cutover plan`.
    pub fn script(&self) -> String {
        format!(
            "BEGIN;\n\
             -- the range: up to $1 keys after $5, the last key done ($2, $3, $4: run, phase, step)\n\
             {};\n\
             -- the work: keys up to $1, the range's upper key, and after $2, the last key done\n\
             {};\n\
             -- the checkpoint: $4 the upper key, $5 keys and $6 rows done\n\
             {};\n\
             COMMIT",
            self.range, self.work, self.checkpoint
        )
    }
}

/// The batch's statements; `resume`: after a last key done (else the
/// first batch, from the start of the key).
pub fn batch_sql(spec: &BatchJob, key: &KeyInfo, resume: bool) -> BatchSql {
    let table = quote_qualified(&spec.table);
    let k = quote_ident(&spec.key);
    let cast = |n: u8| format!("${n}::text::{}", key.sql_type);
    let lower = if resume {
        format!("{k} > {}", cast(5))
    } else {
        "TRUE".to_string()
    };
    let filter = spec.filter.as_deref().unwrap_or("TRUE");
    let keys = format!(
        "SELECT {k} AS k FROM {table} WHERE {lower} AND EXISTS (SELECT 1 FROM ck) ORDER BY {k} LIMIT $1"
    );
    // The upper key of the range: max() where the type has one, else the
    // last row of the ordered range.
    let bounds = if key.has_max {
        format!("SELECT max(k) AS hi, count(*) AS n FROM ({keys}) s")
    } else {
        format!("SELECT k AS hi, count(*) OVER () AS n FROM ({keys}) s ORDER BY k DESC LIMIT 1")
    };
    let range = format!(
        "WITH ck AS (
    SELECT 1 FROM cutover.steps
    WHERE run_id = $2 AND phase = $3 AND step = $4
      AND (checkpoint->>'last_key') IS NOT DISTINCT FROM $5::text
    FOR UPDATE
),
bounds AS ({bounds})
SELECT (SELECT hi FROM bounds)::text, coalesce((SELECT n FROM bounds), 0),
       NOT EXISTS (SELECT 1 FROM ck)"
    );
    let within = if resume {
        format!("{k} <= {} AND {k} > {}", cast(1), cast(2))
    } else {
        format!("{k} <= {}", cast(1))
    };
    BatchSql {
        range,
        work: spec.work.sql(&table, &within, filter),
        checkpoint: "UPDATE cutover.steps
    SET checkpoint = jsonb_build_object('last_key', $4::text),
        status = 'running',
        rows_done = rows_done + $5,
        rows_updated = rows_updated + $6
    WHERE run_id = $1 AND phase = $2 AND step = $3"
            .to_string(),
    }
}

/// Estimated rows in the table (planner statistics), if analyzed.
pub async fn estimate_rows(conn: &Conn, table: &str) -> Option<i64> {
    conn.client
        .query_one(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)",
            &[&quote_qualified(table)],
        )
        .await
        .ok()
        .map(|r| r.get::<_, i64>(0))
        .filter(|n| *n > 0)
}

/// Runs batches until the key range is exhausted.
pub async fn run(spec: &BatchJob, ctx: &mut Ctx<'_>) -> Result<String, StepError> {
    let key = check_key(ctx.conn, &spec.table, &spec.key)
        .await
        .map_err(|e| StepError::Failed(format!("{e} (step `table`/`key`)")))?;
    let total = estimate_rows(ctx.conn, &spec.table).await;
    let (mut last_key, mut rows_done, mut rows_updated) = match ctx.journal {
        Some(j) => (j.last_key.clone(), j.rows_done, j.rows_updated),
        None => (None, 0, 0),
    };
    let conn = ctx.conn;
    let prepare_one = async |what: &str, sql: &str| {
        conn.client.prepare(sql).await.map_err(|e| {
            StepError::Failed(
                DbError::sql(
                    format!(
                        "preparing the batch's {what} statement (check the step's `set` and `where`)"
                    ),
                    e,
                )
                .to_string(),
            )
        })
    };
    // The checkpoint statement is the same for the first batch and the
    // rest: prepared once.
    let checkpoint = prepare_one("checkpoint", &batch_sql(spec, &key, false).checkpoint).await?;
    let prepare = async |resume: bool| {
        let sql = batch_sql(spec, &key, resume);
        Ok::<_, StepError>(Prepared {
            range: prepare_one("range", &sql.range).await?,
            work: prepare_one("work", &sql.work).await?,
            checkpoint: checkpoint.clone(),
        })
    };
    let first = prepare(false).await?;
    let next = prepare(true).await?;
    bulk_session(ctx.conn, true).await;
    // Batches have their own lock patience, not the DDL's lock_timeout:
    // a batch that meets an application's row lock waits this long, then
    // is rolled back and tried again.
    crate::db::retry::set_lock_timeout(ctx.conn, ctx.plan.settings.batch_lock_timeout.0)
        .await
        .map_err(|e| ctx.db_error(e))?;
    // Only under a pace: at full speed a pass frees little (the rows are
    // minutes old at most, and replicas' feedback holds back the newest)
    // and competes with the batches for the disk — measured: without it,
    // full speed was faster in four benchmark runs of five.
    let mut vacuum = match spec.work {
        Work::Update { .. } if spec.vacuum_behind && ctx.plan.throttle.paces() => {
            VacuumBehind::start(ctx, &spec.table, rows_updated).await
        }
        _ => None,
    };

    let throttle = &ctx.plan.throttle;
    let mut sizer = BatchSizer::new(
        spec.batch_size.unwrap_or(DEFAULT_BATCH),
        // Gentle mode: a writer that hits the batch's key range waits for
        // its row locks — up to one whole batch — so batches must not last
        // longer than the latency budget itself.
        match throttle.probe_latency {
            Some(budget) => throttle.target_batch_time.0.min(budget.0),
            None => throttle.target_batch_time.0,
        },
        throttle.min_batch_size,
        throttle.max_batch_size,
    );
    let _focus = FocusOn::new(ctx, &spec.table, &spec.key);
    let mut gentle = throttle.probe_latency.map(|t| Gentle::new(t.0));
    let mut gentle_seq = 0;
    let mut samples = ctx.monitor.clone();
    let mut listening = true;
    // When the last batch started, and its rows: at the pace limit they
    // set when the next may start.
    let mut last_batch: Option<(Instant, f64)> = None;
    // The pace the next batch runs at: the plan's limit until gentle mode
    // has its first batch, then updated after every batch and every probe
    // sample.
    let mut limit = pace_limit(throttle.max_rows_per_second, None);
    sizer.pace(limit);
    let mut held: Option<Instant> = None;
    let started = Instant::now();
    let mut rate = RateWindow::new(Duration::from_secs(10));
    rate.record(started, rows_done);
    let mut batches = 0u64;
    let mut lock_waits = 0u32;
    let (run_id, phase, step) = (ctx.run_id, ctx.phase as i32, ctx.step as i32);
    let cancel = ctx.control.abort.token().clone();
    publish(
        ctx,
        spec,
        total,
        rows_done,
        rows_updated,
        &rate,
        &sizer,
        Duration::ZERO,
        batches,
    );
    loop {
        ctx.control.safe_point(ctx.out).await?;
        hold_while_throttled(ctx, &mut held).await?;
        // Pacing: the previous batch's rows at the allowed rate set when
        // the next may start. Gentle mode keeps steering meanwhile: at a
        // low rate one batch of the smallest size is a pause of seconds,
        // and a ceiling that may rise only after each batch would climb
        // 10 % per pause (measured at 4M rows: from 10 rows/s, one step per
        // 10 s, for minutes after the probe was back at 1 ms).
        while let Some((t0, n)) = last_batch
            && let Some(r) = limit
            && let at = t0 + Duration::from_secs_f64(n / r)
            && at > Instant::now()
        {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => break,
                _ = cancel.cancelled() => break,
                changed = samples.changed(), if gentle.is_some() && listening => {
                    listening = changed.is_ok();
                }
            }
            if let Some(g) = gentle.as_mut() {
                steer(ctx, g, &mut gentle_seq, rate.rate());
                limit = pace_limit(throttle.max_rows_per_second, g.ceiling());
                sizer.pace(limit);
            }
        }
        ctx.control.safe_point(ctx.out).await?;
        let size = ctx.control.batch_override.unwrap_or(sizer.size()) as i64;
        let t0 = Instant::now();
        let statements = if last_key.is_some() { &next } else { &first };
        let ids = (run_id, phase, step);
        let outcome = ctx
            .conn
            .cancellable(
                one_batch(&ctx.conn.client, statements, size, ids, &last_key),
                &cancel,
                || match &last_key {
                    Some(lo) => format!("backfill batch on {} after key {lo}", spec.table),
                    None => format!("backfill batch on {}", spec.table),
                },
            )
            .await;
        let outcome = match outcome {
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                // A row the application holds: the batch waited its own
                // patience, rolled back, and is tried again — never fatal on
                // the first wait.
                lock_waits += 1;
                ctx.counters
                    .lock_timeouts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let of = ctx.plan.settings.batch_lock_retries;
                if lock_waits > of {
                    return Err(StepError::Failed(format!(
                        "{e}; {of} batches in a row waited batch_lock_timeout ({}) for rows another \
                         session holds. Find the session holding them (the Locks pane, pg_locks), \
                         or raise [settings] batch_lock_timeout / batch_lock_retries; `cutover run` \
                         resumes from the last committed batch",
                        ctx.plan.settings.batch_lock_timeout
                    )));
                }
                let wait = ctx.policy.backoff(lock_waits.min(8));
                ctx.out.emit(EventKind::Retry {
                    name: ctx.name.clone(),
                    retry: lock_waits,
                    of,
                    wait_ms: wait.as_millis() as u64,
                    reason: format!(
                        "a batch waited batch_lock_timeout ({}) for a row another session holds",
                        ctx.plan.settings.batch_lock_timeout
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = cancel.cancelled() => {}
                }
                continue;
            }
            other => other.map_err(|e| ctx.db_error(e))?,
        };
        lock_waits = 0;
        let (hi, n, updated) = match outcome {
            Outcome::Done { hi, keys, rows } => (hi, keys, rows),
            Outcome::Exhausted => break,
            Outcome::Stale => {
                // Another session moved the checkpoint (a killed cutover's
                // last batch committed after we read it): continue from
                // there.
                let fresh = crate::journal::steps(&ctx.conn.client, run_id)
                    .await
                    .map_err(|e| ctx.db_error(e))?
                    .into_iter()
                    .find(|r| r.phase == phase && r.step == step);
                if let Some(fresh) = fresh {
                    ctx.out.emit(crate::engine::events::EventKind::Notice {
                        message: format!(
                            "the checkpoint moved under us (an earlier session's last batch committed); \
                             continuing after key {}",
                            fresh.last_key.as_deref().unwrap_or("-")
                        ),
                    });
                    last_key = fresh.last_key;
                    rows_done = fresh.rows_done;
                    rows_updated = fresh.rows_updated;
                }
                continue;
            }
        };
        let elapsed = t0.elapsed();
        last_key = Some(hi);
        rows_done += n;
        rows_updated += updated;
        batches += 1;
        rate.record(Instant::now(), rows_done);
        sizer.observe(n as u64, elapsed);
        if let Some(g) = gentle.as_mut() {
            g.start_from(n as f64 / elapsed.as_secs_f64().max(1e-6));
            steer(ctx, g, &mut gentle_seq, rate.rate());
        } else if let Some(r) = throttle.max_rows_per_second {
            ctx.out.progress(|p| p.throttle = Some(paced_by_plan(r)));
        }
        limit = pace_limit(
            throttle.max_rows_per_second,
            gentle.as_ref().and_then(Gentle::ceiling),
        );
        sizer.pace(limit);
        last_batch = Some((t0, n as f64));
        publish(
            ctx,
            spec,
            total,
            rows_done,
            rows_updated,
            &rate,
            &sizer,
            elapsed,
            batches,
        );
        if let Some(v) = vacuum.as_mut()
            && let Err(e) = v.tick(rows_updated).await
        {
            ctx.out.emit(EventKind::Notice {
                message: format!(
                    "vacuum behind the backfill stopped: {e}; the backfill goes on, and the table \
                     grows by the rows it rewrites from here — VACUUM it afterwards"
                ),
            });
            vacuum = None;
        }
    }
    ctx.out.progress(|p| p.batch = None);
    bulk_session(ctx.conn, false).await;
    let mut vacuumed = String::new();
    if let Some(mut v) = vacuum {
        if let Err(e) = v.finish().await {
            ctx.out.emit(EventKind::Notice {
                message: format!("the last vacuum behind the backfill failed: {e}"),
            });
        }
        if v.passes > 0 {
            vacuumed = format!(
                "; {} vacuum passes behind it took {:.1}s",
                v.passes,
                v.took.as_secs_f64()
            );
        }
    }
    Ok(format!(
        "{rows_updated} rows {} ({rows_done} keys in {batches} batches this session{vacuumed})",
        spec.work.verb()
    ))
}

/// One batch's prepared statements ([`BatchSql`]).
struct Prepared {
    range: tokio_postgres::Statement,
    work: tokio_postgres::Statement,
    checkpoint: tokio_postgres::Statement,
}

/// What one batch did.
enum Outcome {
    /// Committed: the range's upper key, its keys, the rows worked.
    Done { hi: String, keys: i64, rows: i64 },
    /// No keys after the last key done: the step is complete.
    Exhausted,
    /// Another session moved the checkpoint; nothing was done.
    Stale,
}

/// Runs one batch in its own transaction. On any error it is rolled back
/// before the error is returned, so the connection is ready for the next
/// statement (the journal's, on an abort).
async fn one_batch(
    client: &tokio_postgres::Client,
    s: &Prepared,
    size: i64,
    (run_id, phase, step): (i64, i32, i32),
    last_key: &Option<String>,
) -> Result<Outcome, tokio_postgres::Error> {
    client.batch_execute("BEGIN").await?;
    let work = async {
        let row = client
            .query_one(&s.range, &[&size, &run_id, &phase, &step, last_key])
            .await?;
        if row.get::<_, bool>(2) {
            return Ok(Outcome::Stale);
        }
        let Some(hi) = row.get::<_, Option<String>>(0) else {
            return Ok(Outcome::Exhausted);
        };
        let keys: i64 = row.get(1);
        let rows = match last_key {
            Some(lo) => client.execute(&s.work, &[&hi, lo]).await?,
            None => client.execute(&s.work, &[&hi]).await?,
        } as i64;
        client
            .execute(&s.checkpoint, &[&run_id, &phase, &step, &hi, &keys, &rows])
            .await?;
        Ok(Outcome::Done { hi, keys, rows })
    };
    match work.await {
        Ok(done @ Outcome::Done { .. }) => {
            client.batch_execute("COMMIT").await?;
            Ok(done)
        }
        other => {
            rollback(client).await?;
            other
        }
    }
}

/// Ends the open transaction, also when a cancel request sent for the
/// batch reaches the server only now ([`crate::db::past_late_cancel`]).
async fn rollback(client: &tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    crate::db::past_late_cancel(|| client.batch_execute("ROLLBACK")).await
}

/// Sets up (or resets) the migration session for the batches:
///
/// - `synchronous_commit = off`: a batch's commit does not wait for its
///   WAL to reach the disk; the WAL writer flushes it in the background.
///   A synchronous batch commit flushes megabytes of WAL at once while the
///   application's commits queue behind it (measured at 45k rows/s on a
///   4M-row table: app p99 75 ms synchronous, 15 ms without). Safe: a batch
///   and its checkpoint are one transaction, so a server crash can take
///   back only the last moments' batches *with* their checkpoints, and the
///   resumed run does them again; the step's own completion record is
///   committed synchronously and flushes every batch before it.
/// - `backend_flush_after`, `wal_compression`: see [`BULK_IO`].
async fn bulk_session(conn: &Conn, on: bool) {
    const BATCHES: [(&str, &str); 1] = [("synchronous_commit", "off")];
    if on {
        set_session(conn, &BATCHES).await;
        set_session(conn, &BULK_IO).await;
    } else {
        reset_session(conn, &BATCHES).await;
        reset_session(conn, &BULK_IO).await;
    }
}

/// Points the monitor's probe and table statistics at the backfilled
/// table for as long as the step runs.
struct FocusOn<'a>(&'a std::sync::Mutex<crate::monitor::Focus>);

impl<'a> FocusOn<'a> {
    fn new(ctx: &Ctx<'a>, table: &str, key: &str) -> FocusOn<'a> {
        if let Ok(mut f) = ctx.focus.lock() {
            f.table = Some(table.to_string());
            f.key = Some(key.to_string());
        }
        FocusOn(ctx.focus)
    }
}

impl Drop for FocusOn<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.0.lock() {
            f.table = None;
            f.key = None;
        }
    }
}

/// Holds batches while a replica or slot is over the `[throttle]` limits
/// or the monitor is silent, saying why; honours pause and abort meanwhile.
async fn hold_while_throttled(
    ctx: &mut Ctx<'_>,
    held: &mut Option<Instant>,
) -> Result<(), StepError> {
    loop {
        let state = ctx.monitor.borrow().clone();
        let silent = if state.sample.seq == 0 {
            ctx.monitor_started.elapsed()
        } else {
            state.sample.taken.elapsed()
        };
        match hold_reason(&ctx.plan.throttle, &ctx.plan.abort, &state.sample, silent) {
            None => {
                if let Some(since) = held.take() {
                    ctx.out.emit(EventKind::Unthrottled {
                        held_ms: since.elapsed().as_millis() as u64,
                    });
                    ctx.out.progress(|p| p.throttle = None);
                }
                return Ok(());
            }
            Some(reason) => {
                if held.is_none() {
                    *held = Some(Instant::now());
                    ctx.out.emit(EventKind::Throttled {
                        reason: reason.clone(),
                    });
                }
                ctx.out.progress(|p| p.throttle = Some(reason));
                let cancel = ctx.control.abort.token().clone();
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = cancel.cancelled() => {}
                }
                ctx.control.safe_point(ctx.out).await?;
            }
        }
    }
}

/// Why batches are paced by the plan's rate limit.
fn paced_by_plan(rows_per_second: u64) -> String {
    format!("paced: ≤ {rows_per_second} rows/s (max_rows_per_second)")
}

/// Gentle mode learns from the monitor's newest probe sample, if it has
/// not seen it yet (about one a second), given the rows/s achieved
/// recently, and shows what paces the batches.
fn steer(ctx: &Ctx<'_>, g: &mut Gentle, seen: &mut u64, achieved: f64) {
    // Only the two values, not a copy of the whole sample: this runs
    // after every batch.
    let (seq, p95) = {
        let state = ctx.monitor.borrow();
        (state.sample.seq, state.sample.probe.as_ref().map(|p| p.p95))
    };
    let Some(p95) = p95 else {
        return;
    };
    if seq == *seen {
        return;
    }
    *seen = seq;
    g.observe(p95, achieved, Instant::now());
    let reason = match ctx.plan.throttle.max_rows_per_second {
        Some(r) if g.ceiling().is_some_and(|c| (r as f64) < c) => Some(paced_by_plan(r)),
        _ => g.reason(p95),
    };
    ctx.out.progress(|p| p.throttle = reason);
}

#[allow(clippy::too_many_arguments)]
fn publish(
    ctx: &Ctx<'_>,
    spec: &BatchJob,
    total: Option<i64>,
    rows_done: i64,
    rows_updated: i64,
    rate: &RateWindow,
    sizer: &BatchSizer,
    last_batch: Duration,
    batches: u64,
) {
    let per_sec = rate.rate();
    let eta = total.and_then(|t| {
        let left = (t - rows_done).max(0) as f64;
        (per_sec > 0.0).then(|| Duration::from_secs_f64(left / per_sec))
    });
    let batch = BatchProgress {
        table: spec.table.clone(),
        rows_done,
        rows_updated,
        rows_total: total.map(|t| t.max(rows_done)),
        rows_per_sec: per_sec,
        eta,
        batch_size: ctx.control.batch_override.unwrap_or(sizer.size()),
        last_batch,
        target_batch: sizer.target(),
        batches,
    };
    ctx.out.progress(|p| p.batch = Some(batch));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BatchJob {
        BatchJob {
            table: "users".into(),
            key: "id".into(),
            filter: Some("full_name IS NULL".into()),
            work: Work::Update {
                set: "full_name = name".into(),
            },
            batch_size: None,
            vacuum_behind: false,
        }
    }

    #[test]
    fn copy_batches_insert_and_skip_conflicts() {
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let job = BatchJob {
            table: "users".into(),
            key: "id".into(),
            filter: None,
            work: Work::Copy {
                to: "addresses".into(),
                columns: vec![
                    ("user_id".into(), "id".into()),
                    ("city".into(), "upper(city)".into()),
                ],
            },
            batch_size: None,
            vacuum_behind: false,
        };
        let sql = batch_sql(&job, &key, true).work;
        assert!(
            sql.contains(r#"INSERT INTO "addresses" ("user_id", "city")"#),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT id, upper(city) FROM \"users\""),
            "{sql}"
        );
        assert!(sql.contains("ON CONFLICT DO NOTHING"), "{sql}");
    }

    #[test]
    fn batch_statement_quotes_names_and_keeps_plan_sql() {
        let key = KeyInfo {
            sql_type: "bigint".into(),
            has_max: true,
        };
        let sql = batch_sql(&spec(), &key, true);
        assert!(
            sql.work.contains(r#"UPDATE "users" SET full_name = name"#),
            "{sql:?}"
        );
        assert!(sql.range.contains(r#""id" > $5::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains(r#""id" > $2::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains(r#""id" <= $1::text::bigint"#), "{sql:?}");
        assert!(sql.work.contains("(full_name IS NULL)"), "{sql:?}");
        assert!(!sql.work.contains("RETURNING"), "{sql:?}");
        assert!(sql.range.contains("max(k)"), "{sql:?}");
        assert!(sql.range.contains("FOR UPDATE"), "{sql:?}");
        let first = batch_sql(&spec(), &key, false);
        assert!(!first.range.contains("$5::text::bigint"), "{first:?}");
        assert!(!first.work.contains("$2"), "{first:?}");
        assert!(first.range.contains("FOR UPDATE"), "{first:?}");
    }

    #[test]
    fn keys_without_max_use_the_last_row_of_the_range() {
        let key = KeyInfo {
            sql_type: "uuid".into(),
            has_max: false,
        };
        let sql = batch_sql(&spec(), &key, true).range;
        assert!(!sql.contains("max(k)"), "{sql}");
        assert!(sql.contains("ORDER BY k DESC LIMIT 1"), "{sql}");
    }
}
