//! The demo table the example plans migrate.

mod common;

use common::fresh_db;
use cutover::sandbox::seed::seed_users;

#[tokio::test]
async fn seed_creates_the_demo_table_with_n_rows() {
    let db = fresh_db("seed").await;
    let conn = db.connect().await;
    let mut reported = Vec::new();
    seed_users(&conn.client, 300_000, false, &mut |n| reported.push(n))
        .await
        .unwrap();
    assert_eq!(
        reported.last(),
        Some(&300_000),
        "progress ends at the total"
    );
    assert!(
        reported.len() >= 2,
        "progress is reported per chunk: {reported:?}"
    );
    let row = conn
        .client
        .query_one(
            "SELECT count(*), min(id), max(id), count(DISTINCT city), count(*) FILTER (WHERE age IS NULL)
             FROM users",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 300_000);
    assert_eq!(row.get::<_, i64>(1), 1);
    assert_eq!(row.get::<_, i64>(2), 300_000);
    assert!(row.get::<_, i64>(3) > 1);
    assert_eq!(row.get::<_, i64>(4), 30_000, "every tenth age is NULL");
    let cols: Vec<String> = conn
        .client
        .query(
            "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns
             WHERE table_name = 'users' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        cols,
        [
            "id bigint NO",
            "name text NO",
            "email text NO",
            "age integer YES",
            "street text YES",
            "city text YES",
            "country text YES",
            "created_at timestamp with time zone NO",
        ]
    );
    // New rows get ids after the seeded ones.
    let next: i64 = conn
        .client
        .query_one(
            "INSERT INTO users (name, email) VALUES ('n', 'e') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 300_001);
    // Seeding again refuses without --replace.
    let err = seed_users(&conn.client, 10, false, &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--replace"), "{err}");
}
