//! What libpq would fill in when the connection string leaves it out:
//! user, database, port, the `~/.pgpass` password, and TCP keepalives.

use super::pgpass;
use super::target::{Env, Target, default_host};

/// Idle time before the first keepalive probe.
pub(super) const KEEPALIVE_IDLE: std::time::Duration = std::time::Duration::from_secs(10);
/// Time between unanswered keepalive probes.
pub(super) const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
/// Unanswered probes before the connection counts as dead.
pub(super) const KEEPALIVE_RETRIES: u32 = 3;
/// How long sent data may stay unacknowledged before the connection is
/// dropped (Linux `TCP_USER_TIMEOUT`).
pub(super) const TCP_USER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Target {
    /// Fills what libpq would: user, database, port, the password from
    /// `~/.pgpass`, and `application_name = 'cutover'`.
    pub(super) fn fill_defaults(&mut self, env: Env<'_>) {
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
}
