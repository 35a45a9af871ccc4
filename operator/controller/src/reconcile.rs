//! The reconcile pipeline: read → validate → build → apply → sweep → status.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::DynamicObject;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource, ResourceExt};
use megalis_operator_api::{FIELD_MANAGER, Plugin, RegionalPlatform, validate_platform};
use megalis_operator_build::{DesiredState, ManagedKind, build, sweep_selector};
use rand::Rng;
use serde_json::json;
use tracing::{info, warn};

use crate::status::{Applied, Observation, compute};
use crate::{Error, Metrics};

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Consecutive failures per platform, for the exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Metrics) -> Self {
        let recorder = Recorder::new(client.clone(), Reporter::from(FIELD_MANAGER));
        Self {
            client,
            recorder,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }
}

/// Re-read everything periodically even without events, so that drift on an object whose watch
/// event was missed is still corrected.
const RESYNC: Duration = Duration::from_secs(300);
/// While pods roll out, look again soon to move the status to Ready.
const ROLLOUT_POLL: Duration = Duration::from_secs(15);

pub async fn reconcile(
    platform: Arc<RegionalPlatform>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let outcome = reconcile_platform(&platform, &ctx).await;
    ctx.metrics
        .duration
        .with_label_values(&["RegionalPlatform"])
        .observe(started.elapsed().as_secs_f64());
    let key = object_key(&platform);
    match &outcome {
        Ok(_) => {
            ctx.metrics.reconciles.with_label_values(&["ok"]).inc();
            ctx.failures.lock().expect("failure map").remove(&key);
        }
        Err(error) => {
            ctx.metrics.reconciles.with_label_values(&["error"]).inc();
            ctx.metrics
                .failures
                .with_label_values(&[error.reason()])
                .inc();
        }
    }
    outcome
}

/// Transient errors back off exponentially from 2 s to 5 min, with ±25 % jitter so that many
/// platforms failing together (API server restart) do not retry in lockstep.
pub fn error_policy(platform: Arc<RegionalPlatform>, error: &Error, ctx: Arc<Context>) -> Action {
    let attempts = {
        let mut failures = ctx.failures.lock().expect("failure map");
        let attempts = failures.entry(object_key(&platform)).or_insert(0);
        *attempts = attempts.saturating_add(1);
        *attempts
    };
    let delay = backoff(attempts, rand::rng().random_range(0.75..=1.25));
    warn!(platform = %object_key(&platform), %error, attempts, ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// Delay before retry number `attempts` (1-based), scaled by `jitter`.
pub fn backoff(attempts: u32, jitter: f64) -> Duration {
    let base = 2f64 * 2f64.powi(attempts.saturating_sub(1).min(16) as i32);
    Duration::from_secs_f64(base.min(300.0) * jitter)
}

fn object_key(platform: &RegionalPlatform) -> String {
    format!(
        "{}/{}",
        platform.namespace().unwrap_or_default(),
        platform.name_any()
    )
}

async fn reconcile_platform(platform: &RegionalPlatform, ctx: &Context) -> Result<Action, Error> {
    let namespace = platform
        .namespace()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = platform
        .metadata
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    let platforms: Api<RegionalPlatform> = Api::namespaced(ctx.client.clone(), &namespace);

    // validate: a refused spec is not an error to retry, it waits for the next change.
    if let Err(invalid) = validate_platform(platform) {
        let message = invalid.to_string();
        info!(platform = %name, %message, "spec refused");
        publish(
            ctx,
            platform,
            EventType::Warning,
            "InvalidSpec",
            "Validate",
            &message,
        )
        .await;
        let status = compute(
            platform.status.as_ref(),
            platform.metadata.generation,
            &Observation::Invalid { message },
            Timestamp::now(),
        );
        write_status(&platforms, &name, &status).await?;
        return Ok(Action::await_change());
    }

    // read
    let plugins: Api<Plugin> = Api::namespaced(ctx.client.clone(), &namespace);
    let plugins = plugins
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Read {
            what: "plugins",
            source,
        })?
        .items;

    // build
    let desired = build(platform, &plugins)?;

    // apply
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut skipped = Vec::new();
    let mut deployment: Option<DynamicObject> = None;
    for object in &desired.objects {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), &namespace, &object.kind.api_resource());
        match api
            .patch(object.name(), &params, &Patch::Apply(&object.object))
            .await
        {
            Ok(applied) => {
                if object.kind == ManagedKind::Deployment {
                    deployment = Some(applied);
                }
            }
            Err(error) if object.kind.optional_api() && is_not_found(&error) => {
                skipped.push(format!("{:?}/{}", object.kind, object.name()));
            }
            Err(source) => {
                let error = Error::Apply {
                    kind: object.kind,
                    name: object.name().to_owned(),
                    source,
                };
                publish(
                    ctx,
                    platform,
                    EventType::Warning,
                    error.reason(),
                    "Apply",
                    &error.to_string(),
                )
                .await;
                return Err(error);
            }
        }
    }

    // sweep
    let deleted = sweep_orphans(ctx, &namespace, &name, &desired).await?;
    if !deleted.is_empty() {
        let note = format!("deleted objects no longer declared: {}", deleted.join(", "));
        publish(
            ctx,
            platform,
            EventType::Normal,
            "OrphansDeleted",
            "Sweep",
            &note,
        )
        .await;
    }

    // status
    let replicas = deployment_replicas(deployment, platform);
    let observation = Observation::Applied(Applied {
        desired_replicas: replicas.0,
        ready_replicas: replicas.1,
        updated_replicas: replicas.2,
        plugins: desired.plugins.clone(),
        allowed_flows: desired.allowed_flows.len(),
        config_checksum: desired.config_checksum.clone(),
        skipped,
    });
    let status = compute(
        platform.status.as_ref(),
        platform.metadata.generation,
        &observation,
        Timestamp::now(),
    );
    let phase_changed = status.phase != platform.status.as_ref().and_then(|s| s.phase);
    if phase_changed {
        let note = format!("phase {:?}", status.phase.expect("phase is always set"));
        publish(
            ctx,
            platform,
            EventType::Normal,
            "PhaseChanged",
            "Reconcile",
            &note,
        )
        .await;
    }
    let settled = status.phase == Some(megalis_operator_api::PlatformPhase::Ready);
    write_status(&platforms, &name, &status).await?;
    write_plugin_statuses(ctx, &namespace, platform, &plugins, &desired).await?;
    Ok(Action::requeue(if settled { RESYNC } else { ROLLOUT_POLL }))
}

