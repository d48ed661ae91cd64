//! The run's latest progress, written to the journal every two seconds when
//! it changed, so `cutover status` (and `--watch`) from any terminal shows
//! what the run is doing or waiting for, with rows, rate and ETA.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::progress::Progress;
use super::session::JournalSlot;
use crate::journal;

/// How often the snapshot is written, at most.
pub const PERIOD: Duration = Duration::from_secs(2);

/// Stops the beacon when dropped.
pub(crate) struct Beacon(JoinHandle<()>);

impl Drop for Beacon {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts writing `progress` for `run_id` through the journal connection.
pub(crate) fn start(
    run_id: i64,
    mut progress: watch::Receiver<Progress>,
    slot: JournalSlot,
) -> Beacon {
    Beacon(tokio::spawn(async move {
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            match progress.has_changed() {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => return,
            }
            let snapshot = serde_json::to_value(&*progress.borrow_and_update()).unwrap_or_default();
            let Some(conn) = slot.lock().ok().and_then(|c| c.clone()) else {
                continue;
            };
            if let Err(e) = journal::runs::set_snapshot(&conn.client, run_id, &snapshot).await {
                tracing::debug!("progress snapshot not written: {e}");
            }
        }
    }))
}
