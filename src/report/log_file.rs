//! Where cutover's own log goes: a file, never the screen the cockpit or
//! the headless output owns.

use std::path::PathBuf;

/// The log file: `CUTOVER_LOG_FILE`, else `$TMPDIR/cutover-<uid>.log`.
pub fn path() -> PathBuf {
    std::env::var_os("CUTOVER_LOG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("cutover-{}.log", nix::unistd::getuid()))
        })
}
