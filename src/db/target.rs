//! Which database to talk to: `--database-url`, `DATABASE_URL`, or libpq's
//! `PG*` variables and `~/.pgpass`.

use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::{Config, Host, SslMode};

use super::DbError;
use super::pgpass;
use super::redact::redact;

/// How the connection uses TLS, with libpq's `sslmode` meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, unverified (libpq's default).
    Prefer,
    /// TLS or fail; the certificate is not verified (as in libpq).
    Require,
    /// TLS with the certificate chain verified, any host name.
    VerifyCa,
    /// TLS with chain and host name verified.
    VerifyFull,
}

impl TlsMode {
    fn parse(value: &str) -> Option<TlsMode> {
        Some(match value {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where the connection settings came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `--database-url` flag.
    Flag,
    /// The `DATABASE_URL` variable.
    DatabaseUrl,
    /// libpq's `PGHOST`, `PGPORT`, … variables.
    PgEnv,
    /// A `--database NAME=URL` flag (another database of the plan).
    NamedFlag,
    /// A `CUTOVER_DATABASE_<NAME>` variable (another database of the plan).
    NamedEnv,
}

impl Source {
    /// The setting an operator would edit to change this connection.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "--database-url",
            Source::DatabaseUrl => "DATABASE_URL",
            Source::PgEnv => "PGHOST/PGPORT/PGUSER/PGDATABASE",
            Source::NamedFlag => "--database NAME=URL",
            Source::NamedEnv => "CUTOVER_DATABASE_<NAME>",
        }
    }
}

/// A resolved connection target: settings, TLS mode and where they came from.
#[derive(Clone)]
pub struct Target {
    /// The driver settings (password included, never printed).
    pub config: Config,
    /// TLS behaviour.
    pub tls: TlsMode,
    /// CA bundle for verify-ca / verify-full (`sslrootcert`).
    pub root_cert: Option<PathBuf>,
    /// Where these settings came from.
    pub source: Source,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.display())
    }
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Target {
    /// Resolves the target from the flag, else `DATABASE_URL`, else `PG*`.
    pub fn resolve(flag: Option<&str>) -> Result<Target, DbError> {
        Self::resolve_with(flag, &|key| std::env::var(key).ok())
    }

    /// As [`Target::resolve`], reading variables through `env` (for tests).
    pub fn resolve_with(flag: Option<&str>, env: Env<'_>) -> Result<Target, DbError> {
        let mut target = if let Some(url) = flag {
            Self::parse(url, Source::Flag)?
        } else if let Some(url) = env("DATABASE_URL").filter(|u| !u.trim().is_empty()) {
            Self::parse(&url, Source::DatabaseUrl)?
        } else {
            Self::from_pg_env(env)?
        };
        target.fill_defaults(env);
        Ok(target)
    }

    /// Parses a URL for another database of the plan and fills in what
    /// libpq would (user, port, `~/.pgpass`, keepalives), as for the main one.
    pub fn resolve_named(conn: &str, source: Source, env: Env<'_>) -> Result<Target, DbError> {
        let mut target = Self::parse(conn, source)?;
        target.fill_defaults(env);
        Ok(target)
    }

    /// Parses a URL (`postgres://…`) or key=value connection string.
    pub fn parse(conn: &str, source: Source) -> Result<Target, DbError> {
        if let Some(reason) = ambiguous_userinfo(conn) {
            return Err(DbError::BadTarget {
                setting: source.describe(),
                value: redact(conn),
                reason,
            });
        }
        let (rest, params) = take_libpq_params(conn);
        let LibpqParams {
            sslmode,
            root: root_cert,
            tcp_user_timeout,
        } = params;
        let mut config = Config::from_str(&rest).map_err(|e| DbError::BadTarget {
            setting: source.describe(),
            value: redact(conn),
            reason: e.to_string(),
        })?;
        let tls = match sslmode {
            Some(mode) => TlsMode::parse(&mode).ok_or_else(|| DbError::BadTarget {
                setting: source.describe(),
                value: redact(conn),
                reason: format!(
                    "sslmode={mode} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ),
            })?,
            None => TlsMode::Prefer,
        };
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        if let Some(ms) = tcp_user_timeout {
            let ms = ms.parse::<u64>().map_err(|_| DbError::BadTarget {
                setting: source.describe(),
                value: redact(conn),
                reason: format!("tcp_user_timeout={ms} is not a number of milliseconds"),
            })?;
            // libpq: 0 means the system default.
            if ms > 0 {
                config.tcp_user_timeout(std::time::Duration::from_millis(ms));
            } else {
                config.tcp_user_timeout(std::time::Duration::ZERO);
            }
        }
        Ok(Target {
            config,
            tls,
            root_cert: root_cert.map(PathBuf::from),
            source,
        })
    }

    fn from_pg_env(env: Env<'_>) -> Result<Target, DbError> {
        let mut config = Config::new();
        let host = env("PGHOST").unwrap_or_else(|| default_host().to_string());
        for h in host.split(',') {
            config.host(h);
        }
        if let Some(port) = env("PGPORT") {
            let port = port.parse::<u16>().map_err(|_| DbError::BadTarget {
                setting: "PGPORT",
                value: port.clone(),
                reason: "not a port number".into(),
            })?;
            config.port(port);
        }
        if let Some(user) = env("PGUSER") {
            config.user(user);
        }
        if let Some(db) = env("PGDATABASE") {
            config.dbname(db);
        }
        if let Some(pw) = env("PGPASSWORD") {
            config.password(pw);
        }
        let tls = match env("PGSSLMODE") {
            Some(mode) => TlsMode::parse(&mode).ok_or_else(|| DbError::BadTarget {
                setting: "PGSSLMODE",
                value: mode.clone(),
                reason: "expected disable, allow, prefer, require, verify-ca or verify-full".into(),
            })?,
            None => TlsMode::Prefer,
        };
        config.ssl_mode(match tls {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        Ok(Target {
            config,
            tls,
            root_cert: env("PGSSLROOTCERT").map(PathBuf::from),
            source: Source::PgEnv,
        })
    }

    /// Fills what libpq would: user, database, port, the password from
    /// `~/.pgpass`, and `application_name = 'cutover'`.
    fn fill_defaults(&mut self, env: Env<'_>) {
        if self.config.get_hosts().is_empty() {
            self.config.host(default_host());
        }
        if self.config.get_ports().is_empty() {
            self.config.port(5432);
        }
        if self.config.get_user().is_none() {
            let user = env("USER").unwrap_or_else(|| "postgres".into());
            self.config.user(user);
        }
        if self.config.get_dbname().is_none() {
            let user = self.config.get_user().unwrap_or("postgres").to_string();
            self.config.dbname(user);
        }
        if self.config.get_password().is_none() {
            self.fill_password_from_pgpass(env);
        }
        self.config.application_name("cutover");
        if self.config.get_connect_timeout().is_none() {
            self.config
                .connect_timeout(std::time::Duration::from_secs(10));
        }
        self.fill_keepalives();
    }

    /// A half-open connection (a failover, a pooler restart, a cable) must
    /// end in seconds, not the kernel's two hours: TCP keepalives and
    /// `tcp_user_timeout` unless the connection string sets them.
    fn fill_keepalives(&mut self) {
        use std::time::Duration;
        // tokio-postgres' own default idle time, i.e. not set by the URL.
        if self.config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            self.config.keepalives_idle(KEEPALIVE_IDLE);
        }
        if self.config.get_keepalives_interval().is_none() {
            self.config.keepalives_interval(KEEPALIVE_INTERVAL);
        }
        if self.config.get_keepalives_retries().is_none() {
            self.config.keepalives_retries(KEEPALIVE_RETRIES);
        }
        if self.config.get_tcp_user_timeout().is_none() {
            self.config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
    }

    fn fill_password_from_pgpass(&mut self, env: Env<'_>) {
        let Some(path) = pgpass::default_path(env) else {
            return;
        };
        let Some(text) = pgpass::read(&path) else {
            return;
        };
        let host = self.host_string();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or_default().to_string();
        let user = self.config.get_user().unwrap_or_default().to_string();
        if let Some(pw) = pgpass::lookup(&text, &host, port, &db, &user) {
            self.config.password(pw);
        }
    }

    fn host_string(&self) -> String {
        match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => default_host().to_string(),
        }
    }

    /// The target as a URL without its password, safe to print and log.
    pub fn display(&self) -> String {
        let user = self.config.get_user().unwrap_or("");
        let host = self.host_string();
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let db = self.config.get_dbname().unwrap_or("");
        let at = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        if host.starts_with('/') {
            format!("postgres://{at}/{db}?host={host}&port={port}")
        } else {
            format!("postgres://{at}{host}:{port}/{db}")
        }
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        self.config.get_dbname().unwrap_or("postgres")
    }
}

/// A URL whose password holds an unescaped `@` or `/` would be split at the
/// wrong place, and part of the password shown as the host or database.
fn ambiguous_userinfo(conn: &str) -> Option<String> {
    let rest = conn
        .trim()
        .strip_prefix("postgres://")
        .or_else(|| conn.trim().strip_prefix("postgresql://"))?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(authority_end);
    let path = after.split('?').next().unwrap_or("");
    if authority.matches('@').count() > 1 || (authority.contains('@') && path.contains('@')) {
        return Some(
            "the user or password contains '@' or '/': percent-encode them (%40, %2F), or use \
             PGPASSWORD / ~/.pgpass for the password"
                .into(),
        );
    }
    None
}

/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);
/// Time between unanswered keepalive probes.
pub const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Unanswered probes before the connection counts as dead.
pub const KEEPALIVE_RETRIES: u32 = 3;
/// How long sent data may stay unacknowledged before the connection is
/// dropped (Linux `TCP_USER_TIMEOUT`).
pub const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn default_host() -> &'static str {
    if std::path::Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql"
    } else {
        "localhost"
    }
}

