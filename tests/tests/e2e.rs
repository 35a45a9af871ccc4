//! End-to-end tests of the `megalis` binary. One test binary (faster to link), one module per
//! area.

mod e2e {
    pub mod audit;
    pub mod auth;
    pub mod blobs;
    pub mod bound_tokens;
    pub mod channels;
    pub mod cli;
    pub mod cps;
    pub mod directory;
    pub mod documents;
    pub mod http;
    pub mod identity;
    pub mod patient_fhir;
    pub mod patient_space;
    pub mod patients;
    pub mod plugins;
    pub mod postgres;
    pub mod psc;
    pub mod publications;
    pub mod resilience;
    pub mod route_walk;
    pub mod sharing;
}
