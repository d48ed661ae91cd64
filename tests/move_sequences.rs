//! The switchover sets on the other database every sequence the moved
//! tables take ids from, including one a default calls without owning it
//! (shared by several tables), so the application's first insert there
//! does not collide with a moved row.

mod common;

use common::moving::source_and_target;
use common::process::Running;
use common::{PATIENCE, scalar, write_plan};

const ORDERS: &str = "CREATE SEQUENCE shared_ids;
CREATE TABLE orders (id bigint PRIMARY KEY DEFAULT nextval('shared_ids'), note text);
INSERT INTO orders (note) SELECT 'order ' || g FROM generate_series(1, 500) g;";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sequence_shared_through_a_default_is_set_past_the_moved_rows() {
    let (src, dst) = source_and_target("shared_sequence", 10).await;
    let (source, target) = (src.connect().await, dst.connect().await);
    source.client.batch_execute(ORDERS).await.expect("orders");
    // The step makes tables, not the sequences their defaults share.
    target
        .client
        .batch_execute("CREATE SEQUENCE shared_ids")
        .await
        .expect("sequence");
    let (_dir, plan) = write_plan(&common::moving::move_and_switch("orders"));
    let flag = format!("target={}", dst.url);
    let args = ["run", &plan, "--yes", "--json", "--database", &flag];
    let (code, lines) = Running::spawn(&src.url, &args).wait_exit(PATIENCE);
    assert_eq!(code, 0, "{}", lines.join("\n"));
    let id: i64 = scalar(
        &target,
        "INSERT INTO orders (note) VALUES ('first on the target') RETURNING id",
    )
    .await;
    assert!(id > 500, "the target hands out {id}, past the moved rows");
}
