//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};

use super::SandboxError;

/// Finds the directory holding `initdb`, `postgres` and `pg_basebackup`:
/// `PG_BIN` first (an explicit choice wins), then `PATH`, then
/// `/usr/lib/postgresql/*/bin`, newest major version first.
pub fn find() -> Result<PathBuf, SandboxError> {
    let pg_bin = std::env::var_os("PG_BIN").map(PathBuf::from);
    if let Some(dir) = &pg_bin {
        return if has_server(dir) {
            Ok(dir.clone())
        } else {
            Err(SandboxError::NoBinaries(format!(
                "PG_BIN={} has no initdb/postgres/pg_basebackup",
                dir.display()
            )))
        };
    }
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = path_dirs.into_iter().find(|d| has_server(d)) {
        return Ok(dir);
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server(&bin).then_some((version, bin))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    versioned
        .into_iter()
        .next()
        .map(|(_, dir)| dir)
        .ok_or_else(|| {
            SandboxError::NoBinaries(
                "no initdb/postgres found in PG_BIN, PATH or /usr/lib/postgresql/*/bin".into(),
            )
        })
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_basebackup"]
        .iter()
        .all(|b| dir.join(b).is_file())
}
