//! Step rows: each executed step's status, checkpoint, identity (what it
//! does, as a fingerprint and its fields), the exact undo it recorded when
//! it ran, and the objects it created.

use tokio_postgres::Client;

use super::StepStatus;
use crate::db::DbError;

/// A step row.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Phase index.
    pub phase: i32,
    /// Step index within the phase.
    pub step: i32,
    /// Step name.
    pub name: String,
    /// Step kind.
    pub kind: String,
    /// Where it stands.
    pub status: StepStatus,
    /// The last key a backfill committed.
    pub last_key: Option<String>,
    /// Keys covered so far.
    pub rows_done: i64,
    /// Rows changed so far.
    pub rows_updated: i64,
    /// The phase's name when the run recorded it.
    pub phase_name: String,
    /// What the step does, hashed ([`crate::plan::identity`]); None in
    /// journals written before step identities were kept.
    pub fingerprint: Option<String>,
    /// Its identifying fields, to say what changed.
    pub spec: Option<serde_json::Value>,
    /// The undo recorded when it ran.
    pub undo: Option<serde_json::Value>,
    /// Objects it created (for a clean-up that drops only those).
    pub created: Vec<Created>,
    /// Its phase is irreversible.
    pub irreversible: bool,
}

/// An object a step created, recorded before the statement that creates it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Created {
    /// An index (qualified, quoted name).
    Index {
        /// The index.
        name: String,
    },
    /// A constraint on a table (quoted, qualified table; constraint name).
    Constraint {
        /// The table.
        table: String,
        /// The constraint.
        name: String,
    },
    /// A concurrent index build in a `sql` step (CREATE INDEX or REINDEX
    /// CONCURRENTLY) on this table: any INVALID index on it that is not
    /// one of `before` is its leftover.
    IndexBuild {
        /// The table (quoted, qualified as written).
        table: String,
        /// The table's indexes before the statement ran.
        before: Vec<String>,
    },
    /// A publication on the main database (a `replicate` step's).
    Publication {
        /// Its name.
        name: String,
    },
    /// A subscription on another database, and its slot (same name) on
    /// the main one.
    Subscription {
        /// The plan's name for the database.
        database: String,
        /// The subscription's (and slot's) name.
        name: String,
    },
    /// A table (with its owned sequences) created on another database.
    OtherTable {
        /// The plan's name for the database.
        database: String,
        /// The table, qualified and quoted.
        table: String,
    },
    /// The switchover's write freeze on a table of the main database:
    /// removed on failure only while `publication` still exists (the
    /// replication was not detached yet).
    Freeze {
        /// The table, qualified and quoted.
        table: String,
        /// The run's publication.
        publication: String,
    },
}

/// A step of the plan, as the journal records it.
#[derive(Debug)]
pub struct NewStep<'a> {
    /// Phase index.
    pub phase: i32,
    /// Step index.
    pub step: i32,
    /// Phase name.
    pub phase_name: &'a str,
    /// Step name.
    pub name: &'a str,
    /// Step kind.
    pub kind: &'a str,
    /// [`crate::plan::identity::fingerprint`].
    pub fingerprint: String,
    /// [`crate::plan::identity::spec`].
    pub spec: serde_json::Value,
    /// Its phase is irreversible.
    pub irreversible: bool,
}

/// The steps of a run, in order.
pub async fn steps(client: &Client, run_id: i64) -> Result<Vec<StepRow>, DbError> {
    let rows = client
        .query(
            "SELECT phase, step, name, kind, status, checkpoint->>'last_key', rows_done, rows_updated,
                    phase_name, fingerprint, spec, undo, created, irreversible
             FROM cutover.steps WHERE run_id = $1 ORDER BY phase, step",
            &[&run_id],
        )
        .await
        .map_err(|e| DbError::sql("reading the run's steps", e))?;
    Ok(rows
        .iter()
        .map(|r| StepRow {
            phase: r.get(0),
            step: r.get(1),
            name: r.get(2),
            kind: r.get(3),
            status: StepStatus::parse(r.get(4)),
            last_key: r.get(5),
            rows_done: r.get(6),
            rows_updated: r.get(7),
            phase_name: r.get(8),
            fingerprint: r.get(9),
            spec: r.get(10),
            undo: r.get(11),
            created: r
                .get::<_, Option<serde_json::Value>>(12)
                .and_then(|v| serde_json::from_value(v).ok())
                .unwrap_or_default(),
            irreversible: r.get(13),
        })
        .collect())
}

/// Sets one step's status (and detail).
pub async fn set_step_status(
    client: &Client,
    run_id: i64,
    phase: usize,
    step: usize,
    status: StepStatus,
    detail: Option<&str>,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE cutover.steps SET status = $4, detail = coalesce($5, detail),
                 started_at = CASE WHEN $4 = 'running' THEN coalesce(started_at, now()) ELSE started_at END,
                 finished_at = CASE WHEN $4 IN ('done', 'failed', 'rolled_back') THEN now() END,
                 checkpoint = CASE WHEN $4 IN ('rolled_back', 'pending') THEN NULL ELSE checkpoint END,
                 rows_done = CASE WHEN $4 IN ('rolled_back', 'pending') THEN 0 ELSE rows_done END,
                 rows_updated = CASE WHEN $4 IN ('rolled_back', 'pending') THEN 0 ELSE rows_updated END
             WHERE run_id = $1 AND phase = $2 AND step = $3",
            &[
                &run_id,
                &(phase as i32),
                &(step as i32),
                &status.as_str(),
                &detail,
            ],
        )
        .await
        .map_err(|e| DbError::sql("recording a step's status", e))?;
    Ok(())
}

