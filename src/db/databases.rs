//! The other databases a plan touches: each declared name's URL from
//! `--database NAME=URL`, else `CUTOVER_DATABASE_<NAME>`, parsed with the
//! same URL/TLS/pgpass rules as the main one; and the connection string a
//! subscription on one of them uses to reach the main database.

use std::collections::BTreeMap;
use std::path::Path;

use tokio_postgres::config::Host;

use super::target::{Source, Target, TlsMode};

/// The other databases of a run, by the plan's names.
#[derive(Debug, Clone, Default)]
pub struct Databases {
    by_name: BTreeMap<String, Target>,
}

/// The environment variable that gives a database's URL.
pub fn env_var(name: &str) -> String {
    format!("CUTOVER_DATABASE_{}", name.to_uppercase())
}

/// Splits a `--database NAME=URL` flag.
pub fn parse_flag(flag: &str) -> Result<(String, String), String> {
    match flag.split_once('=') {
        Some((name, url)) if !name.trim().is_empty() && !url.trim().is_empty() => {
            Ok((name.trim().to_string(), url.trim().to_string()))
        }
        _ => Err(format!(
            "--database {}: expected NAME=URL (e.g. --database target=postgres://host/db)",
            super::redact(flag)
        )),
    }
}

/// A database a plan declares, and the first step that works on it (for
/// messages), as the plan's `databases` declares them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The plan's name for it.
    pub name: String,
    /// "step \"…\" of phase …", when a step names it.
    pub used_by: Option<String>,
}

impl Databases {
    /// Resolves every database the plan declares, from the flags, else the
    /// environment. A flag naming a database the plan does not declare, or
    /// a declared database without a URL, is an error naming the plan, the
    /// step that needs it and both ways to give it.
    pub fn resolve(
        path: &Path,
        declared: &[Declared],
        flags: &[String],
    ) -> Result<Databases, String> {
        Self::resolve_with(path, declared, flags, &|key| std::env::var(key).ok())
    }

