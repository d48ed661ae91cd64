//! The demo table every example plan migrates.

use std::time::Instant;

use tokio_postgres::Client;

use crate::db::DbError;

/// The `users` table of the demo and the example plans.
pub const CREATE_USERS: &str = "\
CREATE TABLE users (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    age integer,
    street text,
    city text,
    country text,
    created_at timestamptz NOT NULL DEFAULT now()
)";

/// Rows are generated server-side in chunks of this many, so a large seed
/// reports progress and never holds one huge transaction.
const CHUNK: i64 = 250_000;

const INSERT_CHUNK: &str = "\
INSERT INTO users (id, name, email, age, street, city, country, created_at)
SELECT g,
       'user ' || g,
       'user' || g || '@example.com',
       CASE WHEN g % 10 = 0 THEN NULL ELSE 18 + (g % 70)::int END,
       (g % 997) || ' Main Street',
       (ARRAY['Lisbon','Oslo','Lima','Osaka','Accra','Quito','Perth'])[1 + (g % 7)::int],
       (ARRAY['PT','NO','PE','JP','GH','EC','AU'])[1 + (g % 7)::int],
       timestamptz '2024-01-01' + g * interval '1 second'
FROM generate_series($1::bigint, $2::bigint) AS g";

/// Creates `users` with `rows` rows (ids 1..=rows), then analyzes it.
///
/// Refuses when the table exists, unless `replace` drops it first.
/// `progress` is called with rows written so far.
pub async fn seed_users(
    client: &Client,
    rows: i64,
    replace: bool,
    progress: &mut dyn FnMut(i64),
) -> Result<std::time::Duration, DbError> {
    let started = Instant::now();
    let exists: bool = client
        .query_one("SELECT to_regclass('users') IS NOT NULL", &[])
        .await
        .map_err(|e| DbError::sql("checking for table users", e))?
        .get(0);
    if exists && !replace {
        return Err(DbError::BadTarget {
            setting: "sandbox seed",
            value: "users".into(),
            reason: "table users already exists; pass --replace to drop and re-create it".into(),
        });
    }
    client
        .batch_execute("DROP TABLE IF EXISTS users CASCADE")
        .await
        .map_err(|e| DbError::sql("dropping users", e))?;
    // Build the primary key after loading: one sorted index build is far
    // faster than a million index insertions.
    let create_heap = CREATE_USERS.replace("id bigserial PRIMARY KEY", "id bigserial");
    client
        .batch_execute(&create_heap)
        .await
        .map_err(|e| DbError::sql("creating users", e))?;
    let mut lo = 1;
    while lo <= rows {
        let hi = (lo + CHUNK - 1).min(rows);
        client
            .execute(INSERT_CHUNK, &[&lo, &hi])
            .await
            .map_err(|e| DbError::sql("inserting demo rows", e))?;
        progress(hi);
        lo = hi + 1;
    }
    client
        .batch_execute(
            "ALTER TABLE users ADD PRIMARY KEY (id);
             SELECT setval(pg_get_serial_sequence('users', 'id'), greatest((SELECT max(id) FROM users), 1));",
        )
        .await
        .map_err(|e| DbError::sql("indexing users", e))?;
    // Separate: VACUUM refuses to run inside the implicit transaction of a
    // multi-statement batch. It sets the visibility map and reltuples.
    client
        .batch_execute("VACUUM ANALYZE users")
        .await
        .map_err(|e| DbError::sql("analyzing users", e))?;
    Ok(started.elapsed())
}
