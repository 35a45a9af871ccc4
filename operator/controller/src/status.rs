//! Status of a RegionalPlatform, computed from what the reconcile saw. Pure: the clock is passed
//! in, and a condition keeps its `lastTransitionTime` while its status does not change, so that
//! `kubectl wait` and alerting see real transitions only.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use megalis_operator_api::{PlatformPhase, PluginStatus, RegionalPlatformStatus, condition};
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

/// Status of a Plugin: one `Ready` condition, keeping its transition time while unchanged.
pub fn plugin_status(
    previous: Option<&PluginStatus>,
    generation: Option<i64>,
    ready: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> PluginStatus {
    let status = if ready { "True" } else { "False" }.to_owned();
    let since = previous
        .and_then(|p| {
            p.conditions
                .iter()
                .find(|c| c.type_ == condition::READY && c.status == status)
        })
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    PluginStatus {
        observed_generation: generation,
        conditions: vec![Condition {
            type_: condition::READY.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: generation,
            last_transition_time: since,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(ready: i32, updated: i32, missing: &[&str]) -> Observation {
        Observation::Applied(Applied {
            desired_replicas: 3,
            ready_replicas: ready,
            updated_replicas: updated,
            plugins: PluginReport {
                enabled: 2,
                loaded: vec!["messaging".into(), "video".into()]
                    .into_iter()
                    .take(2 - missing.len())
                    .collect(),
                missing: missing.iter().map(|m| m.to_string()).collect(),
                invalid: vec![],
            },
            allowed_flows: 5,
            config_checksum: "c".into(),
            skipped: vec![],
        })
    }

    fn get<'a>(status: &'a RegionalPlatformStatus, type_: &str) -> &'a Condition {
        status.conditions.iter().find(|c| c.type_ == type_).unwrap()
    }

    #[test]
    fn phase_and_conditions_by_case() {
        let t = Timestamp::UNIX_EPOCH;
        let cases = [
            (applied(3, 3, &[]), PlatformPhase::Ready, "True", "False"),
            (
                applied(2, 3, &[]),
                PlatformPhase::Progressing,
                "False",
                "True",
            ),
            (
                applied(3, 1, &[]),
                PlatformPhase::Progressing,
                "False",
                "True",
            ),
            (
                applied(3, 3, &["video"]),
                PlatformPhase::Degraded,
                "False",
                "False",
            ),
            (
                Observation::Invalid {
                    message: "bad".into(),
                },
                PlatformPhase::Invalid,
                "False",
                "False",
            ),
        ];
        for (observation, phase, ready, progressing) in cases {
            let status = compute(None, Some(4), &observation, t);
            assert_eq!(status.phase, Some(phase), "{observation:?}");
            assert_eq!(
                get(&status, condition::READY).status,
                ready,
                "{observation:?}"
            );
            assert_eq!(
                get(&status, condition::PROGRESSING).status,
                progressing,
                "{observation:?}"
            );
            assert!(
                status
                    .conditions
                    .iter()
                    .all(|c| c.observed_generation == Some(4))
            );
            assert_eq!(status.conditions.len(), 5);
        }
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let before = Timestamp::UNIX_EPOCH;
        let after = before + k8s_openapi::jiff::SignedDuration::from_secs(60);
        let first = compute(None, Some(1), &applied(2, 3, &[]), before);
        let same = compute(Some(&first), Some(2), &applied(2, 3, &[]), after);
        assert_eq!(
            get(&same, condition::READY).last_transition_time,
            Time(before)
        );
        assert_eq!(get(&same, condition::READY).observed_generation, Some(2));
        let ready = compute(Some(&same), Some(2), &applied(3, 3, &[]), after);
        assert_eq!(
            get(&ready, condition::READY).last_transition_time,
            Time(after)
        );
        assert_eq!(
            get(&ready, condition::NETWORK_ISOLATED).last_transition_time,
            Time(before)
        );

        // A refused edit keeps what is still true of the running objects.
        let refused = compute(
            Some(&ready),
            Some(3),
            &Observation::Invalid {
                message: "x".into(),
            },
            after,
        );
        assert_eq!(get(&refused, condition::NETWORK_ISOLATED).status, "True");
        assert_eq!(refused.isolation.as_deref(), Some("Isolated"));
    }
}
