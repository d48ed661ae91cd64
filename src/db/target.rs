//! Which database to talk to: `--database-url`, `DATABASE_URL`, or libpq's
//! `PG*` variables and `~/.pgpass`.

use std::path::PathBuf;

use tokio_postgres::config::{Config, Host};

use super::DbError;

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
    /// A libpq `sslmode` value.
    pub(super) fn parse(value: &str) -> Option<TlsMode> {
        Some(match value {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            _ => return None,
        })
    }

    /// The driver's `sslmode`: every mode stricter than `prefer` requires
    /// TLS; what is verified is set in the TLS connector (`db::tls`).
    pub(super) fn ssl_mode(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode;
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        }
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

/// Reads an environment variable (a map in tests).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

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

    /// The first host, as libpq and `~/.pgpass` name it.
    pub(super) fn host_string(&self) -> String {
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

/// libpq's default host: the local socket directory when there is one.
pub(super) fn default_host() -> &'static str {
    if std::path::Path::new("/var/run/postgresql").is_dir() {
        "/var/run/postgresql"
    } else {
        "localhost"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::libpq_defaults::{
        KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES, TCP_USER_TIMEOUT,
    };
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
