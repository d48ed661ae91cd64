//! A second sandbox for moving tables: a primary running with
//! `wal_level = logical` and a separate target cluster (the other tests'
//! sandbox stays as it is). One per test binary, started on first use.
#![allow(dead_code)]

use std::sync::{Mutex, OnceLock};

use cutover::sandbox::{Sandbox, SandboxOptions};

use super::{TestDb, create_db};

static MOVE_SANDBOX: Mutex<Option<Sandbox>> = Mutex::new(None);
static MOVE_URLS: OnceLock<(String, String)> = OnceLock::new();

extern "C" fn stop_move_sandbox_at_exit() {
    if let Ok(mut guard) = MOVE_SANDBOX.lock() {
        guard.take();
    }
}

/// The logical primary's and the target cluster's admin URLs.
pub fn move_sandbox_urls() -> &'static (String, String) {
    MOVE_URLS.get_or_init(|| {
        let sandbox = Sandbox::start(&SandboxOptions {
            replica: false,
            target: true,
            ..SandboxOptions::default()
        })
        .unwrap_or_else(|e| panic!("cannot start the move sandbox: {e}"));
        let urls = (
            sandbox.primary_url(),
            sandbox
                .target_url_for("postgres")
                .expect("the move sandbox has a target cluster"),
        );
        *MOVE_SANDBOX.lock().unwrap() = Some(sandbox);
        unsafe {
            libc::atexit(stop_move_sandbox_at_exit);
        }
        urls
    })
}

/// A fresh database on the logical primary holding `users` of `rows`
/// rows, and a fresh empty database on the target cluster.
pub async fn source_and_target(test: &str, rows: i64) -> (TestDb, TestDb) {
    let (primary, target) = move_sandbox_urls();
    let source = create_db(test, primary, None).await;
    cutover::sandbox::seed::seed_users(&source.connect().await.client, rows, false, &mut |_| {})
        .await
        .expect("seed users");
    let dest = create_db(test, target, None).await;
    (source, dest)
}

/// As [`source_and_target`], both databases on the logical primary.
pub async fn source_and_target_on_one_server(test: &str, rows: i64) -> (TestDb, TestDb) {
    let (primary, _) = move_sandbox_urls();
    let source = create_db(test, primary, None).await;
    cutover::sandbox::seed::seed_users(&source.connect().await.client, rows, false, &mut |_| {})
        .await
        .expect("seed users");
    let dest = create_db(test, primary, None).await;
    (source, dest)
}

/// A plan that replicates `table` to the database `target` and switches
/// it over there, with a slot limit.
pub fn move_and_switch(table: &str) -> String {
    format!(
        r#"
name = "move and switch {table}"
databases = ["target"]
[abort]
slot_retained_wal = "4GB"
[[phases]]
name = "replicate"
gate = "auto"
[[phases.steps]]
kind = "replicate"
to = "target"
tables = ["{table}"]
[[phases]]
name = "switchover"
irreversible = true
[[phases.steps]]
kind = "switchover"
database = "target"
"#
    )
}
