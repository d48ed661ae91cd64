//! Finding the PostgreSQL server binaries.

use std::path::{Path, PathBuf};

use super::SandboxError;

/// Where packages put one bin directory per major version: the directory
/// holding them, and the prefix of each version's name in it.
#[derive(Debug, Clone)]
pub struct VersionedRoot {
    /// The directory listed (`/usr/lib/postgresql`).
    pub dir: PathBuf,
    /// What each version's name starts with (`pgsql-`, `postgresql@`).
    pub prefix: &'static str,
}

impl VersionedRoot {
    fn new(dir: &str, prefix: &'static str) -> VersionedRoot {
        VersionedRoot {
            dir: PathBuf::from(dir),
            prefix,
        }
    }

    /// How it reads in messages: `/usr/pgsql-*/bin`.
    fn pattern(&self) -> String {
        format!("{}/{}*/bin", self.dir.display(), self.prefix)
    }
}

/// The versioned install locations of the common platforms, in the order
/// they are searched when versions tie: Debian/Ubuntu, RHEL/Fedora (PGDG),
/// Homebrew on Apple silicon, Homebrew on Intel.
pub fn default_roots() -> Vec<VersionedRoot> {
    vec![
        VersionedRoot::new("/usr/lib/postgresql", ""),
        VersionedRoot::new("/usr", "pgsql-"),
        VersionedRoot::new("/opt/homebrew/opt", "postgresql@"),
        VersionedRoot::new("/usr/local/opt", "postgresql@"),
    ]
}

/// Everything the search looks at.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// `PG_BIN`, if set: an explicit choice, searched alone.
    pub pg_bin: Option<PathBuf>,
    /// The directories of `PATH`, in order.
    pub path: Vec<PathBuf>,
    /// Versioned install locations.
    pub roots: Vec<VersionedRoot>,
}

impl Candidates {
    /// This process's `PG_BIN` and `PATH`, and the platforms' locations.
    pub fn from_env() -> Candidates {
        Candidates {
            pg_bin: std::env::var_os("PG_BIN")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            path: std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
            roots: default_roots(),
        }
    }
}

/// Finds the directory holding `initdb`, `postgres` and `pg_basebackup`
/// from this process's environment (see [`find_in`]).
pub fn find() -> Result<PathBuf, SandboxError> {
    find_in(&Candidates::from_env())
}

/// Finds the directory holding `initdb`, `postgres` and `pg_basebackup`:
/// `PG_BIN` first (an explicit choice wins, and is not second-guessed),
/// then `PATH`, then the versioned locations, newest major version first
/// (on a tie, in the order of `roots`).
pub fn find_in(candidates: &Candidates) -> Result<PathBuf, SandboxError> {
    if let Some(dir) = &candidates.pg_bin {
        return if has_server(dir) {
            Ok(dir.clone())
        } else {
            Err(SandboxError::NoBinaries(format!(
                "PG_BIN={} has no initdb/postgres/pg_basebackup",
                dir.display()
            )))
        };
    }
    if let Some(dir) = candidates.path.iter().find(|d| has_server(d)) {
        return Ok(dir.clone());
    }
    let mut versioned: Vec<(Vec<u32>, usize, PathBuf)> = Vec::new();
    for (order, root) in candidates.roots.iter().enumerate() {
        let Ok(entries) = std::fs::read_dir(&root.dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name
                .to_str()
                .and_then(|n| n.strip_prefix(root.prefix))
                .and_then(parse_version)
            else {
                continue;
            };
            let bin = entry.path().join("bin");
            if has_server(&bin) {
                versioned.push((version, order, bin));
            }
        }
    }
    versioned.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    versioned
        .into_iter()
        .next()
        .map(|(_, _, dir)| dir)
        .ok_or_else(|| {
            let places: Vec<String> = candidates
                .roots
                .iter()
                .map(VersionedRoot::pattern)
                .collect();
            SandboxError::NoBinaries(format!(
                "no initdb/postgres/pg_basebackup found in PG_BIN, PATH or {}",
                places.join(", ")
            ))
        })
}

/// A directory name's version: `15`, `9.6` (as `[9, 6]`).
fn parse_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

