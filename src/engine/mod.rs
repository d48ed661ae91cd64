//! The background driver: one task per run. `Command`s in, `Event`s out
//! (bounded, never dropped), `Progress` snapshots out (`watch`), and an
//! abort handle that never queues behind other commands.

pub mod beacon;
pub mod control;
pub mod driver;
pub mod emitter;
pub mod error;
pub mod events;
pub mod guard;
pub mod identity;
pub mod listener;
pub mod live;
pub mod oversight;
pub mod progress;
pub mod resume;
pub mod rollback;
pub mod run;
pub mod session;
pub mod signal;
pub mod stall;
pub mod steps;
pub mod subscription_guard;
pub mod throttle;
pub mod undo;
pub mod versions;
pub mod walk;
