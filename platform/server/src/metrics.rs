//! Prometheus metrics of the core. Request metrics are recorded by the front middleware; gauges
//! that mirror other state (pool, audit chain) are refreshed when `/metrics` is scraped, so they
//! cost nothing between scrapes.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub db_pool: IntGaugeVec,
    pub db_up: IntGauge,
    pub audit_chain_length: IntGauge,
    /// Access decisions on patient data by outcome and reason (care-team, emergency,
    /// patient-objects…): a rise of emergency accesses or of denials is worth an alert.
    pub access_decisions: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("megalis".into()), None)
            .expect("static registry prefix is valid");
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route template",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let db_pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        let db_up = IntGauge::new(
            "db_up",
            "1 when the database answered the last readiness check",
        )
        .expect("valid metric");
        let audit_chain_length = IntGauge::new(
            "audit_chain_length",
            "Number of records in the audit chain (sequence number of its head)",
        )
        .expect("valid metric");
        let access_decisions = IntCounterVec::new(
            Opts::new(
                "access_decisions_total",
                "Access decisions on patient data by outcome and reason",
            ),
            &["outcome", "reason"],
        )
        .expect("valid metric");
        let build_info = IntGaugeVec::new(
            Opts::new("build_info", "Build information; the value is always 1"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for collector in [
            Box::new(http_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(http_duration.clone()),
            Box::new(db_pool.clone()),
            Box::new(db_up.clone()),
            Box::new(audit_chain_length.clone()),
            Box::new(access_decisions.clone()),
            Box::new(build_info),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            db_pool,
            db_up,
            audit_chain_length,
            access_decisions,
        }
    }

    pub fn record_pool(&self, stats: megalis_store::PoolStats) {
        let in_use = stats.size.saturating_sub(stats.idle);
        self.db_pool
            .with_label_values(&["idle"])
            .set(i64::from(stats.idle));
        self.db_pool
            .with_label_values(&["in_use"])
            .set(i64::from(in_use));
        self.db_pool
            .with_label_values(&["max"])
            .set(i64::from(stats.max));
    }

    /// Registers the plugin host's per-plugin collectors into this registry.
    pub fn register_plugin_metrics(&self, plugins: &megalis_plugin_host::PluginMetrics) {
        plugins
            .register(&self.registry)
            .expect("plugin metric names are unique");
    }

    pub fn encode(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(buffer).expect("Prometheus text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
