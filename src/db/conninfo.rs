//! Building a target from a connection string (URL or key=value, libpq's
//! "conninfo") or from libpq's `PG*` variables, with the parameters the
//! driver does not know.

use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Config;

use super::DbError;
use super::redact::redact;
use super::target::{Env, Source, Target, TlsMode, default_host};

impl Target {
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
        config.ssl_mode(tls.ssl_mode());
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

    /// A target from libpq's `PG*` variables.
    pub(super) fn from_pg_env(env: Env<'_>) -> Result<Target, DbError> {
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
        config.ssl_mode(tls.ssl_mode());
        Ok(Target {
            config,
            tls,
            root_cert: env("PGSSLROOTCERT").map(PathBuf::from),
            source: Source::PgEnv,
        })
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

/// Parameters cutover reads itself rather than the driver: TLS (libpq's
/// meanings) and `tcp_user_timeout` (milliseconds in libpq, seconds in the
/// driver).
struct LibpqParams {
    sslmode: Option<String>,
    root: Option<String>,
    tcp_user_timeout: Option<String>,
}

/// Removes `sslmode`, `sslrootcert` and `tcp_user_timeout` from a
/// connection string: the driver knows neither verify mode, so cutover
/// handles them itself.
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
