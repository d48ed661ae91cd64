//! Why a sandbox could not start.

use std::path::Path;

/// Why the sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No usable server binaries.
    #[error(
        "{0}.\nInstall the PostgreSQL server package:\n  \
         Debian/Ubuntu: sudo apt-get install postgresql\n  \
         RHEL/Fedora:   sudo dnf install postgresql-server\n  \
         macOS:         brew install postgresql@15\n\
         or point PG_BIN at the directory holding initdb and postgres \
         (e.g. PG_BIN=/usr/lib/postgresql/15/bin)"
    )]
    NoBinaries(String),
    /// A file or process operation failed.
    #[error("{path}: {source}")]
    Io {
        /// What we were touching.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A setup program failed.
    #[error("{program} failed ({status}):\n{output}")]
    Setup {
        /// Which program.
        program: String,
        /// Its exit status.
        status: String,
        /// What it printed.
        output: String,
    },
    /// A server did not come up.
    #[error("the sandbox {role} {reason}; its log ends with:\n{log_tail}")]
    ServerFailed {
        /// primary or replica.
        role: &'static str,
        /// What happened.
        reason: String,
        /// The end of its log.
        log_tail: String,
    },
}

impl SandboxError {
    /// An I/O error on `path`.
    pub(super) fn io(path: &Path, source: std::io::Error) -> SandboxError {
        SandboxError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}
