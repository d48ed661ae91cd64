//! The statements cutover generates for each step kind, and the undo it
//! records for each: pure builders over the plan, with every identifier
//! quoted and the plan's own SQL fragments kept verbatim.
//!
//! The engine runs them; the dry run (`cutover plan`, lint) shows them.
//! This module sits below both: it imports the plan, quoting and the SQL
//! grammar, never the engine or lint.

pub mod alter_column;
pub mod batch;
pub mod constraint;
pub mod create_index;
pub mod not_null;
pub mod replication;
pub mod split;
pub mod swap;
pub mod sync_trigger;
pub mod undo;
pub mod verify;
pub mod verify_across;
pub mod version_triggers;
pub mod versions;

pub use undo::{Inverse, RecordedUndo, inverse, recorded_undo};
