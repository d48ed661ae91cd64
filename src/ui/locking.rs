//! Who blocks whom, read from one monitor sample: the root blockers (the
//! sessions at the head of a wait chain, often idle in a transaction), our
//! own waiting statement, and what each session is doing. Pure functions.

use std::collections::HashSet;
use std::time::Duration;

use crate::engine::events::short_duration;
use crate::monitor::sample::{LockWait, Sample};

/// A Locks pane row.
#[derive(Debug, Clone, PartialEq)]
pub struct LockRow {
    /// The session.
    pub pid: i32,
    /// At the head of a chain (holds what others wait for, waits for
    /// nothing itself).
    pub root: bool,
    /// Its application_name, when known.
    pub application: String,
    /// For a waiter, the mode and what it waits for; for a root blocker,
    /// its state ("idle in transaction").
    pub what: String,
    /// The sessions it waits behind.
    pub blocked_by: Vec<i32>,
    /// How long it has waited, or how old its transaction is.
    pub age: Option<Duration>,
    /// Its query.
    pub query: String,
    /// One of the migration's own sessions.
    pub ours: bool,
    /// Waits behind one of ours.
    pub behind_us: bool,
    /// How many sessions wait behind it (roots only).
    pub blocking: usize,
}

impl LockRow {
    /// The row in full, for the inspect dialog.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "pid {}{}{}",
                self.pid,
                if self.ours { " (cutover)" } else { "" },
                if self.root {
                    format!(", blocks {} session(s)", self.blocking)
                } else {
                    String::new()
                }
            ),
            format!(
                "application: {}",
                if self.application.is_empty() {
                    "-"
                } else {
                    &self.application
                }
            ),
            format!(
                "{}: {}",
                if self.root { "state" } else { "waits for" },
                self.what
            ),
        ];
        if let Some(age) = self.age {
            lines.push(format!(
                "{}: {}",
                if self.root {
                    "transaction age"
                } else {
                    "waited"
                },
                short_duration(age)
            ));
        }
        if !self.blocked_by.is_empty() {
            lines.push(format!("blocked by: {}", pids(&self.blocked_by)));
        }
        lines.push("query:".into());
        lines.extend(self.query.lines().map(|l| format!("  {l}")));
        if !self.ours {
            lines.push(String::new());
            lines.push(format!(
                "c cancels its query (pg_cancel_backend({})), k ends the session (pg_terminate_backend({}))",
                self.pid, self.pid
            ));
        }
        lines
    }
}

/// Pids as `1, 2, 3`.
pub fn pids(p: &[i32]) -> String {
    p.iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Root blockers first (most blocking first), then every waiter.
pub fn rows(sample: &Sample) -> Vec<LockRow> {
    let waiting: HashSet<i32> = sample.lock_waits.iter().map(|w| w.pid).collect();
    let mut roots: Vec<i32> = Vec::new();
    for w in &sample.lock_waits {
        for b in &w.blocked_by {
            if !waiting.contains(b) && !roots.contains(b) {
                roots.push(*b);
            }
        }
    }
    let blocking = |pid: i32| {
        sample
            .lock_waits
            .iter()
            .filter(|w| root_blockers(sample, w).contains(&pid))
            .count()
    };
    let mut out: Vec<LockRow> = roots.iter().map(|pid| root_row(sample, *pid)).collect();
    for r in &mut out {
        r.blocking = blocking(r.pid);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.blocking));
    out.extend(sample.lock_waits.iter().map(|w| LockRow {
        pid: w.pid,
        root: false,
        application: w.application.clone(),
        what: format!("{} {}", w.mode.trim_end_matches("Lock"), w.waits_for),
        blocked_by: w.blocked_by.clone(),
        age: Some(w.waited),
        query: w.query.clone(),
        ours: w.ours,
        behind_us: w.behind_us,
        blocking: 0,
    }));
    out
}

/// A session that waits for nothing may still be cutover's own (its
/// backfill holding row locks): never offer to cancel it. It is ours when
/// it connected as "cutover", or when a waiter queued behind one of ours is
/// blocked by it alone — or by it among others when it was not sampled.
fn root_is_ours(sample: &Sample, pid: i32, application: Option<&str>) -> bool {
    application == Some("cutover")
        || sample.lock_waits.iter().any(|w| {
            w.behind_us
                && w.blocked_by.contains(&pid)
                && (w.blocked_by.len() == 1 || application.is_none())
        })
}

