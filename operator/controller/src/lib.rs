//! The Megalis operator: a kube-rs controller deploying regions from `RegionalPlatform` and
//! `Plugin` resources. The binary is a thin CLI over this library so that the reconcile loop
//! can be driven by tests against a mock API server.

mod error;
pub mod leader;
pub mod metrics;
pub mod reconcile;
pub mod render;
pub mod run;
pub mod status;

pub use error::Error;
pub use metrics::Metrics;
