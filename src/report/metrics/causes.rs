//! The one-word cause of a throttle, for alerts and legends.

/// A throttle reason's cause, one word that stays put while the numbers in
/// the reason move (for alerts and legends): `pace` is the operator's own
/// `max_rows_per_second`; the others hold or slow batches for the database.
pub(super) fn throttle_cause(reason: &str) -> &'static str {
    if reason.is_empty() {
        ""
    } else if reason.starts_with("paced:") {
        "pace"
    } else if reason.starts_with("gentle:") {
        "probe_latency"
    } else if reason.contains("no monitor sample") {
        "stale_monitor"
    } else if reason.contains(" gone since ") {
        "replica_gone"
    } else if reason.starts_with("throttled: probe p95") {
        "max_stall"
    } else if reason.starts_with("throttled: slot ") {
        "slot_retained"
    } else if reason.contains(" behind > ") {
        "replication_lag_bytes"
    } else if reason.contains(" lag ") {
        "replication_lag"
    } else {
        "other"
    }
}
