//! A scratch PostgreSQL — a primary and a streaming replica on loopback
//! ports in a temp dir — for `cutover demo`, `cutover sandbox` and the tests.
//!
//! Dropping the [`Sandbox`] stops both servers and removes the directory.
//! If cutover is killed outright, the servers get SIGQUIT from the kernel
//! (see [`process::spawn_guarded`]) and the next sandbox sweeps the
//! leftover directory.

mod binaries;
mod node;
pub mod process;
pub mod seed;
mod target;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub use node::Node;
use process::RunAs;

/// Prefix of every sandbox directory under the temp dir.
const DIR_PREFIX: &str = "cutover-sandbox-";

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
    fn io(path: &Path, source: std::io::Error) -> SandboxError {
        SandboxError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

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

fn write_config(data_dir: &Path, opts: &SandboxOptions) -> Result<(), SandboxError> {
    let durable = if opts.durable { "on" } else { "off" };
    let wal_level = if opts.target { "logical" } else { "replica" };
    let settings = format!(
        "\n# cutover sandbox\n\
         listen_addresses = '127.0.0.1'\n\
         wal_level = {wal_level}\n\
         max_wal_senders = 10\n\
         max_replication_slots = 10\n\
         hot_standby = on\n\
         hot_standby_feedback = on\n\
         wal_keep_size = '1GB'\n\
         max_wal_size = '4GB'\n\
         max_connections = 200\n\
         shared_buffers = '256MB'\n\
         fsync = {durable}\n\
         full_page_writes = {durable}\n\
         track_io_timing = on\n\
         log_min_messages = warning\n\
         log_line_prefix = '%m [%p] %a '\n"
    );
    let conf = data_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| SandboxError::io(&conf, e))?;
    text.push_str(&settings);
    std::fs::write(&conf, text).map_err(|e| SandboxError::io(&conf, e))
}

/// A scratch CA and a server certificate it signs (for 127.0.0.1 and
/// localhost), and `ssl = on`.
fn make_certificate(data_dir: &Path, dir: &Path, run_as: RunAs) -> Result<(), SandboxError> {
    let f = |name: &str| dir.join(name).display().to_string();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .map_err(|e| SandboxError::io(dir, e))?;
    let steps: [Vec<String>; 3] = [
        vec![
            "req",
            "-x509",
            "-new",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cutover sandbox CA",
        ]
        .into_iter()
        .map(String::from)
        .chain(["-keyout".into(), f("ca.key"), "-out".into(), f("ca.crt")])
        .collect(),
        vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"]
            .into_iter()
            .map(String::from)
            .chain([
                "-keyout".into(),
                f("server.key"),
                "-out".into(),
                f("server.csr"),
            ])
            .collect(),
        vec!["x509", "-req", "-days", "2", "-CAcreateserial"]
            .into_iter()
            .map(String::from)
            .chain([
                "-in".into(),
                f("server.csr"),
                "-CA".into(),
                f("ca.crt"),
                "-CAkey".into(),
                f("ca.key"),
                "-extfile".into(),
                f("server.ext"),
                "-out".into(),
                f("server.crt"),
            ])
            .collect(),
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .map_err(|e| SandboxError::io(Path::new("openssl"), e))?;
        if !out.status.success() {
            return Err(SandboxError::Setup {
                program: format!("openssl {}", args[0]),
                status: out.status.to_string(),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    use std::os::unix::fs::PermissionsExt;
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    for file in [&crt, &key] {
        run_as.chown(file).map_err(|e| SandboxError::io(file, e))?;
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| SandboxError::io(&key, e))?;
    let conf = data_dir.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).map_err(|e| SandboxError::io(&conf, e))?;
    text.push_str(&format!(
        "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
        crt.display(),
        key.display()
    ));
    std::fs::write(&conf, text).map_err(|e| SandboxError::io(&conf, e))
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

/// Removes sandbox directories whose cutover process is gone, stopping any
/// server still running in them.
fn sweep_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        let owner = std::fs::read_to_string(dir.join("owner.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok());
        let Some(owner) = owner else { continue };
        if pid_alive(owner) {
            continue;
        }
        for node in ["replica", "primary"] {
            let pid = std::fs::read_to_string(dir.join(node).join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
            let ours = |p: &i32| {
                std::fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
                    .unwrap_or(false)
            };
            if let Some(pid) = pid.filter(|p| pid_alive(*p) && ours(p)) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGQUIT,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}
