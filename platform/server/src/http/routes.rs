//! The one table the router is built from. Each route declares, where it is mounted, whether
//! it touches patient data; a patient-data route also gives the requests a principal without
//! rights makes in the route walk (`tests/tests/e2e/route_walk.rs`), which expects each to be
//! denied and the denial audited. A route cannot be mounted without a class, and a
//! patient-data route cannot be mounted without probes (checked by a unit test below), so a
//! new route that forgets the access decision fails the walk.
//!
//! In test mode the table is served at `/_test/routes` for the walk.

use axum::routing::MethodRouter;
use serde::Serialize;

use super::AppState;

/// What a route touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataClass {
    /// No patient data: probes, sign-in, OAuth, the public directory, static files, account
    /// administration.
    NoPatientData,
    /// A patient's data: the handler calls the access decision (`http/access.rs`, or the
    /// identity gate of `http/patient_access.rs`) and audits it.
    PatientData,
    /// A plugin's routes: the host authenticates the caller and the per-application grant;
    /// the plugin reaches patient data only through capabilities that call the decision.
    Plugin,
    /// Routes mounted in `--mode test` only.
    TestOnly,
}

/// How the walk authenticates a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeAuth {
    /// A portal session (cookie), with the session's CSRF token in form bodies.
    Session,
    /// A bearer access token.
    Bearer,
}

/// One request of the walk. In `path` and `body`, `{patient}` stands for a real patient's
/// regional id and `{csrf}` for the session's CSRF token.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Probe {
    pub method: &'static str,
    pub path: &'static str,
    pub auth: ProbeAuth,
    /// A form (`a=b&c=d`) for session probes, JSON for bearer probes.
    pub body: Option<&'static str>,
}

impl Probe {
    pub const fn get(path: &'static str, auth: ProbeAuth) -> Self {
        Probe {
            method: "GET",
            path,
            auth,
            body: None,
        }
    }

    pub const fn post(path: &'static str, auth: ProbeAuth, body: &'static str) -> Self {
        Probe {
            method: "POST",
            path,
            auth,
            body: Some(body),
        }
    }

    pub const fn delete(path: &'static str, auth: ProbeAuth) -> Self {
        Probe {
            method: "DELETE",
            path,
            auth,
            body: None,
        }
    }

    pub const fn put(path: &'static str, auth: ProbeAuth, body: &'static str) -> Self {
        Probe {
            method: "PUT",
            path,
            auth,
            body: Some(body),
        }
    }
}

/// One mounted route.
pub struct Route {
    pub path: &'static str,
    /// The methods the handler answers (`ANY` for plugin routes), for the table and the walk.
    pub methods: &'static [&'static str],
    pub class: DataClass,
    pub probes: Vec<Probe>,
    pub handler: MethodRouter<AppState>,
    /// The handler streams its body and enforces its own size limit (`documents.max_size`);
    /// every other route gets `http.body_limit`.
    pub streamed: bool,
}

impl Route {
    /// Marks a route whose handler streams its body under its own limit.
    pub fn streamed(mut self) -> Self {
        self.streamed = true;
        self
    }

    /// A route that touches no patient data.
    pub fn open(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            path,
            methods,
            class: DataClass::NoPatientData,
            probes: Vec::new(),
            handler,
            streamed: false,
        }
    }

    /// A route that touches patient data, with the probes of the route walk.
    pub fn patient(
        path: &'static str,
        methods: &'static [&'static str],
        probes: &[Probe],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            path,
            methods,
            class: DataClass::PatientData,
            probes: probes.to_vec(),
            handler,
            streamed: false,
        }
    }

    pub fn plugin(path: &'static str, handler: MethodRouter<AppState>) -> Self {
        Route {
            path,
            methods: &["ANY"],
            class: DataClass::Plugin,
            probes: Vec::new(),
            handler,
            streamed: false,
        }
    }

    pub fn test_only(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            path,
            methods,
            class: DataClass::TestOnly,
            probes: Vec::new(),
            handler,
            streamed: false,
        }
    }
}

/// A route as the table lists it (without its handler).
#[derive(Debug, Clone, Serialize)]
pub struct RouteInfo {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub class: DataClass,
    pub probes: Vec<Probe>,
}

impl From<&Route> for RouteInfo {
    fn from(r: &Route) -> Self {
        RouteInfo {
            path: r.path,
            methods: r.methods,
            class: r.class,
            probes: r.probes.clone(),
        }
    }
}

/// Every route of the main listener, in mounting order.
pub fn table(test_mode: bool) -> Vec<Route> {
    let mut routes = vec![
        Route::open("/healthz", &["GET"], axum::routing::get(super::healthz)),
        Route::open("/readyz", &["GET"], axum::routing::get(super::readyz)),
        Route::open("/metrics", &["GET"], axum::routing::get(super::metrics)),
    ];
    routes.extend(super::oauth::routes());
    routes.extend(super::portal::routes());
    routes.extend(super::patients_portal::routes());
    routes.extend(super::cps::portal_routes());
    routes.extend(super::federation::routes());
    routes.extend(crate::plugins::routes());
    routes.extend(super::fhir::routes());
    routes.extend(super::patient_fhir::routes());
    routes.extend(super::sharing_fhir::routes());
    routes.extend(super::sharing_portal::routes());
    routes.extend(super::publications::routes());
    routes.extend(super::documents_fhir::routes());
    routes.extend(super::documents_portal::routes());
    routes.extend(super::patient_space::routes());
    if test_mode {
        routes.extend(super::testing::routes());
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_patient_data_route_has_a_probe_for_each_method() {
        let routes = table(true);
        let mut seen = std::collections::BTreeSet::new();
        for r in &routes {
            assert!(seen.insert(r.path), "{} is mounted twice", r.path);
            assert!(!r.methods.is_empty(), "{} declares its methods", r.path);
            match r.class {
                DataClass::PatientData => {
                    for m in r.methods {
                        assert!(
                            r.probes.iter().any(|p| p.method == *m),
                            "{} {m} touches patient data but has no probe for the route walk",
                            r.path
                        );
                    }
                }
                _ => assert!(
                    r.probes.is_empty(),
                    "{}: probes are for patient-data routes",
                    r.path
                ),
            }
            for p in &r.probes {
                assert!(p.path.starts_with('/'), "{}: probe path", r.path);
                assert!(
                    r.methods.contains(&p.method),
                    "{}: probe method {} is not a method of the route",
                    r.path,
                    p.method
                );
            }
        }
        assert!(
            routes
                .iter()
                .filter(|r| r.class == DataClass::PatientData)
                .count()
                >= 10
        );
    }
}
