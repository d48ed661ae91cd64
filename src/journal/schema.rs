//! The journal's tables in schema `cutover`, created on first use and
//! upgraded in place by version.

use tokio_postgres::Client;

use crate::db::DbError;

/// Each entry upgrades the schema from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: runs, step states with checkpoints, events.
    "CREATE TABLE cutover.runs (
        id bigserial PRIMARY KEY,
        plan_name text NOT NULL,
        plan_hash text NOT NULL,
        plan_path text NOT NULL,
        status text NOT NULL,
        phase int NOT NULL DEFAULT 0,
        step int NOT NULL DEFAULT 0,
        reason text,
        host text NOT NULL,
        os_pid int NOT NULL,
        started_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz
    );
    CREATE UNIQUE INDEX runs_one_unfinished_per_plan ON cutover.runs (plan_name)
        WHERE status NOT IN ('finished', 'rolled_back');
    CREATE TABLE cutover.steps (
        run_id bigint NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
        phase int NOT NULL,
        step int NOT NULL,
        phase_name text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        status text NOT NULL DEFAULT 'pending',
        checkpoint jsonb,
        rows_done bigint NOT NULL DEFAULT 0,
        rows_updated bigint NOT NULL DEFAULT 0,
        detail text,
        started_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (run_id, phase, step)
    ) WITH (fillfactor = 50);
    CREATE TABLE cutover.events (
        id bigserial PRIMARY KEY,
        run_id bigint NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        level text NOT NULL,
        message text NOT NULL,
        data jsonb
    );
    CREATE INDEX events_by_run ON cutover.events (run_id, id);",
    // 2: the probe's heartbeat, a row per probing session: each probe
    // commits a tiny write so its latency includes the WAL flush an
    // application's commit waits for.
    "CREATE TABLE cutover.heartbeat (pid int PRIMARY KEY, beat timestamptz NOT NULL);",
    // 3: a step is identified by what it does (fingerprint and fields), with
    // the undo it recorded when it ran and the objects it created; commands
    // from other terminals are rows that only roles allowed to write them can
    // send (NOTIFY is only the doorbell), with who sent them.
    "ALTER TABLE cutover.steps
        ADD COLUMN fingerprint text,
        ADD COLUMN spec jsonb,
        ADD COLUMN undo jsonb,
        ADD COLUMN created jsonb NOT NULL DEFAULT '[]',
        ADD COLUMN irreversible boolean NOT NULL DEFAULT false;
    CREATE TABLE cutover.commands (
        id bigserial PRIMARY KEY,
        run_id bigint NOT NULL REFERENCES cutover.runs ON DELETE CASCADE,
        command text NOT NULL,
        argument text,
        sent_by name NOT NULL,
        sent_at timestamptz NOT NULL,
        handled_at timestamptz,
        outcome text
    );
    CREATE INDEX commands_unhandled ON cutover.commands (run_id, id) WHERE handled_at IS NULL;
    CREATE FUNCTION cutover.command_sender() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            NEW.sent_by := current_user;
            NEW.sent_at := now();
            NEW.handled_at := NULL;
            NEW.outcome := NULL;
            RETURN NEW;
        END $$;
    CREATE TRIGGER command_sender BEFORE INSERT ON cutover.commands
        FOR EACH ROW EXECUTE FUNCTION cutover.command_sender();",
    // 4: the driver's latest progress (wait and throttle reasons, rows, rate,
    // ETA, the gate), for `cutover status` from any terminal.
    "ALTER TABLE cutover.runs ADD COLUMN snapshot jsonb, ADD COLUMN snapshot_at timestamptz;",
    // 5: migration history. What was applied is derived from finished runs;
    // a run now records the database role that drove it (older runs keep
    // NULL: unknown). A baseline marks plans as applied without running
    // them, on a database that already has their changes.
    "ALTER TABLE cutover.runs ADD COLUMN db_user name;
    ALTER TABLE cutover.runs ALTER COLUMN db_user SET DEFAULT current_user;
    CREATE TABLE cutover.baselines (
        id bigserial PRIMARY KEY,
        plan_name text NOT NULL UNIQUE,
        plan_path text NOT NULL,
        plan_hash text NOT NULL,
        marked_by name NOT NULL DEFAULT current_user,
        marked_at timestamptz NOT NULL DEFAULT now()
    );",
    // 6: a batched step with `workers`: its key split into disjoint ranges
    // when it starts, each with its own checkpoint (a worker's batch locks
    // and advances only its row). The ranges follow the step row when an
    // edited plan moves it, and go when its checkpoint is reset.
    "CREATE TABLE cutover.step_ranges (
        run_id bigint NOT NULL,
        phase int NOT NULL,
        step int NOT NULL,
        worker int NOT NULL,
        lo text,
        hi text,
        last_key text,
        rows_done bigint NOT NULL DEFAULT 0,
        rows_updated bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, phase, step, worker),
        FOREIGN KEY (run_id, phase, step) REFERENCES cutover.steps
            ON UPDATE CASCADE ON DELETE CASCADE
    ) WITH (fillfactor = 50);
    CREATE FUNCTION cutover.forget_ranges() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
        BEGIN
            DELETE FROM cutover.step_ranges
             WHERE run_id = NEW.run_id AND phase = NEW.phase AND step = NEW.step;
            RETURN NULL;
        END $$;
    CREATE TRIGGER forget_ranges AFTER UPDATE OF checkpoint ON cutover.steps
        FOR EACH ROW WHEN (OLD.checkpoint IS NOT NULL AND NEW.checkpoint IS NULL)
        EXECUTE FUNCTION cutover.forget_ranges();",
];

