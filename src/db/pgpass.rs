//! `~/.pgpass` lookup, as libpq does it.

use std::path::{Path, PathBuf};

/// Where the password file is: `PGPASSFILE`, else `~/.pgpass`.
pub fn default_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(p) = env("PGPASSFILE") {
        return Some(PathBuf::from(p));
    }
    env("HOME").map(|home| Path::new(&home).join(".pgpass"))
}

/// Finds the password for host/port/database/user in the file's text.
///
/// Each line is `hostname:port:database:username:password`; `*` matches
/// anything, `\:` and `\\` escape, `#` starts a comment; the first match wins.
pub fn lookup(text: &str, host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    // libpq matches a Unix-socket connection against "localhost".
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let wanted = [host, port.as_str(), database, user];
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

fn split_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
}

/// Reads the file, ignoring it (as libpq does) when others can read it.
pub fn read(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; ignored (chmod 0600 it)",
            path.display()
        );
        return None;
    }
    std::fs::read_to_string(path).ok()
}

#[cfg(test)]
mod tests {
    use super::lookup;

    const FILE: &str = "\
# comment line
db.internal:5432:app:alice:first
*:*:*:bob:bob\\:pw
localhost:5433:*:*:socketpw
*:*:*:alice:fallback
";

    #[test]
    fn first_matching_line_wins() {
        assert_eq!(
            lookup(FILE, "db.internal", 5432, "app", "alice").as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup(FILE, "other", 5432, "app", "alice").as_deref(),
            Some("fallback")
        );
    }

    #[test]
    fn escaped_colons_and_wildcards() {
        assert_eq!(lookup(FILE, "h", 1, "d", "bob").as_deref(), Some("bob:pw"));
    }

    #[test]
    fn unix_socket_matches_localhost() {
        assert_eq!(
            lookup(FILE, "/var/run/postgresql", 5433, "x", "carol").as_deref(),
            Some("socketpw")
        );
        assert_eq!(
            lookup(FILE, "/var/run/postgresql", 5432, "x", "carol"),
            None
        );
    }
}
