//! The sandbox's second cluster: an independent server (its own initdb,
//! not a standby) that a plan moves tables to with logical replication.

use std::path::Path;

use super::config::write_config;
use super::process::RunAs;
use super::{Node, SandboxError, SandboxOptions, path_str, run, start_node};

/// Makes and starts the target cluster in `dir/target`.
pub(super) fn start(
    bin: &Path,
    dir: &Path,
    run_as: RunAs,
    opts: &SandboxOptions,
) -> Result<Node, SandboxError> {
    let data = dir.join("target");
    run(
        bin,
        "initdb",
        run_as,
        dir,
        &[
            "-D",
            path_str(&data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        ],
    )?;
    write_config(&data, opts)?;
    start_node(bin, "target", data, dir, run_as)
}
