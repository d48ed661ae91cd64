//! Leftovers of a killed cutover: sandbox directories whose owner is gone.

use super::DIR_PREFIX;

/// Removes sandbox directories whose cutover process is gone, stopping any
/// server still running in them.
pub(super) fn sweep_stale() {
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

/// A process with this id exists.
fn pid_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}
