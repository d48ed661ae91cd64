//! The catalog as an operator would compare it: `pg_dump --schema-only`.
#![allow(dead_code)]

use std::process::Command;

use super::TestDb;

/// `pg_dump --schema-only` of everything but the journal.
pub fn schema_dump(db: &TestDb) -> String {
    let out = Command::new(pg_dump())
        .args(["--schema-only", "--no-owner", "--exclude-schema=cutover"])
        .arg(format!("--dbname={}", db.url))
        .output()
        .expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Newer pg_dump frames its output with a random `\restrict` key.
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `pg_dump` beside the server binaries the sandbox uses (`PG_BIN`, else
/// the newest `/usr/lib/postgresql/*/bin`), else from `PATH`.
pub fn pg_dump() -> std::path::PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return std::path::Path::new(&dir).join("pg_dump");
    }
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin/pg_dump"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| "pg_dump".into())
}
