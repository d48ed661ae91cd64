//! The controllers that decide how fast a backfill goes, one per file:
//! dynamic batch sizing ([`sizing`]), the hold on replication lag or a
//! silent monitor ([`hold`]), gentle mode steered by the canary probe
//! ([`gentle`]), and the pace both rate limits set ([`pacing`]). Each is a
//! pure controller: the batch loop feeds it measurements and asks it for a
//! decision.

pub mod gentle;
pub mod hold;
pub mod pacing;
pub mod sizing;

pub use gentle::Gentle;
pub use hold::hold_reason;
pub use pacing::{pace_limit, stall_duty};
pub use sizing::BatchSizer;
