//! One file per pane; each renders from a borrowed `&App`.

pub mod activity;
pub mod backfill;
pub mod chrome;
pub mod frame;
pub mod locks;
pub mod log;
pub mod now;
pub mod plan;
pub mod replication;
pub mod segments;
pub mod subscription;
