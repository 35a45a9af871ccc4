//! Status of a RegionalPlatform, computed from what the reconcile saw. Pure: the clock is passed
//! in, and a condition keeps its `lastTransitionTime` while its status does not change, so that
//! `kubectl wait` and alerting see real transitions only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use megalis_operator_api::{PlatformPhase, RegionalPlatformStatus, condition};
use megalis_operator_build::PluginReport;

/// What one reconcile observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The spec was refused; nothing was applied.
    Invalid { message: String },
    /// Everything was applied.
    Applied(Applied),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub desired_replicas: i32,
    pub ready_replicas: i32,
    pub updated_replicas: i32,
    pub plugins: PluginReport,
    pub allowed_flows: usize,
    pub config_checksum: String,
    /// Optional objects that could not be applied because their API is absent (ServiceMonitor).
    pub skipped: Vec<String>,
}

pub fn compute(
    previous: Option<&RegionalPlatformStatus>,
    generation: Option<i64>,
    observation: &Observation,
    now: Timestamp,
) -> RegionalPlatformStatus {
    let old = previous
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let make = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" }.to_owned();
        // Keep the old transition time when the status is unchanged.
        let since = old
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message,
            observed_generation: generation,
            last_transition_time: since,
        }
    };

    match observation {
        Observation::Invalid { message } => RegionalPlatformStatus {
            observed_generation: generation,
            phase: Some(PlatformPhase::Invalid),
            conditions: vec![
                make(condition::READY, false, "InvalidSpec", message.clone()),
                make(
                    condition::PROGRESSING,
                    false,
                    "InvalidSpec",
                    "waiting for a corrected spec".into(),
                ),
                make(condition::DEGRADED, true, "InvalidSpec", message.clone()),
                // Objects applied earlier stay in place, policies included: isolation is kept.
                keep_or(old, condition::NETWORK_ISOLATED, || {
                    make(
                        condition::NETWORK_ISOLATED,
                        false,
                        "InvalidSpec",
                        "nothing applied yet".into(),
                    )
                }),
                keep_or(old, condition::PLUGINS_READY, || {
                    make(
                        condition::PLUGINS_READY,
                        false,
                        "InvalidSpec",
                        "nothing applied yet".into(),
                    )
                }),
            ],
            plugins_ready: previous.and_then(|s| s.plugins_ready.clone()),
            isolation: previous.and_then(|s| s.isolation.clone()),
            ready_replicas: previous.and_then(|s| s.ready_replicas),
            config_checksum: previous.and_then(|s| s.config_checksum.clone()),
        },
        Observation::Applied(applied) => {
            let plugins = &applied.plugins;
            let plugins_ok = plugins.loaded.len() == plugins.enabled;
            let plugins_message = if plugins_ok {
                format!("{} plugin(s) configured", plugins.enabled)
            } else {
                let mut problems: Vec<String> = plugins
                    .missing
                    .iter()
                    .map(|p| format!("{p}: no such Plugin"))
                    .collect();
                problems.extend(plugins.invalid.iter().map(|(p, why)| format!("{p}: {why}")));
                problems.join("; ")
            };
            let rolled_out = applied.updated_replicas >= applied.desired_replicas;
            let available = applied.ready_replicas >= applied.desired_replicas && rolled_out;
            let ready = available && plugins_ok;
            let phase = if ready {
                PlatformPhase::Ready
            } else if !plugins_ok {
                PlatformPhase::Degraded
            } else {
                PlatformPhase::Progressing
            };
            let replicas_message = format!(
                "{}/{} replicas ready, {} updated",
                applied.ready_replicas, applied.desired_replicas, applied.updated_replicas
            );
            let mut degraded_message = plugins_message.clone();
            if !applied.skipped.is_empty() {
                degraded_message = format!(
                    "{degraded_message}; skipped (API not installed): {}",
                    applied.skipped.join(", ")
                );
            }
            RegionalPlatformStatus {
                observed_generation: generation,
                phase: Some(phase),
                conditions: vec![
                    make(
                        condition::READY,
                        ready,
                        if ready {
                            "Available"
                        } else if !plugins_ok {
                            "PluginsNotReady"
                        } else {
                            "Unavailable"
                        },
                        replicas_message.clone(),
                    ),
                    make(
                        condition::PROGRESSING,
                        !available,
                        if available { "RolledOut" } else { "RollingOut" },
                        replicas_message,
                    ),
                    make(
                        condition::DEGRADED,
                        !plugins_ok || !applied.skipped.is_empty(),
                        if !plugins_ok {
                            "PluginsRefused"
                        } else if applied.skipped.is_empty() {
                            "AsExpected"
                        } else {
                            "OptionalApiMissing"
                        },
                        degraded_message,
                    ),
                    make(
                        condition::NETWORK_ISOLATED,
                        true,
                        "PoliciesApplied",
                        format!(
                            "default deny and {} allowed flow(s) applied",
                            applied.allowed_flows
                        ),
                    ),
                    make(
                        condition::PLUGINS_READY,
                        plugins_ok,
                        if plugins_ok { "Configured" } else { "Refused" },
                        plugins_message,
                    ),
                ],
                plugins_ready: Some(format!("{}/{}", plugins.loaded.len(), plugins.enabled)),
                isolation: Some("Isolated".into()),
                ready_replicas: Some(applied.ready_replicas),
                config_checksum: Some(applied.config_checksum.clone()),
            }
        }
    }
}

fn keep_or(old: &[Condition], type_: &str, fallback: impl FnOnce() -> Condition) -> Condition {
    old.iter()
        .find(|c| c.type_ == type_)
        .cloned()
        .unwrap_or_else(fallback)
}
