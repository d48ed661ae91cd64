//! Starting server processes so that they never outlive cutover.

use std::io;
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::mpsc;

use nix::unistd::{Gid, Uid, User};

/// Who the servers run as: ourselves, or `postgres` when we are root
/// (initdb and postgres refuse to run as root).
#[derive(Debug, Clone, Copy)]
pub struct RunAs {
    /// User id to switch to, if any.
    pub uid: Option<Uid>,
    /// Group id to switch to, if any.
    pub gid: Option<Gid>,
}

impl RunAs {
    /// Decides from the effective user id.
    pub fn detect() -> Result<RunAs, super::SandboxError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(RunAs {
                uid: None,
                gid: None,
            });
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(RunAs {
                uid: Some(user.uid),
                gid: Some(user.gid),
            }),
            _ => Err(super::SandboxError::NoBinaries(
                "running as root needs the `postgres` OS user to run the server as \
                 (apt-get install postgresql creates it), or run cutover as a normal user"
                    .into(),
            )),
        }
    }

    /// Applies the user switch to a command.
    pub fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        if let Some(gid) = self.gid {
            cmd.gid(gid.as_raw());
        }
        if let Some(uid) = self.uid {
            cmd.uid(uid.as_raw());
        }
    }

    /// Gives a path we created to the server's user.
    pub fn chown(&self, path: &std::path::Path) -> io::Result<()> {
        if self.uid.is_some() {
            nix::unistd::chown(path, self.uid, self.gid).map_err(io::Error::from)?;
        }
        Ok(())
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns a long-lived server process that is sent SIGQUIT (PostgreSQL's
/// immediate shutdown) if cutover dies, even by SIGKILL.
///
/// Linux delivers the parent-death signal when the *thread* that forked the
/// child exits, so every server is forked by one thread that lives as long
/// as the process.
pub fn spawn_guarded(mut cmd: Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only calls async-signal-safe prctl(2).
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGQUIT)
                .map_err(io::Error::from)
        });
    }
    // Its own process group: a Ctrl-C in the terminal reaches cutover, which
    // then shuts the servers down in order, not the servers directly.
    cmd.process_group(0);
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner()
        .lock()
        .map_err(|_| io::Error::other("server spawner poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("server spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("server spawner thread is gone"))?
}

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("cutover-sandbox-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Keep the thread alive even if every sender is dropped: its
                // exit would fire the children's parent-death signal.
                loop {
                    std::thread::park();
                }
            })
            .ok();
        Mutex::new(tx)
    })
}
