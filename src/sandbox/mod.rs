//! A scratch PostgreSQL — a primary and a streaming replica on loopback
//! ports in a temp dir — for `cutover demo`, `cutover sandbox` and the tests.
//!
//! Dropping the [`Sandbox`] stops both servers and removes the directory.
//! If cutover is killed outright, the servers get SIGQUIT from the kernel
//! (see [`process::spawn_guarded`]) and the next sandbox sweeps the
//! leftover directory.

mod binaries;
mod config;
mod error;
mod node;
pub mod process;
pub mod seed;
mod sweep;
mod target;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use config::{make_certificate, write_config};
pub use error::SandboxError;
pub use node::Node;
use process::RunAs;
use sweep::sweep_stale;

/// Prefix of every sandbox directory under the temp dir.
const DIR_PREFIX: &str = "cutover-sandbox-";

/// What kind of sandbox to start.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Start a streaming replica too.
    pub replica: bool,
    /// Keep fsync on (for benchmarks that should feel like a real server).
    pub durable: bool,
    /// Serve TLS with a certificate (for 127.0.0.1 and localhost) signed
    /// by a scratch CA; see [`Sandbox::ca_cert`].
    pub tls: bool,
    /// Start a second, independent cluster to move tables to; the primary
    /// then runs with `wal_level = logical`.
    pub target: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            replica: true,
            durable: false,
            tls: false,
            target: false,
        }
    }
}