/// Tells each Plugin pointing at this platform whether it is loaded (its `Ready` condition,
/// shown by `kubectl get plugins`). Only plugins whose condition changes are written.
async fn write_plugin_statuses(
    ctx: &Context,
    namespace: &str,
    platform: &RegionalPlatform,
    plugins: &[Plugin],
    desired: &DesiredState,
) -> Result<(), Error> {
    let name = platform.name_any();
    let api: Api<Plugin> = Api::namespaced(ctx.client.clone(), namespace);
    for plugin in plugins.iter().filter(|p| p.spec.platform_ref == name) {
        let id = plugin.name_any();
        let (ready, reason, message) = if desired.plugins.loaded.contains(&id) {
            (true, "Loaded", format!("configured in {name}-plugins"))
        } else if let Some((_, why)) = desired.plugins.invalid.iter().find(|(p, _)| *p == id) {
            (false, "Refused", why.clone())
        } else {
            (
                false,
                "NotEnabled",
                format!("not listed in spec.plugins of {name}"),
            )
        };
        let status = crate::status::plugin_status(
            plugin.status.as_ref(),
            plugin.metadata.generation,
            ready,
            reason,
            &message,
            Timestamp::now(),
        );
        if plugin.status.as_ref() == Some(&status) {
            continue;
        }
        api.patch_status(
            &id,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(Error::Status)?;
    }
    Ok(())
}

/// Deletes every object carrying the platform's labels that the current spec no longer
/// declares (a removed flow, listener or plugin). Volumes are never swept.
async fn sweep_orphans(
    ctx: &Context,
    namespace: &str,
    platform: &str,
    desired: &DesiredState,
) -> Result<Vec<String>, Error> {
    let wanted: HashSet<(ManagedKind, &str)> =
        desired.objects.iter().map(|o| (o.kind, o.name())).collect();
    let selector = ListParams::default().labels(&sweep_selector(platform));
    let mut deleted = Vec::new();
    for kind in ManagedKind::ALL.into_iter().filter(|k| k.swept()) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(ctx.client.clone(), namespace, &kind.api_resource());
        let existing = match api.list_metadata(&selector).await {
            Ok(list) => list.items,
            Err(error) if kind.optional_api() && is_not_found(&error) => continue,
            Err(source) => {
                return Err(Error::Read {
                    what: "managed objects",
                    source,
                });
            }
        };
        for object in existing {
            let name = object.name_any();
            if wanted.contains(&(kind, name.as_str())) {
                continue;
            }
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => deleted.push(format!("{kind:?}/{name}")),
                Err(error) if is_not_found(&error) => {}
                Err(source) => return Err(Error::Sweep { kind, name, source }),
            }
        }
    }
    Ok(deleted)
}

/// (desired, ready, updated) replicas of the applied Deployment.
fn deployment_replicas(
    applied: Option<DynamicObject>,
    platform: &RegionalPlatform,
) -> (i32, i32, i32) {
    let deployment: Option<Deployment> = applied
        .and_then(|d| serde_json::to_value(d).ok())
        .and_then(|v| serde_json::from_value(v).ok());
    let desired = deployment
        .as_ref()
        .and_then(|d| d.spec.as_ref())
        .and_then(|s| s.replicas)
        .or_else(|| platform.spec.autoscaling.as_ref().map(|a| a.min_replicas))
        .unwrap_or(platform.spec.replicas);
    let status = deployment.and_then(|d| d.status).unwrap_or_default();
    // A Deployment whose controller has not yet seen the new generation reports stale counts.
    (
        desired,
        status.ready_replicas.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
    )
}

async fn write_status(
    api: &Api<RegionalPlatform>,
    name: &str,
    status: &megalis_operator_api::RegionalPlatformStatus,
) -> Result<(), Error> {
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(Error::Status)
}

/// Events are best effort: failing to record one must not fail the reconcile.
async fn publish(
    ctx: &Context,
    platform: &RegionalPlatform,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx
        .recorder
        .publish(&event, &platform.object_ref(&()))
        .await
    {
        warn!(%error, "cannot publish event");
    }
}

fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
