//! The registry a scrape fills: float gauges with labels, and counters.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A metric's labels.
pub(super) type Labels = Vec<(String, String)>;
type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
/// Labelled values of one gauge.
pub(super) type Rows = Vec<(Labels, f64)>;

/// Labels from pairs.
pub(super) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A registry of gauges, filled as we go.
pub(super) struct Sheet {
    /// What the scrape encodes.
    pub registry: Registry,
}

impl Sheet {
    /// A gauge with a value per label set.
    pub fn gauge(&mut self, name: &str, help: &str, rows: Vec<(Labels, f64)>) {
        let family = FloatGauges::default();
        for (l, v) in rows {
            family.get_or_create(&l).set(v);
        }
        self.registry.register(name, help, family);
    }

    /// A gauge with one value.
    pub fn one(&mut self, name: &str, help: &str, value: f64) {
        self.gauge(name, help, vec![(Vec::new(), value)]);
    }

    /// A counter.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c: Counter<u64> = Counter::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }
}

/// Seconds, as Prometheus wants them.
pub(super) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