/// A running scratch cluster.
pub struct Sandbox {
    /// Where the binaries came from.
    pub bin: PathBuf,
    /// The primary server.
    pub primary: Node,
    /// The streaming replica, when asked for.
    pub replica: Option<Node>,
    /// The cluster tables move to, when asked for.
    pub target: Option<Node>,
    // Declared last: dropped after the servers have stopped.
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// Starts the primary (and replica) and waits until both accept
    /// connections. Blocking: call it from `spawn_blocking` in async code.
    pub fn start(opts: &SandboxOptions) -> Result<Sandbox, SandboxError> {
        let started = Instant::now();
        sweep_stale();
        let bin = binaries::find()?;
        let run_as = RunAs::detect()?;
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .map_err(|e| SandboxError::io(&std::env::temp_dir(), e))?;
        run_as
            .chown(dir.path())
            .map_err(|e| SandboxError::io(dir.path(), e))?;
        std::fs::write(dir.path().join("owner.pid"), std::process::id().to_string())
            .map_err(|e| SandboxError::io(dir.path(), e))?;

        let primary_dir = dir.path().join("primary");
        run(
            &bin,
            "initdb",
            run_as,
            dir.path(),
            &[
                "-D",
                path_str(&primary_dir),
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
        write_config(&primary_dir, opts)?;
        if opts.tls {
            make_certificate(&primary_dir, dir.path(), run_as)?;
        }
        let primary = start_node(&bin, "primary", primary_dir, dir.path(), run_as)?;

        let replica = if opts.replica {
            let replica_dir = dir.path().join("replica");
            let port = primary.port.to_string();
            run(
                &bin,
                "pg_basebackup",
                run_as,
                dir.path(),
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-U",
                    "postgres",
                    "-D",
                    path_str(&replica_dir),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "--no-sync",
                ],
            )?;
            // The walreceiver reports cluster_name as its application_name,
            // so pg_stat_replication shows "replica1".
            //
            // The replica shares the primary's disk here, which a real
            // replica does not: left to the kernel, the pages its replay
            // evicts reach that disk in bursts every 30 s and stall the
            // primary's commits (measured: a 4M-row backfill paced at 35k
            // rows/s, vacuum behind it, app p99 107 ms without this setting
            // and 15–31 ms with it). Writing them back as it goes keeps the
            // replica's share of the disk steady.
            let auto_conf = replica_dir.join("postgresql.auto.conf");
            let mut conf =
                std::fs::read_to_string(&auto_conf).map_err(|e| SandboxError::io(&auto_conf, e))?;
            conf.push_str("cluster_name = 'replica1'\nbackend_flush_after = '256kB'\n");
            std::fs::write(&auto_conf, conf).map_err(|e| SandboxError::io(&auto_conf, e))?;
            Some(start_node(
                &bin,
                "replica",
                replica_dir,
                dir.path(),
                run_as,
            )?)
        } else {
            None
        };
        let target = if opts.target {
            Some(target::start(&bin, dir.path(), run_as, opts)?)
        } else {
            None
        };
        tracing::info!(
            "sandbox up in {:.1}s at {}",
            started.elapsed().as_secs_f64(),
            dir.path().display()
        );
        Ok(Sandbox {
            bin,
            primary,
            replica,
            target,
            dir,
        })
    }

    /// Connection URL of the primary's `postgres` database.
    pub fn primary_url(&self) -> String {
        self.url_for("postgres")
    }

    /// Connection URL of a database on the primary.
    pub fn url_for(&self, database: &str) -> String {
        node_url(&self.primary, database)
    }

    /// Connection URL of the replica's `postgres` database.
    pub fn replica_url(&self) -> Option<String> {
        self.replica.as_ref().map(|r| node_url(r, "postgres"))
    }

    /// Connection URL of a database on the replica.
    pub fn replica_url_for(&self, database: &str) -> Option<String> {
        self.replica.as_ref().map(|r| node_url(r, database))
    }

    /// Connection URL of a database on the target cluster.
    pub fn target_url_for(&self, database: &str) -> Option<String> {
        self.target.as_ref().map(|t| node_url(t, database))
    }

    /// The CA that signed a TLS sandbox's certificate, if any.
    pub fn ca_cert(&self) -> Option<PathBuf> {
        let path = self.dir.path().join("ca.crt");
        path.is_file().then_some(path)
    }

    /// The sandbox's directory (data, logs, sockets).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops both servers and removes the directory.
    pub fn stop(mut self) {
        self.stop_servers();
    }

    fn stop_servers(&mut self) {
        // Replica first: the primary's immediate shutdown would otherwise
        // make the replica log connection errors while it goes.
        if let Some(replica) = self.replica.as_mut() {
            replica.stop();
        }
        if let Some(target) = self.target.as_mut() {
            target.stop();
        }
        self.primary.stop();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop_servers();
    }
}

fn node_url(node: &Node, database: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
        node.port, database
    )
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Starts a node on a free port, retrying if another process takes the port
/// between our probe and the server's bind.
fn start_node(
    bin: &Path,
    role: &'static str,
    data_dir: PathBuf,
    socket_dir: &Path,
    run_as: RunAs,
) -> Result<Node, SandboxError> {
    let mut last = None;
    for _ in 0..5 {
        let port = free_port().map_err(|e| SandboxError::io(Path::new("127.0.0.1"), e))?;
        match Node::start(bin, role, data_dir.clone(), port, socket_dir, run_as) {
            Ok(node) => return Ok(node),
            Err(SandboxError::ServerFailed { log_tail, .. })
                if log_tail.contains("could not bind") || log_tail.contains("in use") =>
            {
                last = Some(log_tail);
            }
            Err(e) => return Err(e),
        }
    }
    Err(SandboxError::ServerFailed {
        role,
        reason: "found no free port".into(),
        log_tail: last.unwrap_or_default(),
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(
    bin: &Path,
    program: &str,
    run_as: RunAs,
    cwd: &Path,
    args: &[&str],
) -> Result<(), SandboxError> {
    let mut cmd = Command::new(bin.join(program));
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .env("LC_ALL", "C");
    run_as.apply(&mut cmd);
    let out = cmd
        .output()
        .map_err(|e| SandboxError::io(&bin.join(program), e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Setup {
            program: program.into(),
            status: out.status.to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}
