//! `megalis-operator run`: leader election, then the controller, with metrics and probes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use megalis_operator_api::{Plugin, RegionalPlatform};
use tracing::{error, info};

use crate::leader::LeaseLock;
use crate::reconcile::{Context, error_policy, reconcile};
use crate::{Error, Metrics};

pub struct RunOptions {
    /// Watch one namespace only (single-namespace install); all namespaces otherwise.
    pub namespace: Option<String>,
    pub metrics_listen: SocketAddr,
    /// Namespace and identity for the Lease; no election when `None` (one replica).
    pub lease: Option<(String, String)>,
}

pub async fn run(options: RunOptions) -> Result<(), Error> {
    let client = Client::try_default().await.map_err(Error::Client)?;
    let metrics = Metrics::new()?;
    let leading = Arc::new(AtomicBool::new(options.lease.is_none()));
    let server = tokio::spawn(crate::metrics::serve(
        options.metrics_listen,
        crate::metrics::router(metrics.clone(), leading.clone()),
    ));

    let lost_lease = match options.lease {
        Some((namespace, identity)) => {
            let lock = LeaseLock::new(
                Api::namespaced(client.clone(), &namespace),
                "megalis-operator",
                identity,
                Duration::from_secs(15),
            );
            while !lock.try_acquire_or_renew(Timestamp::now()).await? {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            info!("lease acquired, leading");
            leading.store(true, Ordering::Relaxed);
            Some(tokio::spawn(keep_lease(lock)))
        }
        None => None,
    };

    let api = |client: &Client| -> (Api<RegionalPlatform>, Api<Plugin>) {
        match &options.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        }
    };
    let (platforms, plugins) = api(&client);
    // Only objects labelled by the operator are cached: memory stays proportional to what we
    // manage, not to the cluster.
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=megalis-operator");
    macro_rules! owned_api {
        ($kind:ty) => {
            match &options.namespace {
                Some(ns) => Api::<$kind>::namespaced(client.clone(), ns),
                None => Api::<$kind>::all(client.clone()),
            }
        };
    }
    let context = Arc::new(Context::new(client.clone(), metrics));
    let controller = Controller::new(platforms, watcher::Config::default())
        .owns(owned_api!(Deployment), owned.clone())
        .owns(owned_api!(Service), owned.clone())
        .owns(owned_api!(ConfigMap), owned.clone())
        .owns(owned_api!(Ingress), owned.clone())
        .owns(owned_api!(PodDisruptionBudget), owned.clone())
        .owns(owned_api!(HorizontalPodAutoscaler), owned.clone())
        .owns(owned_api!(NetworkPolicy), owned)
        .watches(plugins, watcher::Config::default(), |plugin: Plugin| {
            let namespace = plugin.namespace();
            let platform = ObjectRef::<RegionalPlatform>::new(&plugin.spec.platform_ref);
            Some(match namespace {
                Some(ns) => platform.within(&ns),
                None => platform,
            })
        })
        .shutdown_on_signal()
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, _)) => info!(platform = %object, "reconciled"),
                Err(error) => error!(%error, "reconcile error"),
            }
        });

    tokio::select! {
        () = controller => info!("controller stopped"),
        served = server => served.map_err(|e| Error::Serve(std::io::Error::other(e)))??,
        lost = async { match lost_lease { Some(task) => task.await, None => std::future::pending().await } } => {
            // Exiting lets Kubernetes restart this replica as a standby; continuing without the
            // lease could apply concurrently with the new leader.
            lost.map_err(|e| Error::Serve(std::io::Error::other(e)))??;
        }
    }
    Ok(())
}

/// Renews the lease every third of its duration; returns an error once it cannot be renewed.
async fn keep_lease(lock: LeaseLock) -> Result<(), Error> {
    let period = lock.duration() / 3;
    let mut last_renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match lock.try_acquire_or_renew(Timestamp::now()).await {
            Ok(true) => last_renewed = tokio::time::Instant::now(),
            Ok(false) => {
                return Err(Error::Input {
                    path: "lease".into(),
                    message: "lease taken by another replica".into(),
                });
            }
            Err(error) if last_renewed.elapsed() < lock.duration() => {
                error!(%error, "lease renewal failed, retrying")
            }
            Err(error) => return Err(error),
        }
    }
}
