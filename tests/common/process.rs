//! Driving the real `cutover` binary: JSON event lines in, exit code out.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cutover_bin;

/// Runs cutover to completion; returns (exit code, stdout, stderr).
pub fn cutover(db_url: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cutover_bin())
        .args(args)
        .env("DATABASE_URL", db_url)
        .stdin(Stdio::null())
        .output()
        .expect("run cutover");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A cutover process whose stdout (JSON lines) is read as it comes.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line so far.
    pub seen: Vec<String>,
}

impl Running {
    /// Starts `cutover` with these arguments.
    pub fn spawn(db_url: &str, args: &[&str]) -> Running {
        let mut child = Command::new(cutover_bin())
            .args(args)
            .env("DATABASE_URL", db_url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cutover");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a JSON event matching `pred`; panics with what was seen.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if let Ok(v) = serde_json::from_str::<Value>(&line)
                        && pred(&v)
                    {
                        return v;
                    }
                }
                Err(_) => panic!(
                    "timed out waiting for {what}; output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for an event of this kind.
    pub fn wait_event(&mut self, event: &str, limit: Duration) -> Value {
        self.wait_for(event, limit, |v| v["event"] == event)
    }

    /// Waits for the `n`-th event of this kind.
    pub fn wait_events(&mut self, event: &str, n: usize, limit: Duration) -> Value {
        let mut seen = 0;
        self.wait_for(&format!("{n} {event} events"), limit, |v| {
            if v["event"] == event {
                seen += 1;
            }
            seen >= n
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    /// Sends a signal.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).expect("signal");
    }

    /// Waits for the process to end; returns its exit code and all output.
    pub fn wait_exit(mut self, limit: Duration) -> (i32, Vec<String>) {
        let deadline = Instant::now() + limit;
        loop {
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Drain what is left in the pipe, up to its end (the reader
                // thread hangs up at EOF), however slowly it comes.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(30)) {
                    self.seen.push(line);
                }
                return (status.code().unwrap_or(-1), std::mem::take(&mut self.seen));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "cutover did not exit in {limit:?}; output:\n{}",
                    self.seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it with SIGKILL (no cleanup possible).
    pub fn kill9(self) {
        drop(self);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A failed test must not leave a cutover behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events of a finished process, parsed.
pub fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
