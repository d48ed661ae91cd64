//! One running PostgreSQL server of the sandbox.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::SandboxError;
use super::process::{RunAs, spawn_guarded};

/// A server process: primary or replica.
pub struct Node {
    /// "primary" or "replica".
    pub role: &'static str,
    /// Loopback TCP port.
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Server log file.
    pub log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts `postgres` on a data directory and waits until it accepts
    /// connections (the `ready` status pg_ctl also waits for).
    pub fn start(
        bin: &Path,
        role: &'static str,
        data_dir: PathBuf,
        port: u16,
        socket_dir: &Path,
        run_as: RunAs,
    ) -> Result<Node, SandboxError> {
        let log = data_dir.with_extension("log");
        let log_file = std::fs::File::create(&log).map_err(|e| SandboxError::io(&log, e))?;
        run_as.chown(&log).map_err(|e| SandboxError::io(&log, e))?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data_dir)
            .arg("-c")
            .arg(format!("port={port}"))
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket_dir.display()))
            .current_dir(socket_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        run_as.apply(&mut cmd);
        let child = spawn_guarded(cmd).map_err(|e| SandboxError::io(&bin.join("postgres"), e))?;
        let mut node = Node {
            role,
            port,
            data_dir,
            log,
            child: Some(child),
        };
        node.wait_ready(Duration::from_secs(60))?;
        Ok(node)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), SandboxError> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(SandboxError::ServerFailed {
                    role: self.role,
                    reason: format!("exited with {status}"),
                    log_tail: self.log_tail(),
                });
            }
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                // Line 8 of postmaster.pid is the status pg_ctl -w polls.
                if text.lines().nth(7).map(str::trim) == Some("ready") {
                    return Ok(());
                }
            }
            if start.elapsed() > limit {
                return Err(SandboxError::ServerFailed {
                    role: self.role,
                    reason: format!("not ready after {}s", limit.as_secs()),
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the server log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Immediate shutdown (SIGQUIT): the data is scratch, so no checkpoint.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}