/// Removes `sslmode` and `sslrootcert` from a connection string: the driver
/// knows neither verify mode, so cutover handles them itself.
/// Parameters cutover reads itself rather than the driver: TLS (libpq's
/// meanings) and `tcp_user_timeout` (milliseconds in libpq, seconds in the
/// driver).
struct LibpqParams {
    sslmode: Option<String>,
    root: Option<String>,
    tcp_user_timeout: Option<String>,
}

fn take_libpq_params(conn: &str) -> (String, LibpqParams) {
    let mut sslmode = None;
    let mut root = None;
    let mut user_timeout = None;
    let mut take = |key: &str, value: &str| match key {
        "tcp_user_timeout" => {
            user_timeout = Some(value.to_string());
            true
        }
        "sslmode" => {
            sslmode = Some(value.to_string());
            true
        }
        "sslrootcert" => {
            root = Some(value.to_string());
            true
        }
        _ => false,
    };
    let trimmed = conn.trim();
    let rest = if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
        match trimmed.split_once('?') {
            Some((base, query)) => {
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        !take(k, v)
                    })
                    .collect();
                if kept.is_empty() {
                    base.to_string()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
            None => trimmed.to_string(),
        }
    } else {
        trimmed
            .split_whitespace()
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(k, v)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    (
        rest,
        LibpqParams {
            sslmode,
            root,
            tcp_user_timeout: user_timeout,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn flag_beats_database_url_beats_pg_env() {
        let env = env_of(&[
            ("DATABASE_URL", "postgres://envuser@envhost:5555/envdb"),
            ("PGHOST", "pghost"),
        ]);
        let t = Target::resolve_with(Some("postgres://flag@flaghost/flagdb"), &env).unwrap();
        assert_eq!(t.source, Source::Flag);
        assert_eq!(t.display(), "postgres://flag@flaghost:5432/flagdb");
        let t = Target::resolve_with(None, &env).unwrap();
        assert_eq!(t.source, Source::DatabaseUrl);
        assert_eq!(t.display(), "postgres://envuser@envhost:5555/envdb");
    }

    #[test]
    fn pg_variables_build_the_target() {
        let env = env_of(&[
            ("PGHOST", "db1"),
            ("PGPORT", "6543"),
            ("PGUSER", "ops"),
            ("PGDATABASE", "shop"),
            ("PGPASSWORD", "pw"),
            ("PGSSLMODE", "verify-full"),
        ]);
        let t = Target::resolve_with(None, &env).unwrap();
        assert_eq!(t.source, Source::PgEnv);
        assert_eq!(t.display(), "postgres://ops@db1:6543/shop");
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.config.get_application_name(), Some("cutover"));
    }

    #[test]
    fn pgpass_supplies_a_missing_password() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "db1:5432:shop:ops:from-file\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = path.display().to_string();
        let env = env_of(&[
            ("PGHOST", "db1"),
            ("PGUSER", "ops"),
            ("PGDATABASE", "shop"),
            ("PGPASSFILE", &file),
        ]);
        let t = Target::resolve_with(None, &env).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"from-file"[..]));
        // A world-readable file is ignored, as libpq does.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = Target::resolve_with(None, &env).unwrap();
        assert_eq!(t.config.get_password(), None);
    }

    #[test]
    fn verify_modes_are_taken_from_the_url() {
        let t = Target::parse(
            "postgres://u:pw@h/db?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=3",
            Source::Flag,
        )
        .unwrap();
        assert_eq!(t.tls, TlsMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/ca.pem")));
        let t = Target::parse("host=h sslmode=require user=u", Source::Flag).unwrap();
        assert_eq!(t.tls, TlsMode::Require);
        let t = Target::parse("postgres://h/db?sslmode=disable", Source::Flag).unwrap();
        assert_eq!(t.tls, TlsMode::Disable);
    }

    #[test]
    fn bad_target_errors_name_the_setting_and_hide_the_password() {
        let err = Target::parse(
            "postgres://u:hunter2@h/db?sslmode=sometimes",
            Source::DatabaseUrl,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(err.contains("sslmode=sometimes"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = Target::parse("postgres://u:hunter2@h/db?bogus=1", Source::Flag)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--database-url"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_the_password() {
        let t = Target::parse("postgres://u:hunter2@h/db", Source::Flag).unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert!(!t.display().contains("hunter2"));
    }

    #[test]
    fn keepalives_and_user_timeout_are_set_unless_the_url_sets_them() {
        let env = env_of(&[]);
        let t = Target::resolve_with(Some("postgres://u@h/db"), &env).unwrap();
        assert!(t.config.get_keepalives());
        assert_eq!(t.config.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(t.config.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(t.config.get_keepalives_retries(), Some(KEEPALIVE_RETRIES));
        assert_eq!(t.config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        let t = Target::resolve_with(
            Some("postgres://u@h/db?keepalives_idle=60&keepalives_interval=7&keepalives_retries=9&tcp_user_timeout=1234"),
            &env,
        )
        .unwrap();
        assert_eq!(
            t.config.get_keepalives_idle(),
            std::time::Duration::from_secs(60)
        );
        assert_eq!(
            t.config.get_keepalives_interval(),
            Some(std::time::Duration::from_secs(7))
        );
        assert_eq!(t.config.get_keepalives_retries(), Some(9));
        assert_eq!(
            t.config.get_tcp_user_timeout(),
            Some(&std::time::Duration::from_millis(1234))
        );
    }

    #[test]
    fn an_unescaped_at_in_the_password_is_refused_without_echoing_it() {
        for url in [
            "postgres://u:p@ss@host/db",
            "postgres://u:p@ss/w@rd@host/db",
        ] {
            let err = Target::parse(url, Source::Flag);
            let text = err.map(|_| ()).unwrap_err().to_string();
            assert!(text.contains("percent-encode"), "{text}");
            assert!(!text.contains("ss@") && !text.contains("w@rd"), "{text}");
        }
    }

    #[test]
    fn verify_ca_without_a_root_certificate_is_refused() {
        let err = crate::db::tls::client_config(TlsMode::VerifyCa, None);
        if std::env::var_os("HOME")
            .map(|h| {
                std::path::Path::new(&h)
                    .join(".postgresql/root.crt")
                    .is_file()
            })
            .unwrap_or(false)
        {
            return;
        }
        let text = err.map(|_| ()).unwrap_err().to_string();
        assert!(text.contains("sslrootcert=system"), "{text}");
        assert!(
            crate::db::tls::client_config(TlsMode::VerifyCa, Some(std::path::Path::new("system")))
                .is_ok()
                || std::path::Path::new("/etc/ssl/certs").read_dir().is_err()
        );
    }
}
