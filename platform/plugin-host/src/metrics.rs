//! Per-plugin Prometheus metrics, registered into the server's registry.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct PluginMetrics {
    /// Requests handed to a plugin (whatever their outcome).
    pub invocations: IntCounterVec,
    /// Failed requests by kind: deadline, memory, trap, busy, pool_exhausted, …
    pub errors: IntCounterVec,
    /// Time from instantiation to the end of the handler (body streamed included).
    pub duration: HistogramVec,
    /// Time to instantiate the component in a fresh store.
    pub instantiation: HistogramVec,
    /// Largest linear memory (all memories of an instance) any request has used.
    pub memory_high_water: IntGaugeVec,
    /// Requests running now.
    pub in_flight: IntGaugeVec,
    /// Load or reload failures (the previous version, if any, keeps serving).
    pub load_failures: IntCounterVec,
    /// WebSocket channel connections open on this server.
    pub channel_connections: IntGaugeVec,
    /// Messages members sent to their rooms (relayed, or delivered through the plugin).
    pub channel_messages: IntCounterVec,
    /// Joins refused, by reason: unauthenticated, forbidden, cross_origin, plugin, full,
    /// invalid, unavailable, error.
    pub channel_joins_refused: IntCounterVec,
    /// Reconnections of the PostgreSQL channel bus listener (messages may have been lost).
    pub channel_bus_reconnects: IntCounter,
}

impl PluginMetrics {
    pub fn new() -> PluginMetrics {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let gauge = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), &["plugin"]).expect("valid metric")
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &["plugin"])
                .expect("valid metric")
        };
        PluginMetrics {
            invocations: counter(
                "plugin_invocations_total",
                "Requests handed to a plugin",
                &["plugin"],
            ),
            errors: counter(
                "plugin_errors_total",
                "Plugin requests that failed, by kind",
                &["plugin", "kind"],
            ),
            duration: histogram(
                "plugin_request_duration_seconds",
                "Plugin request time, instantiation to end of handler",
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            ),
            instantiation: histogram(
                "plugin_instantiation_seconds",
                "Time to instantiate a plugin in a fresh store",
                vec![
                    0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005,
                    0.01,
                ],
            ),
            memory_high_water: gauge(
                "plugin_memory_high_water_bytes",
                "Largest linear memory used by one request of the plugin",
            ),
            in_flight: gauge("plugin_in_flight", "Plugin requests running now"),
            load_failures: counter(
                "plugin_load_failures_total",
                "Plugin loads refused or failed",
                &["plugin"],
            ),
            channel_connections: gauge(
                "plugin_channel_connections",
                "WebSocket channel connections open on this server",
            ),
            channel_messages: counter(
                "plugin_channel_messages_total",
                "Messages members of plugin channels sent to their rooms",
                &["plugin"],
            ),
            channel_joins_refused: counter(
                "plugin_channel_joins_refused_total",
                "Plugin channel joins refused, by reason",
                &["plugin", "reason"],
            ),
            channel_bus_reconnects: IntCounter::new(
                "plugin_channel_bus_reconnects_total",
                "Reconnections of the channel bus listener (PostgreSQL LISTEN)",
            )
            .expect("valid metric"),
        }
    }

    /// Registers every collector; call once per registry.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.invocations.clone()))?;
        registry.register(Box::new(self.errors.clone()))?;
        registry.register(Box::new(self.duration.clone()))?;
        registry.register(Box::new(self.instantiation.clone()))?;
        registry.register(Box::new(self.memory_high_water.clone()))?;
        registry.register(Box::new(self.in_flight.clone()))?;
        registry.register(Box::new(self.load_failures.clone()))?;
        registry.register(Box::new(self.channel_connections.clone()))?;
        registry.register(Box::new(self.channel_messages.clone()))?;
        registry.register(Box::new(self.channel_joins_refused.clone()))?;
        registry.register(Box::new(self.channel_bus_reconnects.clone()))?;
        Ok(())
    }

    pub(crate) fn observe_memory(&self, plugin: &str, bytes: u64) {
        let g = self.memory_high_water.with_label_values(&[plugin]);
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        if bytes > g.get() {
            g.set(bytes);
        }
    }
}

impl Default for PluginMetrics {
    fn default() -> Self {
        PluginMetrics::new()
    }
}