fn has_server(dir: &Path) -> bool {
    ["initdb", "postgres", "pg_basebackup"]
        .iter()
        .all(|b| dir.join(b).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bin directory with (fake) server binaries, made under `base`.
    fn server_at(base: &Path, rel: &str) -> PathBuf {
        let dir = base.join(rel);
        std::fs::create_dir_all(&dir).expect("make the fake bin dir");
        for b in ["initdb", "postgres", "pg_basebackup"] {
            std::fs::write(dir.join(b), "").expect("write a fake binary");
        }
        dir
    }

    /// The platforms' layouts, rooted in `base` instead of `/`.
    fn roots_in(base: &Path) -> Vec<VersionedRoot> {
        default_roots()
            .into_iter()
            .map(|r| VersionedRoot {
                dir: base.join(r.dir.strip_prefix("/").expect("absolute")),
                prefix: r.prefix,
            })
            .collect()
    }

    #[test]
    fn pg_bin_wins_then_path_then_the_newest_versioned_dir() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path();
        let debian = server_at(base, "usr/lib/postgresql/15/bin");
        let rhel = server_at(base, "usr/pgsql-16/bin");
        let brew = server_at(base, "opt/homebrew/opt/postgresql@14/bin");
        let on_path = server_at(base, "somewhere/bin");
        let chosen = server_at(base, "chosen/bin");
        let mut c = Candidates {
            pg_bin: Some(chosen.clone()),
            path: vec![base.join("empty"), on_path.clone()],
            roots: roots_in(base),
        };
        assert_eq!(find_in(&c).expect("PG_BIN"), chosen);
        c.pg_bin = None;
        assert_eq!(find_in(&c).expect("PATH"), on_path);
        c.path.clear();
        assert_eq!(find_in(&c).expect("newest"), rhel, "16 beats 15 and 14");
        std::fs::remove_dir_all(base.join("usr/pgsql-16")).expect("remove 16");
        assert_eq!(find_in(&c).expect("next"), debian);
        std::fs::remove_dir_all(base.join("usr/lib")).expect("remove 15");
        assert_eq!(find_in(&c).expect("homebrew"), brew);
    }

    #[test]
    fn homebrew_on_intel_and_dotted_versions_are_found() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path();
        server_at(base, "usr/local/opt/postgresql@9.6/bin");
        let newer = server_at(base, "usr/local/opt/postgresql@13/bin");
        // Not a version, or missing a binary: skipped.
        server_at(base, "usr/local/opt/postgresql@latest/bin");
        std::fs::create_dir_all(base.join("usr/lib/postgresql/17/bin")).expect("empty 17");
        let c = Candidates {
            pg_bin: None,
            path: Vec::new(),
            roots: roots_in(base),
        };
        assert_eq!(find_in(&c).expect("found"), newer);
    }

    #[test]
    fn a_tie_goes_to_the_first_root() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let base = tmp.path();
        let debian = server_at(base, "usr/lib/postgresql/15/bin");
        server_at(base, "usr/pgsql-15/bin");
        let c = Candidates {
            pg_bin: None,
            path: Vec::new(),
            roots: roots_in(base),
        };
        assert_eq!(find_in(&c).expect("found"), debian);
    }

    #[test]
    fn nothing_found_says_where_it_looked_and_how_to_install() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let c = Candidates {
            pg_bin: None,
            path: vec![tmp.path().to_path_buf()],
            roots: roots_in(tmp.path()),
        };
        let msg = find_in(&c).expect_err("nothing there").to_string();
        for needle in [
            "PG_BIN",
            "PATH",
            "/usr/pgsql-*/bin",
            "/opt/homebrew/opt/postgresql@*/bin",
            "apt-get install postgresql",
            "dnf install postgresql-server",
            "brew install postgresql@15",
        ] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
    }

    #[test]
    fn a_pg_bin_without_the_server_is_refused_not_second_guessed() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let on_path = server_at(tmp.path(), "bin");
        let c = Candidates {
            pg_bin: Some(tmp.path().join("nothing")),
            path: vec![on_path],
            roots: Vec::new(),
        };
        let msg = find_in(&c).expect_err("PG_BIN is wrong").to_string();
        assert!(msg.contains("PG_BIN="), "{msg}");
        assert!(msg.contains("apt-get install postgresql"), "{msg}");
    }
}