/// The schema version this build writes.
pub const VERSION: i32 = MIGRATIONS.len() as i32;

/// Creates or upgrades the journal schema; safe to call from many sessions.
pub async fn ensure(client: &Client) -> Result<(), DbError> {
    let ctx = |e| DbError::sql("creating the cutover journal schema", e);
    // Fast path without locks: already current.
    let current = current_version(client).await?;
    if current == Some(VERSION) {
        return Ok(());
    }
    if let Some(v) = current
        && v > VERSION
    {
        return Err(DbError::BadTarget {
            setting: "journal",
            value: format!("cutover schema version {v}"),
            reason: format!(
                "this database was used by a newer cutover (journal v{v}, this build knows v{VERSION}); upgrade cutover"
            ),
        });
    }
    super::in_transaction(client, "creating the cutover journal schema", async {
        // Serialise concurrent first uses.
        client
            .batch_execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('cutover journal schema', 0));
                 CREATE SCHEMA IF NOT EXISTS cutover;
                 CREATE TABLE IF NOT EXISTS cutover.meta (key text PRIMARY KEY, value text NOT NULL);",
            )
            .await
            .map_err(ctx)?;
        let from = current_version(client).await?.unwrap_or(0);
        for (i, ddl) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            client.batch_execute(ddl).await.map_err(ctx)?;
            client
                .execute(
                    "INSERT INTO cutover.meta (key, value) VALUES ('schema_version', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&(i as i32 + 1).to_string()],
                )
                .await
                .map_err(ctx)?;
        }
        Ok::<(), DbError>(())
    })
    .await
}

async fn current_version(client: &Client) -> Result<Option<i32>, DbError> {
    let ctx = |e| DbError::sql("reading the journal version", e);
    let exists: bool = client
        .query_one("SELECT to_regclass('cutover.meta') IS NOT NULL", &[])
        .await
        .map_err(ctx)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_opt(
            "SELECT value FROM cutover.meta WHERE key = 'schema_version'",
            &[],
        )
        .await
        .map_err(ctx)?;
    Ok(row.and_then(|r| r.get::<_, String>(0).parse().ok()))
}