fn root_row(sample: &Sample, pid: i32) -> LockRow {
    match sample.open_xacts.iter().find(|x| x.pid == pid) {
        Some(x) => LockRow {
            pid,
            root: true,
            application: x.application.clone(),
            what: x.state.clone(),
            blocked_by: Vec::new(),
            age: Some(x.age),
            query: x.query.clone(),
            ours: root_is_ours(sample, pid, Some(&x.application)),
            behind_us: false,
            blocking: 0,
        },
        // The monitor samples only the oldest open transactions; a younger
        // blocker is known by its pid alone.
        None => LockRow {
            pid,
            root: true,
            application: String::new(),
            what: "holds the lock (not sampled)".into(),
            blocked_by: Vec::new(),
            age: None,
            query: String::new(),
            ours: root_is_ours(sample, pid, None),
            behind_us: false,
            blocking: 0,
        },
    }
}

/// The sessions at the head of the chain a waiter is queued in.
pub fn root_blockers(sample: &Sample, wait: &LockWait) -> Vec<i32> {
    let mut seen: HashSet<i32> = HashSet::new();
    let mut todo: Vec<i32> = wait.blocked_by.clone();
    let mut roots = Vec::new();
    while let Some(pid) = todo.pop() {
        if !seen.insert(pid) {
            continue;
        }
        match sample.lock_waits.iter().find(|w| w.pid == pid) {
            Some(w) => todo.extend(w.blocked_by.iter().copied()),
            None => roots.push(pid),
        }
    }
    roots.sort_unstable();
    roots
}

/// Our own statement waiting for a lock, if one does.
pub fn our_wait(sample: &Sample) -> Option<&LockWait> {
    sample.lock_waits.iter().find(|w| w.ours)
}

/// The relation in a `waits_for` ("relation users" → "users").
pub fn relation(waits_for: &str) -> Option<&str> {
    waits_for.strip_prefix("relation ")
}

/// The root blocker of our waiting statement, as a row.
pub fn our_blocker(sample: &Sample) -> Option<LockRow> {
    let ours = our_wait(sample)?;
    let root = *root_blockers(sample, ours).first()?;
    Some(root_row(sample, root))
}

/// "pid 4242 psql, idle in transaction 54s: UPDATE …".
pub fn session_line(row: &LockRow) -> String {
    let mut s = format!("pid {}", row.pid);
    if !row.application.is_empty() {
        s.push_str(&format!(" {}", row.application));
    }
    s.push_str(&format!(", {}", row.what));
    if let Some(age) = row.age {
        s.push_str(&format!(" {}", short_duration(age)));
    }
    if !row.query.is_empty() {
        s.push_str(&format!(": {}", one_line(&row.query)));
    }
    s
}

/// A query on one line.
pub fn one_line(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::sample::OpenXact;

    fn wait(pid: i32, by: &[i32], ours: bool) -> LockWait {
        LockWait {
            pid,
            application: if ours { "cutover" } else { "shop-api" }.into(),
            waits_for: "relation users".into(),
            mode: "AccessExclusiveLock".into(),
            blocked_by: by.to_vec(),
            waited: Duration::from_secs(3),
            query: "ALTER TABLE users DROP COLUMN name".into(),
            behind_us: false,
            ours,
        }
    }

    #[test]
    fn the_root_blocker_is_found_through_the_chain_and_listed_first() {
        let sample = Sample {
            lock_waits: vec![wait(20, &[10], true), wait(30, &[20, 10], false)],
            open_xacts: vec![OpenXact {
                pid: 10,
                state: "idle in transaction".into(),
                age: Duration::from_secs(54),
                xmin_age: None,
                application: "psql".into(),
                query: "SELECT * FROM users\n LIMIT 1".into(),
            }],
            ..Sample::default()
        };
        let rows = rows(&sample);
        assert_eq!(rows.len(), 3);
        assert!(rows[0].root && rows[0].pid == 10 && rows[0].blocking == 2);
        let b = our_blocker(&sample).unwrap();
        assert_eq!(
            session_line(&b),
            "pid 10 psql, idle in transaction 54.0s: SELECT * FROM users LIMIT 1"
        );
        assert_eq!(
            relation(&our_wait(&sample).unwrap().waits_for),
            Some("users")
        );
    }

    #[test]
    fn a_root_blocker_that_is_cutover_itself_is_never_offered_for_cancel() {
        // The application waits behind our backfill's row locks.
        let mut app = wait(30, &[20], false);
        app.behind_us = true;
        let sample = Sample {
            lock_waits: vec![app],
            ..Sample::default()
        };
        let found = rows(&sample);
        assert!(
            found[0].root && found[0].pid == 20 && found[0].ours,
            "{found:?}"
        );
        // Known by its application name too.
        let sample = Sample {
            lock_waits: vec![wait(30, &[20], false)],
            open_xacts: vec![OpenXact {
                pid: 20,
                state: "active".into(),
                age: Duration::from_secs(2),
                xmin_age: None,
                application: "cutover".into(),
                query: "UPDATE users SET full_name = name WHERE id > $1".into(),
            }],
            ..Sample::default()
        };
        assert!(rows(&sample)[0].ours);
    }
}
