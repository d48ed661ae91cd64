//! cutover: a terminal cockpit for zero-downtime PostgreSQL schema migrations.
//!
//! Data flows one way: plan → engine → events/snapshots → frontends.

pub mod cli;
pub mod commands;
pub mod db;
pub mod engine;
pub mod journal;
pub mod lint;
pub mod monitor;
pub mod plan;
pub mod preflight;
pub mod report;
pub mod sandbox;
pub mod sql;
pub mod statements;
pub mod ui;

/// Process exit codes, the same for every command.
pub mod exit {
    /// Finished.
    pub const OK: i32 = 0;
    /// Failed (a step, a check, or cutover itself).
    pub const FAILED: i32 = 1;
    /// Usage error: bad flags, a bad plan, or a run its check refused.
    pub const USAGE: i32 = 2;
    /// The run was aborted (by the operator or an abort criterion).
    pub const ABORTED: i32 = 3;
    /// Interrupted (Ctrl-C): the run was paused and can be resumed.
    pub const DETACHED: i32 = 130;
}