/// Records what a step is and how it is undone, as it starts: a rollback
/// later runs exactly this undo, whatever the plan file says by then.
pub async fn record_identity(
    client: &Client,
    run_id: i64,
    phase: usize,
    step: usize,
    fingerprint: &str,
    spec: &serde_json::Value,
    undo: &serde_json::Value,
) -> Result<(), DbError> {
    client
        .execute(
            "UPDATE cutover.steps SET fingerprint = $4, spec = $5, undo = $6
             WHERE run_id = $1 AND phase = $2 AND step = $3",
            &[
                &run_id,
                &(phase as i32),
                &(step as i32),
                &fingerprint,
                spec,
                undo,
            ],
        )
        .await
        .map_err(|e| DbError::sql("recording the step's identity and undo", e))?;
    Ok(())
}

/// Records an object the step is about to create (before the statement, so
/// a crash mid-statement still leaves the record for the clean-up).
pub async fn record_created(
    client: &Client,
    run_id: i64,
    phase: usize,
    step: usize,
    object: &Created,
) -> Result<(), DbError> {
    let value = serde_json::to_value(object).unwrap_or_default();
    client
        .execute(
            "UPDATE cutover.steps SET created = created || jsonb_build_array($4::jsonb)
             WHERE run_id = $1 AND phase = $2 AND step = $3
               AND NOT created @> jsonb_build_array($4::jsonb)",
            &[&run_id, &(phase as i32), &(step as i32), &value],
        )
        .await
        .map_err(|e| DbError::sql("recording an object the step creates", e))?;
    Ok(())
}

#[derive(Debug)]
/// One plan step's place in a run laid out again for an edited plan
/// (`--force-changed-plan`): the journal row it continues, if any.
pub struct Realigned<'a> {
    /// Its position in the edited plan.
    pub phase: i32,
    /// Its position in the edited plan.
    pub step: i32,
    /// The journal row (by its old position) it continues, if any.
    pub from: Option<(i32, i32)>,
    /// For a new row: what to record.
    pub new: NewStep<'a>,
    /// Start its checkpoint over (a batched step whose rows changed).
    pub restart: bool,
}

/// Lays a run's step rows out for an edited plan, in one transaction: rows
/// that continue move to their new position (keeping status, checkpoint,
/// undo and created objects); rows no step continues are deleted (the
/// caller refuses when any of them had run); new steps start pending.
pub async fn realign(
    client: &Client,
    run_id: i64,
    layout: &[Realigned<'_>],
) -> Result<(), DbError> {
    let ctx = |e| DbError::sql("laying the run's steps out for the edited plan", e);
    super::in_transaction(client, "laying the run's steps out for the edited plan", async {
        // Out of the way of the primary key first.
        client
            .execute(
                "UPDATE cutover.steps SET phase = -1 - phase WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(ctx)?;
        for r in layout {
            match r.from {
                Some((phase, step)) => {
                    client
                        .execute(
                            "UPDATE cutover.steps SET phase = $2, step = $3, phase_name = $6, name = $7,
                                 fingerprint = $8, spec = $9, irreversible = $10,
                                 checkpoint = CASE WHEN $11 THEN NULL ELSE checkpoint END,
                                 rows_done = CASE WHEN $11 THEN 0 ELSE rows_done END,
                                 rows_updated = CASE WHEN $11 THEN 0 ELSE rows_updated END,
                                 status = CASE WHEN $11 AND status <> 'done' THEN 'pending' ELSE status END
                             WHERE run_id = $1 AND phase = -1 - $4 AND step = $5",
                            &[
                                &run_id,
                                &r.phase,
                                &r.step,
                                &phase,
                                &step,
                                &r.new.phase_name,
                                &r.new.name,
                                &r.new.fingerprint,
                                &r.new.spec,
                                &r.new.irreversible,
                                &r.restart,
                            ],
                        )
                        .await
                        .map_err(ctx)?;
                }
                None => {
                    client
                        .execute(
                            "INSERT INTO cutover.steps
                                 (run_id, phase, step, phase_name, name, kind, fingerprint, spec, irreversible)
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            &[
                                &run_id,
                                &r.phase,
                                &r.step,
                                &r.new.phase_name,
                                &r.new.name,
                                &r.new.kind,
                                &r.new.fingerprint,
                                &r.new.spec,
                                &r.new.irreversible,
                            ],
                        )
                        .await
                        .map_err(ctx)?;
                }
            }
        }
        client
            .execute(
                "DELETE FROM cutover.steps WHERE run_id = $1 AND phase < 0",
                &[&run_id],
            )
            .await
            .map_err(ctx)?;
        Ok::<(), DbError>(())
    })
    .await
}