    /// As [`Databases::resolve`], reading variables through `env`.
    pub fn resolve_with(
        path: &Path,
        declared: &[Declared],
        flags: &[String],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Databases, String> {
        let names: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
        let mut given = BTreeMap::new();
        for flag in flags {
            let (name, url) = parse_flag(flag)?;
            if !names.contains(&name.as_str()) {
                return Err(format!(
                    "--database {name}=…: plan {} declares no database `{name}` (it declares: {})",
                    path.display(),
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            }
            given.insert(name, url);
        }
        let mut by_name = BTreeMap::new();
        for Declared { name, used_by } in declared {
            let var = env_var(name);
            let (url, source) = match given.remove(name) {
                Some(url) => (url, Source::NamedFlag),
                None => match env(&var).filter(|u| !u.trim().is_empty()) {
                    Some(url) => (url, Source::NamedEnv),
                    None => {
                        let user = used_by
                            .as_ref()
                            .map_or(String::new(), |s| format!(" ({s} works on it)"));
                        return Err(format!(
                            "plan {} needs database `{name}`{user}, but no URL is given for it: \
                             pass --database {name}=URL or set {var}",
                            path.display()
                        ));
                    }
                },
            };
            let target = Target::resolve_named(&url, source, env)
                .map_err(|e| format!("database `{name}` of plan {}: {e}", path.display()))?;
            by_name.insert(name.clone(), target);
        }
        Ok(Databases { by_name })
    }

    /// A database by the plan's name.
    pub fn get(&self, name: &str) -> Option<&Target> {
        self.by_name.get(name)
    }

    /// Every database, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Target)> {
        self.by_name.iter()
    }

    /// A database by name, or an error a step can show.
    pub fn require(&self, name: &str) -> Result<&Target, String> {
        self.get(name).ok_or_else(|| {
            format!(
                "database `{name}` has no URL in this session: pass --database {name}=URL or set {}",
                env_var(name)
            )
        })
    }
}

/// One `key='value'` pair of a libpq connection string.
fn pair(key: &str, value: &str) -> String {
    format!(
        "{key}='{}'",
        value.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// The connection string a subscription on another server uses to reach
/// the main database: its host, port, user and database, the TLS mode, and
/// the password when the main connection has one (the subscription keeps
/// it in the other server's catalog; cutover never prints it).
pub fn subscription_conninfo(main: &Target) -> String {
    let c = &main.config;
    let mut parts = Vec::new();
    if let Some(host) = c.get_hosts().first() {
        let host = match host {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        };
        parts.push(pair("host", &host));
    }
    if let Some(port) = c.get_ports().first() {
        parts.push(pair("port", &port.to_string()));
    }
    if let Some(user) = c.get_user() {
        parts.push(pair("user", user));
    }
    parts.push(pair("dbname", main.dbname()));
    if let Some(pw) = c.get_password() {
        parts.push(pair("password", &String::from_utf8_lossy(pw)));
    }
    let mode = match main.tls {
        TlsMode::Disable => "disable",
        TlsMode::Prefer => "prefer",
        TlsMode::Require => "require",
        TlsMode::VerifyCa => "verify-ca",
        TlsMode::VerifyFull => "verify-full",
    };
    parts.push(pair("sslmode", mode));
    parts.join(" ")
}

/// The connection string with its password hidden, for messages.
pub fn redacted_conninfo(conninfo: &str) -> String {
    match conninfo.find("password='") {
        Some(start) => {
            let rest = &conninfo[start + "password='".len()..];
            let mut end = 0;
            let mut escaped = false;
            for (i, ch) in rest.char_indices() {
                match ch {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = i;
                        break;
                    }
                    _ => escaped = false,
                }
            }
            format!("{}password='***'{}", &conninfo[..start], &rest[end + 1..])
        }
        None => conninfo.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"
name = "move"
databases = ["target"]
[[phases]]
name = "copy"
[[phases.steps]]
kind = "replicate"
to = "target"
tables = ["users"]
"#;

    fn plan() -> Vec<Declared> {
        let plan = crate::plan::parse(Path::new("move.toml"), PLAN).expect("the plan parses");
        crate::plan::databases::declared(&plan)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let env = |k: &str| {
            (k == "CUTOVER_DATABASE_TARGET").then(|| "postgres://u@envhost:5433/e".to_string())
        };
        let flags = vec!["target=postgres://u@flaghost:5434/f".to_string()];
        let dbs = Databases::resolve_with(Path::new("move.toml"), &plan(), &flags, &env)
            .expect("resolves");
        let t = dbs.get("target").expect("target");
        assert_eq!(t.display(), "postgres://u@flaghost:5434/f");
        assert_eq!(t.source, Source::NamedFlag);
        let dbs =
            Databases::resolve_with(Path::new("move.toml"), &plan(), &[], &env).expect("resolves");
        let t = dbs.get("target").expect("target");
        assert_eq!(t.display(), "postgres://u@envhost:5433/e");
        assert_eq!(t.source, Source::NamedEnv);
    }

    #[test]
    fn a_missing_url_names_the_plan_the_step_and_both_ways() {
        let err = Databases::resolve_with(Path::new("move.toml"), &plan(), &[], &no_env)
            .expect_err("no URL");
        assert!(err.contains("move.toml"), "{err}");
        assert!(err.contains("replicate users to target"), "{err}");
        assert!(err.contains("--database target=URL"), "{err}");
        assert!(err.contains("CUTOVER_DATABASE_TARGET"), "{err}");
    }

    #[test]
    fn an_undeclared_name_and_a_bad_flag_are_refused() {
        let flags = vec!["other=postgres://h/d".to_string()];
        let err = Databases::resolve_with(Path::new("move.toml"), &plan(), &flags, &no_env)
            .expect_err("undeclared");
        assert!(err.contains("declares no database `other`"), "{err}");
        let err = parse_flag("postgres://u:secret@h/d").expect_err("no name");
        assert!(err.contains("NAME=URL"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn a_bad_url_is_reported_without_its_password() {
        let flags = vec!["target=postgres://u:hunter2@h:notaport/d".to_string()];
        let err = Databases::resolve_with(Path::new("move.toml"), &plan(), &flags, &no_env)
            .expect_err("bad URL");
        assert!(err.contains("--database NAME=URL"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn the_subscription_reaches_the_main_database_with_its_password_hidden_in_messages() {
        let main = Target::parse(
            "postgres://app:pa'ss@db.example:6543/shop?sslmode=require",
            Source::Flag,
        )
        .expect("parses");
        let conninfo = subscription_conninfo(&main);
        assert!(conninfo.contains("host='db.example'"), "{conninfo}");
        assert!(conninfo.contains("port='6543'"), "{conninfo}");
        assert!(conninfo.contains("dbname='shop'"), "{conninfo}");
        assert!(conninfo.contains(r"password='pa\'ss'"), "{conninfo}");
        assert!(conninfo.contains("sslmode='require'"), "{conninfo}");
        let shown = redacted_conninfo(&conninfo);
        assert!(!shown.contains(r"pa\'ss"), "{shown}");
        assert!(shown.contains("password='***'"), "{shown}");
        assert!(shown.contains("sslmode='require'"), "{shown}");
    }
}
